"""The console's Evaluate page, driven by AppTest against the real hub: launch, watch, compare two revisions."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]


def test_evaluate_page_runs_two_revisions_side_by_side(hub: Server, admin_api: HfApi, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    repo = "console-eval/classifier"
    v1 = push_task_model(admin_api, repo, "text-classification", tmp_path / "v1", seed=0)
    admin_api.create_tag(repo, tag="v1", revision=v1)
    push_task_model(admin_api, repo, "text-classification", tmp_path / "v2", seed=5)
    admin_api.create_repo("console-eval/reviews", repo_type="dataset", exist_ok=True)
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["good food", "awful service", "the movie was fine", "i hate it"] * 3,
                             "label": ["positive", "negative", "neutral", "negative"] * 3,
                             "lang": ["en", "de"] * 6}), buf)
    admin_api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                          repo_id="console-eval/reviews", repo_type="dataset")
    monkeypatch.setenv("VITRINE_ENDPOINT", hub.url)
    monkeypatch.setenv("VITRINE_TOKEN", hub.admin_token)

    at = AppTest.from_file(str(ROOT / "apps" / "console" / "app.py"), default_timeout=300).run()
    at.sidebar.radio(key="page").set_value("Evaluate").run()
    assert not at.exception
    at.selectbox(key="eval_model").set_value(repo).run()
    at.multiselect(key="eval_revisions").set_value(["main", "v1"]).run()
    at.selectbox(key="eval_dataset").set_value("console-eval/reviews").run()
    at.multiselect(key="eval_slices").set_value(["lang"]).run()
    at.button(key="eval_go").click().run()
    assert not at.exception and not at.error
    side = at.dataframe[0].value
    assert "accuracy" in list(side["metric"])
    columns = [c for c in side.columns if c != "metric"]
    assert len(columns) == 2 and any(c.endswith(v1[:7]) for c in columns)
    # The numbers shown are the hub's own results for those commits.
    history = httpx.get(f"{hub.url}/api/vitrine/evals", params={"model": repo},
                        headers={"authorization": f"Bearer {hub.admin_token}"}).json()
    for job in history[:2]:
        label = f"{repo}@{job['params']['model_commit'][:7]}"
        row = side[side["metric"] == "accuracy"]
        assert float(row[label].iloc[0]) == pytest.approx(job["result"]["metrics"]["accuracy"])
    assert any("by lang" in c.value for c in at.caption)
