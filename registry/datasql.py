"""Read-only SQL on one dataset revision: one SELECT over views named by split, with a row and a time limit.

The query runs in a sandbox worker process (registry/sandbox.py: only the revision's split files are
readable, where they lie, a bucket's by byte range and never copied whole to local disk; no COPY, ATTACH,
INSTALL, LOAD, SET or PRAGMA, configuration locked, memory capped by the kernel), and only a statement
DuckDB's own parser types as SELECT is run at all: `CREATE TABLE`, `INSERT` and the like would still work
in memory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry import sandbox
from registry.datasets import DatasetSplit
from registry.errors import InvalidInputError

MAX_SQL_CHARS = 100_000


@dataclass(frozen=True)
class SqlResult:
    """The first rows of a query's answer; `truncated` when it had more than the limit (rows or bytes)."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    limit: int
    elapsed_s: float


def run_sql(splits: Mapping[str, DatasetSplit], sql: str, *, limit: int, timeout_s: float) -> SqlResult:
    """Run the read-only query `sql` with every split visible as a view of its name; at most `limit` rows.

    It runs in a sandbox worker process (registry/sandbox.py), interrupted after `timeout_s`; the answer is also
    cut at `sandbox.RESULT_BYTES`.

    Raises:
        InvalidInputError: `sql` is not a non-empty string of a sane size, or `limit` is not positive.
        DatasetQueryError: not one SELECT, outside the sandbox, past `timeout_s`, out of memory, or a SQL error.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInputError("Missing SQL: send one SELECT statement, e.g. SELECT count(*) FROM train.")
    if len(sql) > MAX_SQL_CHARS:
        raise InvalidInputError(f"The SQL is {len(sql)} characters long; at most {MAX_SQL_CHARS} are accepted.")
    if limit < 1:
        raise InvalidInputError(f"Invalid limit {limit}: expected at least 1 row.")
    started = time.perf_counter()
    views = {name: [str(f) for f in split.files] for name, split in splits.items()}
    data, types, more = sandbox.run("query", views, sql, limit, timeout_s, timeout_s=timeout_s)
    table = sandbox.read_ipc(data)
    values = [column.to_pylist() for column in table.columns]
    return SqlResult(columns=list(table.column_names), types=types, rows=list(zip(*values)), truncated=more,
                     limit=limit, elapsed_s=time.perf_counter() - started)
