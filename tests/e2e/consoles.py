"""A real console (`streamlit run apps/console/app.py`) on a loopback port, for the browser tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT

STREAMLIT = str(Path(sys.executable).parent / "streamlit")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60) -> None:
    """Wait until the console at `url` answers its health check; fail (with `log`) if `proc` exits or time runs out."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.time() < deadline, log.read_text() if log is not None else url
        time.sleep(0.2)


@contextmanager
def running_console(hub_url: str, port: int, log_dir: Path) -> Iterator[str]:
    """Start the console on `port` against the hub at `hub_url`, yield its URL once healthy, stop it after."""
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITRINE_", "HF_TOKEN"))}
    env.update(VITRINE_ENDPOINT=hub_url, PYTHONPATH=str(ROOT))
    with open(log_dir / "console.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([STREAMLIT, "run", str(ROOT / "apps" / "console" / "app.py"), "--server.headless",
                                 "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(url, proc, log_dir / "console.log")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def console_app(hub_url: str, monkeypatch: Any, token: str | None, **params: str) -> Any:
    """One AppTest run of the console against `hub_url` as `token` (none: signed out), with URL query `params`."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VITRINE_ENDPOINT", hub_url)
    if token:
        monkeypatch.setenv("VITRINE_TOKEN", token)
    else:
        monkeypatch.delenv("VITRINE_TOKEN", raising=False)
    at = AppTest.from_file(str(ROOT / "apps" / "console" / "app.py"), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at
