"""Datasets stored as versioned parquet, read with DuckDB straight from the blob store, without a copy.

A revision's splits are found as the `datasets` library finds them (registry/datalayout.py); a split is
its parquet blobs, read by DuckDB where they lie (`registry.storage.scan_location`): a local store's files,
or a bucket's objects by byte range (the footer and the column chunks a query needs, never the whole file
into the local cache). Every DuckDB connection made here for a caller is a sandbox (registry/sandbox.py):
in memory, able to read only the split files, one view per split, no extensions, configuration locked,
a memory and thread budget; SQL a caller wrote (predicates, previews, statistics) runs in a sandbox worker
process. Evaluation reads splits through `dataset_splits`, `iter_batches` and `count_rows`; the hub's
dataset API through the same functions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from registry import sandbox
from registry.core import Registry
from registry.datalayout import discover_splits
from registry.errors import InvalidInputError, StorageUnavailableError
from registry.repos import RepoRecord
from registry.sandbox import check_select as check_select  # re-exported: evaluation builds its SQL with them
from registry.sandbox import guarded as guarded
from registry.sandbox import quote_ident as quote_ident
from registry.storage import arrow_source, scan_location
from registry.versions import read_version

# Column names that usually hold the input text of a row, best first.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "question", "prompt", "input", "document")


@dataclass(frozen=True)
class DatasetSplit:
    """One split of a dataset revision: its parquet blobs in order, their repo paths, and its row count.

    A file is a local path, or an `s3://` URL on a hub whose blobs are in a bucket (`registry.storage.scan_location`);
    open one with `read_table` or `arrow_source`.
    """

    name: str
    files: list[Path | str]
    num_rows: int
    paths: list[str] = field(default_factory=list)


def dataset_splits(reg: Registry, repo: RepoRecord, revision: str, *,
                   config: str | None = None) -> dict[str, DatasetSplit]:
    """The splits of `repo` at `revision` (a branch, tag or commit id), in the order `datasets` lists them.

    Only parquet files count; a revision without any has no splits (`{}`).

    Raises:
        RevisionNotFoundError: the revision does not exist.
        InvalidInputError: the repo is not a dataset, `config` is unknown, or a data file is not parquet.
    """
    if repo.ref.type != "dataset":
        raise InvalidInputError(f"{repo.ref.repo_id} is a {repo.ref.type}, not a dataset.")
    version = read_version(reg, repo, revision)
    found = discover_splits(version.tree, version.card.data, config=config)
    splits = {}
    for name, paths in found.items():
        files = [scan_location(reg.blobs, version.tree[p].oid) for p in paths]
        rows = 0
        for path, file in zip(paths, files, strict=True):
            try:
                rows += _parquet_rows(str(file))
            except (OSError, pa.ArrowException) as exc:
                _raise_unreachable(file, exc)
                raise InvalidInputError(f"{repo.ref.repo_id}@{revision}: {path} is not a readable parquet file.") \
                    from None
        splits[name] = DatasetSplit(name, files, rows, list(paths))
    return splits


def get_split(splits: dict[str, DatasetSplit], name: str, *, where: str = "this revision") -> DatasetSplit:
    """The split `name`, or InvalidInputError naming the splits there are."""
    if name not in splits:
        known = ", ".join(splits) or "none (no parquet data files)"
        raise InvalidInputError(f"Split {name!r} not found in {where}; its splits: {known}.")
    return splits[name]


def _raise_unreachable(file: Path | str, exc: BaseException) -> None:
    """A bucket that could not be read (not a missing or broken file) is the storage's failure, not the dataset's."""
    if isinstance(file, str) and isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        raise StorageUnavailableError(f"The hub's blob storage cannot be read right now ({str(exc)[:200]}). "
                                      "Retry later.") from exc


@lru_cache(maxsize=4096)
def _parquet_rows(location: str) -> int:
    # Blobs are named by their sha256: a location's content never changes, so its footer can be cached.
    path, filesystem = arrow_source(location)
    return int(pq.read_metadata(path, filesystem=filesystem).num_rows)


def parquet_rows(location: Path | str) -> int:
    """The row count of one parquet blob (`scan_location`), from its footer alone."""
    return _parquet_rows(str(location))


def read_table(location: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """One parquet blob (`scan_location`), or some of its columns, as an Arrow table (from a bucket: only those)."""
    path, filesystem = arrow_source(location)
    return pq.read_table(path, columns=list(columns) if columns is not None else None, filesystem=filesystem)


def split_schema(split: DatasetSplit) -> pa.Schema:
    """The Arrow schema of a split (that of its first file)."""
    return _parquet_schema(str(split.files[0]))


@lru_cache(maxsize=1024)
def _parquet_schema(location: str) -> pa.Schema:
    path, filesystem = arrow_source(location)  # like the row count: a blob's footer never changes
    return pq.read_schema(path, filesystem=filesystem)


def connect(splits: Iterable[DatasetSplit], *, memory_limit: str = sandbox.MEMORY_LIMIT,
            threads: int = sandbox.THREADS) -> duckdb.DuckDBPyConnection:
    """A sandboxed in-memory DuckDB with one view per split (`con.table("train")` is a relation over its blobs).

    It may read the split files and nothing else: no other file, no COPY or ATTACH, no extension, and its
    configuration is locked. It runs in this process: for SQL a caller wrote, use the functions that run it in
    a worker (`preview`, `count_rows`, `column_stats`, `registry.datasql.run_sql`). Close it when done.
    """
    return sandbox.connect(_views(splits), memory_limit=memory_limit, threads=threads)


def _views(splits: Iterable[DatasetSplit]) -> dict[str, list[str]]:
    return {s.name: [str(f) for f in s.files] for s in splits}


def iter_batches(split: DatasetSplit, columns: Sequence[str] | None = None, batch_size: int = 1024,
                 where: str | None = None) -> Iterator[pa.RecordBatch]:
    """Stream the rows of `split` (those matching the SQL predicate `where`) in order, `batch_size` rows a batch.

    Memory stays bounded whatever the split's size: DuckDB streams from the blobs, in a sandboxed connection in
    this process (a stream does not cross to a worker). A predicate from a caller should go through
    `count_rows` first, which runs it in a memory-capped worker.

    Raises:
        DatasetQueryError: a bad predicate or column name.
    """
    if batch_size < 1:
        raise InvalidInputError(f"Invalid batch_size {batch_size}: expected at least 1.")
    con = connect([split])
    try:
        with sandbox.guarded(con, views=[split.name]):
            reader = con.sql(sandbox.select_sql(con, split.name, columns, where)).to_arrow_reader(batch_size)
            yield from _rebatch(reader, batch_size)
    finally:
        con.close()


def _rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly `size` rows (the last one may be shorter); DuckDB's vary."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size).combine_chunks().to_batches()[0]
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def count_rows(split: DatasetSplit, where: str | None = None, *, timeout_s: float = 300) -> int:
    """How many rows of `split` match the SQL predicate `where` (all of them without one: from the footers).

    The predicate runs in a sandbox worker, interrupted after `timeout_s`.

    Raises:
        DatasetQueryError: a bad predicate, or one that runs out of time or memory.
    """
    if where is None or not where.strip():
        return split.num_rows
    return int(sandbox.run("count", _views([split]), split.name, where, timeout_s, timeout_s=timeout_s))


def preview(split: DatasetSplit, *, offset: int = 0, limit: int = 100, where: str | None = None,
            columns: Sequence[str] | None = None, timeout_s: float = 30) -> pa.Table:
    """Rows `offset` to `offset + limit` of `split` (of those matching `where`), in order, as an Arrow table.

    Run in a sandbox worker; fewer rows come back when they pass `sandbox.RESULT_BYTES`.

    Raises:
        DatasetQueryError: a bad predicate or column, or one that runs out of time or memory.
    """
    if offset < 0 or limit < 0:
        raise InvalidInputError(f"offset and limit must be >= 0, not {offset} and {limit}.")
    data, _, _ = sandbox.run("page", _views([split]), split.name, list(columns) if columns else None, where, offset,
                             limit, timeout_s, timeout_s=timeout_s)
    return sandbox.read_ipc(data)


@dataclass(frozen=True)
class ColumnStats:
    """What one column of a split holds: type, nulls, distinct values, range and mean, string lengths."""

    name: str
    type: str
    null_count: int
    approx_distinct: int | None
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    mean_length: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The statistics as a JSON object (min and max of dates and times as DuckDB writes them)."""
        return asdict(self)


_stats_cache: OrderedDict[tuple[str, ...], list[ColumnStats]] = OrderedDict()
_stats_lock = threading.Lock()


def column_stats(split: DatasetSplit, *, timeout_s: float = 30) -> list[ColumnStats]:
    """Per column of `split`: type, null count, approximate distinct count, min/max/mean/std of numbers, string
    lengths, min/max of dates and times; one scan in a sandbox worker, then cached (blobs never change)."""
    key = tuple(str(f) for f in split.files)
    with _stats_lock:
        if key in _stats_cache:
            return _stats_cache[key]
    stats = [ColumnStats(**s) for s in sandbox.run("summarize", _views([split]), split.name, timeout_s,
                                                   timeout_s=timeout_s)]
    with _stats_lock:
        _stats_cache[key] = stats
        while len(_stats_cache) > 64:
            _stats_cache.popitem(last=False)
    return stats


def sample_texts(reg: Registry, repo: RepoRecord, revision: str = "main", *, limit: int = 3,
                 max_chars: int = 300) -> list[str]:
    """A few non-empty values of the dataset's text column (by name, else its first string column).

    Read from its `train` split (else its first) as `dataset_splits` finds them; a dataset whose parquet
    cannot be read gives no examples rather than costing a model its demo.
    """
    splits = dataset_splits(reg, repo, revision)
    if not splits:
        return []
    split = splits.get("train") or next(iter(splits.values()))
    try:
        schema = split_schema(split)
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        if not strings:
            return []
        column = next((c for c in TEXT_COLUMNS if c in strings), strings[0])
        out: list[str] = []
        for batch in iter_batches(split, [column], batch_size=256):
            out += [v[:max_chars] for v in batch.column(0).to_pylist() if isinstance(v, str) and v.strip()]
            if len(out) >= limit:
                break
    except (pa.ArrowException, OSError, InvalidInputError):
        return []
    return out[:limit]
