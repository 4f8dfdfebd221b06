"""What a hub process runs on, for its admins: this replica, the metadata database and its schema, blob storage, and
the background jobs all replicas share (which replica holds which)."""

from __future__ import annotations

import os
import time
from importlib import metadata
from typing import Any

import sqlalchemy as sa

from registry import db, jobs, migrations
from registry.accounts import require_admin
from registry.auth import Principal
from registry.core import Registry
from registry.migrate import redacted

RUNNING_SHOWN = 50


def _version() -> str:
    try:
        return metadata.version("vitrine")
    except metadata.PackageNotFoundError:
        return "unknown"


def _storage(reg: Registry) -> dict[str, Any]:
    from registry.s3store import S3BlobStore  # boto3 is imported only where S3 is used

    settings = reg.settings
    store = reg.blobs
    if isinstance(store, S3BlobStore):
        return {"kind": "s3", "url": f"s3://{store.bucket}/{store.prefix}", "endpoint": store.client.meta.endpoint_url,
                "presign": settings.s3_presign}
    return {"kind": "file", "url": settings.storage_url or f"file://{settings.blobs_dir}", "endpoint": None,
            "presign": "off"}


def describe(reg: Registry, principal: Principal | None) -> dict[str, Any]:
    """This replica, its database (dialect, schema revision against head), its storage and the shared job queue.

    The database URL is shown without its password, the storage without its keys.
    """
    require_admin(principal, doing="see how the hub is deployed")
    schema = migrations.status(reg.engine)
    now = time.time()
    with reg.engine.connect() as conn:
        counts: dict[str, int] = {str(status): int(n) for status, n in conn.execute(
            sa.select(db.jobs.c.status, sa.func.count()).group_by(db.jobs.c.status))}
        running = conn.execute(
            sa.select(db.jobs.c.id, db.jobs.c.kind, db.jobs.c.claimed_by, db.jobs.c.heartbeat_at, db.jobs.c.done,
                      db.jobs.c.total)
            .where(db.jobs.c.status == "running").order_by(db.jobs.c.started_at).limit(RUNNING_SHOWN)).all()
    return {
        "replica": {"id": jobs.worker_id(), "pid": os.getpid(), "version": _version()},
        "database": {"dialect": reg.engine.dialect.name,
                     "url": redacted(reg.settings.effective_database_url),
                     "revision": schema.revision, "head": schema.head, "atHead": schema.at_head},
        "storage": _storage(reg),
        "jobs": {"counts": {status: int(counts.get(status, 0)) for status in jobs.STATES},
                 "running": [{"id": r.id, "kind": r.kind, "claimedBy": r.claimed_by, "done": r.done, "total": r.total,
                              "heartbeatAgeS": None if r.heartbeat_at is None else round(now - r.heartbeat_at, 1)}
                             for r in running]},
    }
