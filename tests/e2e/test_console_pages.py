"""Every console page, driven by AppTest against the real hub with tokens of different rights."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.e2e.consoles import console_app
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "console" / "app.py")
MODEL, DATASET, HIDDEN = "pages/classifier", "pages/reviews", "pages-secret/hidden"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _evaluate(hub: Server, revision: str) -> dict[str, Any]:
    body = {"model": MODEL, "revision": revision, "dataset": DATASET, "split": "test",
            "mapping": {"text": "text", "label": "label"}, "slices": ["lang"]}
    job = httpx.post(f"{hub.url}/api/vitrine/evals", json=body, headers=_bearer(hub.admin_token), timeout=60).json()
    deadline = time.time() + 300
    while job["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.3)
        job = httpx.get(f"{hub.url}/api/vitrine/evals/{job['id']}", headers=_bearer(hub.admin_token)).json()
    assert job["status"] == "succeeded", job
    return dict(job)


@pytest.fixture(scope="module")
def site(hub: Server, admin_api: HfApi, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A public model in two versions (tag v1, main) evaluated on a public dataset, and a private model."""
    tmp = tmp_path_factory.mktemp("console-pages")
    v1 = push_task_model(admin_api, MODEL, "text-classification", tmp / "v1", seed=0)
    admin_api.create_tag(MODEL, tag="v1", revision=v1)
    v2 = push_task_model(admin_api, MODEL, "text-classification", tmp / "v2", seed=5)
    admin_api.create_repo(DATASET, repo_type="dataset", exist_ok=True)
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["good food", "awful service", "the movie was fine", "i hate it"] * 30,
                             "label": ["positive", "negative", "neutral", "negative"] * 30,
                             "lang": ["en", "de"] * 60}), buf)
    admin_api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                          repo_id=DATASET, repo_type="dataset", commit_message="test split")
    push_task_model(admin_api, HIDDEN, "text-classification", tmp / "hidden", private=True)
    jobs = {"v1": _evaluate(hub, "v1"), "main": _evaluate(hub, "main")}
    return {"v1": v1, "v2": v2, "jobs": jobs,
            "insider": hub.token("pages-insider", "read", org="pages-secret"),
            "outsider": hub.token("pages-outsider", "read")}


def _console(hub: Server, monkeypatch: pytest.MonkeyPatch, token: str | None, **params: str) -> Any:
    return console_app(hub.url, monkeypatch, token, **params)


@pytest.mark.parametrize(("who", "sees_hidden"), [("insider", True), ("outsider", False), ("anonymous", False),
                                                  ("admin", True)])
def test_private_repo_shows_only_to_those_who_may_read_it(hub: Server, site: dict[str, Any], who: str,
                                                          sees_hidden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    token = {"anonymous": None, "admin": hub.admin_token}.get(who, site.get(who))
    at = _console(hub, monkeypatch, token)
    options = at.selectbox(key="model_repo").options
    assert MODEL in options
    assert (HIDDEN in options) is sees_hidden
    signed = [s.value for s in at.sidebar.success] + [i.value for i in at.sidebar.info]
    if who == "anonymous":
        assert signed == ["Anonymous: you see public repos only."]
    else:
        assert len(signed) == 1 and signed[0].startswith("Signed in as **")
        if who == "insider":
            assert "pages-insider" in signed[0] and "pages-secret (" in signed[0]
    # Straight to the private repo by URL: the outsider gets the public list, never the hidden model.
    at = _console(hub, monkeypatch, token, repo=HIDDEN)
    assert (at.header[0].value == HIDDEN) is sees_hidden


def test_wrong_token_is_a_readable_message(hub: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, "hf_not_a_token")
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "check the token in the sidebar" in errors[0]
    assert "Traceback" not in errors[0]
    assert HIDDEN not in at.selectbox(key="model_repo").options


def test_model_page_card_files_weights_versions_demo(hub: Server, site: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, site["outsider"], repo=MODEL)
    assert at.header[0].value == MODEL
    assert any("A tiny random text-classification model" in m.value for m in at.markdown)
    assert any("**Task** `text-classification`" in m.value for m in at.markdown)
    frames = [d.value for d in at.dataframe]
    files = next(f for f in frames if "path" in f.columns)
    assert "config.json" in list(files["path"]) and "model.safetensors" in list(files["path"])
    by_dtype = next(f for f in frames if "dtype" in f.columns and "parameters" in f.columns)
    assert by_dtype["parameters"].sum() > 0
    tensors = next(f for f in frames if "tensor" in f.columns)
    assert len(tensors) > 0
    history = next(f for f in frames if "refs" in f.columns)
    assert list(history["commit"]) == [site["v2"][:10], site["v1"][:10], *list(history["commit"])[2:]]
    assert "branch main" in history["refs"].iloc[0] and history["refs"].iloc[1] == "tag v1"
    assert at.toggle(key="model_embed").value is False
    at.toggle(key="model_embed").set_value(True).run()
    assert not at.exception
    # Pinned revision from the URL.
    at = _console(hub, monkeypatch, site["outsider"], repo=MODEL, revision="v1")
    assert at.selectbox(key="model_revision").value == "v1"


def test_models_search_and_filters(hub: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, hub.admin_token)
    at.text_input(key="models_search").set_value("classifier").run()
    assert MODEL in at.selectbox(key="model_repo").options
    at.text_input(key="models_search").set_value("").run()
    at.text_input(key="models_author").set_value("pages-secret").run()
    assert at.selectbox(key="model_repo").options == [HIDDEN]
    at.text_input(key="models_task").set_value("no-such-task").run()
    assert not at.exception and any("No models match" in i.value for i in at.info)


def test_compare_page_weights_metrics_confusion_disagreements(hub: Server, site: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, site["outsider"], page="Compare", repo=MODEL, old="v1", new="main")
    assert at.multiselect(key="cmp_revisions").value == ["v1", "main"]
    assert not at.error, [e.value for e in at.error]
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 2  # the weight diff per layer, the metrics
    frames = [d.value for d in at.dataframe]
    layers = next(f for f in frames if "rel_l2" in f.columns)
    assert (layers["rel_l2"] > 0).any()
    metrics = at.table[0].value
    for rev, job in site["jobs"].items():
        assert float(metrics.loc["accuracy", rev]) == pytest.approx(job["result"]["metrics"]["accuracy"])
    assert any(c.value == "by lang" for c in at.caption)
    assert any("Confusion matrices" in c.value for c in at.caption)
    disagree = [c.value for c in at.caption if "where the revisions disagree" in c.value]
    assert len(disagree) == 1
    # The count shown is the count in the stored predictions.
    rows = {rev: {r["row"]: r["predicted"] for r in httpx.get(
        f"{hub.url}/api/vitrine/evals/{job['id']}/predictions", params={"limit": 1000},
        headers=_bearer(hub.admin_token)).json()["rows"]} for rev, job in site["jobs"].items()}
    expected = sum(1 for k in rows["v1"] if rows["v1"][k] != rows["main"][k])
    assert disagree[0].startswith(f"{expected} example(s)")
    assert any(c.value.startswith("v1 → main:") for c in at.caption)


def test_compare_needs_two_revisions(hub: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, site["outsider"], page="Compare", repo=MODEL)
    at.multiselect(key="cmp_revisions").set_value(["main"]).run()
    assert not at.exception and any("two or more revisions" in i.value for i in at.info)


def test_datasets_page_preview_stats_sql_history(hub: Server, site: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, site["outsider"], page="Datasets", repo=DATASET)
    assert not at.error, [e.value for e in at.error]
    frames = [d.value for d in at.dataframe]
    assert list(frames[0]["split"]) == ["test"] and int(frames[0]["rows"].iloc[0]) == 120
    first = frames[1]
    assert list(first.columns) == ["text", "label", "lang"] and len(first) == 50
    at.number_input(key="ds_preview_page").set_value(3).run()
    assert len(at.dataframe[1].value) == 20
    stats = at.dataframe[2].value
    assert set(stats["name"]) == {"text", "label", "lang"}
    at.text_area(key="ds_sql").set_value("SELECT lang, count(*) AS n FROM test GROUP BY lang ORDER BY lang").run()
    at.button(key="ds_sql_run").click().run()
    result = next(d.value for d in at.dataframe if "n" in d.value.columns)
    assert result.to_dict("records") == [{"lang": "de", "n": 60}, {"lang": "en", "n": 60}]
    assert "test split" in list(next(d.value for d in at.dataframe if "title" in d.value.columns)["title"])
    # A refused statement is a readable message, not a traceback.
    at.text_area(key="ds_sql").set_value("COPY test TO '/tmp/x.csv'").run()
    at.button(key="ds_sql_run").click().run()
    assert not at.exception and len(at.error) == 1 and "Traceback" not in at.error[0].value


def test_evaluate_page_opens(hub: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, hub.admin_token, page="Evaluate")
    assert at.selectbox(key="eval_model").options
    assert not at.error


def test_tokens_page_creates_shows_once_and_revokes(hub: Server, site: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    mine = hub.token("pages-tokens", "write")
    at = _console(hub, monkeypatch, mine, page="Tokens")
    assert list(at.dataframe[0].value["name"]) == ["pages-tokens-write"]
    at.text_input(key="token_name").set_value("notebook")
    at.selectbox(key="token_role").set_value("read")
    at.button[0].click().run()
    assert not at.exception and not at.error
    clear = at.code[0].value
    assert HfApi(endpoint=hub.url, token=clear).whoami()["name"] == "pages-tokens"
    assert list(at.dataframe[0].value["name"]) == ["pages-tokens-write", "notebook"]
    assert clear not in str(at.dataframe[0].value.to_dict())
    at.selectbox(key="token_revoke_pick").set_value(next(o for o in at.selectbox(key="token_revoke_pick").options
                                                         if o.startswith("notebook")))
    at.button(key="token_revoke").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["pages-tokens-write"]
    assert httpx.get(f"{hub.url}/api/whoami-v2", headers=_bearer(clear)).status_code == 401
    # Anonymous: a pointer to sign in, nothing else.
    at = _console(hub, monkeypatch, None, page="Tokens")
    assert any("Sign in with a token" in i.value for i in at.info) and not at.dataframe


def test_admin_page_manages_membership_and_refuses_others(hub: Server, site: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, site["outsider"], page="Admin")
    assert len(at.error) == 1 and "not an admin" in at.error[0].value and not at.dataframe
    at = _console(hub, monkeypatch, hub.admin_token, page="Admin")
    # How the hub is deployed, below the accounts.
    assert "Deployment" in [h.value for h in at.header]
    dialect = "postgresql" if "VITRINE_DATABASE_URL" in hub.env else "sqlite"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Database"] == dialect and metrics["Schema"] == "at head" and not at.warning
    users = at.dataframe[0].value
    assert "pages-outsider" in list(users["user"])
    at.text_input(key="member_org").set_value("pages-secret")
    at.selectbox(key="member_user").set_value("pages-outsider")
    at.selectbox(key="member_role").set_value("read")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.main.success] == ["pages-outsider is now read in pages-secret."]
    orgs = at.dataframe[1].value
    assert "pages-outsider (read)" in orgs[orgs["organisation"] == "pages-secret"]["members"].iloc[0]
    # Now the outsider sees the organisation's private model; removing them hides it again.
    assert HIDDEN in _console(hub, monkeypatch, site["outsider"]).selectbox(key="model_repo").options
    at = _console(hub, monkeypatch, hub.admin_token, page="Admin")
    at.text_input(key="member_org").set_value("pages-secret")
    at.selectbox(key="member_user").set_value("pages-outsider")
    at.button[1].click().run()
    assert [s.value for s in at.main.success] == ["pages-outsider left pages-secret."]
    assert HIDDEN not in _console(hub, monkeypatch, site["outsider"]).selectbox(key="model_repo").options


@pytest.mark.parametrize("page", ["Models", "Evaluate"])
def test_a_hub_that_is_down_is_a_readable_message(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import free_port

    monkeypatch.setenv("VITRINE_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VITRINE_TOKEN", "hf_whatever")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["page"] = page
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert len(shown) == 1 and "Cannot reach the hub" in shown[0] and "VITRINE_ENDPOINT" in shown[0], shown


def test_history_and_files_page_instead_of_loading_everything(hub: Server, admin_api: HfApi,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import CommitOperationAdd

    repo = "pages/long-history"
    admin_api.create_repo(repo, exist_ok=True)
    admin_api.create_commit(repo, operations=[CommitOperationAdd(f"f/{i:03d}.txt", b"x") for i in range(120)],
                            commit_message="many files")
    for i in range(59):
        admin_api.create_commit(repo, operations=[CommitOperationAdd("n.txt", str(i).encode())], commit_message=f"n{i}")
    at = _console(hub, monkeypatch, hub.admin_token, repo=repo)
    # The file count comes with the header (the `vitrine` block), not from a list of every file name.
    assert [m.value for m in at.metric if m.label == "Files"] == ["122"]
    history = next(d.value for d in at.dataframe if "refs" in d.value.columns)
    assert len(history) == 50 and history["title"].iloc[0] == "n58"
    assert any(c.value == "More history on page 2." for c in at.caption)
    at.number_input(key="model_history_page").set_value(2).run()
    history = next(d.value for d in at.dataframe if "refs" in d.value.columns)
    assert list(history["title"])[-2:] == ["many files", "initial commit"] and len(history) == 11
    files = next(d.value for d in at.dataframe if "path" in d.value.columns)
    assert len(files) == 50  # 122 files and the folder `f`, a page of the hub's tree listing at a time
    at.button(key="model_files_next").click().run()
    at.button(key="model_files_next").click().run()
    files = next(d.value for d in at.dataframe if "path" in d.value.columns)
    assert len(files) == 23 and at.button(key="model_files_next").disabled
    # A commit id from a hub URL (`/commit/<sha>`) opens that version.
    sha = admin_api.list_repo_commits(repo)[-2].commit_id
    at = _console(hub, monkeypatch, hub.admin_token, repo=repo, revision=sha)
    assert at.selectbox(key="model_revision").value == sha
    assert [m.value for m in at.metric if m.label == "Commit"] == [sha[:10]]
