"""`vitrine migrate-storage`: copy a home's metadata DB and blob store into another pair (PostgreSQL + S3), verified.

The hub is stopped while this runs (it refuses a source a process still holds open); the source is only read. The
order is blobs, then tables, so a row never names a blob the target lacks:

1. **Blobs.** Every blob of the source store (files, LFS and Xet-rebuilt objects, xorbs, Space bundles, evaluation
   predictions, prediction-log segments: they are all blobs) is streamed to the target store, its sha256 checked on
   the way, then read back from the target (`verify`: from the bucket, not a cache) and re-hashed before it counts
   as done. Blobs go in oid order; the highest oid below which every blob is done is saved in the target DB, so a
   rerun after an interruption skips those (still present in the target), re-hashes the ones it finds above it and
   copies the rest. Leftover unfinished uploads of the interrupted run are removed first.
2. **Tables.** The target is brought to the Alembic head first; then every table is copied in foreign-key order in
   batches (each batch its own transaction, as upserts, so a rerun rewrites what an earlier run copied), ids kept,
   PostgreSQL sequences moved past the copied ids. Rows the source no longer holds are removed from the target.
3. **Verification.** Each table's row count and an order-independent digest of its rows must match the source's.

The target database must be empty, or hold an unfinished migration of this same source: a marker row in `kv`
(`migrate_storage`) names the source and the state, and stays as the record of the migration once it is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from registry import db, migrations
from registry.blobs import CHUNK
from registry.errors import ConflictError, InvalidInputError, StorageUnavailableError
from registry.settings import Settings
from registry.storage import BlobStore, open_blob_store

MARKER_KEY = "migrate_storage"
# The PostgreSQL advisory lock a run holds on its target, so two runs never copy into one database at once.
PG_LOCK_KEY = 0x5649_5452_494E_4502  # "VITRINE" + 2 (the schema migrations hold + 1)
BATCH_ROWS = 1000
BATCH_BYTES = 32 * 1024 * 1024  # a batch of table rows holds about this much text at most
FETCH_ROWS = 100
SAVE_EVERY_S = 1.0
_MOD = 2**128


@dataclass
class TableCopy:
    """One table as copied: rows in the source, rows removed from the target (gone from the source since)."""

    name: str
    rows: int = 0
    removed: int = 0


@dataclass
class MigrationReport:
    """What a run did."""

    resumed: bool = False
    already_done: bool = False
    blobs: int = 0
    blob_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0  # present in the target and verified by an earlier run
    rehashed: int = 0  # present in the target, verified now
    leftovers: int = 0  # unfinished uploads of an interrupted run, removed
    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows copied over all tables."""
        return sum(t.rows for t in self.tables)


def redacted(url: str) -> str:
    """`url` with its password replaced by `***`."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def migrate(source: Settings, *, database_url: str, storage_url: str, progress: bool = False, workers: int = 4,
            batch_rows: int = BATCH_ROWS, log: Callable[[str], None] = lambda _: None) -> MigrationReport:
    """Copy the home `source` names (its DB and blob store) into `database_url` + `storage_url`, verified; resumable.

    Raises:
        InvalidInputError: no hub home there, a URL of an unknown kind, a database that cannot be opened.
        ConflictError: the target is the source, a hub is running on the source, the source is not at the schema
            head, the target database holds other data, or verification found a difference.
        StorageUnavailableError: the target bucket cannot be reached, does not exist, or reads back wrong bytes.
    """
    started = time.monotonic()
    from registry import webhooks  # noqa: F401  (its tables are part of the metadata)

    _check_source_home(source)
    target_url = _check_database_url(database_url)
    _check_storage_url(storage_url)
    source_url = source.effective_database_url
    if _same_database(source_url, target_url):
        raise ConflictError(f"The target database {redacted(database_url)} is the source's own; name another one.")
    if _same_storage(source, storage_url):
        raise ConflictError(f"The target storage {storage_url} is the source's own blob store; name another one.")
    holders = _processes_holding(source)
    if holders:
        raise ConflictError(f"A hub is running on {source.home} (process {', '.join(map(str, holders))} has its "
                            "database open): stop it first; migrate-storage copies a stopped hub.")

    report = MigrationReport()
    src_engine = _open_source(source_url)
    cache = tempfile.TemporaryDirectory(prefix="vitrine-migrate-")
    dst_engine: Engine | None = None
    lock: Connection | None = None
    try:
        src_status = _status(src_engine, source_url)
        if not src_status.at_head:
            raise ConflictError(
                f"The source database is at revision {src_status.revision or 'none'}, not {src_status.head}: run "
                f"`vitrine db upgrade --home {source.home}` first (migrate-storage never changes the source).")
        with src_engine.connect() as conn:
            fingerprint = _fingerprint(conn, source_url)
            _check_running_jobs(conn, source)
            _check_known_tables(conn)
        # Stores' caches (an S3 store makes one) live in a temp dir: nothing is written to the source home.
        s3_source = source.storage_url.startswith("s3://")
        src_store = open_blob_store(dataclasses.replace(source, home=Path(cache.name) / "source") if s3_source
                                    else source)
        dst_settings = dataclasses.replace(source, storage_url=storage_url, home=Path(cache.name),
                                           database_url=target_url)
        try:
            dst_store = open_blob_store(dst_settings)
        except StorageUnavailableError as exc:  # its messages name the setting; here the flag names the store
            raise StorageUnavailableError(exc.message.replace("VITRINE_STORAGE_URL:", "--storage:", 1)) from exc
        dst_engine = db.connect(target_url, migrate=False)
        lock = _lock_target(dst_engine, target_url)
        marker = _check_target(dst_engine, target_url, fingerprint, src_engine)
        if marker is not None and marker.get("state") == "done":
            report.already_done = True
            log(f"{redacted(database_url)} already holds a finished, verified migration of this home "
                f"({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(marker.get('finished_at', 0)))}); nothing to do.")
            return report
        report.resumed = marker is not None
        # From here on the target is written to.
        try:
            if not migrations.at_head(dst_engine):
                migrations.upgrade(dst_engine)
            if marker is None:
                marker = {"source": fingerprint, "state": "copying", "started_at": time.time(), "blobs_through": ""}
                _save_marker(dst_engine, marker, insert=True)
            else:
                report.leftovers = _remove_leftovers(dst_store)
                if report.leftovers:
                    log(f"removed {report.leftovers} unfinished upload(s) left by the interrupted run")
            _copy_blobs(src_store, dst_store, dst_engine, marker, report, progress=progress, workers=workers)
            digests = _copy_tables(src_engine, dst_engine, report, progress=progress, batch_rows=batch_rows,
                                   resumed=report.resumed)
            _reset_sequences(dst_engine)
            _verify_tables(dst_engine, digests)
            marker.update(state="done", finished_at=time.time(), blobs=report.blobs, blob_bytes=report.blob_bytes,
                          rows=report.rows)
            _save_marker(dst_engine, marker)
        except sa_exc.OperationalError as exc:  # the connection went away mid-copy
            raise StorageUnavailableError(f"The target database failed mid-copy ({_first_line(exc)}); what was "
                                          "done is kept: run the same command again to continue.") from exc
        except sa_exc.IntegrityError as exc:
            raise ConflictError(f"A row of the source conflicts with one in the target ({_first_line(exc)}): was "
                                "the target written to meanwhile? Migrate into a new, empty database.") from exc
    finally:
        src_engine.dispose()
        if lock is not None:
            lock.close()  # ends the session, and with it the advisory lock
        if dst_engine is not None:
            dst_engine.dispose()
        cache.cleanup()
        report.seconds = time.monotonic() - started
    return report


def _first_line(exc: sa_exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__


# --- checks, all made before anything is written ---------------------------------------------------------------

def _check_source_home(source: Settings) -> None:
    if not source.database_url and not (source.home / "vitrine.db").exists():
        raise InvalidInputError(f"No Vitrine home at {source.home}: pass the --home (or VITRINE_HOME) the hub ran "
                                "with.")


def _check_database_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgresql+psycopg://", "sqlite:///")):
        return url
    raise InvalidInputError(f"--to {redacted(url)!r}: expected postgresql://user:pass@host:5432/db "
                            "(or sqlite:///path).")


def _check_storage_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "s3" and parts.netloc:
        return
    if parts.scheme == "file" and parts.path:
        return
    raise InvalidInputError(f"--storage {url!r}: expected s3://bucket/prefix (or file:///dir).")


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///")).expanduser().resolve()


def _same_database(a: str, b: str) -> bool:
    pa, pb = _sqlite_path(a), _sqlite_path(b)
    if pa is not None or pb is not None:
        return pa == pb
    ua, ub = sa.engine.make_url(a), sa.engine.make_url(b)
    local = {"localhost", "127.0.0.1", "::1", None, ""}
    same_host = ua.host == ub.host or (ua.host in local and ub.host in local)
    return same_host and (ua.port or 5432) == (ub.port or 5432) and ua.database == ub.database


def _store_identity(settings: Settings, url: str) -> tuple[str, ...]:
    if not url or url.startswith("file://"):
        path = Path(url.removeprefix("file://")) if url else settings.home / "blobs"
        return ("file", str(path.expanduser().resolve()))
    parts = urlsplit(url)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "aws"
    return ("s3", endpoint.rstrip("/"), parts.netloc, parts.path.strip("/"))


def _same_storage(source: Settings, url: str) -> bool:
    return _store_identity(source, source.storage_url) == _store_identity(source, url)


def _processes_holding(source: Settings) -> list[int]:
    """Other processes with the source's SQLite database open (Linux's /proc; nothing known elsewhere)."""
    path = _sqlite_path(source.effective_database_url)
    proc = Path("/proc")
    if path is None or not proc.is_dir():
        return []
    names = {str(path), f"{path}-wal"}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) in names for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # another user's process, or one that just ended
            continue
    return sorted(found)


def _open_source(url: str) -> Engine:
    """An engine that only reads the source (SQLite opened read-only)."""
    path = _sqlite_path(url)
    if path is None:
        return db.connect(url, migrate=False)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)

    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def _status(engine: Engine, url: str) -> migrations.Status:
    try:
        return migrations.status(engine)
    except sa_exc.OperationalError as exc:
        raise InvalidInputError(f"Cannot open the database {redacted(url)}: {_first_line(exc)}") from exc


def _fingerprint(conn: Connection, url: str) -> str:
    """Names the source: a digest of its hub secret (unique to each hub, and copied along), else of its URL."""
    secret = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == "secret")).scalar()
    return hashlib.sha256(f"vitrine-migrate:{secret or url}".encode()).hexdigest()


def _check_running_jobs(conn: Connection, source: Settings) -> None:
    fresh = db.now() - source.job_stale_s
    n = conn.execute(sa.select(sa.func.count()).select_from(db.jobs).where(
        db.jobs.c.status == "running", db.jobs.c.heartbeat_at > fresh)).scalar_one()
    if n:
        raise ConflictError(f"A hub is running on the source: {n} background job(s) heartbeat within the last "
                            f"{source.job_stale_s:g} s. Stop every hub on it first (or wait that long if none runs).")


def _check_known_tables(conn: Connection) -> None:
    names = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    unknown = sorted(names - set(db.metadata.tables))
    if unknown:
        raise ConflictError(f"The source has tables this release does not know ({', '.join(unknown)}): migrate "
                            "with the release that made them.")


def _lock_target(engine: Engine, url: str) -> Connection | None:
    """Hold the target's migration lock (PostgreSQL) for the whole run; refuse when another run holds it."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        conn = engine.connect()
    except sa_exc.OperationalError as exc:
        raise InvalidInputError(f"Cannot open the target database {redacted(url)}: "
                                f"{_first_line(exc)}") from exc
    got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({PG_LOCK_KEY})").scalar()
    conn.commit()
    if not got:
        conn.close()
        raise ConflictError(f"Another migrate-storage is copying into {redacted(url)} right now: let it finish (or "
                            "stop it, then rerun this one to continue its work).")
    return conn


def _check_target(engine: Engine, url: str, fingerprint: str, src_engine: Engine) -> dict[str, Any] | None:
    """The marker of an earlier run on this target (None for an empty target); refuses any other content."""
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
            filled = [n for n in sorted(names) if conn.execute(sa.text(f'SELECT 1 FROM "{n}" LIMIT 1')).first()]
            marker_text: str | None = None
            secret: str | None = None
            if "kv" in names:
                marker_text = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == MARKER_KEY)).scalar()
                secret = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == "secret")).scalar()
            conn.rollback()
    except sa_exc.OperationalError as exc:
        raise InvalidInputError(f"Cannot open the target database {redacted(url)}: "
                                f"{_first_line(exc)}") from exc
    if marker_text is None:
        if not filled:
            return None
        with src_engine.connect() as conn:
            own = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == "secret")).scalar()
        if secret is not None and secret == own:
            raise ConflictError(f"The target database {redacted(url)} is the source's own (or a copy of it made "
                                "otherwise); name an empty database.")
        raise ConflictError(f"The target database {redacted(url)} is not empty ({', '.join(filled[:6])}"
                            f"{'...' if len(filled) > 6 else ''} hold rows): migrate into a new, empty database.")
    marker = json.loads(marker_text)
    if marker.get("source") != fingerprint:
        raise ConflictError(f"The target database {redacted(url)} holds a migration of another home: migrate into "
                            "a new, empty database.")
    return dict(marker)


def _save_marker(engine: Engine, marker: dict[str, Any], *, insert: bool = False) -> None:
    with db.writer(engine).begin() as conn:
        if insert:
            conn.execute(sa.insert(db.kv).values(key=MARKER_KEY, value=json.dumps(marker)))
        else:
            conn.execute(sa.update(db.kv).where(db.kv.c.key == MARKER_KEY).values(value=json.dumps(marker)))


def _remove_leftovers(store: BlobStore) -> int:
    """Unfinished uploads and temp objects of the interrupted run (no hub runs on a target being migrated)."""
    stale = list(store.stale_temp_files(older_than=0))
    for item in stale:
        item.unlink(missing_ok=True)
    return len(stale)


# --- blobs -----------------------------------------------------------------------------------------------------

def _chunks(store: BlobStore, oid: str) -> Iterator[bytes]:
    with store.open_range(oid) as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _copy_one(src: BlobStore, dst: BlobStore, oid: str, size: int, present: bool) -> str:
    """Make blob `oid` present and verified in `dst`: "rehashed" (it was there and reads back right) or "copied"."""
    if present and dst.size(oid) == size and dst.verify(oid):
        return "rehashed"
    try:
        dst.put_chunks(_chunks(src, oid), expected_oid=oid, expected_size=size)
    except InvalidInputError as exc:
        raise ConflictError(f"Source blob {oid} does not hash to its name ({exc.message}); run `vitrine fsck` on the "
                            "source.") from exc
    if not dst.verify(oid):
        raise StorageUnavailableError(f"Blob {oid} does not read back from the target storage as it was written; "
                                      "check the storage, then rerun.")
    return "copied"


def _copy_blobs(src: BlobStore, dst: BlobStore, engine: Engine, marker: dict[str, Any], report: MigrationReport, *,
                progress: bool, workers: int) -> None:
    oids = sorted(src.iter_oids())
    sizes = [src.size(oid) for oid in oids]
    report.blobs, report.blob_bytes = len(oids), sum(sizes)
    present = set(dst.iter_oids())
    through = str(marker.get("blobs_through") or "")
    done = [False] * len(oids)
    settled = 0  # every blob before this index is done
    saved_at = time.monotonic()
    bar = tqdm(total=report.blob_bytes, desc="blobs", unit="B", unit_scale=True, unit_divisor=1024,
               disable=not progress)

    def settle(force: bool = False) -> None:
        nonlocal settled, saved_at
        before = settled
        while settled < len(oids) and done[settled]:
            settled += 1
        if settled != before and (force or time.monotonic() - saved_at >= SAVE_EVERY_S):
            marker["blobs_through"] = oids[settled - 1]
            _save_marker(engine, marker)
            saved_at = time.monotonic()

    def finished(i: int, outcome: str) -> None:
        done[i] = True
        if outcome == "copied":
            report.copied += 1
            report.copied_bytes += sizes[i]
        elif outcome == "rehashed":
            report.rehashed += 1
        else:
            report.skipped += 1
        bar.update(sizes[i])
        bar.set_postfix_str(f"{sum(done)}/{len(oids)} blobs")

    with bar, ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="migrate-blobs") as pool:
        pending: dict[Future[str], int] = {}
        try:
            for i, oid in enumerate(oids):
                if through and oid <= through and oid in present:
                    finished(i, "skipped")
                    continue
                while len(pending) >= 2 * max(1, workers):
                    ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in ready:
                        finished(pending.pop(fut), fut.result())
                    settle()
                pending[pool.submit(_copy_one, src, dst, oid, sizes[i], oid in present)] = i
            for fut in list(pending):
                finished(pending.pop(fut), fut.result())
        finally:
            for fut in pending:
                fut.cancel()
            settle(force=True)  # what is done stays done for the next run, even when this one fails


# --- tables ----------------------------------------------------------------------------------------------------

def _tables() -> list[sa.Table]:
    return list(db.metadata.sorted_tables)


def _scope(table: sa.Table) -> list[Any]:
    """Rows of `table` that belong to the copy (the marker row is the target's own)."""
    return [table.c.key != MARKER_KEY] if table.name == "kv" else []


def _row_digest(row: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(tuple(row)).encode()).digest()[:16], "big")


def _upsert(engine: Engine, table: sa.Table) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    rest = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=rest) if rest else stmt.on_conflict_do_nothing()


def _batches(result: Any, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    """Rows as dicts, in batches of at most `batch_rows` rows and about `BATCH_BYTES` (trees can be large)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in result:
        batch.append(row._asdict())
        size += sum(len(v) for v in row if isinstance(v, (str, bytes)))
        if len(batch) >= batch_rows or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _copy_tables(src: Engine, dst: Engine, report: MigrationReport, *, progress: bool, batch_rows: int,
                 resumed: bool) -> dict[str, tuple[int, int]]:
    """Copy every table in foreign-key order; answer each table's (row count, digest) in the source."""
    tables = _tables()
    digests: dict[str, tuple[int, int]] = {}
    with src.connect() as conn:  # one read transaction: a consistent picture of the source
        totals = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t).where(*_scope(t))).scalar_one()
                  for t in tables}
        # Rows an earlier run copied that the source no longer holds go first, so none stands in the way of a row.
        removed = {t.name: _remove_extra_rows(conn, dst, t) for t in reversed(tables)} if resumed else {}
        bar = tqdm(total=sum(totals.values()), desc="tables", unit="row", disable=not progress)
        with bar:
            for table in tables:
                bar.set_postfix_str(table.name)
                copy = TableCopy(table.name, removed=removed.get(table.name, 0))
                digest = 0
                stmt = _upsert(dst, table)
                query = sa.select(table).where(*_scope(table)).order_by(*table.primary_key.columns)
                result = conn.execution_options(yield_per=FETCH_ROWS).execute(query)
                for rows in _batches(result, batch_rows):
                    with db.writer(dst).begin() as out:
                        out.execute(stmt, rows)
                    for row in rows:
                        digest = (digest + _row_digest(tuple(row.values()))) % _MOD
                    copy.rows += len(rows)
                    bar.update(len(rows))
                digests[table.name] = (copy.rows, digest)
                report.tables.append(copy)
        conn.rollback()
    return digests


def _remove_extra_rows(src: Connection, dst: Engine, table: sa.Table) -> int:
    keys = list(table.primary_key.columns)
    ours = set(src.execute(sa.select(*keys).where(*_scope(table))).tuples())
    with dst.connect() as conn:
        extra = [k for k in conn.execute(sa.select(*keys).where(*_scope(table))).tuples() if k not in ours]
        conn.rollback()
    if not extra:
        return 0
    with db.writer(dst).begin() as conn:
        for key in extra:
            conn.execute(sa.delete(table).where(*(c == v for c, v in zip(keys, key))))
    return len(extra)


def _reset_sequences(engine: Engine) -> None:
    """Move each PostgreSQL serial sequence past the ids copied in, so new rows get fresh ids."""
    if engine.dialect.name != "postgresql":
        return
    with db.writer(engine).begin() as conn:
        for table in _tables():
            keys = list(table.primary_key.columns)
            if len(keys) != 1 or not isinstance(keys[0].type, sa.Integer) or keys[0].autoincrement is False:
                continue
            col = keys[0].name
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE((SELECT MAX(\"{col}\") FROM \"{table.name}\"),"
                " 0) + 1, false)"), {"t": table.name, "c": col})


def _verify_tables(engine: Engine, expected: dict[str, tuple[int, int]]) -> None:
    """Every table of the target holds the source's rows: the same count and the same digest."""
    wrong = []
    with engine.connect() as conn:
        for table in _tables():
            count, digest = 0, 0
            result = conn.execution_options(yield_per=FETCH_ROWS).execute(sa.select(table).where(*_scope(table)))
            for row in result:
                count += 1
                digest = (digest + _row_digest(row)) % _MOD
            if (count, digest) != expected[table.name]:
                wrong.append(f"{table.name} ({count} rows, source {expected[table.name][0]})")
        conn.rollback()
    if wrong:
        raise ConflictError(f"Verification failed: these tables differ from the source: {', '.join(wrong)}. Was the "
                            "target written to meanwhile? Rerun into a new, empty database.")
