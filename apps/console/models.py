"""The Models page: search and list models, then one model's card, files, weights, versions and live demo."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from apps.console.common import PAGE_ROWS, Hub, attempt, paged_table, pick, pick_revision, query


def render(hub: Hub) -> None:
    """Render the page."""
    st.sidebar.subheader("Search")
    search = st.sidebar.text_input("Search", query("search") or "", key="models_search") or None
    author = st.sidebar.text_input("Author", "", key="models_author") or None
    task = st.sidebar.text_input("Task (pipeline tag)", "", key="models_task")
    library = st.sidebar.text_input("Library", "", key="models_library")
    filters = [f for f in (task, library) if f] or None
    found = attempt(lambda: [m.id for m in hub.api.list_models(search=search, author=author, filter=filters,
                                                                 sort="last_modified", limit=500)])
    if found is None:
        return
    if not found:
        st.info("No models match. Push one with `hf upload <namespace>/<name> ./folder .` or widen the search.")
        return
    repo_id = pick("Model", found, key="model_repo", default=query("repo"))
    revision = pick_revision(hub, repo_id, "model", key="model_revision")
    if revision is None:
        return
    if query("path"):
        st.caption(f"Opened from the hub at file `{query('path')}`: it is in the Files tab.")
    show_model(hub, repo_id, revision)


def show_model(hub: Hub, repo_id: str, revision: str) -> None:
    """One model version: facts, card, files, weights, the timeline of versions, the live demo."""
    raw = attempt(lambda: hub.client.model_raw(repo_id, revision))
    if raw is None:
        return
    st.header(repo_id)
    cols = st.columns(3)
    cols[0].metric("Commit", str(raw.get("sha") or "")[:10])
    cols[1].metric("Files", f"{(raw.get('vitrine') or {}).get('fileCount', 0):,}")
    cols[2].metric("Revision", revision)
    show_facts(raw)
    card, files, weights, history, talk, demo = st.tabs(["Card", "Files", "Weights", "Versions",
                                                         "Pull requests", "Demo"])
    with card:
        rendered = attempt(lambda: hub.client.card(repo_id, revision))
        if rendered:
            if rendered.get("generated"):
                st.caption("No README.md in this version: the card the hub renders for it.")
            st.markdown(_strip_front_matter(str(rendered.get("card") or "")))
    with files:
        show_files(hub, repo_id, revision)
    with weights:
        show_weights(hub, repo_id, revision, bool(raw.get("safetensors")))
    with history:
        show_versions(hub, repo_id, revision)
    with talk:
        show_discussions(hub, repo_id)
    with demo:
        show_demo(hub, repo_id, str(raw.get("sha")), private=bool(raw.get("private")))


def show_demo(hub: Hub, repo_id: str, sha: str, *, private: bool) -> None:
    """The live demo of a version: a link and an embed; a private model's through a signed link, as the browser
    sends no token (the hub turns it into a cookie for that demo alone)."""
    url: str | None = f"{hub.endpoint}/spaces/{repo_id}/revision/{sha}/"
    if private:
        url = _signed_demo_url(hub, repo_id, sha)
        if url is None:
            return
        st.caption("A private model: the demo opens through a link signed for you, valid for a limited time. "
                   "Do not share it: whoever holds it sees the demo as you until it expires.")
    st.link_button("Open the live demo", url)
    if st.toggle("Embed the demo here", key="model_embed"):
        components.iframe(url, height=640, scrolling=True)


def _signed_demo_url(hub: Hub, repo_id: str, sha: str) -> str | None:
    # Kept while more than half its lifetime is left: a new link at every rerun would reload the embedded demo.
    links = st.session_state.setdefault("demo_links", {})
    key = (hub.token, repo_id, sha)
    cached = links.get(key)
    if cached is None or cached["expiresAt"] - time.time() < cached["lifetime"] / 2:
        link = attempt(lambda: hub.client.demo_link(repo_id, sha))
        if link is None:
            return None
        if not link.get("expiresAt"):  # anonymous: the hub answered the plain URL
            return str(link["url"])
        cached = links[key] = {"url": link["url"], "expiresAt": link["expiresAt"],
                               "lifetime": link["expiresAt"] - time.time()}
    return str(cached["url"])


def show_files(hub: Hub, repo_id: str, revision: str, *, repo_type: str = "model", key: str = "model_files") -> None:
    """The revision's files and folders one page at a time from the hub's tree listing, with next and previous."""
    # The cursors of the pages seen so far (None: the first), for this repo and revision only.
    state = st.session_state.get(key)
    if not isinstance(state, dict) or state.get("for") != [repo_type, repo_id, revision]:
        state = st.session_state[key] = {"for": [repo_type, repo_id, revision], "cursors": [None]}
    cursors: list[str | None] = state["cursors"]
    page = attempt(lambda: hub.client.tree_page(repo_id, repo_type=repo_type, revision=revision,
                                                cursor=cursors[-1], limit=PAGE_ROWS))
    if page is None:
        return
    entries, following = page
    first = (len(cursors) - 1) * PAGE_ROWS + 1
    st.dataframe([{"path": e["path"], "type": e["type"], "size": e.get("size"), "lfs": bool(e.get("lfs"))}
                  for e in entries], width="stretch")
    st.caption(f"Page {len(cursors)}: entries {first:,}–{first + len(entries) - 1:,}"
               + (", more on the next page." if following else "."))
    prev_col, next_col = st.columns(2)
    prev_col.button("Previous page", key=f"{key}_prev", disabled=len(cursors) == 1,
                    on_click=lambda: cursors.pop() if len(cursors) > 1 else None)
    next_col.button("Next page", key=f"{key}_next", disabled=following is None,
                    on_click=lambda: cursors.append(following))


def show_facts(raw: dict[str, Any]) -> None:
    """Task, labels, parameters and safety warnings of a model version, from the hub's raw repo info."""
    facts = raw.get("vitrine") or {}
    for unsafe in facts.get("unsafeFiles") or []:
        st.error(f"Unsafe pickle {unsafe['path']}: imports {', '.join(unsafe['unsafeGlobals'])}. "
                 "Do not load it with torch.load; ask for safetensors.")
    if facts.get("cardError"):
        st.warning(f"Model card metadata could not be read: {facts['cardError']}")
    params = (raw.get("safetensors") or {}).get("total")
    # Long names do not fit a metric tile; one line of text reads better.
    st.markdown(f"**Task** `{raw.get('pipeline_tag') or '—'}` · **Library** `{raw.get('library_name') or '—'}` · "
                f"**Architecture** `{facts.get('architecture') or '—'}` · "
                f"**Parameters** {f'{params:,}' if params else '—'}")
    if facts.get("labels"):
        st.caption("Labels: " + ", ".join(facts["labels"]))


def show_weights(hub: Hub, repo_id: str, revision: str, has_weights: bool) -> None:
    """Parameters by dtype and the tensor table of a version's safetensors."""
    if not has_weights:
        st.info("This version has no .safetensors weights to index.")
        return
    index = attempt(lambda: hub.client.weights(repo_id, revision))
    if index is None:
        return
    st.markdown(f"**{index['total']:,} parameters** in {len(index['files'])} file(s)")
    st.dataframe([{"dtype": d, "parameters": n} for d, n in index["parameters"].items()], width="stretch")
    paged_table([{"tensor": t["name"], "dtype": t["dtype"], "shape": "×".join(map(str, t["shape"])), "file": t["file"]}
                 for t in index["tensors"]], key="model_tensors_page")


def show_versions(hub: Hub, repo_id: str, revision: str) -> None:
    """Commits a page at a time, each with the branches and tags that point at it."""
    refs = attempt(lambda: hub.api.list_repo_refs(repo_id))
    if refs is None:
        return
    pointing: dict[str, list[str]] = {}
    for ref in [*refs.branches, *refs.tags]:
        kind = "branch" if ref in refs.branches else "tag"
        pointing.setdefault(ref.target_commit, []).append(f"{kind} {ref.name}")
    page = int(st.number_input("History page", min_value=1, value=1, key="model_history_page"))
    result = attempt(lambda: hub.client.commits(repo_id, revision=revision, page=page - 1, limit=PAGE_ROWS))
    if result is None:
        return
    commits, more = result
    st.dataframe([{"commit": c["id"][:10], "title": c["title"], "date": c["date"],
                   "refs": ", ".join(pointing.get(c["id"], []))} for c in commits], width="stretch")
    if more:
        st.caption(f"More history on page {page + 1}.")


def show_discussions(hub: Hub, repo_id: str) -> None:
    """The model's open pull requests and discussions; a PR with its diff and a one-click merge."""
    found = attempt(lambda: hub.client.discussions(repo_id))
    if found is None:
        return
    if not found:
        st.info("No open pull requests or discussions. Open one with `upload_file(..., create_pr=True)` or "
                "`hf discussions`.")
        return
    prs = [d for d in found if d["isPullRequest"]]
    talks = [d for d in found if not d["isPullRequest"]]
    st.markdown(f"**{len(prs)} open pull request(s)** · **{len(talks)} open discussion(s)**")
    for d in [*prs, *talks]:
        kind = "PR" if d["isPullRequest"] else "Discussion"
        with st.expander(f"{kind} #{d['num']}: {d['title']} — by {d['author']['name']}"):
            details = attempt(lambda: hub.client.discussion(repo_id, d["num"]))
            if details is None:
                continue
            for event in details.get("events") or []:
                data = event.get("data") or {}
                if event.get("type") == "comment" and not data.get("hidden"):
                    st.markdown(f"**{event['author']['name']}**: {(data.get('latest') or {}).get('raw', '')}")
            if not d["isPullRequest"]:
                continue
            target = str((details.get("changes") or {}).get("base", "")).removeprefix("refs/heads/")
            conflicts = details.get("filesWithConflicts") or []
            st.caption(f"Into `{target}`")
            st.code(details.get("diff") or "(no changes)", language="diff")
            if conflicts:
                st.warning("Conflicts with " + target + ": " + ", ".join(conflicts))
            elif st.button(f"Merge #{d['num']} into {target}", key=f"merge_pr_{d['num']}"):
                merged = attempt(lambda: hub.client.merge_pr(repo_id, d["num"]))
                if merged is not None:
                    st.success(f"Merged #{d['num']} as commit {str(merged.get('commitOid'))[:10]}.")


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4:].lstrip("\n")
    return text
