"""An import's client side end to end: convert a source, upload its shards while converting, commit them and the card.

What `vitrine dataset import` and the console's Datasets upload both run. It talks to a hub only through the
`huggingface_hub.HfApi` it is given, as any script could: the hub's answers (a refused write, a missing repo)
reach the caller as huggingface_hub's errors, a bad source or split as InvalidInputError.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from registry.datalayout import check_split_name
from registry.datasetimport import Progress, Shard, Source, convert, plan_commit
from registry.names import parse_repo_id

Step = Callable[[str], None]
"""Called with a readable line as the import moves on (`Committing 2 file(s) and the card`)."""


@dataclass(frozen=True)
class ImportResult:
    """What an import committed."""

    repo_id: str
    revision: str
    split: str
    num_rows: int
    files: int
    size: int
    commit: str
    created: bool


class _ShardUploads:
    """Uploads each shard's LFS object in a background thread as soon as it is written, while the next one is.

    The thread starts with the conversion and first asks whether the repo exists: a hub's first answer is its
    slowest (up to half a second on a fresh one), and it comes while the conversion runs instead of before the first
    upload. The repo is created on the first shard (a source that fails before it leaves no repo behind); shards
    go up under their working names and get their final `-of-N` names in the commit, which only then is known.
    """

    def __init__(self, api: Any, repo_id: str, *, revision: str, private: bool) -> None:
        self.make_api: Callable[[], Any] | None = api if callable(api) else None
        self.api: Any = None if callable(api) else api
        self.repo_id, self.revision, self.private = repo_id, revision, private
        self.created = False
        self.exists: bool | None = None
        self.ops: list[Any] = []
        self.failed: BaseException | None = None
        self.queue: queue.Queue[Shard | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.files: list[BinaryIO] = []

    def start(self) -> None:
        """Start the upload thread; it asks whether the repo exists, then waits for shards."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def submit(self, shard: Shard) -> None:
        """Upload `shard` soon (in order)."""
        self.start()
        self.queue.put(shard)

    def _run(self) -> None:
        try:
            from huggingface_hub import CommitOperationAdd

            if self.make_api is not None:
                self.api = self.make_api()
            self.exists = bool(self.api.repo_exists(self.repo_id, repo_type="dataset"))
            import registry.modelmeta  # noqa: F401  (the commit's card merge needs it: loaded while converting)
        except BaseException as exc:  # re-raised in the caller's thread by `finish`
            self.failed = exc
        while (shard := self.queue.get()) is not None:
            if self.failed is not None:
                continue
            try:
                if not self.ops:
                    self.ensure_repo()
                # Made from the path, huggingface_hub reads only the file's first bytes (it would hash an open
                # file whole); the sha256 is the one computed while the shard was written.
                op = CommitOperationAdd(path_in_repo=f"data/{shard.path.name}", path_or_fileobj=str(shard.path))
                op.upload_info.sha256 = bytes.fromhex(shard.sha256())
                # Then an open file, not a path: huggingface_hub uploads it through Git LFS even with hf_xet
                # installed. Parquet shards are compressed, so Xet's chunk dedupe finds nothing to spare in them,
                # while its chunking and the hub's rebuilding of the file cost CPU the conversion needs (the import
                # took 9.9 s through Xet against 7.3 s through LFS, bench/bench_import.py) and 200 MiB more
                # memory. An unchanged shard is still skipped: the LFS batch API knows its sha256.
                fh = open(shard.path, "rb")
                self.files.append(fh)
                op.path_or_fileobj = fh
                self.api.preupload_lfs_files(self.repo_id, additions=[op], repo_type="dataset",
                                             revision=self.revision)
                self.ops.append(op)
            except BaseException as exc:  # re-raised in the caller's thread by `finish`
                self.failed = exc

    def ensure_repo(self) -> None:
        """Create the repo unless it exists (remembering whether this import created it)."""
        if self.exists is None:
            self.exists = bool(self.api.repo_exists(self.repo_id, repo_type="dataset"))
        if not self.exists:
            self.api.create_repo(self.repo_id, repo_type="dataset", exist_ok=True, private=self.private)
            self.created = self.exists = True

    def finish_quietly(self) -> None:
        """Wait for the uploads in flight, ignoring their errors (the import failed anyway)."""
        try:
            self.finish()
        except BaseException:
            pass

    def close(self) -> None:
        """Close the shards' files (once the commit that reads the small ones inline is done)."""
        for fh in self.files:
            fh.close()

    def finish(self) -> list[Any]:
        """Wait for every upload; the operations, in shard order."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.failed is not None:
            raise self.failed
        return self.ops


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class _NoXetFallbackWarning(logging.Filter):
    """Drops huggingface_hub's warning that an open file goes through LFS, not Xet: the import asks for that."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for that one warning."""
        return "not supported by Xet Storage" not in record.getMessage()


@contextmanager
def _lfs_quietly() -> Iterator[None]:
    logger = logging.getLogger("huggingface_hub._commit_api")
    quiet = _NoXetFallbackWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def import_split(api: Any, source: Source, repo_id: str, *, split: str = "train", revision: str = "main",
                 private: bool = False, message: str | None = None, work_dir: str | Path | None = None,
                 progress: Progress | None = None, step: Step | None = None, **options: Any) -> ImportResult:
    """Convert `source` into split `split` of dataset repo `repo_id` and commit it with the merged card.

    The repo is created (`private` or not) when it does not exist, and deleted again if the import fails before
    its commit. `options` go to `convert` (`max_shard_bytes`, `row_group_size`, `memory_limit`, `threads`).

    Args:
        api: a `huggingface_hub.HfApi` for the hub and token to import with, or a function that makes one: it is
            called in the upload thread, so that importing huggingface_hub (a third of a second) overlaps the
            conversion instead of delaying its start.
        progress: called with the conversion's stage and fraction done.
        step: called with a readable line at each step after the conversion.

    Raises:
        InvalidInputError: a bad source, split, table or setting, or a source without rows (nothing committed).
    """
    check_split_name(split)
    ref = parse_repo_id(repo_id, "dataset")
    uploads = _ShardUploads(api, ref.repo_id, revision=revision, private=private)
    with tempfile.TemporaryDirectory(prefix="vitrine-import-", dir=work_dir) as tmp, _lfs_quietly():
        try:
            uploads.start()
            converted = convert(source, Path(tmp), split=split, progress=progress, on_shard=uploads.submit, **options)
            if step is not None:
                step(f"Uploading {len(converted.files)} shard(s) of {converted.num_rows:,} rows")
            ops = uploads.finish()
        except BaseException:
            uploads.finish_quietly()
            uploads.close()
            if uploads.created:  # nothing was committed to it: leave no empty repo behind
                uploads.api.delete_repo(ref.repo_id, repo_type="dataset", missing_ok=True)
            raise
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete
        from huggingface_hub.hf_api import RepoFile

        api = uploads.api
        head = api.dataset_info(ref.repo_id, revision=revision).sha
        files = {f.path: f.size for f in api.list_repo_tree(ref.repo_id, repo_type="dataset", revision=head,
                                                             recursive=True) if isinstance(f, RepoFile)}
        card = None
        if "README.md" in files:
            local = api.hf_hub_download(ref.repo_id, "README.md", repo_type="dataset", revision=head,
                                        local_dir=Path(tmp) / "card")
            card = Path(local).read_text(encoding="utf-8")
        plan = plan_commit(converted, existing_card=card, repo_files=files, title=ref.name, source=source)
        for op, (path_in_repo, _) in zip(ops, plan.add, strict=True):  # both in shard order
            op.path_in_repo = path_in_repo  # its object is uploaded already; only the name it gets changes
        operations: list[Any] = [CommitOperationDelete(path_in_repo=p) for p in plan.delete]
        operations += [*ops, CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=plan.card.encode())]
        if step is not None:
            step(f"Committing {len(ops)} file(s) and the card to {ref.repo_id}@{revision}")
        size = sum(f.stat().st_size for f in converted.files)
        # The commit cites the shards that went up through LFS by their sha256 and reads only the small ones
        # inline: the others are deleted while it runs, not after.
        cited = [path for op, (_, path) in zip(ops, plan.add, strict=True) if op._upload_mode == "lfs"]
        cleanup = threading.Thread(target=_unlink, args=(cited,), daemon=True)
        cleanup.start()
        try:
            commit = api.create_commit(ref.repo_id, operations, repo_type="dataset", revision=revision,
                                       parent_commit=head,
                                       commit_message=message or f"Import {source.label} as split {split}")
        finally:
            cleanup.join()
            uploads.close()
    return ImportResult(ref.repo_id, revision, split, converted.num_rows, len(converted.files), size, commit.oid,
                        uploads.created)
