"""A rendered app.py runs on its own (`python app.py`, as on Spaces) and mounted under a path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from gradio_client import Client

from apps.demo import DemoSpec, render_bundle
from tests.apps.checks import assert_label_matches
from tests.apps.servers import free_port

STARTUP_TIMEOUT_S = 120


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


def test_app_py_runs_standalone(task_models: dict[str, Path], tmp_path: Path) -> None:
    from transformers import pipeline

    model = str(task_models["text-classification"])
    for name, text in render_bundle(DemoSpec(repo_id=model, task="text-classification")).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(url, process, log)
        text = "I love this movie"
        result = Client(url, verbose=False).predict(text, api_name="/predict")
        assert_label_matches(result, pipeline("text-classification", model=model)(text, top_k=None))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_loaded_demo_answers_when_mounted_under_a_path(task_models: dict[str, Path]) -> None:
    """The hub mounts `load_demo`'s object at /spaces/{owner}/{name}; clients find it there."""
    import fastapi
    import gradio as gr
    import uvicorn
    from transformers import pipeline

    from apps.demo import load_demo

    model = str(task_models["text-classification"])
    bundle = render_bundle(DemoSpec(repo_id=model, task="text-classification"))
    demo = load_demo(bundle["app.py"], name="vitrine_test_mounted")
    app = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/spaces/acme/sentiment")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.config.port}/spaces/acme/sentiment/"
        text = "I love this movie"
        result = Client(url, verbose=False).predict(text, api_name="/predict")
        assert_label_matches(result, pipeline("text-classification", model=model)(text, top_k=None))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
