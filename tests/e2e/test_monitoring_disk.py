"""A full disk under the blob store stops the prediction log, says so in `/ready` and the metrics, and fails no request.

The store lives on a small tmpfs of its own (mounting one needs root; the test is skipped where that is refused).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import start_server


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "blobs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_logging_and_nothing_else(tmp_path: Path, small_disk: Path) -> None:
    server = start_server(tmp_path / "home", VITRINE_STORAGE_URL=f"file://{small_disk}",
                          VITRINE_PREDICTION_LOG_ROLL_S="1")
    try:
        auth = {"authorization": f"Bearer {server.admin_token}"}
        api = HfApi(endpoint=server.url, token=server.admin_token)
        commit = push_task_model(api, "disk/classifier", "text-classification", tmp_path / "model", seed=0)
        assert httpx.put(f"{server.url}/api/models/disk/classifier/aliases/production", json={"revision": commit},
                         headers=auth).status_code == 200
        url = f"{server.url}/endpoints/disk/classifier"
        deadline = time.time() + 120
        while httpx.get(f"{url}/ready").status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
        assert httpx.post(url, json={"inputs": "before the disk fills"}).status_code == 200
        # Fill the disk to the last byte.
        fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        answers = [httpx.post(url, json={"inputs": f"review {i}"}, timeout=60) for i in range(20)]
        assert [a.status_code for a in answers] == [200] * 20 and {a.headers["x-model-commit"] for a in answers} == {
            commit}
        deadline = time.time() + 30
        while time.time() < deadline:
            log = httpx.get(f"{url}/ready").json()["log"]
            if not log["healthy"]:
                break
            time.sleep(0.3)
        assert not log["healthy"] and "full" in log["error"] and log["dropped"] > 0, log
        metrics = httpx.get(f"{url}/metrics").text
        assert "vitrine_endpoint_log_healthy 0.0" in metrics
        assert httpx.post(url, json={"inputs": "still answered"}).status_code == 200
    finally:
        server.stop()
