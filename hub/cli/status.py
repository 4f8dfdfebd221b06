"""`vitrine status`: how a running hub is deployed (this replica, database and schema, storage, job queue), over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli.client import add_client_args, endpoint_of, get_json, token_of

PATH = "/api/vitrine/admin/deployment"


def cmd_status(args: argparse.Namespace) -> int:
    """Print the replica that answered, its database (at head or not), its storage and the shared job queue."""
    from rich.console import Console
    from rich.table import Table

    found = get_json(endpoint_of(args), token_of(args), PATH, params={})
    replica, database, storage, queue = found["replica"], found["database"], found["storage"], found["jobs"]
    print(f"replica:  {replica['id']} (pid {replica['pid']}, vitrine {replica['version']})")
    schema = "at head" if database["atHead"] else f"head is {database['head']}: run `vitrine db upgrade`"
    print(f"database: {database['dialect']} {database['url']}, revision {database['revision']} ({schema})")
    where = f" at {storage['endpoint']}" if storage["endpoint"] else ""
    print(f"storage:  {storage['url']}{where}, presigned transfers: {storage['presign']}")
    print("jobs:     " + ", ".join(f"{n} {status}" for status, n in queue["counts"].items()))
    if queue["running"]:
        table = Table("job", "kind", "replica", "progress", "heartbeat")
        for job in queue["running"]:
            table.add_row(job["id"], job["kind"], job["claimedBy"] or "-", f"{job['done']}/{job['total']}",
                          "-" if job["heartbeatAgeS"] is None else f"{job['heartbeatAgeS']} s ago")
        Console().print(table)
    return 0 if database["atHead"] else 1


def register(sub: Any) -> None:
    """Add `status` to the `vitrine` parser."""
    p = add_client_args(sub.add_parser("status", help="how the hub is deployed: replica, database, storage, jobs "
                                                      "(admins)"))
    p.set_defaults(func=cmd_status)
