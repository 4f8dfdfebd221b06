"""The Compare page: two or more revisions of a model side by side (config, card, weights, metrics, examples)."""

from __future__ import annotations

import difflib
import json
from typing import Any

import pandas as pd
import streamlit as st

from apps.console.common import Hub, attempt, pick, query, revisions


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Compare")
    found = attempt(lambda: [m.id for m in hub.api.list_models(sort="last_modified", limit=500)])
    if not found:
        if found is not None:
            st.info("No models yet. Push one with `hf upload <namespace>/<name> ./folder .`")
        return
    repo_id = pick("Model", found, key="cmp_repo", default=query("repo"))
    revs = attempt(lambda: revisions(hub, repo_id))
    if revs is None:
        return
    wanted = [r for r in (query("old"), query("new")) if r in revs] or revs[:2]
    chosen = st.multiselect("Revisions (the first is the base)", revs, default=wanted, key="cmp_revisions")
    if len(chosen) < 2:
        st.info("Pick two or more revisions to compare (tag a version with `hf tag`, or push a second commit).")
        return
    # Each revision's commit from one entry of its history: the repo info would list every file of every revision.
    shas = attempt(lambda: {rev: str(hub.client.commits(repo_id, revision=rev, limit=1)[0][0]["id"]) for rev in chosen})
    if shas is None:
        return
    base, others = chosen[0], chosen[1:]
    st.subheader("Weight diff per layer")
    for other in others:
        show_weight_diff(hub, repo_id, base, other)
    st.subheader("Metrics")
    show_metrics(hub, repo_id, shas)
    st.subheader("Config")
    show_config_diff(hub, repo_id, chosen)
    st.subheader("Card")
    show_card_diff(hub, repo_id, base, others)


def show_weight_diff(hub: Hub, repo_id: str, old: str, new: str) -> None:
    """Relative L2 change per layer between two revisions, as a chart and a table."""
    diff = attempt(lambda: hub.client.weight_diff(repo_id, old, new))
    if diff is None:
        return
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in diff["summary"].items() if n)
    st.caption(f"{old} → {new}: {summary or 'no tensors'}")
    layers = pd.DataFrame([{"layer": layer["layer"], "rel_l2": layer["rel_l2"] or 0.0, "max_abs": layer["max_abs"],
                            "changed": layer["changed"], "tensors": layer["tensors"]} for layer in diff["layers"]])
    if layers.empty:
        st.info("Neither revision has safetensors weights to compare.")
        return
    st.bar_chart(layers.set_index("layer")["rel_l2"], height=260)
    st.dataframe(layers, width="stretch")


def show_metrics(hub: Hub, repo_id: str, shas: dict[str, str]) -> None:
    """Stored evaluations of the chosen commits: metrics per dataset and slice, confusion matrices, disagreements."""
    history = attempt(lambda: hub.client.evaluations(model=repo_id))
    if history is None:
        return
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}  # (dataset, split, revision) -> newest succeeded job
    for job in history:
        p = job["params"]
        for rev, sha in shas.items():
            if job["status"] == "succeeded" and p["model_commit"] == sha:
                latest.setdefault((p["dataset"], p["split"], rev), job)
    groups = sorted({(d, s) for d, s, _ in latest})
    if not groups:
        st.info("No stored evaluation of these commits. Run one on the Evaluate page "
                "(or `vitrine eval MODEL@REV --dataset DATASET --split test`).")
        return
    for dataset, split in groups:
        jobs = {rev: latest[(dataset, split, rev)] for rev in shas if (dataset, split, rev) in latest}
        st.markdown(f"**{dataset}** · split `{split}`")
        table = metric_table(jobs)
        st.table(table.set_index("metric"))  # small, and plain HTML: readable by a person and by a browser test
        if len(table):
            st.bar_chart(table.set_index("metric"), height=220)
        for column in sorted({c for j in jobs.values() for c in j["result"].get("slices", {})}):
            st.caption(f"by {column}")
            st.dataframe(slice_table(jobs, column), width="stretch")
        show_confusion(jobs)
        if len(jobs) >= 2:
            show_disagreements(hub, jobs, key=f"cmp_filter_{dataset}_{split}")


def metric_table(jobs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per numeric metric, one column per revision."""
    names = sorted({k for j in jobs.values() for k, v in j["result"]["metrics"].items() if _number(v)})
    return pd.DataFrame([{"metric": n, **{rev: j["result"]["metrics"].get(n) for rev, j in jobs.items()}}
                         for n in names])


def slice_table(jobs: dict[str, dict[str, Any]], column: str) -> pd.DataFrame:
    """Accuracy (or the first numeric metric) per value of a slice column, one column per revision."""
    rows: dict[str, dict[str, Any]] = {}
    for rev, job in jobs.items():
        for value, metrics in (job["result"].get("slices", {}).get(column) or {}).items():
            numeric = {k: v for k, v in metrics.items() if _number(v)}
            name = "accuracy" if "accuracy" in numeric else next(iter(numeric), None)
            rows.setdefault(value, {column: value})[rev] = numeric.get(name) if name else None
    return pd.DataFrame(list(rows.values()))


def show_confusion(jobs: dict[str, dict[str, Any]]) -> None:
    """Confusion matrices (rows: reference, columns: predicted) side by side."""
    matrices = {rev: j["result"]["metrics"].get("confusion_matrix") for rev, j in jobs.items()}
    matrices = {rev: m for rev, m in matrices.items() if isinstance(m, dict)}
    if not matrices:
        return
    st.caption("Confusion matrices (rows: reference, columns: predicted)")
    for col, (rev, m) in zip(st.columns(len(matrices)), matrices.items()):
        col.markdown(f"`{rev}`")
        col.dataframe(pd.DataFrame(m["matrix"], index=m["labels"], columns=m["labels"]), width="stretch")


def show_disagreements(hub: Hub, jobs: dict[str, dict[str, Any]], *, key: str) -> None:
    """The examples where the revisions predict differently, from the stored per-example predictions."""
    pages = attempt(lambda: {rev: hub.client.predictions(j["id"], limit=1000) for rev, j in jobs.items()})
    if pages is None:
        return
    by_row: dict[int, dict[str, Any]] = {}
    for rev, page in pages.items():
        for r in page["rows"]:
            row = by_row.setdefault(r["row"], {"row": r["row"], "reference": r.get("reference"),
                                               **{k: v for k, v in r.items() if k.startswith("slice_")}})
            row[f"{rev} predicted"] = r.get("predicted")
            row[f"{rev} correct"] = r.get("correct")
    revs = list(jobs)
    differ = [r for r in by_row.values() if len({json.dumps(r.get(f"{rev} predicted")) for rev in revs}) > 1]
    needle = st.text_input("Filter the disagreements (reference or slice value contains)", "", key=key)
    if needle:
        differ = [r for r in differ if any(needle.lower() in str(v).lower()
                                           for k, v in r.items() if k == "reference" or k.startswith("slice_"))]
    st.caption(f"{len(differ)} example(s) where the revisions disagree"
               + (" (first 1,000 predictions)" if any(p["total"] > 1000 for p in pages.values()) else ""))
    st.dataframe(differ, width="stretch")


def show_config_diff(hub: Hub, repo_id: str, chosen: list[str]) -> None:
    """config.json keys whose values differ between the revisions."""
    texts = attempt(lambda: {rev: hub.client.file_text(repo_id, "config.json", revision=rev) for rev in chosen})
    if texts is None:
        return
    configs = {rev: _flatten(json.loads(t)) if t else {} for rev, t in texts.items()}
    keys = sorted({k for c in configs.values() for k in c})
    changed = [{"key": k, **{rev: json.dumps(c.get(k)) for rev, c in configs.items()}}
               for k in keys if len({json.dumps(c.get(k)) for c in configs.values()}) > 1]
    if changed:
        st.dataframe(changed, width="stretch")
    else:
        st.caption("config.json is the same in every chosen revision." if any(texts.values())
                   else "No config.json in these revisions.")


def show_card_diff(hub: Hub, repo_id: str, base: str, others: list[str]) -> None:
    """A unified diff of each revision's card against the base's."""
    cards = attempt(lambda: {rev: str(hub.client.card(repo_id, rev)["card"]) for rev in [base, *others]})
    if cards is None:
        return
    for other in others:
        lines = list(difflib.unified_diff(cards[base].splitlines(), cards[other].splitlines(), fromfile=base,
                                          tofile=other, lineterm=""))
        if lines:
            st.code("\n".join(lines), language="diff")
        else:
            st.caption(f"The card is the same in {base} and {other}.")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
