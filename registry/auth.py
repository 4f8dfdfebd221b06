"""Users, organisations, tokens and who may read or write which repo — the Hub's rules."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.core import Registry
from registry.errors import (
    ForbiddenError,
    InvalidInputError,
    RepoNotFoundError,
    UnauthorizedError,
)
from registry.names import BOT_USER, RepoRef, check_name

ROLES = ("read", "write")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token's user, the token's role, and the user's organisations."""

    user: str
    role: str
    is_admin: bool = False
    orgs: dict[str, str] = field(default_factory=dict)
    token_name: str = ""

    def may_write_namespace(self, namespace: str) -> bool:
        """Whether this caller may create or change repos under `namespace`."""
        if self.role != "write":
            return False
        return self.is_admin or namespace == self.user or self.orgs.get(namespace) in ("write", "admin")

    def may_read_namespace(self, namespace: str) -> bool:
        """Whether this caller sees the private repos of `namespace`."""
        return self.is_admin or namespace == self.user or namespace in self.orgs


# The hub's own account: it authors the Space repos it manages (registry.commits lets it write nothing else)
# and has no token, so no caller can act as it.
HUB_PRINCIPAL = Principal(BOT_USER, "write", token_name="hub")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_user(conn: Connection, name: str, *, is_org: bool = False, is_admin: bool = False) -> int:
    """Id of user (or organisation) `name`, created when missing."""
    check_name(name, what="user name")
    row = conn.execute(sa.select(db.users.c.id, db.users.c.is_org).where(db.users.c.name == name)).first()
    if row is not None:
        if bool(row.is_org) != is_org:
            kind = "an organisation" if row.is_org else "a user"
            raise InvalidInputError(f"{name!r} is already {kind}.")
        return int(row.id)
    res = conn.execute(
        sa.insert(db.users).values(name=name, is_org=is_org, is_admin=is_admin, created_at=db.now())
    )
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def add_member(conn: Connection, org: str, user: str, *, role: str | None = None) -> None:
    """Make `user` a member of organisation `org` (both created when missing) with `role`.

    Without a role, a new member gets `write` and an existing one keeps theirs.
    """
    if role is not None and role not in ("read", "write", "admin"):
        raise InvalidInputError(f"Invalid member role {role!r}: expected read, write or admin.")
    org_id = ensure_user(conn, org, is_org=True)
    user_id = ensure_user(conn, user)
    where = (db.memberships.c.org_id == org_id, db.memberships.c.user_id == user_id)
    exists = conn.execute(sa.select(db.memberships.c.role).where(*where)).first()
    if exists is None:
        conn.execute(sa.insert(db.memberships).values(org_id=org_id, user_id=user_id, role=role or "write"))
    elif role is not None and exists.role != role:
        conn.execute(sa.update(db.memberships).where(*where).values(role=role))


def create_token(
    reg: Registry, user: str, *, role: str, org: str | None = None, name: str = "", token: str | None = None,
    is_admin: bool = False, org_role: str | None = None,
) -> str:
    """Issue a token for `user` (created when missing, added to `org` with `org_role` when given); returns it."""
    if role not in ROLES:
        raise InvalidInputError(f"Invalid token role {role!r}: expected 'read' or 'write'.")
    if BOT_USER in (user, org):
        raise InvalidInputError(f"{BOT_USER!r} is reserved for the hub's own account.")
    token = token or "hf_" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "b")
    try:
        _store_token(reg, user, role=role, org=org, name=name, token=token, is_admin=is_admin, org_role=org_role)
    except IntegrityError:
        # Another process created the same user, membership or token between our read and our insert (two
        # replicas seeding VITRINE_ADMIN_TOKEN at once on PostgreSQL): once more, it now finds their rows.
        _store_token(reg, user, role=role, org=org, name=name, token=token, is_admin=is_admin, org_role=org_role)
    return token


def _store_token(reg: Registry, user: str, *, role: str, org: str | None, name: str, token: str, is_admin: bool,
                 org_role: str | None) -> None:
    with reg.write().begin() as conn:
        user_id = ensure_user(conn, user, is_admin=is_admin)
        if is_admin:
            conn.execute(sa.update(db.users).where(db.users.c.id == user_id).values(is_admin=True))
        if org:
            add_member(conn, org, user, role=org_role)
        existing = conn.execute(sa.select(db.tokens.c.id).where(db.tokens.c.token_hash == _hash(token))).first()
        if existing is None:
            conn.execute(
                sa.insert(db.tokens).values(
                    user_id=user_id, token_hash=_hash(token), role=role, name=name or f"{user}-{role}",
                    created_at=db.now(),
                )
            )


def authenticate(reg: Registry, token: str | None) -> Principal | None:
    """The principal behind `token`; None for no token; UnauthorizedError for an unknown one."""
    if not token:
        return None
    found = _token_principal(reg, db.tokens.c.token_hash == _hash(token))
    if found is None:
        raise UnauthorizedError("Invalid credentials in Authorization header")
    return found[0]


def token_identity(reg: Registry, token: str) -> tuple[int, str] | None:
    """The id and hash of a known `token` (None for an unknown one): what a credential derived from it is bound to."""
    found = _token_principal(reg, db.tokens.c.token_hash == _hash(token))
    return None if found is None else (found[1], found[2])


def principal_by_token_id(reg: Registry, token_id: int) -> tuple[Principal, str] | None:
    """The principal of token `token_id` as it is now and the token's hash; None once the token is revoked."""
    found = _token_principal(reg, db.tokens.c.id == token_id)
    return None if found is None else (found[0], found[2])


def _token_principal(reg: Registry, where: sa.ColumnElement[bool]) -> tuple[Principal, int, str] | None:
    with reg.engine.connect() as conn:
        row = conn.execute(
            sa.select(db.users.c.id, db.users.c.name, db.users.c.is_admin, db.tokens.c.role, db.tokens.c.name.label("tn"),
                      db.tokens.c.id.label("token_id"), db.tokens.c.token_hash)
            .join(db.tokens, db.tokens.c.user_id == db.users.c.id)
            .where(where)
        ).first()
        if row is None:
            return None
        orgs = conn.execute(
            sa.select(db.users.c.name, db.memberships.c.role)
            .join(db.memberships, db.memberships.c.org_id == db.users.c.id)
            .where(db.memberships.c.user_id == row.id)
        ).all()
    principal = Principal(row.name, row.role, bool(row.is_admin), {o.name: o.role for o in orgs}, row.tn)
    return principal, int(row.token_id), str(row.token_hash)


def check_can_read(principal: Principal | None, ref: RepoRef, *, private: bool) -> None:
    """Raise RepoNotFoundError when the caller may not see the repo (as the Hub does: never 403)."""
    if private and (principal is None or not principal.may_read_namespace(ref.namespace)):
        raise RepoNotFoundError(ref.repo_id, ref.type)


def check_can_write(principal: Principal | None, namespace: str) -> Principal:
    """Raise UnauthorizedError (no token) or ForbiddenError unless the caller may write under `namespace`."""
    if principal is None:
        raise UnauthorizedError("You must be authenticated (HF_TOKEN) to write to the hub.")
    if principal.role != "write":
        raise ForbiddenError(f"Token '{principal.token_name}' has the read role and cannot write.")
    if not principal.may_write_namespace(namespace):
        raise ForbiddenError(f"User {principal.user!r} may not write to namespace {namespace!r}.")
    return principal


def whoami(reg: Registry, principal: Principal) -> dict[str, object]:
    """The `/api/whoami-v2` body for `principal`."""
    return {
        "type": "user",
        "id": principal.user,
        "name": principal.user,
        "fullname": principal.user,
        "isPro": False,
        "canPay": False,
        "emailVerified": True,
        "orgs": [{"type": "org", "name": o, "fullname": o, "roleInOrg": r} for o, r in sorted(principal.orgs.items())],
        "auth": {"type": "access_token", "accessToken": {"displayName": principal.token_name, "role": principal.role}},
    }
