"""Per-example predictions of an evaluation: a parquet blob, read back through the same DuckDB sandbox as datasets."""

from __future__ import annotations

from typing import Any

from registry.core import Registry
from registry.datasets import DatasetSplit, count_rows, parquet_rows, preview
from registry.storage import scan_location


def predictions_split(reg: Registry, oid: str) -> DatasetSplit:
    """The predictions blob `oid` as a one-file split named `predictions` (the name SQL predicates see).

    Read where it lies (`registry.storage.scan_location`): from a bucket by range, never copied whole.
    """
    location = scan_location(reg.blobs, oid)
    return DatasetSplit(name="predictions", files=[location], num_rows=parquet_rows(location))


def read_predictions(reg: Registry, oid: str, *, offset: int = 0, limit: int = 100,
                     where: str | None = None) -> dict[str, Any]:
    """Rows `offset`..`offset+limit` of the predictions (those matching the SQL predicate `where`) and their count."""
    split = predictions_split(reg, oid)
    timeout = float(reg.settings.sql_timeout_s)
    rows = preview(split, offset=offset, limit=limit, where=where, timeout_s=timeout).to_pylist()
    return {"rows": rows, "total": count_rows(split, where, timeout_s=timeout), "offset": offset}
