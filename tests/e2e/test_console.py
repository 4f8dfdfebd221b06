"""The Streamlit console, driven by AppTest against the real hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

ROOT = Path(__file__).resolve().parents[2]


def test_console_lists_repos_and_history(hub, admin_api: HfApi, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    admin_api.create_repo("viewers/shown-model", exist_ok=True)
    admin_api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="viewers/shown-model",
                          commit_message="add config")
    monkeypatch.setenv("VITRINE_ENDPOINT", hub.url)
    monkeypatch.setenv("VITRINE_TOKEN", hub.admin_token)
    at = AppTest.from_file(str(ROOT / "apps" / "console" / "app.py"), default_timeout=60).run()
    assert not at.exception
    at.sidebar.selectbox[0].set_value("viewers/shown-model").run()
    assert at.header[0].value == "viewers/shown-model"
    files = at.dataframe[0].value
    assert sorted(files["path"]) == [".gitattributes", "config.json"]
    assert list(at.dataframe[1].value["title"]) == ["add config", "initial commit"]
