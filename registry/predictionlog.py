"""The prediction log: sampled requests and predictions of an endpoint, as parquet segments in the blob store.

Rows are buffered in memory and rolled into a new parquet segment by size (`ROLL_ROWS`) and time
(`VITRINE_PREDICTION_LOG_ROLL_S`), so no file grows without bound; each segment is a blob listed in
the `prediction_segments` table. The log reads like any dataset: `log_split` is a DuckDB-ready split
named `log`, queried with the same sandboxed read-only SQL as a dataset revision, and like a dataset the
segments are read where they lie (from a bucket by byte range, not copied into the local cache).

Writing never blocks or fails a request: `record` appends to a bounded buffer (full: the row is
dropped and counted), a background thread writes segments, and a storage failure (a full disk)
stops logging, counts what it loses and says why in `health()` until a later write succeeds.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from registry import db
from registry.core import Registry
from registry.datasets import DatasetSplit, read_table
from registry.errors import InvalidInputError, StorageError
from registry.storage import scan_location

log = logging.getLogger("vitrine.predictionlog")

ROLL_ROWS = 10_000
MAX_BUFFERED = 100_000
RETRY_AFTER_FAILURE_S = 30.0

SCHEMA = pa.schema([
    ("request_id", pa.string()), ("time", pa.timestamp("ms", tz="UTC")), ("repo", pa.string()),
    ("input_index", pa.int32()), ("alias", pa.string()), ("role", pa.string()), ("served_alias", pa.string()),
    ("commit", pa.string()),
    ("task", pa.string()), ("input", pa.string()), ("input_hash", pa.string()), ("output", pa.string()),
    ("label", pa.string()), ("score", pa.float64()), ("latency_ms", pa.float64()), ("batch_size", pa.int32()),
    ("error", pa.string()), ("text_length", pa.int32()), ("token_count", pa.int32()),
])
"""One row per input of a sampled request: `role` is `answer` (what the caller got) or `mirror` (the same input
run by the other version of a canary or shadow pair, never returned); `alias` is the endpoint's alias and
`served_alias` the alias whose version produced the row; `input` is the payload as JSON, or empty when
VITRINE_PREDICTION_LOG_INPUTS=hash (then only `input_hash`, its sha256, is kept)."""

prediction_segments, prediction_feedback = db.prediction_segments, db.prediction_feedback


@dataclass(frozen=True)
class Segment:
    """One parquet segment of a log."""

    oid: str
    rows: int
    first_time: float
    last_time: float


class PredictionLog:
    """The writer of one endpoint's log (repo + alias): bounded buffer in, parquet segments out."""

    def __init__(self, reg: Registry, repo_pk: int, alias: str, *, roll_s: float, roll_rows: int = ROLL_ROWS) -> None:
        self.reg, self.repo_pk, self.alias = reg, repo_pk, alias
        self.roll_s, self.roll_rows = roll_s, roll_rows
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        # Held from taking rows to their segment's insert: a flush returns only once every row buffered before it is
        # written, even rows another flush (the writer thread's) had already taken.
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0
        self.failed_at: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"vitrine-log-{alias}", daemon=True)
        self._thread.start()

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows (never blocks, never raises: a full buffer or a failing store drops them, counted)."""
        with self._lock:
            if self.failed_at is not None and time.monotonic() - self.failed_at < RETRY_AFTER_FAILURE_S:
                self.dropped += len(rows)
                return
            room = MAX_BUFFERED - len(self._rows)
            self._rows.extend(rows[:max(room, 0)])
            self.dropped += max(len(rows) - max(room, 0), 0)
            full = len(self._rows) >= self.roll_rows
        if full:
            self._wake.set()

    def health(self) -> dict[str, Any]:
        """Rows written and dropped, and why logging stopped, if it did."""
        return {"healthy": self.error is None, "error": self.error, "written": self.written, "dropped": self.dropped,
                "buffered": len(self._rows)}

    def flush(self) -> None:
        """Write what is buffered as one segment now (no-op when empty); returns once every row queued before the
        call is written."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        if not rows:
            return
        try:
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf, compression="zstd")
            oid = self.reg.blobs.put_bytes(buf.getvalue()).oid
            times = [r["time"] for r in rows]
            with self.reg.write().begin() as conn:
                conn.execute(sa.insert(prediction_segments).values(
                    repo_id=self.repo_pk, alias=self.alias, oid=oid, rows=len(rows),
                    first_time=min(times).timestamp(), last_time=max(times).timestamp(), created_at=db.now()))
        except (StorageError, OSError, sa.exc.SQLAlchemyError) as exc:
            with self._lock:
                self.dropped += len(rows)
                self.failed_at = time.monotonic()
                self.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:500]
            log.warning("prediction log of %s stopped: %s", self.alias, self.error)
            return
        with self._lock:
            self.written += len(rows)
            self.failed_at, self.error = None, None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.roll_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Write what is left and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        self.flush()


def segments(reg: Registry, repo_pk: int, alias: str | None = None, *, since: float | None = None) -> list[Segment]:
    """The segments of a repo's log (one alias's, with `alias`), oldest first; `since` keeps later ones only."""
    t = prediction_segments
    q = sa.select(t).where(t.c.repo_id == repo_pk)
    if alias is not None:
        q = q.where(t.c.alias == alias)
    if since is not None:
        q = q.where(t.c.last_time >= since)
    with reg.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.id)).all()
    return [Segment(r.oid, int(r.rows), float(r.first_time), float(r.last_time)) for r in rows]


def log_split(reg: Registry, repo_pk: int, alias: str | None = None) -> DatasetSplit:
    """The log as a split named `log` for read-only SQL (registry.datasql.run_sql).

    Raises:
        InvalidInputError: nothing was logged yet.
    """
    found = segments(reg, repo_pk, alias)
    if not found:
        raise InvalidInputError("Nothing has been logged for this endpoint yet (is VITRINE_PREDICTION_LOG_SAMPLE 0?).")
    return DatasetSplit(name="log", files=[scan_location(reg.blobs, s.oid) for s in found],
                        num_rows=sum(s.rows for s in found))


def read_log(reg: Registry, repo_pk: int, alias: str | None = None, *, since: float | None = None) -> pa.Table:
    """The log's rows (of one alias, newer than `since`) as one Arrow table; empty when nothing matches."""
    found = segments(reg, repo_pk, alias, since=since)
    if not found:
        return SCHEMA.empty_table()
    table = pa.concat_tables([read_table(scan_location(reg.blobs, s.oid)) for s in found])
    if since is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.greater_equal(table["time"], pa.scalar(since * 1000, pa.timestamp("ms", tz="UTC"))))
    return table


def add_feedback(reg: Registry, repo_pk: int, labels: list[tuple[str, str]]) -> int:
    """Store ground truth for logged request ids (a later label for the same id replaces the earlier)."""
    t = prediction_feedback
    with reg.write().begin() as conn:
        for request_id, label in labels:
            conn.execute(sa.delete(t).where(t.c.repo_id == repo_pk, t.c.request_id == request_id))
            conn.execute(sa.insert(t).values(repo_id=repo_pk, request_id=request_id, label=label,
                                             created_at=db.now()))
    return len(labels)


def feedback(reg: Registry, repo_pk: int) -> dict[str, str]:
    """Request id -> the ground-truth label posted for it."""
    t = prediction_feedback
    with reg.engine.connect() as conn:
        return {r.request_id: r.label for r in conn.execute(sa.select(t).where(t.c.repo_id == repo_pk))}


def output_json(value: Any) -> str:
    """A prediction as the log stores it."""
    return json.dumps(value, sort_keys=True, default=str)
