"""Who may cite which LFS object: the ones they uploaded to a repo, or could download from a repo they can read."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.auth import Principal
from registry.core import Registry


def link_blobs(conn: Connection, repo_pk: int, oids: Iterable[str]) -> None:
    """Record that `repo_pk` holds these objects (idempotent); one deleted from it earlier is its own again."""
    wanted = set(oids)
    if wanted:
        # Uploaded or cited anew after `permanently_delete_lfs_files`: the repo's files using it are served again.
        conn.execute(sa.delete(db.blob_meta).where(db.blob_meta.c.oid.in_(wanted),
                                                   db.blob_meta.c.kind == f"purged:{repo_pk}"))
    have = set(conn.execute(sa.select(db.repo_blobs.c.oid).where(db.repo_blobs.c.repo_id == repo_pk,
                                                                  db.repo_blobs.c.oid.in_(wanted))).scalars())
    for oid in wanted - have:
        conn.execute(sa.insert(db.repo_blobs).values(repo_id=repo_pk, oid=oid))


def link_uploaded(reg: Registry, repo_pk: int, oid: str) -> None:
    """Record an object received through `repo_pk`'s upload link (the upload proved possession)."""
    try:
        with reg.write().begin() as conn:
            link_blobs(conn, repo_pk, [oid])
    except IntegrityError:
        pass  # the same object arrived twice at once


def may_reference(reg: Registry, principal: Principal | None, repo_pk: int, oid: str) -> bool:
    """Whether a commit to `repo_pk` by `principal` may cite object `oid` without uploading it."""
    with reg.engine.connect() as conn:
        rows = conn.execute(
            sa.select(db.repos.c.id, db.repos.c.namespace, db.repos.c.private)
            .join(db.repo_blobs, db.repo_blobs.c.repo_id == db.repos.c.id)
            .where(db.repo_blobs.c.oid == oid)
        ).all()
    return any(
        r.id == repo_pk or not r.private or (principal is not None and principal.may_read_namespace(r.namespace))
        for r in rows
    )
