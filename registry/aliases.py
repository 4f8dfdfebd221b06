"""Aliases: named, movable pointers of a model repo (`production`, `staging`, ...) to a commit, with an audit log.

An alias is a ref of kind "alias", so every place that resolves a revision (file downloads,
`model_info`, `from_pretrained(revision="production")`, evaluations, demos) resolves it too. It never
moves a branch, and a name is never both an alias and a branch or tag. Every move, refused promotion
and protection change is appended to `alias_events`; nothing there is ever rewritten.

Who may move an alias: anyone who may write the repo, except for a protected alias, which only the
owning organisation's admins (or a hub admin) move. `production` of an organisation's repo is always
protected; the organisation's admins may protect any other alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from registry import db, events
from registry.auth import Principal, check_can_write
from registry.commits import resolve_revision, set_ref
from registry.core import Registry
from registry.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from registry.names import check_ref_name
from registry.repos import RepoRecord

KIND = "alias"
ALWAYS_PROTECTED = "production"
MAX_REASON = 2000
ACTIONS = ("set", "promote", "rollback", "delete", "refused", "protect", "unprotect", "traffic")
"""What an audit event records: a plain move, a gated promotion, a rollback, a deletion, a promotion the
gate refused (nothing moved), a protection change, or a change of the endpoint's canary or shadow."""


@dataclass(frozen=True)
class Alias:
    """An alias and the commit it points at now."""

    name: str
    commit_oid: str
    protected: bool
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"name": self.name, "commit": self.commit_oid, "protected": self.protected,
                "updatedAt": self.updated_at}


@dataclass(frozen=True)
class AliasEvent:
    """One entry of the audit log."""

    id: int
    alias: str
    action: str
    from_oid: str | None
    to_oid: str | None
    actor: str
    reason: str
    forced: bool
    evidence: dict[str, Any]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"id": self.id, "alias": self.alias, "action": self.action, "from": self.from_oid,
                "to": self.to_oid, "actor": self.actor, "reason": self.reason, "forced": self.forced,
                "evidence": self.evidence, "createdAt": self.created_at}


def check_alias_name(name: str) -> str:
    """Validate an alias name: the rules of a branch name."""
    return check_ref_name(name, what="alias")


def _is_org(conn: Connection, namespace: str) -> bool:
    return bool(conn.execute(sa.select(db.users.c.is_org).where(db.users.c.name == namespace)).scalar())


def _protected(conn: Connection, repo: RepoRecord, name: str) -> bool:
    if not _is_org(conn, repo.ref.namespace):
        return False
    if name == ALWAYS_PROTECTED:
        return True
    return conn.execute(sa.select(db.protected_aliases.c.alias).where(
        db.protected_aliases.c.repo_id == repo.pk, db.protected_aliases.c.alias == name)).first() is not None


def is_protected(reg: Registry, repo: RepoRecord, name: str) -> bool:
    """Whether only the organisation's admins may move alias `name` of `repo`."""
    with reg.engine.connect() as conn:
        return _protected(conn, repo, name)


def check_can_move(reg: Registry, principal: Principal | None, repo: RepoRecord, name: str) -> Principal:
    """The caller if they may move alias `name` of `repo`; 401/403 naming who may otherwise."""
    caller = check_can_write(principal, repo.ref.namespace)
    if is_protected(reg, repo, name) and not (caller.is_admin or caller.orgs.get(repo.ref.namespace) == "admin"):
        role = caller.orgs.get(repo.ref.namespace, "no")
        raise ForbiddenError(
            f"Alias {name!r} of {repo.ref.repo_id} is protected: only admins of organisation "
            f"{repo.ref.namespace!r} may move it ({caller.user!r} has the {role} role)."
        )
    return caller


def check_can_protect(principal: Principal | None, repo: RepoRecord) -> Principal:
    """The caller if they may protect or unprotect aliases of `repo`: an admin of its organisation."""
    caller = check_can_write(principal, repo.ref.namespace)
    if not (caller.is_admin or caller.orgs.get(repo.ref.namespace) == "admin"):
        raise ForbiddenError(f"Only admins of organisation {repo.ref.namespace!r} may protect aliases of "
                             f"{repo.ref.repo_id}.")
    return caller


def list_aliases(reg: Registry, repo: RepoRecord) -> list[Alias]:
    """Every alias of `repo`, by name."""
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(db.refs.c.name, db.refs.c.commit_oid, db.refs.c.updated_at).where(
            db.refs.c.repo_id == repo.pk, db.refs.c.kind == KIND).order_by(db.refs.c.name)).all()
        return [Alias(r.name, r.commit_oid, _protected(conn, repo, r.name), float(r.updated_at)) for r in rows]


def get_alias(reg: Registry, repo: RepoRecord, name: str) -> Alias | None:
    """Alias `name` of `repo`, or None."""
    return next((a for a in list_aliases(reg, repo) if a.name == name), None)


def _current(conn: Connection, repo_pk: int, name: str) -> str | None:
    return conn.execute(sa.select(db.refs.c.commit_oid).where(
        db.refs.c.repo_id == repo_pk, db.refs.c.kind == KIND, db.refs.c.name == name)).scalar_one_or_none()


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidInputError(f"A reason is a string of at most {MAX_REASON} characters.")
    return reason.strip()


def record_event(conn: Connection, repo: RepoRecord, name: str, *, action: str, actor: str, from_oid: str | None,
                 to_oid: str | None, reason: str = "", forced: bool = False,
                 evidence: dict[str, Any] | None = None) -> AliasEvent:
    """Append one audit event (inside the caller's transaction)."""
    assert action in ACTIONS, action
    created = db.now()
    body = json.dumps(evidence or {}, sort_keys=True, default=str)
    res = conn.execute(sa.insert(db.alias_events).values(
        repo_id=repo.pk, alias=name, action=action, from_oid=from_oid, to_oid=to_oid, actor=actor,
        reason=reason, forced=forced, evidence=body, created_at=created))
    key = res.inserted_primary_key
    assert key is not None
    if action in ("set", "promote", "rollback", "delete", "refused"):
        move = {"name": name, "action": action, "from": from_oid, "to": to_oid, "reason": reason, "forced": forced,
                "auditId": int(key[0])}
        if action == "refused":
            events.emit(conn, "promotion.refused", repo.pk, actor=actor, data={
                "promotion": {**move, "checks": [{k: c.get(k) for k in ("dataset", "split", "metric", "bound",
                                                                         "passed", "summary")}
                                                 for c in (evidence or {}).get("gate", {}).get("checks", [])]}})
        else:
            events.emit(conn, "alias.moved", repo.pk, actor=actor, data={"alias": move})
    return AliasEvent(int(key[0]), name, action, from_oid, to_oid, actor, reason, forced, evidence or {}, created)


def move_alias(reg: Registry, principal: Principal | None, repo: RepoRecord, name: str, revision: str, *,
               reason: str = "", action: str = "set", forced: bool = False, evidence: dict[str, Any] | None = None,
               expected: str | None | bool = False) -> AliasEvent:
    """Point alias `name` at `revision` (created when missing), and log it; the one way an alias moves.

    Args:
        expected: with a commit id (or None for "absent"), refuse with a ConflictError when the alias moved
            since the caller looked (a promotion decided on the old target); False skips the check.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not move it (protected aliases name who may).
        InvalidInputError: a bad alias name or reason, or a name a branch or tag already has.
        RevisionNotFoundError: `revision` names nothing in the repo.
    """
    if repo.ref.type != "model":
        raise InvalidInputError("Aliases belong to model repos.")
    check_alias_name(name)
    caller = check_can_move(reg, principal, repo, name)
    why = _reason(reason)
    with reg.write().begin() as conn:
        clash = conn.execute(sa.select(db.refs.c.kind).where(
            db.refs.c.repo_id == repo.pk, db.refs.c.name == name, db.refs.c.kind != KIND)).scalar_one_or_none()
        if clash is not None:
            raise InvalidInputError(f"{name!r} is already a {clash} of {repo.ref.repo_id}; an alias needs its own name.")
        target = resolve_revision(conn, repo.pk, repo.ref, revision)
        current = _current(conn, repo.pk, name)
        if expected is not False and expected != current:
            raise ConflictError(f"Alias {name!r} of {repo.ref.repo_id} moved to {current} while this was decided; "
                                "look again and retry.")
        if not set_ref(conn, repo.pk, KIND, name, target.oid, expected=current):
            raise ConflictError(f"Alias {name!r} of {repo.ref.repo_id} moved meanwhile; retry.")
        return record_event(conn, repo, name, action=action, actor=caller.user, from_oid=current, to_oid=target.oid,
                            reason=why, forced=forced, evidence=evidence)


def delete_alias(reg: Registry, principal: Principal | None, repo: RepoRecord, name: str, *,
                 reason: str = "") -> AliasEvent:
    """Remove alias `name` (logged); NotFoundError when it does not exist."""
    caller = check_can_move(reg, principal, repo, name)
    why = _reason(reason)
    with reg.write().begin() as conn:
        current = _current(conn, repo.pk, name)
        if current is None:
            raise NotFoundError(f"{repo.ref.repo_id} has no alias {name!r}.")
        conn.execute(sa.delete(db.refs).where(db.refs.c.repo_id == repo.pk, db.refs.c.kind == KIND,
                                              db.refs.c.name == name))
        return record_event(conn, repo, name, action="delete", actor=caller.user, from_oid=current, to_oid=None,
                            reason=why)


def set_protected(reg: Registry, principal: Principal | None, repo: RepoRecord, name: str, protected: bool) -> None:
    """Protect alias `name` (only organisation admins move it) or lift that; logged."""
    check_alias_name(name)
    caller = check_can_protect(principal, repo)
    if not protected and name == ALWAYS_PROTECTED:
        raise InvalidInputError(f"{ALWAYS_PROTECTED!r} of an organisation's repo is always protected.")
    with reg.write().begin() as conn:
        if not _is_org(conn, repo.ref.namespace):
            raise InvalidInputError("Only an organisation's repos have protected aliases; a user's own repo has "
                                    "one writer already.")
        t = db.protected_aliases
        conn.execute(sa.delete(t).where(t.c.repo_id == repo.pk, t.c.alias == name))
        if protected:
            conn.execute(sa.insert(t).values(repo_id=repo.pk, alias=name))
        record_event(conn, repo, name, action="protect" if protected else "unprotect", actor=caller.user,
                     from_oid=None, to_oid=None)


def history(reg: Registry, repo: RepoRecord, name: str | None = None, *, limit: int = 1000) -> list[AliasEvent]:
    """The audit log of `repo` (or of one alias), newest first."""
    t = db.alias_events
    q = sa.select(t).where(t.c.repo_id == repo.pk)
    if name is not None:
        q = q.where(t.c.alias == name)
    with reg.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.id.desc()).limit(limit)).all()
    return [AliasEvent(int(r.id), r.alias, r.action, r.from_oid, r.to_oid, r.actor, r.reason, bool(r.forced),
                       json.loads(r.evidence), float(r.created_at)) for r in rows]


def previous_target(reg: Registry, repo: RepoRecord, name: str) -> str | None:
    """Where a rollback of alias `name` goes: the target before the current one, skipping targets rolled back from.

    Moves push a target, rollbacks pop one, so rolling back twice walks two promotions back.
    """
    stack: list[str] = []
    for event in reversed(history(reg, repo, name, limit=100_000)):
        if event.action in ("set", "promote") and event.to_oid:
            stack.append(event.to_oid)
        elif event.action == "rollback" and stack:
            stack.pop()
        elif event.action == "delete":
            stack.clear()
    return stack[-2] if len(stack) >= 2 else None


def rollback(reg: Registry, principal: Principal | None, repo: RepoRecord, name: str, *,
             reason: str = "") -> AliasEvent:
    """Return alias `name` to its previous target (logged as a rollback); no gate, it was served before.

    Raises:
        NotFoundError: the alias does not exist.
        ConflictError: it has no earlier target.
    """
    current = get_alias(reg, repo, name)
    if current is None:
        raise NotFoundError(f"{repo.ref.repo_id} has no alias {name!r}.")
    target = previous_target(reg, repo, name)
    if target is None:
        raise ConflictError(f"Alias {name!r} of {repo.ref.repo_id} has no earlier target to roll back to.")
    return move_alias(reg, principal, repo, name, target, reason=reason, action="rollback",
                      expected=current.commit_oid)

