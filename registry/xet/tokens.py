"""Xet access tokens: short-lived, HMAC-signed with the registry's secret, scoped to one repo and one right.

A token names the repo (by pk), whether it may write, whether it is limited to a pull request, who it was
issued to (so what else they may read is checked afresh on each use) and when it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import sqlalchemy as sa

from registry import db
from registry.auth import Principal
from registry.core import Registry
from registry.errors import ForbiddenError, UnauthorizedError

PREFIX = "xet_"


@dataclass(frozen=True)
class XetGrant:
    """What a valid Xet token lets its bearer do."""

    repo_pk: int
    write: bool
    pr: bool
    user: str | None
    expires: int


def _sign(reg: Registry, payload: bytes) -> str:
    return hmac.new(reg.secret, b"xet-token:" + payload, hashlib.sha256).hexdigest()


def issue(reg: Registry, *, repo_pk: int, write: bool, pr: bool, user: str | None,
          ttl_s: int | None = None) -> tuple[str, int]:
    """A new token and its expiry (UNIX seconds), valid for `ttl_s` (default: the `xet_token_ttl_s` setting)."""
    expires = int(time.time()) + (reg.settings.xet_token_ttl_s if ttl_s is None else ttl_s)
    payload = json.dumps({"r": repo_pk, "w": write, "pr": pr, "u": user, "e": expires}, separators=(",", ":"))
    raw = payload.encode()
    encoded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{PREFIX}{encoded}.{_sign(reg, raw)}", expires


def check(reg: Registry, token: str | None, *, write: bool = False) -> XetGrant:
    """The grant of a bearer token; UnauthorizedError if missing, forged or expired, ForbiddenError if read-only
    where `write` is needed."""
    if not token or not token.startswith(PREFIX) or "." not in token:
        raise UnauthorizedError("A Xet access token is required: ask the hub's xet-read-token or xet-write-token "
                                "route for one.")
    encoded, _, sig = token[len(PREFIX):].rpartition(".")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        raise UnauthorizedError("Invalid Xet access token.") from None
    if not hmac.compare_digest(_sign(reg, raw), sig):
        raise UnauthorizedError("Invalid Xet access token.")
    data = json.loads(raw)
    grant = XetGrant(int(data["r"]), bool(data["w"]), bool(data["pr"]), data["u"], int(data["e"]))
    if grant.expires <= time.time():
        raise UnauthorizedError("The Xet access token has expired: ask the hub for a new one.")
    if write and not grant.write:
        raise ForbiddenError("This Xet access token may only read: ask the hub's xet-write-token route for one "
                             "that may write.")
    return grant


def principal_of(reg: Registry, grant: XetGrant) -> Principal | None:
    """The grant's user as the hub knows them now (their organisations read afresh); None when anonymous or gone."""
    if grant.user is None:
        return None
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.users.c.id, db.users.c.is_admin).where(db.users.c.name == grant.user)).first()
        if row is None:
            return None
        orgs = conn.execute(
            sa.select(db.users.c.name, db.memberships.c.role)
            .join(db.memberships, db.memberships.c.org_id == db.users.c.id)
            .where(db.memberships.c.user_id == row.id)
        ).all()
    return Principal(grant.user, "write" if grant.write else "read", bool(row.is_admin), {o.name: o.role for o in orgs},
                     "xet")
