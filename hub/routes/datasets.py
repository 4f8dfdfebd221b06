"""Vitrine's dataset API: the splits of a revision, a page of rows, column statistics, read-only SQL.

Each route reads a dataset exactly as a download would: a private dataset answers 404 to whoever may
not read it. The revision is resolved once, so every split of one answer comes from the same commit.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import registry_of, repo_for
from registry.datalayout import features_of
from registry.datasets import column_stats, dataset_splits, get_split, preview, split_schema
from registry.datasql import run_sql
from registry.errors import InvalidInputError
from registry.versions import read_version

router = APIRouter(prefix="/api/vitrine/datasets/{namespace}/{name}")


def _jsonable(value: Any) -> Any:
    """A value DuckDB or Arrow gave, as JSON can carry it (NaN and infinities as null, bytes as base64)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _table_json(table: pa.Table) -> dict[str, Any]:
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    values = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return {"columns": columns, "rows": [_jsonable(list(row)) for row in zip(*values)]}


def _limits(request: Request) -> tuple[int, int]:
    settings = registry_of(request).settings
    return settings.sql_row_limit, settings.sql_timeout_s


@router.get("/splits")
async def splits(request: Request, namespace: str, name: str, revision: str = "main") -> dict[str, Any]:
    """The splits of a revision as `datasets` finds them: files, row counts, columns and `datasets` features."""
    reg, repo = registry_of(request), await repo_for(request, "datasets", namespace, name)

    def run() -> dict[str, Any]:
        sha = read_version(reg, repo, revision).commit.oid
        out = []
        for split in dataset_splits(reg, repo, sha).values():
            schema = split_schema(split)
            out.append({"name": split.name, "num_rows": split.num_rows, "files": split.paths,
                        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
                        "features": features_of(schema)})
        return {"sha": sha, "splits": out}

    return await run_in_threadpool(run)


@router.get("/preview")
async def rows(request: Request, namespace: str, name: str, split: str, revision: str = "main",
               offset: int = Query(0, ge=0), limit: int = Query(100, ge=0),
               where: str | None = Query(None, description="SQL predicate selecting the rows, e.g. `label = 1`")
               ) -> dict[str, Any]:
    """A page of rows of one split (`offset`, `limit` at most VITRINE_SQL_ROW_LIMIT), optionally filtered."""
    reg, repo = registry_of(request), await repo_for(request, "datasets", namespace, name)
    max_rows, timeout = _limits(request)

    def run() -> dict[str, Any]:
        sha = read_version(reg, repo, revision).commit.oid
        chosen = get_split(dataset_splits(reg, repo, sha), split, where=f"{repo.ref.repo_id}@{revision}")
        page = min(limit, max_rows)
        table = preview(chosen, offset=offset, limit=page, where=where, timeout_s=timeout)
        return {"sha": sha, "split": split, "num_rows": chosen.num_rows, "offset": offset, "limit": page,
                **_table_json(table)}

    return await run_in_threadpool(run)


@router.get("/stats")
async def stats(request: Request, namespace: str, name: str, split: str, revision: str = "main") -> dict[str, Any]:
    """Per column of one split: type, null count, approximate distinct count, range, mean, string lengths."""
    reg, repo = registry_of(request), await repo_for(request, "datasets", namespace, name)
    _, timeout = _limits(request)

    def run() -> dict[str, Any]:
        sha = read_version(reg, repo, revision).commit.oid
        chosen = get_split(dataset_splits(reg, repo, sha), split, where=f"{repo.ref.repo_id}@{revision}")
        columns = [_jsonable(c.to_json()) for c in column_stats(chosen, timeout_s=timeout)]
        return {"sha": sha, "split": split, "num_rows": chosen.num_rows, "columns": columns}

    return await run_in_threadpool(run)


_SQL_DOC = json_body_doc({
    "sql": {"type": "string", "description": "One SELECT; each split of the revision is a view named by the split."},
    "revision": {"type": "string", "default": "main"},
    "limit": {"type": "integer", "minimum": 1, "description": "Rows to return, at most VITRINE_SQL_ROW_LIMIT."},
    "timeout_s": {"type": "number", "description": "Seconds before the query is interrupted, at most "
                                                   "VITRINE_SQL_TIMEOUT_S."},
}, required=("sql",))


@router.post("/sql", openapi_extra=_SQL_DOC)
async def sql(request: Request, namespace: str, name: str) -> dict[str, Any]:
    """Run one read-only SELECT on a revision, its splits as views; `truncated` when rows past `limit` were cut."""
    reg, repo = registry_of(request), await repo_for(request, "datasets", namespace, name)
    body = await json_object(request, what="SQL query body")
    max_rows, max_timeout = _limits(request)
    query, revision = body.get("sql"), body.get("revision", "main")
    limit, timeout = body.get("limit", max_rows), body.get("timeout_s", max_timeout)
    if not isinstance(query, str):
        raise InvalidInputError("The SQL query body needs `sql`: one SELECT statement, as a string.")
    if not isinstance(revision, str) or not revision:
        raise InvalidInputError("`revision` must be a branch, tag or commit id.")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"`limit` must be a positive integer, not {limit!r}.")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout:
        raise InvalidInputError(f"`timeout_s` must be a positive number of seconds, not {timeout!r}.")

    def run() -> dict[str, Any]:
        sha = read_version(reg, repo, revision).commit.oid
        result = run_sql(dataset_splits(reg, repo, sha), query, limit=min(limit, max_rows),
                         timeout_s=min(float(timeout), float(max_timeout)))
        return {"sha": sha, "columns": [{"name": n, "type": t} for n, t in zip(result.columns, result.types)],
                "rows": [_jsonable(list(r)) for r in result.rows], "truncated": result.truncated,
                "limit": result.limit, "elapsed_s": round(result.elapsed_s, 4)}

    return await run_in_threadpool(run)
