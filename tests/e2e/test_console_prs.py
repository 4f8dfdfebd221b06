"""The Models page's pull requests panel, driven by AppTest against the real hub: open PRs and discussions, the
diff, one-click merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "console" / "app.py")
MODEL = "prpanel/reviewed"


def _console(hub: Server, monkeypatch: pytest.MonkeyPatch, token: str, **params: str) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VITRINE_ENDPOINT", hub.url)
    monkeypatch.setenv("VITRINE_TOKEN", token)
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_pr_panel_shows_diff_and_merges(hub: Server, admin_api: HfApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A contributor's PR and a discussion show with the diff; a writer merges with one click."""
    admin_api.create_repo(MODEL, exist_ok=True)
    admin_api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="notes.txt", repo_id=MODEL)
    contributor = HfApi(endpoint=hub.url, token=hub.token("pr-contributor", "write"))
    pr = contributor.upload_file(path_or_fileobj=b"v2 from a contributor\n", path_in_repo="notes.txt",
                                 repo_id=MODEL, create_pr=True, commit_message="Better notes")
    assert pr.pr_num is not None
    contributor.create_discussion(MODEL, title="Question about the notes")
    at = _console(hub, monkeypatch, hub.admin_token, repo=MODEL)
    assert any("**1 open pull request(s)** · **1 open discussion(s)**" in m.value for m in at.markdown)
    titles = [e.label for e in at.expander]
    assert any(f"PR #{pr.pr_num}: Better notes" in t for t in titles), titles
    assert any("Discussion" in t and "Question about the notes" in t for t in titles), titles
    diffs = [c.value for c in at.code]
    assert any("+v2 from a contributor" in d and "-v1" in d for d in diffs), diffs
    at.button(key=f"merge_pr_{pr.pr_num}").click().run()
    assert not at.exception, at.exception
    assert any(f"Merged #{pr.pr_num}" in s.value for s in at.success)
    assert admin_api.hf_hub_download(MODEL, "notes.txt") and \
        Path(admin_api.hf_hub_download(MODEL, "notes.txt")).read_bytes() == b"v2 from a contributor\n"
    assert admin_api.get_discussion_details(MODEL, pr.pr_num).status == "merged"
    # The merged PR leaves the panel; the open discussion stays.
    at = _console(hub, monkeypatch, hub.admin_token, repo=MODEL)
    assert any("**0 open pull request(s)** · **1 open discussion(s)**" in m.value for m in at.markdown)


def test_pr_panel_merge_refused_to_readers(hub: Server, admin_api: HfApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader sees the PR, and the merge button answers the hub's refusal instead of merging."""
    repo = "prpanel/refused"
    admin_api.create_repo(repo, exist_ok=True)
    contributor = HfApi(endpoint=hub.url, token=hub.token("pr-contributor2", "write"))
    pr = contributor.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo, create_pr=True)
    reader = hub.token("pr-reader", "read")
    at = _console(hub, monkeypatch, reader, repo=repo)
    at.button(key=f"merge_pr_{pr.pr_num}").click().run()
    assert not at.exception, at.exception
    assert not any("Merged" in s.value for s in at.success)
    assert any("403" in e.value or "write" in e.value.lower() or "permission" in e.value.lower() for e in at.error), \
        [e.value for e in at.error]
    assert admin_api.get_discussion_details(repo, pr.pr_num).status == "open"
