"""`vitrine dataset import`, `dataset sql` and `dataset splits`: datasets from the command line.

`import` converts on this machine with DuckDB (registry/datasetimport.py) and commits the shards and the
card through huggingface_hub, as any user could script it; `sql` and `splits` call the hub's dataset API.
"""

from __future__ import annotations

import argparse
import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.cli.client import CliError, add_client_args, endpoint_of, send_json, token_of

# `vitrine --help` stays quick: DuckDB, pyarrow and the registry load when a dataset command runs.
Progress = Callable[[str, float], None]

_STAGES = {"convert": "Converting"}


def _repo_and_revision(spec: str) -> tuple[str, str, str]:
    """`acme/reviews@v1` -> (`acme/reviews`, `v1`, its API path); no `@` means `main`."""
    from registry.names import parse_repo_id

    repo_id, _, revision = spec.partition("@")
    ref = parse_repo_id(repo_id, "dataset")
    return ref.repo_id, revision or "main", f"/api/vitrine/datasets/{ref.namespace}/{ref.name}"


@contextmanager
def _progress_bars(label: str) -> Iterator[Progress]:
    """A tqdm bar per conversion stage (shown on a terminal only)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def report(stage: str, done: float) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=100, desc=f"{_STAGES.get(stage, stage)} {label}", unit="%", disable=None,
                               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        bars[stage].n = round(done * 100, 1)
        bars[stage].refresh()

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


class _ShardUploads:
    """Uploads each shard's LFS object in a background thread as soon as it is written, while the next one is.

    The repo is created on the first shard (a source that fails before it leaves no repo behind); shards go up
    under their working names and get their final `-of-N` names in the commit, which only then is known.
    """

    def __init__(self, api: Any, repo_id: str, *, revision: str, private: bool) -> None:
        self.api, self.repo_id, self.revision, self.private = api, repo_id, revision, private
        self.created = False
        self.ops: list[Any] = []
        self.failed: BaseException | None = None
        self.queue: queue.Queue[Path | None] = queue.Queue()
        self.thread: threading.Thread | None = None

    def submit(self, path: Path) -> None:
        """Upload `path` soon (in order)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        self.queue.put(path)

    def _run(self) -> None:
        from huggingface_hub import CommitOperationAdd

        while (path := self.queue.get()) is not None:
            if self.failed is not None:
                continue
            try:
                if not self.ops:
                    self.ensure_repo()
                op = CommitOperationAdd(path_in_repo=f"data/{path.name}", path_or_fileobj=str(path))
                self.api.preupload_lfs_files(self.repo_id, additions=[op], repo_type="dataset",
                                             revision=self.revision)
                self.ops.append(op)
            except BaseException as exc:  # re-raised in the main thread by `finish`
                self.failed = exc

    def ensure_repo(self) -> None:
        """Create the repo unless it exists (remembering whether this import created it)."""
        if not self.api.repo_exists(self.repo_id, repo_type="dataset"):
            self.api.create_repo(self.repo_id, repo_type="dataset", exist_ok=True, private=self.private)
            self.created = True

    def finish_quietly(self) -> None:
        """Wait for the uploads in flight, ignoring their errors (the import failed anyway)."""
        try:
            self.finish()
        except BaseException:
            pass

    def finish(self) -> list[Any]:
        """Wait for every upload; the operations, in shard order."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.failed is not None:
            raise self.failed
        return self.ops


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a file or DuckDB table into one split of a dataset repo in the Hub's layout, and commit it."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.hf_api import RepoFile

    from registry.datalayout import check_split_name
    from registry.datasetimport import convert, parse_size, parse_source, plan_commit
    from registry.names import parse_repo_id

    source = parse_source(args.source, format=args.format)
    check_split_name(args.split)
    ref = parse_repo_id(args.repo_id, "dataset")
    options: dict[str, Any] = {"max_shard_bytes": parse_size(args.max_shard_bytes), "threads": args.threads}
    if args.row_group_size is not None:
        options["row_group_size"] = args.row_group_size
    if args.memory_limit is not None:
        options["memory_limit"] = args.memory_limit
    api = HfApi(endpoint=endpoint_of(args), token=token_of(args))
    uploads = _ShardUploads(api, ref.repo_id, revision=args.revision, private=args.private)
    with tempfile.TemporaryDirectory(prefix="vitrine-import-", dir=args.work_dir) as tmp:
        try:
            with _progress_bars(source.label) as progress:
                converted = convert(source, Path(tmp), split=args.split, progress=progress, on_shard=uploads.submit,
                                    **options)
            ops = uploads.finish()
        except BaseException:
            uploads.finish_quietly()
            if uploads.created:  # nothing was committed to it: leave no empty repo behind
                api.delete_repo(ref.repo_id, repo_type="dataset", missing_ok=True)
            raise
        head = api.dataset_info(ref.repo_id, revision=args.revision).sha
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
        commit = api.create_commit(ref.repo_id, operations, repo_type="dataset", revision=args.revision,
                                   parent_commit=head,
                                   commit_message=args.message or f"Import {source.label} as split {args.split}")
        size = sum(f.stat().st_size for f in converted.files)
    print(f"Imported {converted.num_rows:,} rows of {source.label} into {ref.repo_id}@{args.revision} as split "
          f"{args.split!r} ({len(converted.files)} file(s), {size / 2**20:.1f} MiB): commit {commit.oid}")
    print(f'Load it with:  datasets.load_dataset("{ref.repo_id}", split="{args.split}")')
    print(f'Query it with: vitrine dataset sql {ref.repo_id} "SELECT count(*) FROM {args.split}"')
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one read-only SELECT on a dataset revision, its splits as views, and print the rows as a table."""
    repo_id, revision, path = _repo_and_revision(args.repo)
    body: dict[str, Any] = {"sql": args.sql, "revision": revision}
    if args.limit is not None:
        body["limit"] = args.limit
    if args.timeout is not None:
        body["timeout_s"] = args.timeout
    result = send_json(endpoint_of(args), token_of(args), "POST", f"{path}/sql", body=body, repo_id=repo_id,
                       progress=f"Querying {repo_id}@{revision} on the hub")
    if args.json:
        print(json.dumps(result))
        return 0
    _print_rows(result, note=(f"{len(result['rows'])} rows shown; there are more (limit {result['limit']}): "
                              "raise --limit, or aggregate") if result["truncated"] else
                f"{len(result['rows'])} row(s) in {result['elapsed_s']:.3f} s")
    return 0


def _print_rows(result: dict[str, Any], *, note: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*[escape(c["name"]) for c in result["columns"]])
    for row in result["rows"]:
        table.add_row(*["" if v is None else escape(v if isinstance(v, str) else json.dumps(v)) for v in row])
    console = Console()
    console.print(table)
    console.print(note, markup=False, highlight=False)


def cmd_splits(args: argparse.Namespace) -> int:
    """List the splits of a dataset revision: rows, files and columns."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    repo_id, revision, path = _repo_and_revision(args.repo)
    result = send_json(endpoint_of(args), token_of(args), "GET", f"{path}/splits", params={"revision": revision},
                       repo_id=repo_id)
    if not result["splits"]:
        raise CliError(f"{repo_id}@{revision} has no parquet data files. Add a split with: "
                       f"vitrine dataset import FILE {repo_id} --split train")
    table = Table("split", "rows", "files", "columns")
    for split in result["splits"]:
        columns = ", ".join(f"{c['name']}: {c['type']}" for c in split["columns"])
        table.add_row(escape(split["name"]), f"{split['num_rows']:,}", str(len(split["files"])), escape(columns))
    Console().print(table)
    return 0


def register(sub: Any) -> None:
    """Add `dataset import`, `dataset sql` and `dataset splits` to the `vitrine` parser."""
    group = sub.add_parser("dataset", help="dataset repos: import, query").add_subparsers(dest="dataset_command",
                                                                                         required=True)
    imp = add_client_args(group.add_parser(
        "import", help="convert a CSV, Parquet, JSON Lines file or DuckDB table into a split of a dataset repo"))
    imp.add_argument("source", help="FILE (.csv .tsv .parquet .jsonl .json, .gz too), a URI, or DB.duckdb::TABLE")
    imp.add_argument("repo_id", help="dataset repo, e.g. acme/reviews (created if missing)")
    imp.add_argument("--split", default="train", help="split name (default train)")
    imp.add_argument("--revision", default="main", help="branch to commit to (default main)")
    imp.add_argument("--format", choices=["csv", "parquet", "json", "duckdb"], help="override the format the name says")
    imp.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its own)")
    imp.add_argument("--max-shard-bytes", default="128MB", help="start a new shard before this size (default 128MB)")
    imp.add_argument("--row-group-size", type=int, default=None, help="rows per parquet row group (default 100000)")
    imp.add_argument("--memory-limit", default=None,
                     help="DuckDB memory limit while converting; it spills to --work-dir past it (default 384MB)")
    imp.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    imp.add_argument("--work-dir", default=None, help="where shards are written before upload (default: temp dir)")
    imp.add_argument("--message", default=None, help="commit message")
    imp.set_defaults(func=cmd_import)

    sql = add_client_args(group.add_parser("sql", help="run one read-only SELECT on a dataset revision"))
    sql.add_argument("repo", help="dataset repo, optionally @revision: acme/reviews@main")
    sql.add_argument("sql", help='one SELECT; splits are views, e.g. "SELECT lang, count(*) FROM test GROUP BY lang"')
    sql.add_argument("--limit", type=int, default=None, help="rows to return (default and cap: the hub's)")
    sql.add_argument("--timeout", type=float, default=None, help="seconds before the hub interrupts the query")
    sql.add_argument("--json", action="store_true", help="print the hub's JSON answer instead of a table")
    sql.set_defaults(func=cmd_sql)

    splits = add_client_args(group.add_parser("splits", help="list the splits of a dataset revision"))
    splits.add_argument("repo", help="dataset repo, optionally @revision: acme/reviews@main")
    splits.set_defaults(func=cmd_splits)
