"""A throw-away `vitrine serve` for benchmarks: a free loopback port, a home of its own, an admin token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

VITRINE = str(Path(sys.executable).parent / "vitrine")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, *, window_s: float = 0.5, busy_share: float = 0.05, timeout_s: float = 60) -> None:
    """Wait until process `pid` has finished starting: under `busy_share` of a core over one `window_s`.

    A hub that answers /health is still importing its inference stack in the background (the evaluation
    worker's warm-up, about 10 s of one core here); timed work started before then would share the CPU with it,
    which a hub that has been running a while never does.
    """
    deadline = time.monotonic() + timeout_s
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(window_s)
        now = cpu_seconds(pid)
        if now - before < busy_share * window_s:
            return
        before = now


def start_hub(home: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a hub on `home` with admin `token`; returns the process and its URL once it answers /health."""
    port = free_port()
    env = {**os.environ, "VITRINE_HOME": str(home), "VITRINE_ADMIN_TOKEN": token}
    server = subprocess.Popen([VITRINE, "serve", "--port", str(port), "--log-level", "warning"], env=env)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{endpoint}/health", timeout=1).status_code == 200:
                wait_quiet(server.pid)
                return server, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the hub on {endpoint} did not answer")
