"""The Tokens page: your own tokens, listed, created with a role (shown once) and revoked."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from apps.console.common import Hub, attempt


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Your tokens")
    if hub.token is None:
        st.info("Sign in with a token in the sidebar to manage your tokens (`vitrine token create` makes the first).")
        return
    with st.form("token_new"):
        name = st.text_input("Name", key="token_name")
        role = st.selectbox("Role", ["read", "write"], key="token_role")
        if st.form_submit_button("Create token"):
            made = attempt(lambda: hub.client.post("/api/vitrine/tokens", {"name": name, "role": role}))
            if made is not None:
                st.success(f"Token {made['name']} ({made['role']}) created. Copy it now: it is not shown again.")
                st.code(made["token"], language=None)
    mine = attempt(lambda: list(hub.client.get("/api/vitrine/tokens")))
    if mine is None:
        return
    st.dataframe([{"id": t["id"], "name": t["name"], "role": t["role"],
                   "created": dt.datetime.fromtimestamp(t["createdAt"], dt.UTC).strftime("%Y-%m-%d %H:%M")}
                  for t in mine], width="stretch")
    labels = {f"{t['name']} ({t['role']}, id {t['id']})": t["id"] for t in mine}
    chosen = st.selectbox("Token to revoke", list(labels), key="token_revoke_pick")
    if st.button("Revoke", key="token_revoke", disabled=not chosen) and attempt(
            lambda: hub.client.call("DELETE", f"/api/vitrine/tokens/{labels[str(chosen)]}")) is not None:
        st.rerun()
