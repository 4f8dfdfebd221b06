"""The Models page: search and list models, then one model's card, files, weights, versions and live demo."""

from __future__ import annotations

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
    siblings = raw.get("siblings") or []
    cols = st.columns(3)
    cols[0].metric("Commit", str(raw.get("sha") or "")[:10])
    cols[1].metric("Files", len(siblings))
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
        tree = attempt(lambda: [{"path": f.path, "size": getattr(f, "size", None), "lfs": bool(getattr(f, "lfs", None))}
                                for f in hub.api.list_repo_tree(repo_id, revision=revision, recursive=True)
                                if hasattr(f, "size")])
        if tree is not None:
            paged_table(sorted(tree, key=lambda f: f["path"]), key="model_files_page")
    with weights:
        show_weights(hub, repo_id, revision, bool(raw.get("safetensors")))
    with history:
        show_versions(hub, repo_id, revision)
    with talk:
        show_discussions(hub, repo_id)
    with demo:
        url = f"{hub.endpoint}/spaces/{repo_id}/revision/{raw.get('sha')}/"
        st.link_button("Open the live demo", url)
        if st.toggle("Embed the demo here", key="model_embed"):
            components.iframe(url, height=640, scrolling=True)


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
