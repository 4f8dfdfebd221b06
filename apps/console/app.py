"""The Streamlit console: browse the hub's models and datasets through its public HTTP API."""

from __future__ import annotations

import os

import httpx
import streamlit as st
from huggingface_hub import HfApi

from apps.console import evaluate
from apps.console.client import VitrineClient
from registry.settings import Settings

# The same settings object as the hub and the CLI; the console reaches the hub only over HTTP.
SETTINGS = Settings.from_env()
ENDPOINT = (SETTINGS.console_hub_url or os.environ.get("HF_ENDPOINT")
            or f"http://{SETTINGS.host}:{SETTINGS.port}").rstrip("/")
TOKEN = SETTINGS.console_token or os.environ.get("HF_TOKEN") or None


def main() -> None:
    """Render the console: the page chosen in the sidebar."""
    st.set_page_config(page_title="Vitrine", layout="wide")
    st.title("Vitrine")
    st.caption(f"Hub: {ENDPOINT}")
    api = HfApi(endpoint=ENDPOINT, token=TOKEN)
    page = st.sidebar.radio("Page", ["Browse", "Evaluate"], key="page")
    if page == "Evaluate":
        evaluate.render(api, VitrineClient(ENDPOINT, TOKEN))
        return
    browse(api)


def browse(api: HfApi) -> None:
    """The Browse page: a repo's files, history and, for models, what the hub knows of them."""
    kind = st.sidebar.radio("Browse", ["Models", "Datasets", "Spaces"])
    lister = {"Models": api.list_models, "Datasets": api.list_datasets, "Spaces": api.list_spaces}[kind]
    repo_type = {"Models": "model", "Datasets": "dataset", "Spaces": "space"}[kind]
    try:
        repos = [r.id for r in lister()]
    except Exception as exc:  # the hub is down or the token is wrong: say so, do not crash
        st.error(f"Cannot reach the hub at {ENDPOINT}: {exc}")
        return
    if not repos:
        st.info(f"No {kind.lower()} yet. Push one with `hf upload <namespace>/<name> ./folder .`")
        return
    repo_id = st.sidebar.selectbox("Repo", repos)
    refs = api.list_repo_refs(repo_id, repo_type=repo_type)
    revisions = [b.name for b in refs.branches] + [t.name for t in refs.tags]
    revision = st.sidebar.selectbox("Revision", revisions)
    info = api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True)
    st.header(repo_id)
    cols = st.columns(3)
    cols[0].metric("Commit", (info.sha or "")[:10])
    cols[1].metric("Files", len(info.siblings or []))
    cols[2].metric("Size", _human_bytes(sum(s.size or 0 for s in info.siblings or [])))
    if repo_type == "model":
        show_model_facts(repo_id, revision)
        st.link_button("Open the live demo", f"{ENDPOINT}/spaces/{repo_id}/revision/{info.sha}/")
    st.subheader("Files")
    st.dataframe(
        [{"path": s.rfilename, "size": s.size, "lfs": bool(s.lfs)} for s in info.siblings or []],
        use_container_width=True,
    )
    st.subheader("History")
    st.dataframe(
        [{"commit": c.commit_id[:10], "title": c.title, "date": c.created_at}
         for c in api.list_repo_commits(repo_id, repo_type=repo_type, revision=revision)],
        use_container_width=True,
    )


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def show_model_facts(repo_id: str, revision: str) -> None:
    """Task, labels, parameters and safety warnings of a model version, from the hub's raw repo info."""
    headers = {"authorization": f"Bearer {TOKEN}"} if TOKEN else {}
    raw = httpx.get(f"{ENDPOINT}/api/models/{repo_id}/revision/{revision}", headers=headers, timeout=30).json()
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


main()
