"""The Streamlit console, driven by AppTest against the real hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

ROOT = Path(__file__).resolve().parents[2]


def test_console_lists_repos_and_history(hub, admin_api: HfApi, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    admin_api.create_repo("viewers/shown-model", exist_ok=True)
    config = b'{"architectures": ["BertForSequenceClassification"], "model_type": "bert", ' \
             b'"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}'
    admin_api.upload_file(path_or_fileobj=config, path_in_repo="config.json", repo_id="viewers/shown-model",
                          commit_message="add config")
    monkeypatch.setenv("VITRINE_ENDPOINT", hub.url)
    monkeypatch.setenv("VITRINE_TOKEN", hub.admin_token)
    at = AppTest.from_file(str(ROOT / "apps" / "console" / "app.py"), default_timeout=60).run()
    assert not at.exception
    at.selectbox(key="model_repo").set_value("viewers/shown-model").run()
    assert at.header[0].value == "viewers/shown-model"
    files = at.dataframe[0].value
    assert sorted(files["path"]) == [".gitattributes", "config.json"]
    assert list(at.dataframe[1].value["title"]) == ["add config", "initial commit"]
    facts = [m.value for m in at.markdown if "**Task**" in m.value]
    assert facts == ["**Task** `text-classification` · **Library** `transformers` · "
                     "**Architecture** `BertForSequenceClassification` · **Parameters** —"]
    assert [c.value for c in at.caption if c.value.startswith("Labels")] == ["Labels: NEGATIVE, POSITIVE"]


def test_console_flags_unsafe_pickles(monkeypatch, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    import pickle

    from streamlit.testing.v1 import AppTest

    from tests.conftest import start_server
    from tests.hub.test_model_understanding import Exploit

    server = start_server(tmp_path_factory.mktemp("console-lenient"), VITRINE_ALLOW_UNSAFE_PICKLES="1")
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        api.create_repo("acme/risky-console")
        api.upload_file(path_or_fileobj=pickle.dumps(Exploit()), path_in_repo="model.pkl", repo_id="acme/risky-console")
        monkeypatch.setenv("VITRINE_ENDPOINT", server.url)
        monkeypatch.setenv("VITRINE_TOKEN", server.admin_token)
        at = AppTest.from_file(str(ROOT / "apps" / "console" / "app.py"), default_timeout=60).run()
        assert not at.exception
        assert [e.value for e in at.error] == [
            "Unsafe pickle model.pkl: imports posix.system. Do not load it with torch.load; ask for safetensors."]
    finally:
        server.stop()
