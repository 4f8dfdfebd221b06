"""How the hub runs a demo in-process: the one place that tells a demo where its model is.

A live demo never reaches the hub over HTTP: the model version's files are laid out as a folder of
links into the blob store (`registry.snapshots.snapshot_dir`), and the rendered app.py gets that
folder through its `MODEL_DIRS` global. So loading a private model needs no token, no process-wide
`HF_ENDPOINT` or `HF_TOKEN` is rewritten, and no second copy of the weights lands in a download cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from registry.predictors.base import LOAD_LOCK

if TYPE_CHECKING:
    import gradio as gr

FILE_TTL_S = 3600


def load_live_demo(app_py: str, module: str, model_dirs: dict[str, Path]) -> tuple[gr.Blocks, FastAPI]:
    """Run a bundle's app.py as module `module`, its model read from `model_dirs`, and wrap its demo in an app.

    Args:
        app_py: The rendered app.py.
        module: A module name unique to the demo.
        model_dirs: Commit -> folder of that version's files (see `model_dir`).
    """
    import gradio as gr

    from apps.demo import load_demo

    with LOAD_LOCK:  # the demo's app.py loads its pipeline as it runs; evaluations and endpoints load beside it
        demo = load_demo(app_py, name=module, preset={"MODEL_DIRS": {sha: str(p) for sha, p in model_dirs.items()}})
    # A long-running hub must not keep every upload and output: drop them after an hour, and all of a
    # demo's files when it is closed.
    demo.delete_cache = (FILE_TTL_S, FILE_TTL_S)
    # Mounted at the root of its own app; SpaceHost.serve sets root_path so URLs carry /spaces/{owner}/{name}.
    app = gr.mount_gradio_app(FastAPI(), demo, path="", ssr_mode=False, mcp_server=False)
    return demo, app
