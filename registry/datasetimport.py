"""A CSV, Parquet or JSON Lines file, or a DuckDB table, turned into one split in the Hub's dataset layout.

This is the client side of `vitrine dataset import`; it never touches a hub. DuckDB reads the source in
parallel, in bounded memory (`memory_limit`, spilling to the work directory), and its ordered Arrow stream
is written in one pass as parquet shards of whole row groups, a new shard before one would pass
`max_shard_bytes`; each finished shard is handed to the caller, which uploads it while the next is written.
`plan_commit` then says what to commit: the shards as `data/{split}-0000i-of-0000N.parquet`, the old shards
of the same split to delete, and the dataset card with its `dataset_info` and `configs` merged with those
already there.
"""

from __future__ import annotations

import errno
import hashlib
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from registry.datalayout import (
    check_split_name,
    data_files_entries,
    discover_splits,
    features_of,
    glob_regex,
    shard_path,
    split_pattern,
)
from registry.errors import InvalidInputError

# Suffix (after a compression suffix) -> the DuckDB reader.
FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "json", ".ndjson": "json", ".json": "json", ".duckdb": "duckdb", ".ddb": "duckdb",
           ".db": "duckdb"}
_COMPRESSED = (".gz", ".zst")
_REMOTE = ("http://", "https://", "s3://", "gs://", "gcs://", "r2://", "hf://", "az://", "abfss://")
# Small enough for uploads to overlap the conversion, and for the last shard, whose upload the import waits for
# once the conversion is done, to be short (half a shard on average: 0.25 s here at 64 MB, 0.45 s at 128 MB).
DEFAULT_SHARD_BYTES = 64 * 1000**2
DEFAULT_ROW_GROUP_SIZE = 100_000
DEFAULT_MEMORY_LIMIT = "384MB"
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}

Progress = Callable[[str, float], None]
"""Called with a stage (`convert`) and the fraction of it done."""


@dataclass(frozen=True)
class Source:
    """What to import: a local path or a remote URI DuckDB reads, its format, and the table of a DuckDB file."""

    location: str
    format: str
    table: str | None = None

    @property
    def label(self) -> str:
        """How messages and the card name the source: the file name (never a local directory), then the table."""
        name = self.location if self.location.startswith(_REMOTE) else Path(self.location).name
        return f"{name}::{self.table}" if self.table else name


def parse_size(text: str) -> int:
    """`500MB`, `1GiB`, `1048576` -> bytes."""
    raw = text.strip().lower().replace(" ", "")
    digits = raw.rstrip("kmgib")
    unit = raw[len(digits):]
    try:
        value = float(digits)
    except ValueError:
        value = -1
    if unit not in _UNITS or value <= 0:
        raise InvalidInputError(f"Invalid size {text!r}: expected a number of bytes such as 500MB, 2GiB or 1048576.")
    return int(value * _UNITS[unit])


def parse_source(spec: str, *, format: str | None = None) -> Source:
    """The source `spec` names (`reviews.csv`, `data.parquet`, `rows.jsonl`, `db.duckdb::table`, an https URI).

    Raises:
        InvalidInputError: a missing local file, an unknown format, or a DuckDB file without its `::table`.
    """
    location, sep, table = spec.partition("::")
    location = location.removeprefix("file://")
    if sep and not table.strip():
        raise InvalidInputError(f"{spec!r} names no table after `::`; write FILE.duckdb::TABLE.")
    if format is None:
        name = location.rsplit("/", 1)[-1].lower()
        for suffix in _COMPRESSED:
            name = name.removesuffix(suffix)
        suffix = name[name.rfind("."):] if "." in name else ""
        format = "duckdb" if sep else FORMATS.get(suffix)
        if format is None:
            raise InvalidInputError(f"Unknown format of {location!r}: expected .csv, .tsv, .parquet, .jsonl, .json "
                                    "(optionally .gz), or FILE.duckdb::TABLE; or pass --format.")
    if format not in set(FORMATS.values()):
        raise InvalidInputError(f"Unknown format {format!r}: expected csv, parquet, json or duckdb.")
    if not location.startswith(_REMOTE) and "*" not in location:
        path = Path(location).expanduser()
        if not path.exists():
            raise InvalidInputError(f"No such file: {location}")
        if path.is_dir():
            raise InvalidInputError(f"{location} is a directory; name a file (or a glob such as {location}/*.parquet).")
        location = str(path.resolve())
    if format == "duckdb" and not sep:
        raise InvalidInputError(f"{location} is a DuckDB database: name the table to import, as {spec}::TABLE.")
    if sep and format != "duckdb":
        raise InvalidInputError(f"`::{table}` names a table, which only a DuckDB database has; {location} is {format}.")
    return Source(location, format, table.strip() or None)


def _lit(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def source_select(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    """The SELECT that reads `source` on `con` (attaching a DuckDB database read-only first).

    Raises:
        InvalidInputError: the database cannot be opened or has no such table (the message lists its tables).
    """
    if source.format == "csv":
        return f"SELECT * FROM read_csv({_lit(source.location)})"
    if source.format == "parquet":
        return f"SELECT * FROM read_parquet({_lit(source.location)})"
    if source.format == "json":
        return f"SELECT * FROM read_json({_lit(source.location)})"
    assert source.table is not None
    try:
        con.execute(f"ATTACH {_lit(source.location)} AS src (READ_ONLY)")
    except duckdb.Error as exc:
        raise InvalidInputError(f"Cannot open {source.location} as a DuckDB database: {_first_line(exc)}") from None
    schema, _, table = source.table.rpartition(".")
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' UNION ALL "
                         "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'src' "
                         "AND NOT internal ORDER BY ALL").fetchall()
    match = [(s, t) for s, t in tables if t == table and (not schema or s == schema)]
    if not match:
        known = ", ".join(t if s == "main" else f"{s}.{t}" for s, t in tables) or "none"
        raise InvalidInputError(f"Table {source.table!r} does not exist in {source.label.split('::')[0]}; "
                                f"its tables: {known}.")
    s, t = match[0]
    return f"SELECT * FROM src.{_ident(s)}.{_ident(t)}"


@dataclass(frozen=True)
class Shard:
    """A finished parquet shard: its local file and size; `sha256()` waits for its hash, computed as it was written."""

    path: Path
    size: int
    _hash: _ReadBehind = dataclass_field(repr=False)

    def sha256(self) -> str:
        """The shard's sha256 (hex), once the thread reading behind its writer has reached its end."""
        return self._hash.digest()


class _ReadBehind:
    """The sha256 of a file being written, from a thread that reads what the writer has written so far.

    A parquet writer only appends, so the bytes before its position are final: the shard's hash is ready when
    it closes (the last row group and the footer are all that is left), instead of a second pass over the
    file before its upload can start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sizes: queue.Queue[int | None] = queue.Queue()
        self.sha = hashlib.sha256()
        self.hashed = 0
        self.size = -1
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="shard-hash", daemon=True)
        self.thread.start()

    def advance(self, size: int) -> None:
        """The writer's file has `size` bytes on disk now."""
        self.sizes.put(size)

    def close(self, size: int) -> None:
        """The file is closed, `size` bytes long: hash the rest (without waiting for it)."""
        self.sizes.put(size)
        self.sizes.put(None)
        self.size = size

    def digest(self) -> str:
        """The sha256 of the closed file, once hashed to its end."""
        self.thread.join()
        size = self.size
        if self.error is not None:
            raise self.error
        if self.hashed != size:
            raise OSError(errno.EIO, f"{self.path.name}: hashed {self.hashed} bytes of {size}")
        return self.sha.hexdigest()

    def stop(self) -> None:
        """Stop hashing (the shard is abandoned)."""
        self.sizes.put(None)
        self.thread.join()

    def _run(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                while (size := self.sizes.get()) is not None:
                    while self.hashed < size:
                        chunk = fh.read(min(size - self.hashed, 1 << 20))
                        if not chunk:
                            raise OSError(errno.EIO, f"{self.path.name} ends before the {size} bytes written")
                        self.sha.update(chunk)
                        self.hashed += len(chunk)
        except BaseException as exc:  # re-raised by `digest`, in the thread that asks for the hash
            self.error = exc


@dataclass(frozen=True)
class ConvertedSplit:
    """A split written as parquet shards (local files, in order), its rows and sizes."""

    split: str
    files: list[Path]
    num_rows: int
    num_bytes: int
    """Uncompressed size of the data, what `datasets` records as a split's `num_bytes`."""
    schema: pa.Schema

    @property
    def repo_paths(self) -> list[str]:
        """Where each shard goes in the repo: `data/{split}-0000i-of-0000N.parquet`."""
        return [shard_path(self.split, i, len(self.files)) for i in range(len(self.files))]


class _ShardWriter:
    """Parquet shards of exact row groups, a new file before one would pass `max_bytes` (a row group at least)."""

    def __init__(self, out_dir: Path, schema: pa.Schema, *, max_bytes: int, row_group_size: int,
                 on_shard: Callable[[Shard], None] | None) -> None:
        self.out_dir, self.schema, self.max_bytes, self.rows = out_dir, schema, max_bytes, row_group_size
        self.on_shard = on_shard
        self.files: list[Path] = []
        self.shards: list[Shard] = []
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.sink: pa.NativeFile | None = None
        self.writer: pq.ParquetWriter | None = None
        self.hash: _ReadBehind | None = None
        self.last_group = 0
        self.dictionary: list[str] | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= self.rows:
            table = pa.Table.from_batches(self.pending, self.schema)
            self._group(table.slice(0, self.rows))
            rest = table.slice(self.rows)
            self.pending, self.pending_rows = rest.to_batches(), rest.num_rows

    def _group(self, table: pa.Table) -> None:
        if self.writer is not None and self.sink is not None and self.sink.tell() + self.last_group > self.max_bytes:
            self._close_shard()
        if self.writer is None:
            if self.dictionary is None:
                self.dictionary = dictionary_columns(table)
            path = self.out_dir / f"shard-{len(self.files):05d}.parquet"
            self.sink = pa.OSFile(str(path), "wb")
            self.writer = pq.ParquetWriter(self.sink, self.schema, compression="snappy", use_dictionary=self.dictionary)
            self.files.append(path)
            self.hash = _ReadBehind(path)
        assert self.sink is not None and self.hash is not None
        before = self.sink.tell()
        self.writer.write_table(table, row_group_size=self.rows)
        self.last_group = self.sink.tell() - before
        self.hash.advance(self.sink.tell())

    def _close_shard(self) -> None:
        assert self.writer is not None and self.sink is not None and self.hash is not None
        self.writer.close()
        self.sink.close()
        size = self.files[-1].stat().st_size
        self.hash.close(size)
        shard = Shard(self.files[-1], size, self.hash)
        self.writer = self.sink = self.hash = None
        self.shards.append(shard)
        if self.on_shard is not None:
            self.on_shard(shard)

    def abort(self) -> None:
        """Drop the shard being written (the conversion failed): its hashing thread ends, its file closes."""
        if self.hash is not None:
            self.hash.stop()
        for closable in (self.writer, self.sink):
            try:
                if closable is not None:
                    closable.close()
            except (pa.ArrowException, OSError):
                pass
        self.writer = self.sink = self.hash = None

    def close(self) -> list[Path]:
        if self.pending_rows:
            self._group(pa.Table.from_batches(self.pending, self.schema))
        if self.writer is not None:
            self._close_shard()
        return self.files


def dictionary_columns(sample: pa.Table, *, max_share: float = 0.5) -> list[str]:
    """The columns worth dictionary encoding: in the first row group, their distinct values once plus an index
    per row would take at most `max_share` of their plain size.

    Trying a dictionary on every column costs a fifth of the writing time for columns such as ids or free text,
    where the writer gives up on it anyway; a column that turns out more varied later falls back to plain
    encoding, so a wrong guess costs size, never correctness. A column of a few thousand distinct numbers (prices,
    scores) takes a third of its plain size so, as DuckDB's own writer finds (5% less parquet for the benchmark's
    CSV, at the same writing time).
    """
    import pyarrow.compute as pc

    rows = max(sample.num_rows, 1)
    chosen = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_nested(field.type):
            continue
        distinct = pc.count_distinct(column, mode="all").as_py()
        plain = max(column.nbytes, 1)
        encoded = distinct * plain / rows + rows * max(distinct.bit_length(), 1) / 8
        if encoded <= max_share * plain:
            chosen.append(field.name)
    return chosen


def _storable(schema: pa.Schema) -> pa.Schema:
    """`schema` with dictionary columns (DuckDB's ENUMs) as their plain values, which `datasets` can name."""
    return pa.schema([pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema])


def convert(source: Source, out_dir: Path, *, split: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES,
            row_group_size: int = DEFAULT_ROW_GROUP_SIZE, memory_limit: str = DEFAULT_MEMORY_LIMIT,
            threads: int | None = None, progress: Progress | None = None,
            on_shard: Callable[[Shard], None] | None = None) -> ConvertedSplit:
    """Stream `source` into parquet shards under `out_dir`, in the source's order, in one pass.

    DuckDB reads the source in parallel within `memory_limit`; its ordered Arrow stream is cut into row groups
    of `row_group_size` rows, and into a new shard before one would pass `max_shard_bytes`.

    Args:
        on_shard: called with each shard, hashed, as soon as it is complete (the caller may upload it meanwhile).

    Raises:
        InvalidInputError: a bad split name or setting, an unreadable source, a missing table, or no rows.
    """
    check_split_name(split)
    if row_group_size < 1 or max_shard_bytes < 1:
        raise InvalidInputError("--row-group-size and --max-shard-bytes must be positive.")
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
        except duckdb.Error as exc:
            raise InvalidInputError(f"Invalid --memory-limit or --threads: {_first_line(exc)}") from None
        con.execute(f"SET temp_directory = {_lit(out_dir / 'spill')}")
        con.execute("SET preserve_insertion_order = true")  # rows keep the order of the source
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        select = source_select(con, source)
        try:
            reader = con.sql(select).to_arrow_reader(min(row_group_size, 65536))
            schema = _storable(reader.schema)
            writer = _ShardWriter(out_dir, schema, max_bytes=max_shard_bytes, row_group_size=row_group_size,
                                  on_shard=on_shard)
            try:
                for batch in reader:
                    writer.write(batch.cast(schema) if batch.schema != schema else batch)
                    done = con.query_progress()
                    if progress is not None and done >= 0:
                        progress("convert", min(done, 100.0) / 100)
                files = writer.close()
            except BaseException:
                writer.abort()
                raise
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"Cannot convert {source.label} ({source.format}): {_first_line(exc)}") from None
    finally:
        con.close()
    if progress is not None:
        progress("convert", 1.0)
    if not files:
        raise InvalidInputError(f"{source.label} has no rows: nothing to import.")
    metas = [pq.read_metadata(f) for f in files]
    num_bytes = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
    return ConvertedSplit(split, files, sum(m.num_rows for m in metas), num_bytes, pq.read_schema(files[0]))


@dataclass(frozen=True)
class CommitPlan:
    """What an import commits: the shards to add (repo path, local file), files to delete, the new card."""

    add: list[tuple[str, Path]]
    delete: list[str]
    card: str


def plan_commit(converted: ConvertedSplit, *, existing_card: str | None, repo_files: Mapping[str, int],
                title: str, source: Source) -> CommitPlan:
    """Add the split's shards, drop its old ones (`data/{split}-*`), and merge the card with what is there.

    Args:
        existing_card: the repo's README.md, if any.
        repo_files: every file of the revision -> its size.

    Raises:
        InvalidInputError: the existing card's YAML is broken, or the split's features differ from those of the
            other splits (a config has one schema).
    """
    import yaml

    from registry.modelmeta import parse_card  # huggingface_hub's card code: loaded once the conversion is done

    split = converted.split
    card = parse_card(existing_card)
    if card.error:
        raise InvalidInputError(f"The repo's README.md has {card.error}; fix it or delete it, then import again.")
    data: dict[str, Any] = dict(card.data)
    rx = glob_regex(split_pattern(split))
    delete = sorted(p for p in repo_files if rx.fullmatch(p))
    kept = {p: s for p, s in repo_files.items() if p not in delete}

    configs = [dict(c) for c in data.get("configs") or [] if isinstance(c, dict)]
    if not configs:
        # The card gains `configs`, which win over file patterns: write down the splits `datasets` finds today.
        found = discover_splits(kept, {})
        configs = [{"config_name": "default",
                    "data_files": [{"split": s, "path": p} for s, p in found.items() if s != split]}]
    default = next((c for c in configs if c.get("config_name", "default") == "default"), None)
    if default is None:
        default = {"config_name": "default", "data_files": []}
        configs.append(default)
    entries: list[dict[str, Any]] = [{"split": s, "path": p[0] if len(p) == 1 else p}
                                     for s, p in data_files_entries(default.get("data_files"))]
    mine: dict[str, Any] = {"split": split, "path": split_pattern(split)}
    at = next((i for i, e in enumerate(entries) if e["split"] == split), None)
    if at is None:
        entries.append(mine)
    else:
        entries[at] = mine
    default["data_files"] = entries
    data["configs"] = configs

    others = [str(e["split"]) for e in entries if e["split"] != split]
    info = _default_info(data)
    features = features_of(converted.schema)
    old = info.get("features")
    if others and old is not None and features is not None and old != features:
        raise InvalidInputError(
            f"Split {split!r} has columns ({_describe(features)}) but the other splits ({', '.join(others)}) have "
            f"({_describe(old)}); one config has one schema. Cast the columns in the source, or import into another "
            "repo.")
    splits = {s["name"]: s for s in info.get("splits") or [] if isinstance(s, dict) and "name" in s}
    splits[split] = {"name": split, "num_bytes": converted.num_bytes, "num_examples": converted.num_rows}
    new_info: dict[str, Any] = {k: v for k, v in info.items() if k == "config_name"}
    if features is not None:
        new_info["features"] = features
    # `datasets` checks the recorded splits against the ones it finds: all of them, or none.
    if all(e["split"] in splits for e in entries):
        new_info["splits"] = [splits[e["split"]] for e in entries]
    after = {**kept, **{p: f.stat().st_size for p, f in zip(converted.repo_paths, converted.files, strict=True)}}
    in_use = {f for files in discover_splits(after, {"configs": configs}).values() for f in files}
    new_info["download_size"] = sum(after[f] for f in in_use)
    if "splits" in new_info:
        new_info["dataset_size"] = sum(s["num_bytes"] for s in new_info["splits"])
    new_info.update({k: v for k, v in info.items() if k not in new_info and k not in _RECOMPUTED})
    _set_default_info(data, new_info)
    data["configs"] = data.pop("configs")  # after dataset_info, as push_to_hub writes them

    body = card.body if card.body.strip() else (
        f"\n# {title}\n\nImported with `vitrine dataset import` from `{source.label}`.\n")
    text = "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n" + body
    return CommitPlan(list(zip(converted.repo_paths, converted.files, strict=True)), delete, text)


_RECOMPUTED = {"features", "splits", "download_size", "dataset_size"}


def _default_info(data: dict[str, Any]) -> dict[str, Any]:
    """The `dataset_info` of the default config (a mapping, or one entry of a list of them)."""
    info = data.get("dataset_info")
    if isinstance(info, dict) and info.get("config_name", "default") == "default":
        return info
    if isinstance(info, list):
        return next((i for i in info if isinstance(i, dict) and i.get("config_name", "default") == "default"), {})
    return {}


def _set_default_info(data: dict[str, Any], new: dict[str, Any]) -> None:
    info = data.get("dataset_info")
    if isinstance(info, list):
        at = next((n for n, i in enumerate(info) if isinstance(i, dict)
                   and i.get("config_name", "default") == "default"), None)
        if at is None:
            info.append({"config_name": "default", **new})
        else:
            info[at] = new
    elif isinstance(info, dict) and info.get("config_name", "default") != "default":
        data["dataset_info"] = [info, {"config_name": "default", **new}]
    else:
        data["dataset_info"] = new


def _describe(features: Any) -> str:
    def kind(f: dict[str, Any]) -> str:
        return str(f["dtype"]) if "dtype" in f else "list" if "list" in f else "struct" if "struct" in f else "?"

    return ", ".join(f"{f.get('name')}: {kind(f)}" for f in features if isinstance(f, dict))
