"""How the hub runs a demo in-process: the endpoint its model loads from, the token for private models."""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from registry import auth
from registry.names import BOT_USER
from registry.core import Registry
from registry.settings import Settings

if TYPE_CHECKING:
    import gradio as gr

FILE_TTL_S = 3600


def own_url(settings: Settings) -> str:
    """This hub's own base URL: the public one if configured, else its bind address."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def configure_loader(settings: Settings) -> tuple[str, bool]:
    """Point huggingface_hub (and so transformers) in this process at this hub, unless HF_ENDPOINT says otherwise.

    Returns:
        (endpoint demos load models from, whether that endpoint is this hub).
    """
    own = own_url(settings)
    configured = os.environ.get("HF_ENDPOINT", "").rstrip("/")
    # No Gradio usage analytics from a self-hosted hub, and its uploads and outputs under the hub's home.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.home / "gradio"))
    if configured:
        return configured, configured == own
    os.environ["HF_ENDPOINT"] = own
    if "huggingface_hub" in sys.modules:
        # huggingface_hub read HF_ENDPOINT when it was imported (the registry imports its card helpers).
        from urllib.parse import urlsplit

        from huggingface_hub import constants

        constants.ENDPOINT = own
        constants.HUGGINGFACE_CO_URL_TEMPLATE = own + "/{repo_id}/resolve/{revision}/{filename}"
        constants.HF_URL_HOSTS = constants.HF_URL_HOSTS | {urlsplit(own).hostname or ""}
    return own, True


def bot_token(reg: Registry) -> str:
    """The read-only token the hub loads private models' demos with (an admin that cannot write).

    Derived from the registry's secret, so every replica has the same one and restarts add no token.
    """
    digest = hmac.new(reg.secret, b"vitrine-bot:demo-loader", hashlib.sha256).hexdigest()
    token = f"hf_vitrinebot{digest[:40]}"
    auth.create_token(reg, BOT_USER, role="read", token=token, name=f"{BOT_USER} demo loader", is_admin=True)
    return token


def load_live_demo(app_py: str, module: str, token: str | None) -> tuple[gr.Blocks, FastAPI]:
    """Run a bundle's app.py as module `module` (its model loads through the hub) and wrap its demo in an app.

    Args:
        app_py: The rendered app.py.
        module: A module name unique to the demo.
        token: Token huggingface_hub sends while the model loads (for private models), or None.
    """
    import gradio as gr

    from apps.demo import load_demo

    with _hf_token(token):
        demo = load_demo(app_py, name=module)
    # A long-running hub must not keep every upload and output: drop them after an hour, and all of a
    # demo's files when it is closed.
    demo.delete_cache = (FILE_TTL_S, FILE_TTL_S)
    # Mounted at the root of its own app; SpaceHost.serve sets root_path so URLs carry /spaces/{owner}/{name}.
    app = gr.mount_gradio_app(FastAPI(), demo, path="", ssr_mode=False, mcp_server=False)
    return demo, app


@contextmanager
def _hf_token(token: str | None) -> Iterator[None]:
    # The rendered app.py passes no token (it must run unchanged on Spaces), so huggingface_hub reads
    # HF_TOKEN; builds run one at a time, so setting it around a build reaches that build only.
    if token is None:
        yield
        return
    previous = os.environ.get("HF_TOKEN")
    os.environ["HF_TOKEN"] = token
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = previous
