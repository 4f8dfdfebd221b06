"""Run Gradio demos on loopback ports for the tests: in-process, or a bundle's app.py as its own process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import gradio as gr

STARTUP_TIMEOUT_S = 120


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(demo: gr.Blocks) -> Iterator[str]:
    """Launch `demo` on a free loopback port, yield its URL, close it afterwards."""
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextmanager
def running_app_py(folder: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run `python app.py` in `folder` (as Spaces does) on a free port; yield its URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    full_env = {**os.environ, **(env or {}), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    log = folder / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=folder, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app.py exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"app.py did not answer within {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")
