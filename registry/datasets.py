"""Datasets stored as versioned parquet, read with DuckDB straight from the blob store."""

from __future__ import annotations

import duckdb

from registry.core import Registry
from registry.trees import TreeEntry

# Column names that usually hold the input text of a row, best first.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "question", "prompt", "input", "document")


def parquet_files(tree: dict[str, TreeEntry]) -> list[str]:
    """Parquet files of a dataset tree, the train split first."""
    files = sorted(p for p in tree if p.endswith(".parquet"))
    return sorted(files, key=lambda p: "train" not in p.rsplit("/", 1)[-1] and "train" not in p)


def sample_texts(reg: Registry, tree: dict[str, TreeEntry], *, limit: int = 3, max_chars: int = 300) -> list[str]:
    """A few non-empty values of the dataset's text column (by name, else its first string column)."""
    files = parquet_files(tree)
    if not files:
        return []
    path = str(reg.blobs.path(tree[files[0]].oid))
    with duckdb.connect() as con:
        try:
            columns = con.execute("DESCRIBE SELECT * FROM read_parquet($1)", [path]).fetchall()
        except duckdb.Error:
            return []  # not readable as parquet: no examples rather than no demo
        strings = [name for name, kind, *_ in columns if kind == "VARCHAR"]
        if not strings:
            return []
        column = next((c for c in TEXT_COLUMNS if c in strings), strings[0])
        quoted = '"' + column.replace('"', '""') + '"'
        rows = con.execute(
            f"SELECT {quoted} FROM read_parquet($1) WHERE length(trim({quoted})) > 0 LIMIT $2", [path, limit]
        ).fetchall()
    return [str(value)[:max_chars] for (value,) in rows]
