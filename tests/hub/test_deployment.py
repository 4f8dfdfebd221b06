"""How the hub is deployed, for its admins: the route, `vitrine status`, and what they say of the session's hub.

The same route on two replicas sharing PostgreSQL and a bucket is checked in tests/hub/test_replicas.py (which
replica holds a running job); its permission row is in tests/hub/test_permissions.py; the console's Admin page in
tests/e2e/test_console_pages.py.
"""

from __future__ import annotations

import subprocess

import httpx

from registry.jobs import STATES
from registry.migrations import head
from tests.conftest import VITRINE, Server, server_env
from tests.helpers import bearer


def test_deployment_describes_this_replica_database_storage_and_jobs(hub: Server) -> None:
    found = httpx.get(f"{hub.url}/api/vitrine/admin/deployment", headers=bearer(hub.admin_token)).json()
    on_postgres = "VITRINE_DATABASE_URL" in hub.env
    assert found["replica"]["pid"] == hub.proc.pid and found["replica"]["id"].endswith(f":{hub.proc.pid}")
    database = found["database"]
    assert database["dialect"] == ("postgresql" if on_postgres else "sqlite")
    assert database["revision"] == database["head"] == head() and database["atHead"] is True
    if not on_postgres:
        assert database["url"] == f"sqlite:///{hub.home.resolve() / 'vitrine.db'}"
    storage = found["storage"]
    if hub.env.get("VITRINE_STORAGE_URL", "").startswith("s3://"):
        assert storage["kind"] == "s3" and storage["endpoint"] == hub.env["AWS_ENDPOINT_URL"]
        # The bucket's secret key never appears.
        raw = httpx.get(f"{hub.url}/api/vitrine/admin/deployment", headers=bearer(hub.admin_token)).text
        assert hub.env["AWS_SECRET_ACCESS_KEY"] not in raw
    else:
        assert storage == {"kind": "file", "url": f"file://{hub.home.resolve() / 'blobs'}", "endpoint": None,
                           "presign": "off"}
    assert set(found["jobs"]["counts"]) == set(STATES) and all(n >= 0 for n in found["jobs"]["counts"].values())


def test_vitrine_status_prints_it_for_admins_only(hub: Server) -> None:
    def status(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([VITRINE, "status", "--endpoint", hub.url, "--token", token], capture_output=True,
                              text=True, timeout=60, env=server_env(hub.home, **hub.env))

    done = status(hub.admin_token)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("replica:  ") and f"(pid {hub.proc.pid}," in lines[0]
    dialect = "postgresql" if "VITRINE_DATABASE_URL" in hub.env else "sqlite"
    assert lines[1].startswith(f"database: {dialect} ") and f"revision {head()} (at head)" in lines[1]
    assert lines[2].startswith("storage:  ") and lines[3].startswith("jobs:     ") and " queued" in lines[3]
    refused = status(hub.token("status-writer", "write"))
    assert refused.returncode == 1 and "not an admin; only admins see how the hub is deployed" in refused.stderr
