"""Background jobs in the metadata DB: submitted, claimed by exactly one worker, resumed after a crash.

A job is a row. A worker claims the oldest queued job in one write transaction (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite's writer lock serialises the same statements), heartbeats while it
runs, and finishes it. A job whose worker died (its heartbeat is older than `VITRINE_JOB_STALE_S`, or
the process that claimed it is gone) is queued again up to `MAX_ATTEMPTS` times, then marked failed:
never left running. Every write of a worker names it, so one that was taken for dead and comes back
finds the job no longer its own and stops: only the current claimer records progress or a result.
Cancelling sets a flag the worker reads between batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.core import Registry
from registry.errors import ConflictError, JobNotFoundError

__all__ = ["JobNotFoundError"]

MAX_ATTEMPTS = 3
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
DONE = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    """One job as stored."""

    id: str
    kind: str
    key: str
    status: str
    params: dict[str, Any]
    owner: str
    done: int
    total: int
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API (the result included)."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "params": self.params,
                "owner": self.owner, "progress": {"done": self.done, "total": self.total},
                "result": self.result, "error": self.error, "cancelRequested": self.cancel_requested,
                "attempts": self.attempts, "createdAt": self.created_at, "startedAt": self.started_at,
                "finishedAt": self.finished_at}


def _record(row: Any) -> Job:
    return Job(row.id, row.kind, row.key, row.status, json.loads(row.params), row.owner, row.done, row.total,
               json.loads(row.result) if row.result else None, row.error, bool(row.cancel_requested),
               row.attempts, row.created_at, row.started_at, row.finished_at)


def worker_id() -> str:
    """This process's name as a job claimer: host (with its pid namespace) and pid."""
    return f"{_host()}:{os.getpid()}"


def _host() -> str:
    # Containers may share a hostname (host networking) yet not their pids: a pid is checked only in its namespace.
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}@{namespace}"


def submit(reg: Registry, kind: str, params: dict[str, Any], *, owner: str, key: str) -> Job:
    """Queue a job of `kind` with JSON `params`; `key` identifies equal work (for caching by the caller)."""
    job_id = uuid.uuid4().hex
    with reg.write().begin() as conn:
        conn.execute(sa.insert(db.jobs).values(
            id=job_id, kind=kind, key=key, status="queued", params=json.dumps(params, sort_keys=True), owner=owner,
            done=0, total=0, result=None, error=None, cancel_requested=False, attempts=0, created_at=db.now(),
        ))
    return get_job(reg, job_id)


def get_job(reg: Registry, job_id: str) -> Job:
    """The job `job_id`, or JobNotFoundError."""
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).first()
    if row is None:
        raise JobNotFoundError(job_id)
    return _record(row)


def list_jobs(reg: Registry, *, kind: str, limit: int = 100, status: str | None = None) -> list[Job]:
    """The newest jobs of `kind` (optionally in one state), newest first."""
    q = sa.select(db.jobs).where(db.jobs.c.kind == kind)
    if status is not None:
        q = q.where(db.jobs.c.status == status)
    with reg.engine.connect() as conn:
        rows = conn.execute(q.order_by(db.jobs.c.created_at.desc()).limit(limit)).all()
    return [_record(r) for r in rows]


def latest_success(reg: Registry, kind: str, key: str) -> Job | None:
    """The newest succeeded job of `kind` with `key`, if any (a cached result)."""
    with reg.engine.connect() as conn:
        row = conn.execute(
            sa.select(db.jobs).where(db.jobs.c.kind == kind, db.jobs.c.key == key, db.jobs.c.status == "succeeded")
            .order_by(db.jobs.c.finished_at.desc()).limit(1)
        ).first()
    return _record(row) if row is not None else None


def active_with_key(reg: Registry, kind: str, key: str) -> Job | None:
    """A queued or running job of `kind` with `key`, so equal work is not started twice."""
    with reg.engine.connect() as conn:
        row = conn.execute(
            sa.select(db.jobs).where(db.jobs.c.kind == kind, db.jobs.c.key == key,
                                     db.jobs.c.status.in_(("queued", "running")))
            .order_by(db.jobs.c.created_at).limit(1)
        ).first()
    return _record(row) if row is not None else None


def claim_next(reg: Registry, kinds: tuple[str, ...], *, worker: str) -> Job | None:
    """Claim the oldest queued job of one of `kinds` for `worker`; None when there is none."""
    with reg.write().begin() as conn:
        q = (sa.select(db.jobs.c.id).where(db.jobs.c.status == "queued", db.jobs.c.kind.in_(kinds))
             .order_by(db.jobs.c.created_at).limit(1))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        job_id = conn.execute(q).scalar_one_or_none()
        if job_id is None:
            return None
        now = db.now()
        claimed = conn.execute(
            sa.update(db.jobs).where(db.jobs.c.id == job_id, db.jobs.c.status == "queued")
            .values(status="running", claimed_by=worker, heartbeat_at=now, started_at=now,
                    attempts=db.jobs.c.attempts + 1)
        ).rowcount
        if claimed != 1:
            return None
        row = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).first()
    return _record(row)


def _owned(job_id: str, worker: str | None) -> Any:
    where = db.jobs.c.id == job_id
    if worker is not None:
        where = sa.and_(where, db.jobs.c.status == "running", db.jobs.c.claimed_by == worker)
    return where


def report_progress(reg: Registry, job_id: str, *, done: int, total: int, worker: str | None = None) -> bool:
    """Record progress (and a heartbeat); returns whether to stop: a cancel was requested, or (given the
    `worker` that claimed it) the job is no longer that worker's, taken over after it was thought dead."""
    with reg.write().begin() as conn:
        moved = conn.execute(sa.update(db.jobs).where(_owned(job_id, worker))
                             .values(done=done, total=total, heartbeat_at=db.now())).rowcount
        flag = conn.execute(sa.select(db.jobs.c.cancel_requested).where(db.jobs.c.id == job_id)).scalar_one()
    return bool(flag) or moved != 1


def heartbeat(reg: Registry, job_id: str, *, worker: str) -> bool:
    """Tell other replicas `worker` is still running the job; False once the job is no longer its own."""
    with reg.write().begin() as conn:
        return conn.execute(sa.update(db.jobs).where(_owned(job_id, worker))
                            .values(heartbeat_at=db.now())).rowcount == 1


def finish(reg: Registry, job_id: str, *, status: str, result: dict[str, Any] | None = None,
           error: str | None = None, worker: str | None = None) -> bool:
    """End a running job as succeeded, failed or cancelled; with `worker`, only while it still holds the job.

    Returns:
        Whether the job was ended here (False: another replica took it over, and its outcome stands).
    """
    if status not in DONE:
        raise ValueError(f"not a final state: {status}")
    with reg.write().begin() as conn:
        return conn.execute(sa.update(db.jobs).where(_owned(job_id, worker)).values(
            status=status, result=json.dumps(result) if result is not None else None, error=error,
            finished_at=db.now(), heartbeat_at=db.now(),
        )).rowcount == 1


def request_cancel(reg: Registry, job_id: str) -> Job:
    """Cancel a job: a queued one at once, a running one at its next batch; a finished one is a ConflictError."""
    with reg.write().begin() as conn:
        row = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFoundError(job_id)
        if row.status in DONE:
            raise ConflictError(f"Job {job_id} already ended ({row.status}).")
        values: dict[str, Any] = {"cancel_requested": True}
        if row.status == "queued":
            values.update(status="cancelled", finished_at=db.now())
        conn.execute(sa.update(db.jobs).where(db.jobs.c.id == job_id).values(**values))
    return get_job(reg, job_id)


def recover_stale(reg: Registry, *, stale_after: float | None = None) -> list[str]:
    """Requeue running jobs whose worker died (or fail them after MAX_ATTEMPTS); returns their ids.

    A job counts as orphaned when its heartbeat is older than `stale_after` (default `VITRINE_JOB_STALE_S`),
    or when it was claimed by a process of this very host that is gone (same host and pid namespace, a pid no
    longer alive).
    Each takeover is a compare-and-swap on the claim, so replicas recovering at once requeue a job once.
    """
    stale_after = reg.settings.job_stale_s if stale_after is None else stale_after
    me_host = _host()
    recovered = []
    with reg.write().begin() as conn:
        rows = conn.execute(sa.select(db.jobs).where(db.jobs.c.status == "running")).all()
        for row in rows:
            claimer = row.claimed_by or ""
            host, _, pid = claimer.partition(":")
            dead_here = host == me_host and not _pid_alive(pid)
            if not dead_here and db.now() - (row.heartbeat_at or 0) < stale_after:
                continue
            if _requeue_or_fail(conn, row):
                recovered.append(row.id)
    return recovered


def _requeue_or_fail(conn: Connection, row: Any) -> bool:
    if row.cancel_requested:
        values: dict[str, Any] = {"status": "cancelled", "finished_at": db.now()}
    elif row.attempts >= MAX_ATTEMPTS:
        values = {"status": "failed", "finished_at": db.now(),
                  "error": f"The worker running this job stopped {row.attempts} times; giving up."}
    else:
        values = {"status": "queued", "claimed_by": None}
    # Only the claim we judged dead: a replica that recovered and re-claimed it meanwhile keeps it.
    return conn.execute(sa.update(db.jobs).where(
        db.jobs.c.id == row.id, db.jobs.c.status == "running", db.jobs.c.attempts == row.attempts,
        db.jobs.c.claimed_by == row.claimed_by if row.claimed_by is not None else db.jobs.c.claimed_by.is_(None),
    ).values(**values)).rowcount == 1


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_period(reg: Registry, name: str, every_s: float) -> bool:
    """Whether this process runs periodic work `name` now: at most one replica per `every_s` wins the turn.

    The turn is a row of the kv table moved by compare-and-swap, so replicas whose timers fire together do
    the work (and emit what it finds) once; a tenth of the period is forgiven, as each process's timer drifts.
    """
    key = "period:" + hashlib.sha1(name.encode()).hexdigest()
    now = db.now()
    with reg.engine.connect() as conn:
        last = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == key)).scalar_one_or_none()
    try:
        with reg.write().begin() as conn:
            if last is None:
                conn.execute(sa.insert(db.kv).values(key=key, value=repr(now)))
                return True
            if now - float(last) < 0.9 * every_s:
                return False
            return conn.execute(sa.update(db.kv).where(db.kv.c.key == key, db.kv.c.value == last)
                                .values(value=repr(now))).rowcount == 1
    except IntegrityError:  # another replica took the first turn
        return False
