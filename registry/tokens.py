"""A person's own tokens: list them, issue one with a role, revoke one. Only ever the caller's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from registry import db
from registry.auth import ROLES, Principal, create_token
from registry.core import Registry
from registry.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError

MAX_NAME = 96


@dataclass(frozen=True)
class TokenRecord:
    """One token as its owner sees it: never the token itself, which the hub keeps only hashed."""

    id: int
    name: str
    role: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"id": self.id, "name": self.name, "role": self.role, "createdAt": self.created_at}


def require_signed_in(principal: Principal | None) -> Principal:
    """The caller, or UnauthorizedError for an anonymous one."""
    if principal is None:
        raise UnauthorizedError("You must be authenticated (HF_TOKEN) to manage your tokens.")
    return principal


def _user_id(reg: Registry, user: str) -> int:
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.users.c.id).where(db.users.c.name == user)).first()
    if row is None:
        raise UnauthorizedError(f"User {user!r} no longer exists.")
    return int(row.id)


def list_tokens(reg: Registry, principal: Principal | None) -> list[TokenRecord]:
    """The caller's own tokens, oldest first."""
    user_id = _user_id(reg, require_signed_in(principal).user)
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(db.tokens.c.id, db.tokens.c.name, db.tokens.c.role, db.tokens.c.created_at)
                            .where(db.tokens.c.user_id == user_id).order_by(db.tokens.c.id)).all()
    return [TokenRecord(int(r.id), r.name, r.role, float(r.created_at)) for r in rows]


def issue_token(reg: Registry, principal: Principal | None, *, name: str, role: str) -> tuple[TokenRecord, str]:
    """Issue the caller a new token and return its record and the token in clear (shown this once only).

    Raises:
        InvalidInputError: a bad name or role, or a name the caller already uses.
        ForbiddenError: a read token asking for a write token.
    """
    caller = require_signed_in(principal)
    if role not in ROLES:
        raise InvalidInputError(f"Invalid token role {role!r}: expected 'read' or 'write'.")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidInputError(f"A token needs a name of 1 to {MAX_NAME} characters.")
    if role == "write" and caller.role != "write":
        raise ForbiddenError("A read token cannot create a write token; sign in with a write token.")
    if any(t.name == name for t in list_tokens(reg, caller)):
        raise InvalidInputError(f"You already have a token named {name!r}; pick another name or revoke it first.")
    clear = create_token(reg, caller.user, role=role, name=name)
    record = next(t for t in reversed(list_tokens(reg, caller)) if t.name == name)
    return record, clear


def revoke_token(reg: Registry, principal: Principal | None, token_id: int) -> None:
    """Revoke one of the caller's tokens; another person's token is answered as missing.

    Raises:
        NotFoundError: no token of the caller has that id.
        ForbiddenError: a read token revoking a write token.
    """
    caller = require_signed_in(principal)
    mine = {t.id: t for t in list_tokens(reg, caller)}
    if token_id not in mine:
        raise NotFoundError(f"Token {token_id} not found among your tokens.")
    if mine[token_id].role == "write" and caller.role != "write":
        raise ForbiddenError("A read token cannot revoke a write token; sign in with a write token.")
    with reg.write().begin() as conn:
        conn.execute(sa.delete(db.tokens).where(db.tokens.c.id == token_id))
