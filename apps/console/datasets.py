"""The Datasets page: a dataset revision's splits, a paged preview, column statistics, read-only SQL, history."""

from __future__ import annotations

import streamlit as st

from apps.console.common import PAGE_ROWS, Hub, attempt, pick, pick_revision, query


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Datasets")
    found = attempt(lambda: [d.id for d in hub.api.list_datasets(sort="last_modified", limit=500)])
    if not found:
        if found is not None:
            st.info("No datasets yet. Import one with `vitrine dataset import FILE <namespace>/<name>`.")
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
