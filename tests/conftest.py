"""Session fixtures: a real `vitrine serve` on a free loopback port, clients pointed at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# huggingface_hub and transformers read these at import time, so they are set before any test imports them.
HUB_PORT = free_port()
ENDPOINT = f"http://127.0.0.1:{HUB_PORT}"
ADMIN_TOKEN = "hf_test_admin_token_0123456789"
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="vitrine-tests-"))
os.environ.update(
    HF_ENDPOINT=ENDPOINT,
    HF_HUB_DISABLE_XET="1",
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    GRADIO_ANALYTICS_ENABLED="False",
    HF_HOME=str(_SESSION_TMP / "hf-home"),
    TOKENIZERS_PARALLELISM="false",
)
os.environ.pop("HF_TOKEN", None)
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

    def token(self, user: str, role: str = "write", org: str | None = None, org_role: str | None = None) -> str:
        """Create a token through the real CLI (`vitrine token create`) and return it."""
        cmd = [VITRINE, "token", "create", "--home", str(self.home), "--user", user, "--role", role]
        if org:
            cmd += ["--org", org]
        if org_role:
            cmd += ["--org-role", org_role]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=server_env(self.home)).stdout
        return out.strip().splitlines()[-1]

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
                return Server(url, home, proc, ADMIN_TOKEN, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"hub did not answer within 60s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def hub() -> Iterator[Server]:
    """The session's hub, at HF_ENDPOINT."""
    server = start_server(_SESSION_TMP / "hub-home", HUB_PORT)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_api(hub: Server):  # type: ignore[no-untyped-def]
    """An HfApi with the admin token."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=hub.admin_token)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own HOME and Hugging Face cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
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
