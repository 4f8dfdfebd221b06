"""The DuckDB sandbox callers' SQL runs in, and the worker processes that run it away from the hub.

`connect` makes an in-memory DuckDB that may read the given parquet files (one view per split; `s3://` ones
straight from the bucket, by byte range, through pyarrow's S3 client) and nothing else: no other file or
URL, no COPY, ATTACH, INSTALL or LOAD, configuration locked, a memory and thread budget. DuckDB's memory
limit does not cover everything, though: `SELECT repeat('x', 10^8) FROM range(100)` builds gigabytes of
strings outside it. So SQL a caller wrote (queries, previews with a predicate, statistics) runs through
`run` in one of a few worker processes, each capped at `WORKER_ADDRESS_SPACE` bytes by the kernel: such a
query fails there with a clear error, and a worker that stops answering in time is killed and replaced.
Answers come back bounded: `max_rows` and `RESULT_BYTES`.
"""

from __future__ import annotations

import multiprocessing
import queue
import resource
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from registry.errors import DatasetQueryError, InvalidInputError

MEMORY_LIMIT = "1GB"
THREADS = 2
WORKERS = 2
WORKER_ADDRESS_SPACE = 3 * 2**30
RESULT_BYTES = 32 * 2**20
_GRACE_S = 5.0  # past its own time limit, how long a worker may take to answer before it is killed
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "FLOAT", "DOUBLE"}
_ORDERED = ("DATE", "TIME", "TIMESTAMP", "BOOLEAN")
_NESTED = ("STRUCT", "MAP", "UNION")

Views = Mapping[str, Sequence[str | Path]]
"""View name (a split) -> its parquet files."""


def quote_ident(name: str) -> str:
    """`name` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _sql_str(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def connect(views: Views, *, memory_limit: str = MEMORY_LIMIT, threads: int = THREADS) -> duckdb.DuckDBPyConnection:
    """A sandboxed in-memory DuckDB with one view per entry of `views` over its parquet files; close it when done."""
    con = duckdb.connect(":memory:")
    try:
        if any(str(f).startswith("s3://") for paths in views.values() for f in paths):
            from registry.s3read import duckdb_filesystem  # a hub on S3: splits are read by range where they lie

            con.register_filesystem(duckdb_filesystem())
        files = [_sql_str(f) for paths in views.values() for f in paths]
        con.execute(f"SET allowed_paths = [{', '.join(files)}]")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET temp_directory = ''")  # nothing spills into the hub's working directory
        for name, paths in views.items():
            listed = ", ".join(_sql_str(f) for f in paths)
            con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM read_parquet([{listed}])")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The text of the one SELECT statement `sql` holds, as DuckDB's own parser reads it.

    Raises:
        DatasetQueryError: `sql` does not parse, is empty, holds several statements, or is not a SELECT.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise DatasetQueryError(f"Invalid SQL: {_first_line(exc)}", reason="syntax") from None
    if not statements:
        raise DatasetQueryError("Empty SQL: send one SELECT statement.", reason="statement")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise DatasetQueryError(f"Send one SELECT statement, not {len(statements)} ({kinds}).", reason="statement")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise DatasetQueryError(f"Only read-only SELECT queries are allowed; {kind.name} statements are refused.",
                                reason="statement")
    return str(statements[0].query)


def select_sql(con: duckdb.DuckDBPyConnection, view: str, columns: Sequence[str] | None, where: str | None) -> str:
    """`SELECT columns FROM view [WHERE (where)]`, checked to be one SELECT whatever the predicate holds."""
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    sql = f"SELECT {cols} FROM {quote_ident(view)}"
    if where is not None and where.strip():
        # On lines of its own, so a trailing `--` comment in the predicate cannot swallow what follows.
        sql += f" WHERE (\n{where}\n)"
    check_select(con, sql)
    return sql


@contextmanager
def guarded(con: duckdb.DuckDBPyConnection, *, timeout_s: float | None = None,
            views: Sequence[str] = ()) -> Iterator[None]:
    """Interrupt `con` after `timeout_s` and turn DuckDB's errors inside the block into DatasetQueryError."""
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise _timeout(timeout_s) from None
    except duckdb.PermissionException as exc:
        raise DatasetQueryError(f"Not allowed: {_first_line(exc)}. A query sees only the splits of its revision.",
                                reason="permission") from None
    except (duckdb.OutOfMemoryException, MemoryError):
        raise _out_of_memory() from None
    except duckdb.CatalogException as exc:
        known = f" The views of this revision: {', '.join(views)}." if views else ""
        raise DatasetQueryError(f"{_first_line(exc)}{known}", reason="sql") from None
    except duckdb.ParserException as exc:
        raise DatasetQueryError(f"Invalid SQL: {_first_line(exc)}", reason="syntax") from None
    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # errors met while streaming come through Arrow
        message = _first_line(exc)
        if message.startswith("Out of Memory"):
            raise _out_of_memory() from None
        if message.startswith("INTERRUPT"):
            raise _timeout(timeout_s) from None
        raise DatasetQueryError(message, reason="sql") from None
    finally:
        if timer is not None:
            timer.cancel()


def _timeout(timeout_s: float | None) -> DatasetQueryError:
    return DatasetQueryError(f"The query ran past its time limit of {timeout_s or 0:g} s (VITRINE_SQL_TIMEOUT_S); "
                             "narrow it with WHERE or LIMIT.", reason="timeout")


def _out_of_memory() -> DatasetQueryError:
    return DatasetQueryError("The query needs more memory than a query may use; narrow it with WHERE, fewer or "
                             "smaller columns, or an aggregate.", reason="memory")


def fetch_bounded(con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int,
                  max_bytes: int = RESULT_BYTES) -> tuple[pa.Table, list[str], bool]:
    """The first rows `sql` answers, at most `max_rows` and about `max_bytes`; its DuckDB types; whether it had more."""
    relation = con.sql(sql)
    types = [str(t) for t in relation.types]
    reader = relation.to_arrow_reader(64)
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    more = False
    for batch in reader:
        if rows + batch.num_rows > max_rows or size + batch.nbytes > max_bytes:
            for n in range(min(batch.num_rows, max_rows - rows), 0, -1):  # what of this batch still fits
                if size + batch.slice(0, n).nbytes <= max_bytes:
                    batches.append(batch.slice(0, n))
                    break
            more = True
            break
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
    if more and not batches and max_rows > 0:
        raise DatasetQueryError(f"One row of the answer is larger than {max_bytes // 2**20} MiB; select fewer or "
                                "smaller columns.", reason="memory")
    return pa.Table.from_batches(batches, reader.schema), types, more


# What a worker can be asked to do: module-level functions of plain arguments, answers that pickle.


def _query(views: Views, sql: str, max_rows: int, timeout_s: float) -> tuple[bytes, list[str], bool]:
    con = connect(views)
    try:
        query = check_select(con, sql)
        with guarded(con, timeout_s=timeout_s, views=list(views)):
            table, types, more = fetch_bounded(con, query, max_rows=max_rows)
    finally:
        con.close()
    return _ipc(table), types, more


def _page(views: Views, view: str, columns: Sequence[str] | None, where: str | None, offset: int, limit: int,
          timeout_s: float) -> tuple[bytes, list[str], bool]:
    con = connect(views)
    try:
        with guarded(con, timeout_s=timeout_s, views=list(views)):
            sql = select_sql(con, view, columns, where)
            table, types, more = fetch_bounded(con, f"{sql}\nLIMIT {int(limit)} OFFSET {int(offset)}",
                                               max_rows=limit)
    finally:
        con.close()
    return _ipc(table), types, more


def _count(views: Views, view: str, where: str | None, timeout_s: float) -> int:
    con = connect(views)
    try:
        with guarded(con, timeout_s=timeout_s, views=list(views)):
            row = con.execute(f"SELECT count(*) FROM (\n{select_sql(con, view, None, where)}\n)").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _summarize(views: Views, view: str, timeout_s: float) -> list[dict[str, Any]]:
    """Per column: type, nulls, approximate distinct count, range/mean/std of numbers, string lengths (one scan)."""
    con = connect(views)
    try:
        with guarded(con, timeout_s=timeout_s, views=list(views)):
            parts, plan = ["count(*)"], []
            for name, kind, *_ in con.execute(f"DESCRIBE {quote_ident(view)}").fetchall():
                q, kind = quote_ident(name), str(kind)
                nested = kind.endswith("]") or kind.startswith(_NESTED)
                aggs = [f"count(*) - count({q})", "NULL" if nested else f"approx_count_distinct({q})"]
                if kind in _NUMERIC or kind.startswith("DECIMAL"):
                    as_float = "::DOUBLE" if kind.startswith("DECIMAL") or kind.endswith("HUGEINT") else ""
                    aggs += [f"min({q}){as_float}", f"max({q}){as_float}", f"avg({q})::DOUBLE",
                             f"stddev_samp({q})::DOUBLE"]
                elif kind == "VARCHAR":
                    aggs += [f"min(length({q}))", f"max(length({q}))", f"avg(length({q}))::DOUBLE"]
                elif kind.startswith(_ORDERED):
                    aggs += [f"min({q})::VARCHAR", f"max({q})::VARCHAR"]
                plan.append((name, kind, len(aggs)))
                parts += aggs
            row = con.execute(f"SELECT {', '.join(parts)} FROM {quote_ident(view)}").fetchone()
    finally:
        con.close()
    assert row is not None
    out, i = [], 1
    for name, kind, n in plan:
        values = list(row[i:i + n])
        i += n
        stats: dict[str, Any] = {"name": name, "type": kind, "null_count": int(values[0]),
                                 "approx_distinct": None if values[1] is None else int(values[1])}
        if kind in _NUMERIC or kind.startswith("DECIMAL"):
            stats.update(zip(("min", "max", "mean", "std"), values[2:], strict=True))
        elif kind == "VARCHAR":
            stats.update(zip(("min_length", "max_length", "mean_length"), values[2:], strict=True))
        elif n == 4:
            stats.update(min=values[2], max=values[3])
        out.append(stats)
    return out


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def read_ipc(data: bytes) -> pa.Table:
    """The table a worker sent back."""
    return pa.ipc.open_stream(data).read_all()


_TASKS: dict[str, Callable[..., Any]] = {"query": _query, "page": _page, "count": _count, "summarize": _summarize}


def _serve(conn: Any) -> None:
    """A worker's loop: run tasks under the address-space cap until the hub goes away."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", _TASKS[name](*args))
        except DatasetQueryError as exc:
            answer = ("query", (exc.message, exc.reason))
        except InvalidInputError as exc:
            answer = ("input", (exc.message, ""))
        except MemoryError:
            answer = ("query", (_out_of_memory().message, "memory"))
        except Exception as exc:  # reported, never a traceback: the hub logs nothing of a caller's SQL
            answer = ("query", (f"The query failed: {_first_line(exc)}", "sql"))
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(theirs,), daemon=True, name="vitrine-duckdb")
        self.proc.start()
        theirs.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


_idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
_started = 0
_pool_lock = threading.Lock()


def _acquire(wait_s: float) -> _Worker:
    global _started
    try:
        return _idle.get_nowait()
    except queue.Empty:
        pass
    with _pool_lock:
        if _started < WORKERS:
            _started += 1
            try:
                return _Worker()
            except BaseException:
                _started -= 1
                raise
    try:
        return _idle.get(timeout=wait_s)
    except queue.Empty:
        raise DatasetQueryError(f"The hub is running {WORKERS} dataset queries already; try again shortly.",
                                reason="busy") from None


def _discard(worker: _Worker) -> None:
    global _started
    worker.kill()
    with _pool_lock:
        _started -= 1


def run(task: str, *args: Any, timeout_s: float) -> Any:
    """Run sandbox task `task` (`query`, `page`, `count`, `summarize`) in a worker process; its answer.

    Raises:
        DatasetQueryError: the task's own refusal or failure, its worker running out of memory or time, or every
            worker busy for `timeout_s`.
        InvalidInputError: the task was given something malformed.
    """
    worker = _acquire(timeout_s)
    healthy = False
    try:
        worker.conn.send((task, args))
        if not worker.conn.poll(timeout_s + _GRACE_S):
            raise _timeout(timeout_s)
        status, payload = worker.conn.recv()
        healthy = True
    except (EOFError, OSError):  # the worker died: the kernel refused it memory past what it could handle
        raise _out_of_memory() from None
    finally:
        if healthy:
            _idle.put(worker)
        else:
            _discard(worker)
    if status == "ok":
        return payload
    message, reason = payload
    if status == "input":
        raise InvalidInputError(message)
    raise DatasetQueryError(message, reason=reason)
