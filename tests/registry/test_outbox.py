"""The event outbox on PostgreSQL: an event whose transaction commits after a later one's is still fanned out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry import db, events, webhooks
from registry.core import Registry
from registry.names import RepoRef
from registry.repos import create_repo
from registry.settings import Settings


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    """A registry on a fresh PostgreSQL database (SQLite has one writer at a time: ids land in commit order)."""
    from tests.backends import postgres_database

    with postgres_database() as url:
        registry = Registry(Settings.from_env({}, home=tmp_path / "home", database_url=url))
        webhooks.ensure_tables(registry)
        yield registry
        registry.close()


def _cursor(reg: Registry) -> int:
    with reg.engine.connect() as conn:
        return int(conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == webhooks.CURSOR_KEY)).scalar_one())


def _drain(reg: Registry) -> None:
    for _ in range(10):
        webhooks.fan_out(reg)
    assert _cursor(reg) == _last_id(reg)


def _last_id(reg: Registry) -> int:
    with reg.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(db.events.c.id), 0))).scalar_one())


def test_an_event_committed_late_is_not_skipped(reg: Registry) -> None:
    repo = create_repo(reg, RepoRef("model", "acme", "outbox"), author="ana")
    webhooks.fan_out(reg)  # creates the cursor
    _drain(reg)
    # A commit on one replica draws its event id, and another replica's later event commits first.
    slow = reg.write().connect()
    pending = slow.begin()
    events.emit(slow, "repo.content", repo.pk, actor="slow", data={})
    events.emit_now(reg, "repo.content", repo.pk, actor="fast", data={})
    before = _cursor(reg)
    assert webhooks.fan_out(reg) == 0 and _cursor(reg) == before  # the hole may still fill: wait
    pending.commit()
    slow.close()
    assert webhooks.fan_out(reg) == 2 and _cursor(reg) == before + 2

    # A hole that never fills (its transaction rolled back) holds the outbox up for GAP_WAIT_S only.
    lost = reg.write().connect()
    rolled = lost.begin()
    events.emit(lost, "repo.content", repo.pk, actor="lost", data={})
    rolled.rollback()
    lost.close()
    events.emit_now(reg, "repo.content", repo.pk, actor="after", data={})
    assert webhooks.fan_out(reg) == 0
    with reg.write().begin() as conn:  # as if GAP_WAIT_S had passed
        conn.execute(sa.update(db.events).where(db.events.c.id == _last_id(reg))
                     .values(created_at=db.events.c.created_at - webhooks.GAP_WAIT_S - 1))
    assert webhooks.fan_out(reg) == 1 and _cursor(reg) == _last_id(reg)
