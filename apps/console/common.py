"""What every console page shares: the signed-in hub handle, readable errors, revisions and paged tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import streamlit as st
from huggingface_hub import HfApi

from apps.console.client import HubError, VitrineClient

T = TypeVar("T")
PAGE_ROWS = 50


@dataclass(frozen=True)
class Hub:
    """The hub as the signed-in token sees it: the stock client and Vitrine's own routes."""

    endpoint: str
    token: str | None
    api: HfApi
    client: VitrineClient


def explain(exc: Exception) -> str:
    """A hub or network error as one readable line with a next step."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    status = getattr(exc, "status", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return f"{text} — check the token in the sidebar (or sign out to browse public repos)."
    if status == 403:
        return f"{text} — this token may not do that; ask an owner of the repo or its organisation for write access."
    if status == 404:
        return f"{text} — it does not exist, or this token may not see it; sign in with a token that may."
    if "connect" in text.lower() or "timed out" in text.lower():
        return f"Cannot reach the hub: {text} — is `vitrine serve` running at the configured VITRINE_ENDPOINT?"
    return f"{text} — fix the request above, or check the hub's log."


def attempt(fn: Callable[[], T]) -> T | None:
    """Run a hub call; on failure show the readable error and return None."""
    try:
        return fn()
    except (HubError, httpx.HTTPError, OSError, ValueError, RuntimeError) as exc:  # HfHubHTTPError is an OSError
        st.error(explain(exc))
        return None


def revisions(hub: Hub, repo_id: str, repo_type: str = "model") -> list[str]:
    """Branches then tags of a repo."""
    refs = hub.api.list_repo_refs(repo_id, repo_type=repo_type)
    return [b.name for b in refs.branches] + [t.name for t in refs.tags]


def pick(label: str, options: list[str], *, key: str, default: str | None = None) -> str:
    """A selectbox that starts on `default` (from the URL) when it is one of the options."""
    index = options.index(default) if default in options else 0
    return str(st.selectbox(label, options, index=index, key=key))


def paged_table(rows: list[dict[str, Any]], *, key: str, size: int = PAGE_ROWS) -> None:
    """Show `rows` a page at a time, with a page number input when there is more than one page."""
    pages = max(1, -(-len(rows) // size))
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages}, {len(rows)} rows)", 1, pages, 1, key=key))
    st.dataframe(rows[(page - 1) * size: page * size], width="stretch")


def query(name: str) -> str | None:
    """A console URL query parameter (`?page=Models&repo=acme/x&revision=v2`)."""
    value = st.query_params.get(name)
    return str(value) if value else None


def pick_revision(hub: Hub, repo_id: str, repo_type: str, *, key: str) -> str | None:
    """A revision picker for `repo_id` (its branches and tags, plus a commit id a hub URL named); None on error."""
    revs = attempt(lambda: revisions(hub, repo_id, repo_type))
    if not revs:
        return None
    wanted = query("revision")
    if wanted and wanted not in revs:
        revs = [*revs, wanted]  # a commit id from a hub URL (`/commit/<sha>`, `/tree/<sha>`)
    return pick("Revision", revs, key=key, default=wanted)
