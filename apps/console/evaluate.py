"""The Evaluate page: pick model revisions and a dataset revision, launch, watch progress, compare results."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
from huggingface_hub import HfApi

from apps.console.client import HubError, VitrineClient

POLL_S = 0.5


def _revisions(api: HfApi, repo_id: str, repo_type: str) -> list[str]:
    refs = api.list_repo_refs(repo_id, repo_type=repo_type)
    return [b.name for b in refs.branches] + [t.name for t in refs.tags]


def render(api: HfApi, client: VitrineClient) -> None:
    """Render the page."""
    st.header("Evaluate")
    models = [m.id for m in api.list_models()]
    datasets = [d.id for d in api.list_datasets()]
    if not models or not datasets:
        st.info("Push a model and a dataset first (`vitrine dataset import FILE ns/name`).")
        return
    model = st.selectbox("Model", models, key="eval_model")
    revisions = st.multiselect("Model revisions", _revisions(api, model, "model"), default=["main"],
                               key="eval_revisions")
    dataset = st.selectbox("Dataset", datasets, key="eval_dataset")
    dataset_revision = st.selectbox("Dataset revision", _revisions(api, dataset, "dataset"), key="eval_dataset_rev")
    try:
        splits = client.splits(dataset, dataset_revision)
    except HubError as exc:
        st.error(str(exc))
        return
    names = [s["name"] for s in splits]
    if not names:
        st.warning("This dataset revision has no parquet splits.")
        return
    split = st.selectbox("Split", names, index=names.index("test") if "test" in names else 0, key="eval_split")
    columns = next(([c["name"] for c in s.get("columns") or []] for s in splits if s["name"] == split), [])
    cols = st.columns(2)
    text_col = cols[0].text_input("Input column (text, image, audio...)", "text", key="eval_input")
    label_col = cols[1].text_input("Label column", "label", key="eval_label")
    slices = st.multiselect("Slice by", [c for c in columns if c not in (text_col, label_col)], key="eval_slices")
    if st.button("Evaluate", type="primary", disabled=not revisions, key="eval_go"):
        _launch(client, model, revisions, dataset, dataset_revision, split, text_col, label_col, slices)
    _history(client, model)


def _launch(client: VitrineClient, model: str, revisions: list[str], dataset: str, dataset_revision: str,
            split: str, text_col: str, label_col: str, slices: list[str]) -> None:
    jobs = []
    for revision in revisions:
        body = {"model": model, "revision": revision, "dataset": dataset, "datasetRevision": dataset_revision,
                "split": split, "mapping": {"label": label_col} | ({"text": text_col} if text_col else {}),
                "slices": slices}
        try:
            jobs.append((revision, client.start_evaluation(body)))
        except HubError as exc:
            st.error(f"{model}@{revision}: {exc}")
    bars = {job["id"]: st.progress(0.0, text=f"{model}@{revision}") for revision, job in jobs}
    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < len(jobs):
        for revision, job in jobs:
            if job["id"] in finished:
                continue
            current = client.evaluation(job["id"])
            done, total = current["progress"]["done"], current["progress"]["total"] or 1
            bars[job["id"]].progress(min(done / total, 1.0), text=f"{model}@{revision}: {current['status']} {done}/{total}")
            if current["status"] not in ("queued", "running"):
                finished[job["id"]] = current
        if len(finished) < len(jobs):
            time.sleep(POLL_S)
    st.session_state["eval_last"] = [finished[job["id"]] for _, job in jobs]


def _history(client: VitrineClient, model: str) -> None:
    history = client.evaluations(model=model)
    chosen = st.session_state.get("eval_last") or [j for j in history if j["status"] == "succeeded"][:2]
    failed = [j for j in chosen if j["status"] != "succeeded"]
    for job in failed:
        st.error(f"Evaluation {job['id'][:8]} {job['status']}: {job.get('error')}")
    results = [j for j in chosen if j["status"] == "succeeded"]
    if results:
        st.subheader("Results")
        st.dataframe(_side_by_side(results), width="stretch")
        for job in results:
            for column, values in job["result"]["slices"].items():
                st.caption(f"{_label(job)} by {column}")
                st.dataframe([{"value": v, **{k: x for k, x in m.items() if isinstance(x, (int, float))}}
                              for v, m in values.items()], width="stretch")
    st.subheader("History")
    st.dataframe([{"id": j["id"][:8], "model": f"{j['params']['model']}@{j['params']['model_commit'][:7]}",
                   "dataset": f"{j['params']['dataset']}@{j['params']['dataset_commit'][:7]}",
                   "split": j["params"]["split"], "status": j["status"],
                   "accuracy": ((j.get("result") or {}).get("metrics") or {}).get("accuracy")}
                  for j in history], width="stretch")


def _label(job: dict[str, Any]) -> str:
    return f"{job['params']['model']}@{job['params']['model_commit'][:7]}"


def _side_by_side(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [k for k, v in results[0]["result"]["metrics"].items() if isinstance(v, (int, float))]
    return [{"metric": name, **{_label(j): j["result"]["metrics"].get(name) for j in results}} for name in names]
