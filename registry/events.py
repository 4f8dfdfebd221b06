"""Repo events, written to an outbox in the same transaction as what happened; webhooks deliver them later.

Kinds (`KINDS`): a new commit on a branch (`repo.content`), a branch or tag created or deleted
(`repo.refs`), an alias moved (`alias.moved`), a promotion the gate refused (`promotion.refused`), an
evaluation that finished (`evaluation.finished`), drift found on an endpoint (`drift.detected`).
`data` is the event's own JSON (`updatedRefs`, the alias move, the evaluation's id and metrics...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from registry import db
from registry.core import Registry

KINDS = ("repo.content", "repo.refs", "alias.moved", "promotion.refused", "evaluation.finished", "drift.detected")


@dataclass(frozen=True)
class Event:
    """One event of the outbox."""

    id: int
    kind: str
    repo_pk: int
    actor: str
    data: dict[str, Any]
    created_at: float


def emit(conn: Connection, kind: str, repo_pk: int, *, actor: str, data: dict[str, Any]) -> None:
    """Append an event inside the caller's transaction (so it exists exactly when what it reports does)."""
    assert kind in KINDS, kind
    conn.execute(sa.insert(db.events).values(kind=kind, repo_id=repo_pk, actor=actor,
                                             data=json.dumps(data, sort_keys=True, default=str), created_at=db.now()))


def emit_now(reg: Registry, kind: str, repo_pk: int, *, actor: str, data: dict[str, Any]) -> None:
    """Append an event in a transaction of its own (for what already happened, e.g. a finished job)."""
    with reg.write().begin() as conn:
        emit(conn, kind, repo_pk, actor=actor, data=data)


def events_after(reg: Registry, after_id: int, *, limit: int = 500) -> list[Event]:
    """Events with an id above `after_id`, oldest first (what a delivery worker has not seen yet)."""
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(db.events).where(db.events.c.id > after_id).order_by(db.events.c.id)
                            .limit(limit)).all()
    return [Event(int(r.id), r.kind, int(r.repo_id), r.actor, json.loads(r.data), float(r.created_at)) for r in rows]
