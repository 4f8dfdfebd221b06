"""The Streamlit console: sign in, then Models, Compare, Datasets, Evaluate, Promote, Endpoints and Tokens, over HTTP."""

from __future__ import annotations

import os

import httpx
import streamlit as st
from huggingface_hub import HfApi

from apps.console import admin, compare, datasets, endpoints, evaluate, models, promote, tokens, webhooks
from apps.console.client import VitrineClient
from apps.console.common import Hub, explain, query
from registry.settings import Settings

# The same settings object as the hub and the CLI; the console reaches the hub only over HTTP.
SETTINGS = Settings.from_env()
ENDPOINT = (SETTINGS.console_hub_url or os.environ.get("HF_ENDPOINT")
            or f"http://{SETTINGS.host}:{SETTINGS.port}").rstrip("/")
TOKEN = SETTINGS.console_token or os.environ.get("HF_TOKEN") or None
PAGES = ["Models", "Compare", "Datasets", "Evaluate", "Promote", "Endpoints", "Webhooks", "Tokens", "Admin"]


def main() -> None:
    """Render the console: sign-in in the sidebar, then the page chosen there (or in the URL's `?page=`)."""
    st.set_page_config(page_title="Vitrine", layout="wide")
    st.title("Vitrine")
    try:
        httpx.get(f"{ENDPOINT}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:  # say so at once rather than after every client's retries
        st.error(explain(exc))
        return
    hub = sign_in()
    wanted = query("page")
    page = st.sidebar.radio("Page", PAGES, index=PAGES.index(wanted) if wanted in PAGES else 0, key="page")
    try:
        render(hub, str(page))
    except Exception as exc:  # noqa: BLE001  # the last line of defence: a readable message with a next step, never a traceback
        st.error(explain(exc))


def render(hub: Hub, page: str) -> None:
    """Render one page."""
    if page == "Evaluate":
        evaluate.render(hub.api, hub.client)
    elif page == "Promote":
        promote.render(hub)
    elif page == "Endpoints":
        endpoints.render(hub)
    elif page == "Webhooks":
        webhooks.render(hub)
    elif page == "Compare":
        compare.render(hub)
    elif page == "Admin":
        admin.render(hub)
    elif page == "Tokens":
        tokens.render(hub)
    elif page == "Datasets":
        datasets.render(hub, max_upload_mb=SETTINGS.console_max_upload_mb)
    else:
        models.render(hub)


def sign_in() -> Hub:
    """The token box (kept in this browser session only) and who the token is, with what it may see."""
    if "token" not in st.session_state:
        st.session_state["token"] = TOKEN or ""
    token = st.sidebar.text_input("Token", type="password", key="token",
                                  help="A Vitrine token (`vitrine token create`); empty: public repos only.") or None
    hub = Hub(ENDPOINT, token, HfApi(endpoint=ENDPOINT, token=token or False), VitrineClient(ENDPOINT, token))
    st.caption(f"Hub: {ENDPOINT}")
    if token is None:
        st.sidebar.info("Anonymous: you see public repos only.")
        return hub
    try:
        me = hub.client.whoami() or {}
    except Exception as exc:  # noqa: BLE001  # a wrong token must not crash the console
        st.sidebar.error(explain(exc))
        return Hub(ENDPOINT, None, HfApi(endpoint=ENDPOINT, token=False), VitrineClient(ENDPOINT, None))
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role", "?")
    orgs = ", ".join(f"{o['name']} ({o['roleInOrg']})" for o in me.get("orgs") or []) or "none"
    st.sidebar.success(f"Signed in as **{me.get('name')}** ({role} token). You see public repos, "
                       f"your own and those of your organisations: {orgs}.")
    return hub


main()
