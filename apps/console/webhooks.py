"""The Webhooks page: your webhooks (and your organisations'), added, removed, their delivery log, and replays."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from apps.console import webhook_client
from apps.console.common import Hub, attempt

KINDS = ["repo.content", "repo.refs", "alias.moved", "promotion.refused", "evaluation.finished", "drift.detected"]
TITLE = "Webhooks"


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _target(hook: dict[str, Any]) -> str:
    target = hook["target"]
    return (f"{target['repoType']}s/{target['repo']}" if target["type"] == "repo"
            else f"namespace {target['namespace']}")


def _add_form(hub: Hub) -> None:
    with st.form("webhook_new"):
        url = st.text_input("URL", key="webhook_url", placeholder="https://ci.example.com/hooks/vitrine")
        kind = st.radio("Watch", ["A repo", "A namespace"], horizontal=True, key="webhook_target_kind")
        cols = st.columns(2)
        target = cols[0].text_input("Repo (owner/name) or namespace", key="webhook_target")
        repo_type = cols[1].selectbox("Repo type", ["model", "dataset", "space"], key="webhook_repo_type")
        chosen = st.multiselect("Events", KINDS, default=["repo.content"], key="webhook_events")
        secret = st.text_input("Secret (signs each body: X-Webhook-Signature)", type="password",
                               key="webhook_secret")
        owner = st.text_input("Owner (an organisation you administer; empty: you)", key="webhook_owner")
        if st.form_submit_button("Add webhook"):
            repo = target.strip() if kind == "A repo" else None
            namespace = target.strip() if kind == "A namespace" else None
            made = attempt(lambda: webhook_client.add_webhook(
                hub.client, url=url.strip(), secret=secret, events=list(chosen), repo=repo, repo_type=str(repo_type),
                namespace=namespace, owner=owner.strip() or None))
            if made is not None:
                st.success(f"Webhook {made['id']} added on {_target(made)}.")


def _deliveries(hub: Hub, hook: dict[str, Any]) -> None:
    log = attempt(lambda: webhook_client.deliveries(hub.client, int(hook["id"])))
    if log is None:
        return
    if not log:
        st.caption("No deliveries yet: they appear here as soon as a watched event happens.")
        return
    st.dataframe([{"id": d["id"], "event": d["event"], "status": d["status"], "attempts": d["attempts"],
                   "last code": d["lastStatusCode"], "last error": d["lastError"] or "",
                   "created": _when(d["createdAt"]), "finished": _when(d["finishedAt"]),
                   "replay of": d["replayOf"] or ""} for d in log], width="stretch")
    replayable = {f"{d['id']} ({d['event']}, {d['status']})": d["id"] for d in log if d["payload"] is not None}
    chosen = st.selectbox("Delivery to replay", list(replayable), key=f"webhook_replay_pick_{hook['id']}")
    if st.button("Replay", key=f"webhook_replay_{hook['id']}", disabled=not chosen):
        made = attempt(lambda: webhook_client.replay(hub.client, int(hook["id"]), int(replayable[str(chosen)])))
        if made is not None:
            st.success(f"Queued delivery {made['id']}.")


def render(hub: Hub) -> None:
    """Render the page."""
    st.header(TITLE)
    if hub.token is None:
        st.info("Sign in with a token in the sidebar to manage webhooks.")
        return
    _add_form(hub)
    mine = attempt(lambda: webhook_client.webhooks(hub.client))
    if mine is None:
        return
    if not mine:
        st.info("No webhooks yet: add one above.")
        return
    st.dataframe([{"id": h["id"], "owner": h["owner"], "target": _target(h), "events": ", ".join(h["events"]),
                   "url": h["url"], "active": h["active"], "created": _when(h["createdAt"])} for h in mine],
                 width="stretch")
    labels = {f"{h['id']}: {_target(h)} -> {h['url']}": h for h in mine}
    chosen = st.selectbox("Webhook", list(labels), key="webhook_pick")
    if not chosen:
        return
    hook = labels[str(chosen)]
    st.subheader(f"Deliveries of webhook {hook['id']}")
    _deliveries(hub, hook)
    if st.button("Remove this webhook", key="webhook_remove") and attempt(
            lambda: webhook_client.remove_webhook(hub.client, int(hook["id"]))) is not None:
        st.rerun()
