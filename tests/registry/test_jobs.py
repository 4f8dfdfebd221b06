"""Background jobs on SQLite and PostgreSQL alike: each claimed by exactly one worker, orphans requeued or failed."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry import db, jobs
from registry.core import Registry
from registry.errors import ConflictError, JobNotFoundError
from registry.settings import Settings

PG_ADMIN_URL = os.environ.get("VITRINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry on SQLite, then on a fresh PostgreSQL database."""
    url = ""
    admin = None
    if request.param == "postgresql":
        name = f"vitrine_jobs_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    registry = Registry(Settings.from_env({}, home=tmp_path / "home", database_url=url or None))
    yield registry
    registry.close()
    if admin is not None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
        admin.dispose()


def test_racing_workers_claim_each_job_exactly_once(reg: Registry) -> None:
    submitted = {jobs.submit(reg, "eval", {"n": i}, owner="ana", key=f"k{i}").id for i in range(24)}
    claims: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := jobs.claim_next(reg, ("eval",), worker=name)) is not None:
            with lock:
                claims.append(job.id)
            jobs.finish(reg, job.id, status="succeeded", result={"by": name})

    threads = [threading.Thread(target=worker, args=(f"host:{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == sorted(submitted)
    assert {j.status for j in jobs.list_jobs(reg, kind="eval", limit=100)} == {"succeeded"}


def test_a_job_whose_worker_died_is_requeued_then_failed(reg: Registry) -> None:
    job = jobs.submit(reg, "eval", {}, owner="ana", key="k")
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        claimed = jobs.claim_next(reg, ("eval",), worker="gone-host:1")
        assert claimed is not None and claimed.attempts == attempt
        # The worker stopped heartbeating: past the staleness window it is somebody else's to run.
        assert jobs.recover_stale(reg, stale_after=0) == [job.id]
    final = jobs.get_job(reg, job.id)
    assert final.status == "failed" and "stopped 3 times" in (final.error or "")


def test_cancel_and_cache_lookups(reg: Registry) -> None:
    queued = jobs.submit(reg, "eval", {}, owner="ana", key="same")
    assert jobs.active_with_key(reg, "eval", "same") == queued
    assert jobs.request_cancel(reg, queued.id).status == "cancelled"
    with pytest.raises(ConflictError):
        jobs.request_cancel(reg, queued.id)
    running = jobs.submit(reg, "eval", {}, owner="ana", key="same")
    assert jobs.claim_next(reg, ("eval",), worker="h:1") is not None
    jobs.request_cancel(reg, running.id)
    assert jobs.report_progress(reg, running.id, done=1, total=2) is True  # the worker learns it at its next batch
    jobs.finish(reg, running.id, status="cancelled")
    assert jobs.latest_success(reg, "eval", "same") is None
    with pytest.raises(JobNotFoundError):
        jobs.get_job(reg, "0" * 32)
    with reg.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.jobs)).scalar_one() == 2


def test_a_worker_taken_for_dead_cannot_touch_the_job_it_lost(reg: Registry) -> None:
    job = jobs.submit(reg, "eval", {}, owner="ana", key="k")
    first = jobs.claim_next(reg, ("eval",), worker="paused-host:1")
    assert first is not None
    assert jobs.recover_stale(reg) == []  # heartbeat fresh, claimer on another host: VITRINE_JOB_STALE_S applies
    with reg.engine.connect() as conn:
        judged = conn.execute(sa.select(db.jobs).where(db.jobs.c.id == job.id)).one()
    assert jobs.recover_stale(reg, stale_after=0) == [job.id]
    assert jobs.claim_next(reg, ("eval",), worker="other-host:2") is not None
    # Another replica judging the same old claim dead a moment later requeues nothing: the new claim stands.
    with reg.write().begin() as conn:
        assert jobs._requeue_or_fail(conn, judged) is False
    # The first worker wakes up: every write of its own is refused, so it stops and the new claimer's result stands.
    assert jobs.heartbeat(reg, job.id, worker="paused-host:1") is False
    assert jobs.report_progress(reg, job.id, done=5, total=10, worker="paused-host:1") is True
    assert jobs.finish(reg, job.id, status="succeeded", result={"by": "old"}, worker="paused-host:1") is False
    assert jobs.heartbeat(reg, job.id, worker="other-host:2") is True
    assert jobs.report_progress(reg, job.id, done=1, total=10, worker="other-host:2") is False
    assert jobs.finish(reg, job.id, status="succeeded", result={"by": "new"}, worker="other-host:2") is True
    final = jobs.get_job(reg, job.id)
    assert final.status == "succeeded" and final.result == {"by": "new"} and final.done == 1 and final.attempts == 2


def test_periodic_work_is_one_replicas_turn(reg: Registry) -> None:
    turns = []
    lock = threading.Lock()

    def replica() -> None:
        won = jobs.claim_period(reg, "drift:model:acme/x@production", 3600)
        with lock:
            turns.append(won)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(turns) == [False, False, False, True]
    assert jobs.claim_period(reg, "drift:model:acme/x@production", 0) is True  # the period is over: a new turn
    assert jobs.claim_period(reg, "drift:model:acme/y@production", 3600) is True  # another endpoint's own turn
