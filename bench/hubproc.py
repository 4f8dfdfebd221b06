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


def start_hub(home: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a hub on `home` with admin `token`; returns the process and its URL once it answers /health."""
    port = free_port()
    env = {**os.environ, "VITRINE_HOME": str(home), "VITRINE_ADMIN_TOKEN": token}
    server = subprocess.Popen([VITRINE, "serve", "--port", str(port), "--log-level", "warning"], env=env)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{endpoint}/health", timeout=1).status_code == 200:
                return server, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the hub on {endpoint} did not answer")
