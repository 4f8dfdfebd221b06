"""Canary and shadow traffic of an endpoint: a second alias answers a share of requests, or sees them all silently.

`canary`: each request goes to the `target` alias with probability `share` (the rest to the endpoint's
own alias). `shadow`: every request is mirrored to `target`, whose answer is logged beside the
primary's and never returned. Set by whoever may move the endpoint's alias; every change is audited
like an alias move (action `traffic`), and endpoints pick it up without a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from registry import aliases, db
from registry.auth import Principal
from registry.core import Registry
from registry.errors import InvalidInputError
from registry.repos import RepoRecord

MODES = ("off", "canary", "shadow")


@dataclass(frozen=True)
class Traffic:
    """How an endpoint's alias splits its traffic."""

    alias: str
    mode: str
    target: str
    share: float

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"alias": self.alias, "mode": self.mode, "target": self.target or None, "share": self.share}


def get_traffic(reg: Registry, repo: RepoRecord, alias: str) -> Traffic:
    """The traffic rule of `alias`'s endpoint (mode `off` when none is set)."""
    t = db.endpoint_traffic
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.repo_id == repo.pk, t.c.alias == alias)).first()
    if row is None:
        return Traffic(alias, "off", "", 0.0)
    return Traffic(alias, row.mode, row.target, float(row.share))


def set_traffic(reg: Registry, principal: Principal | None, repo: RepoRecord, alias: str, *, mode: str,
                target: str = "", share: float = 0.0, reason: str = "") -> Traffic:
    """Set (or, with mode `off`, clear) the canary or shadow of `alias`'s endpoint; audited.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not move `alias` (a protected alias: org admins only).
        InvalidInputError: an unknown mode, a share outside (0, 1] for a canary, a target that is the alias itself
            or does not exist.
    """
    aliases.check_alias_name(alias)
    caller = aliases.check_can_move(reg, principal, repo, alias)
    if mode not in MODES:
        raise InvalidInputError(f"Invalid traffic mode {mode!r}: expected off, canary or shadow.")
    if mode == "off":
        target, share = "", 0.0
    else:
        aliases.check_alias_name(target)
        if target == alias:
            raise InvalidInputError(f"A {mode} must be another alias than {alias!r} itself.")
        if aliases.get_alias(reg, repo, target) is None:
            raise InvalidInputError(f"{repo.ref.repo_id} has no alias {target!r}; point it at a version first "
                                    f"(vitrine aliases {repo.ref.repo_id} --set {target} REVISION).")
        if mode == "shadow":
            share = 1.0
        elif isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) \
                or not 0 < share <= 1:
            raise InvalidInputError(f"A canary share is a number in (0, 1], got {share!r}.")
    rule = Traffic(alias, mode, target, float(share))
    t = db.endpoint_traffic
    with reg.write().begin() as conn:
        conn.execute(sa.delete(t).where(t.c.repo_id == repo.pk, t.c.alias == alias))
        if mode != "off":
            conn.execute(sa.insert(t).values(repo_id=repo.pk, alias=alias, mode=mode, target=target, share=share,
                                             updated_at=db.now()))
        aliases.record_event(conn, repo, alias, action="traffic", actor=caller.user, from_oid=None, to_oid=None,
                             reason=reason.strip()[:aliases.MAX_REASON], evidence={"traffic": rule.to_json()})
    return rule
