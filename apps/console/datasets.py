"""The Datasets page: import a file as a split; a dataset revision's splits, a paged preview, column statistics,
read-only SQL, history."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
import streamlit as st

from apps.console.client import HubError
from apps.console.common import PAGE_ROWS, Hub, attempt, explain, pick, pick_revision, query
from registry.datasetpush import ImportResult, import_split
from registry.names import parse_repo_id

# What `vitrine dataset import` reads, by the name's last suffix (a `.gz` or `.zst` CSV or JSON Lines too).
UPLOAD_TYPES = ["csv", "tsv", "txt", "parquet", "pq", "jsonl", "ndjson", "json", "gz", "zst", "duckdb", "ddb", "db"]
_DUCKDB = (".duckdb", ".ddb", ".db")


def render(hub: Hub, *, max_upload_mb: int = 512) -> None:
    """Render the page."""
    st.header("Datasets")
    show_import(hub, max_upload_mb=max_upload_mb)
    found = attempt(lambda: [d.id for d in hub.api.list_datasets(sort="last_modified", limit=500)])
    if not found:
        if found is not None:
            st.info("No datasets yet. Import a file above, or with `vitrine dataset import FILE <namespace>/<name>`.")
        return
    dataset = pick("Dataset", found, key="ds_repo", default=query("repo"))
    revision = pick_revision(hub, dataset, "dataset", key="ds_revision")
    if revision is None:
        return
    splits = attempt(lambda: hub.client.splits(dataset, revision))
    if splits is None:
        return
    st.subheader(f"{dataset}@{revision}")
    st.dataframe([{"split": s["name"], "rows": s["num_rows"], "files": len(s["files"]),
                   "columns": ", ".join(c["name"] for c in s["columns"])} for s in splits], width="stretch")
    if not splits:
        st.warning("This revision has no parquet splits. Import data with `vitrine dataset import`.")
    else:
        names = [s["name"] for s in splits]
        split = pick("Split", names, key="ds_split", default="train" if "train" in names else None)
        preview, stats, sql = st.tabs(["Preview", "Statistics", "SQL"])
        with preview:
            show_preview(hub, dataset, revision, split, next(s["num_rows"] for s in splits if s["name"] == split))
        with stats:
            show_stats(hub, dataset, revision, split)
        with sql:
            show_sql(hub, dataset, revision, split)
    st.subheader("History")
    page = int(st.number_input("History page", min_value=1, value=1, key="ds_history_page"))
    result = attempt(lambda: hub.client.commits(dataset, repo_type="dataset", revision=revision, page=page - 1,
                                                limit=PAGE_ROWS))
    if result is not None:
        st.dataframe([{"commit": c["id"][:10], "title": c["title"], "date": c["date"]} for c in result[0]],
                     width="stretch")


def show_preview(hub: Hub, dataset: str, revision: str, split: str, num_rows: int) -> None:
    """One page of rows."""
    pages = max(1, -(-num_rows // PAGE_ROWS))
    page = int(st.number_input(f"Rows page (of {pages}, {num_rows} rows)", 1, pages, 1, key="ds_preview_page"))
    rows = attempt(lambda: hub.client.preview(dataset, revision=revision, split=split, offset=(page - 1) * PAGE_ROWS,
                                              limit=PAGE_ROWS))
    if rows is not None:
        names = [c["name"] for c in rows["columns"]]
        st.dataframe([dict(zip(names, r)) for r in rows["rows"]], width="stretch")


def show_stats(hub: Hub, dataset: str, revision: str, split: str) -> None:
    """Per-column type, nulls, distinct values, range and lengths."""
    stats = attempt(lambda: hub.client.stats(dataset, revision=revision, split=split))
    if stats is not None:
        st.dataframe(stats["columns"], width="stretch")


def show_sql(hub: Hub, dataset: str, revision: str, split: str) -> None:
    """A read-only SELECT over the revision's splits (each split a view of its name), run by the hub."""
    text = st.text_area("SQL (one SELECT; each split is a table of its name)",
                        f'SELECT * FROM "{split}" LIMIT 10', key="ds_sql")
    if st.button("Run", key="ds_sql_run"):
        result = attempt(lambda: hub.client.sql(dataset, text, revision=revision))
        if result is not None:
            names = [c["name"] for c in result["columns"]]
            st.dataframe([dict(zip(names, r)) for r in result["rows"]], width="stretch")
            st.caption(f"{len(result['rows'])} row(s) in {result['elapsed_s']} s"
                       + (" (truncated)" if result["truncated"] else ""))


def show_import(hub: Hub, *, max_upload_mb: int) -> None:
    """Upload a CSV, Parquet, JSON Lines or DuckDB file and import it as a split, as `vitrine dataset import` does."""
    with st.expander("Import a file as a split", expanded=query("import") is not None):
        if hub.token is None:
            st.info("Sign in with a write token (`vitrine token create --role write`) to import a file.")
            return
        uploaded = st.file_uploader(f"CSV, Parquet, JSON Lines or DuckDB file (up to {max_upload_mb:,} MB)",
                                    type=UPLOAD_TYPES, key="ds_import_file", max_upload_size=max_upload_mb)
        target = st.text_input("Dataset repo", query("repo") or "", key="ds_import_repo",
                               placeholder="namespace/name").strip()
        split = st.text_input("Split", "train", key="ds_import_split").strip()
        table = ""
        if uploaded is not None and uploaded.name.lower().endswith(_DUCKDB):
            table = st.text_input("Table of the DuckDB file", "", key="ds_import_table").strip()
        exists, create, private = True, False, False
        if target:
            try:
                parse_repo_id(target, "dataset")
            except ValueError as exc:
                st.warning(f"{exc} Name the repo as namespace/name, e.g. your-org/reviews.")
                return
            exists = bool(attempt(lambda: hub.api.repo_exists(target, repo_type="dataset")))
            if not exists:
                create = st.checkbox(f"{target} does not exist (or this token may not see it): create it",
                                     key="ds_import_create")
                private = st.checkbox("Private (only you and its organisation's members see it)",
                                      key="ds_import_private", disabled=not create)
        ready = uploaded is not None and bool(target) and bool(split) and (exists or create)
        if st.button("Import", key="ds_import_run", disabled=not ready, type="primary") and uploaded is not None:
            done = import_upload(hub, uploaded.name, uploaded, target, split=split, table=table or None,
                                 private=private, max_bytes=max_upload_mb * 1024**2)
            if done is not None:
                label = f"{uploaded.name}::{table}" if table else uploaded.name
                st.success(f"Imported {done.num_rows:,} rows of {label} into {done.repo_id}@{done.revision} "
                           f"as split `{done.split}` ({done.files} file(s)): commit {done.commit[:10]}. Load it with "
                           f'`datasets.load_dataset("{done.repo_id}", split="{done.split}")`.')


def import_upload(hub: Hub, name: str, data: Any, repo_id: str, *, split: str = "train", table: str | None = None,
                  private: bool = False, max_bytes: int = 1024**3) -> ImportResult | None:
    """Import the uploaded file `name` (a binary file object) as `split` of `repo_id`, showing progress.

    The same code path as `vitrine dataset import` (registry.datasetpush.import_split), with the signed-in token:
    the hub refuses whoever may not write the repo. Every failure is shown as a readable message; None then.
    """
    size = getattr(data, "size", None)
    if size is not None and size > max_bytes:
        st.error(f"{name} is {size / 2**20:,.1f} MB, more than the console takes ({max_bytes / 2**20:,.0f} MB, "
                 f"VITRINE_CONSOLE_MAX_UPLOAD_MB). Import it from a shell: `vitrine dataset import {name} {repo_id}`.")
        return None
    from registry.datasetimport import parse_source

    with tempfile.TemporaryDirectory(prefix="vitrine-console-import-") as tmp:
        path = Path(tmp) / Path(name).name
        written = 0
        if hasattr(data, "seek"):
            data.seek(0)  # an upload read by an earlier run starts over
        with open(path, "wb") as out:
            while chunk := data.read(1024**2):
                written += len(chunk)
                if written > max_bytes:  # a file object that did not say its size
                    st.error(f"{name} is larger than the console takes ({max_bytes / 2**20:,.0f} MB, "
                             "VITRINE_CONSOLE_MAX_UPLOAD_MB). Import it from a shell with `vitrine dataset import`.")
                    return None
                out.write(chunk)
        with st.status(f"Importing {name} into {repo_id} as split {split}", expanded=True) as status:
            bar = st.progress(0.0, text="Converting")
            try:
                source = parse_source(f"{path}::{table}" if table else str(path))
                done = import_split(hub.api, source, repo_id, split=split, private=private, work_dir=tmp,
                                    progress=lambda _, frac: bar.progress(min(max(frac, 0.0), 1.0),
                                                                          text=f"Converting: {frac:.0%}"),
                                    step=status.write)
            except (HubError, httpx.HTTPError, OSError, ValueError, RuntimeError) as exc:  # HfHubHTTPError: OSError
                status.update(label=f"Import of {name} failed", state="error")
                st.error(_explain_import(exc, repo_id))
                return None
            bar.progress(1.0, text="Done")
            status.update(label=f"Imported {name} into {done.repo_id} as split {done.split}", state="complete")
    return done


def _explain_import(exc: Exception, repo_id: str) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    said = str(getattr(exc, "server_message", "") or "").strip().splitlines()
    hub_said = f" ({said[0].rstrip('.')})" if said else ""
    if status in (401, 403):
        return (f"The hub refused the import into {repo_id}{hub_said}: this token may not write it — ask an owner of "
                "the repo or its organisation for write access, or import into a namespace of your own.")
    if status == 404:
        return f"{repo_id} does not exist, or this token may not see it{hub_said} — check the name, or tick 'create it'."
    if status is None and isinstance(exc, ValueError):  # the file, split or table: InvalidInputError
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{text} — pick another file, split or table, and import again."
    return explain(exc)
