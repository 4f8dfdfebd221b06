"""Session fixtures: a real `vitrine serve` on a free loopback port, clients pointed at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import free_port


# huggingface_hub and transformers read these at import time, so they are set before any test imports them.
HUB_PORT = free_port()
ENDPOINT = f"http://127.0.0.1:{HUB_PORT}"
ADMIN_TOKEN = "hf_test_admin_token_0123456789"
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="vitrine-tests-"))
os.environ.update(
    HF_ENDPOINT=ENDPOINT,
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    GRADIO_ANALYTICS_ENABLED="False",
    HF_HOME=str(_SESSION_TMP / "hf-home"),
    TOKENIZERS_PARALLELISM="false",
)
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_HUB_DISABLE_XET", None)  # stock clients as installed: large files go up through Xet
os.environ.pop("HF_HUB_OFFLINE", None)
ROOT = Path(__file__).resolve().parent.parent
VITRINE = str(Path(sys.executable).parent / "vitrine")


@dataclass
class Server:
    """A running hub process."""

    url: str
    home: Path
    proc: subprocess.Popen[bytes]
    admin_token: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    """The extra environment it was started with (its database and storage), for the CLI on its home."""

    def token(self, user: str, role: str = "write", org: str | None = None, org_role: str | None = None) -> str:
        """Create a token through the real CLI (`vitrine token create`) and return it."""
        cmd = [VITRINE, "token", "create", "--home", str(self.home), "--user", user, "--role", role]
        if org:
            cmd += ["--org", org]
        if org_role:
            cmd += ["--org-role", org_role]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                             env=server_env(self.home, **self.env)).stdout
        return out.strip().splitlines()[-1]

    def registry(self):  # type: ignore[no-untyped-def]
        """A `Registry` in this process on the hub's home, database and blob storage (close it after use)."""
        from registry.core import Registry
        from registry.settings import Settings

        return Registry(Settings.from_env({"VITRINE_HOME": str(self.home), **self.env}))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGKILL to simulate a crash)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a hub process (no inherited VITRINE_* surprises)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
    # Test hubs live for seconds: importing the inference stack up front would only cost CPU the suite needs.
    env.update(VITRINE_HOME=str(home), VITRINE_ADMIN_TOKEN=ADMIN_TOKEN, VITRINE_EVAL_WARMUP="0")
    # Test receivers of webhooks listen on loopback, which the default (external addresses only) refuses.
    env.update(VITRINE_WEBHOOK_ALLOWED_NETWORKS="external,loopback")
    env.update(extra)
    return env


def start_server(home: Path, port: int | None = None, **extra_env: str) -> Server:
    """Start `vitrine serve` and wait until it answers /health."""
    import httpx

    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"server-{port}.log"
    proc = subprocess.Popen(
        [VITRINE, "serve", "--home", str(home), "--port", str(port), "--log-level", "warning"],
        env=server_env(home, **extra_env), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited early:\n{log.read_text()}")
        try:
            r = httpx.get(f"{url}/health", timeout=1)
            if r.status_code == 200:
                # Another test session may hold the port: only our own process will do.
                if r.json().get("pid") != proc.pid:
                    proc.kill()
                    raise RuntimeError(f"port {port} is answered by another process (pid {r.json().get('pid')})")
                return Server(url, home, proc, ADMIN_TOKEN, log, dict(extra_env))
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"hub did not answer within 60s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def hub() -> Iterator[Server]:
    """The session's hub, at HF_ENDPOINT (on PostgreSQL + SeaweedFS with VITRINE_TEST_BACKEND=postgres+s3)."""
    from tests.backends import backend_env

    with backend_env(_SESSION_TMP) as extra:
        server = start_server(_SESSION_TMP / "hub-home", HUB_PORT, **extra)
        yield server
        server.stop()


@pytest.fixture(scope="session")
def admin_api(hub: Server):  # type: ignore[no-untyped-def]
    """An HfApi with the admin token."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=hub.admin_token)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One SeaweedFS S3 server (`weed server -s3`) for every module that needs one; each takes buckets of its own."""
    from tests.backends import start_seaweedfs

    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def _module_xet_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A module's setup uploads with a Xet cache of its own (see `_isolated_home`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_XET_CACHE", str(tmp_path_factory.mktemp("xet-cache")))
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own HOME, Hugging Face cache and Xet cache.

    hf_xet remembers what it uploaded (in HF_XET_CACHE, read at each upload) and cites it instead of sending it
    again; the hub refuses a citation of data the uploader may not read. Tests upload as many accounts from one
    process, which real accounts do from machines of their own.
    """
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "xet-cache"))
    (tmp_path / "home").mkdir()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf-home"))


_counter = iter(range(10**9))


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repo name unique to this test."""
    import re

    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    return f"{base}-{next(_counter)}"
