"""A rendered app.py runs on its own (`python app.py`, as on Spaces) and mounted under a path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gradio_client import Client

from apps.demo import DemoSpec, render_bundle
from tests.apps.checks import assert_label_matches
from tests.apps.servers import free_port, running_app_py


def test_app_py_runs_standalone(task_models: dict[str, Path], tmp_path: Path) -> None:
    from transformers import pipeline

    model = str(task_models["text-classification"])
    for name, text in render_bundle(DemoSpec(repo_id=model, task="text-classification")).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with running_app_py(tmp_path) as url:
        text = "I love this movie"
        result = Client(url, verbose=False).predict(text, api_name="/predict")
        assert_label_matches(result, pipeline("text-classification", model=model)(text, top_k=None))


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
