"""The Admin page: users and organisations, organisation membership, and how the hub is deployed (admins only)."""

from __future__ import annotations

import streamlit as st

from apps.console.common import Hub, attempt


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Accounts")
    if hub.token is None:
        st.info("Sign in with an admin token to manage users and organisations.")
        return
    accounts = attempt(lambda: dict(hub.client.get("/api/vitrine/admin/accounts")))
    if accounts is None:
        return
    st.subheader("Users")
    st.dataframe([{"user": u["name"], "admin": u["isAdmin"],
                   "organisations": ", ".join(f"{o['name']} ({o['role']})" for o in u["orgs"])}
                  for u in accounts["users"]], width="stretch")
    st.subheader("Organisations")
    st.dataframe([{"organisation": o["name"], "members": ", ".join(f"{m['name']} ({m['role']})" for m in o["members"])}
                  for o in accounts["orgs"]], width="stretch")
    st.subheader("Membership")
    with st.form("member_form"):
        cols = st.columns(3)
        org = cols[0].text_input("Organisation", key="member_org")
        user = cols[1].selectbox("User", [u["name"] for u in accounts["users"]], key="member_user")
        role = cols[2].selectbox("Role", ["read", "write", "admin"], key="member_role")
        add, remove = st.columns(2)
        path = f"/api/vitrine/admin/orgs/{org}/members/{user}"
        if add.form_submit_button("Add or change") and attempt(
                lambda: hub.client.call("PUT", path, body={"role": role})) is not None:
            st.session_state["member_done"] = f"{user} is now {role} in {org}."
            st.rerun()
        if remove.form_submit_button("Remove") and attempt(lambda: hub.client.call("DELETE", path)) is not None:
            st.session_state["member_done"] = f"{user} left {org}."
            st.rerun()
    if st.session_state.get("member_done"):
        st.success(st.session_state.pop("member_done"))
    _deployment(hub)


def _deployment(hub: Hub) -> None:
    """The replica that answered, its database and schema, its storage, and the job queue all replicas share."""
    found = attempt(lambda: dict(hub.client.get("/api/vitrine/admin/deployment")))
    if found is None:
        return
    st.header("Deployment")
    database, storage, queue = found["database"], found["storage"], found["jobs"]
    cols = st.columns(4)
    cols[0].metric("Database", database["dialect"])
    cols[1].metric("Schema", "at head" if database["atHead"] else "behind")
    cols[2].metric("Storage", storage["kind"])
    cols[3].metric("Jobs running", queue["counts"]["running"])
    st.caption(f"Answered by replica `{found['replica']['id']}` (vitrine {found['replica']['version']}). "
               f"Database `{database['url']}`; blobs in `{storage['url']}`"
               + (f" at `{storage['endpoint']}`" if storage["endpoint"] else "")
               + f"; presigned transfers: {storage['presign']}; schema revision {database['revision']}.")
    if not database["atHead"]:
        st.warning(f"Schema at {database['revision']}, head is {database['head']}: run `vitrine db upgrade`.")
    st.dataframe([{"status": status, "jobs": n} for status, n in queue["counts"].items()], width="stretch")
    if queue["running"]:
        st.subheader("Running jobs, by replica")
        st.dataframe([{"job": j["id"], "kind": j["kind"], "replica": j["claimedBy"], "done": j["done"],
                       "total": j["total"], "heartbeat (s ago)": j["heartbeatAgeS"]} for j in queue["running"]],
                     width="stretch")
