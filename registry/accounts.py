"""What an admin sees of accounts: users, organisations and their members, and membership changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from registry import db
from registry.auth import Principal, ensure_user
from registry.core import Registry
from registry.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from registry.names import BOT_USER

MEMBER_ROLES = ("read", "write", "admin")


def require_admin(principal: Principal | None, *, doing: str = "manage accounts") -> Principal:
    """The caller when it is an admin; UnauthorizedError (anonymous) or ForbiddenError otherwise."""
    if principal is None:
        raise UnauthorizedError(f"Only an admin token may {doing}.")
    if not principal.is_admin:
        raise ForbiddenError(f"User {principal.user!r} is not an admin; only admins {doing}.")
    return principal


def list_accounts(reg: Registry, principal: Principal | None) -> dict[str, Any]:
    """Every user (admin flag, organisations) and every organisation (members with their role)."""
    require_admin(principal)
    org, member = db.users.alias("org"), db.users.alias("member")
    with reg.engine.connect() as conn:
        accounts = conn.execute(sa.select(db.users.c.name, db.users.c.is_org, db.users.c.is_admin)
                                .order_by(db.users.c.name)).all()
        links = conn.execute(sa.select(org.c.name.label("org"), member.c.name.label("user"), db.memberships.c.role)
                             .join(org, org.c.id == db.memberships.c.org_id)
                             .join(member, member.c.id == db.memberships.c.user_id)
                             .order_by(org.c.name, member.c.name)).all()
    users = [{"name": a.name, "isAdmin": bool(a.is_admin),
              "orgs": [{"name": m.org, "role": m.role} for m in links if m.user == a.name]}
             for a in accounts if not a.is_org and a.name != BOT_USER]
    orgs = [{"name": a.name, "members": [{"name": m.user, "role": m.role} for m in links if m.org == a.name]}
            for a in accounts if a.is_org]
    return {"users": users, "orgs": orgs}


def set_member(reg: Registry, principal: Principal | None, org: str, user: str, *, role: str) -> None:
    """Make `user` a member of `org` with `role` (the organisation is created when missing; the user must exist)."""
    require_admin(principal)
    if role not in MEMBER_ROLES:
        raise InvalidInputError(f"Invalid member role {role!r}: expected read, write or admin.")
    if BOT_USER in (org, user):
        raise InvalidInputError(f"{BOT_USER!r} is reserved for the hub's own account.")
    with reg.write().begin() as conn:
        row = conn.execute(sa.select(db.users.c.id, db.users.c.is_org).where(db.users.c.name == user)).first()
        if row is None or row.is_org:
            raise NotFoundError(f"User {user!r} not found. Create it with: vitrine token create --user {user}")
        org_id = ensure_user(conn, org, is_org=True)
        conn.execute(sa.delete(db.memberships).where(db.memberships.c.org_id == org_id,
                                                      db.memberships.c.user_id == row.id))
        conn.execute(sa.insert(db.memberships).values(org_id=org_id, user_id=row.id, role=role))


def remove_member(reg: Registry, principal: Principal | None, org: str, user: str) -> None:
    """Take `user` out of `org`."""
    require_admin(principal)
    org_row, member = db.users.alias("org"), db.users.alias("member")
    with reg.write().begin() as conn:
        ids = conn.execute(sa.select(org_row.c.id.label("org_id"), member.c.id.label("user_id"))
                           .where(org_row.c.name == org, org_row.c.is_org.is_(True), member.c.name == user)).first()
        done = 0
        if ids is not None:
            done = conn.execute(sa.delete(db.memberships).where(db.memberships.c.org_id == ids.org_id,
                                                                db.memberships.c.user_id == ids.user_id)).rowcount
    if not done:
        raise NotFoundError(f"{user!r} is not a member of organisation {org!r}.")
