"""`vitrine dataset import`, `dataset sql` and `dataset splits`: datasets from the command line.

`import` converts on this machine with DuckDB (registry/datasetimport.py) and commits the shards and the
card through huggingface_hub, as any user could script it; `sql` and `splits` call the hub's dataset API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hub.cli.client import CliError, add_client_args, endpoint_of, send_json, token_of

# `vitrine --help` stays quick: DuckDB, pyarrow and the registry load when a dataset command runs.
Progress = Callable[[str, float], None]

_STAGES = {"convert": "Converting"}


def _repo_and_revision(spec: str) -> tuple[str, str, str]:
    """`acme/reviews@v1` -> (`acme/reviews`, `v1`, its API path); no `@` means `main`."""
    from registry.names import parse_repo_id

    repo_id, _, revision = spec.partition("@")
    ref = parse_repo_id(repo_id, "dataset")
    return ref.repo_id, revision or "main", f"/api/vitrine/datasets/{ref.namespace}/{ref.name}"


@contextmanager
def _progress_bars(label: str) -> Iterator[Progress]:
    """A tqdm bar per conversion stage (shown on a terminal only)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def report(stage: str, done: float) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(total=100, desc=f"{_STAGES.get(stage, stage)} {label}", unit="%", disable=None,
                               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        bars[stage].n = round(done * 100, 1)
        bars[stage].refresh()

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a file or DuckDB table into one split of a dataset repo in the Hub's layout, and commit it."""
    from registry.datalayout import check_split_name
    from registry.datasetimport import parse_size, parse_source
    from registry.datasetpush import import_split
    from registry.names import parse_repo_id

    source = parse_source(args.source, format=args.format)
    check_split_name(args.split)
    ref = parse_repo_id(args.repo_id, "dataset")
    options: dict[str, Any] = {"max_shard_bytes": parse_size(args.max_shard_bytes), "threads": args.threads}
    if args.row_group_size is not None:
        options["row_group_size"] = args.row_group_size
    if args.memory_limit is not None:
        options["memory_limit"] = args.memory_limit
    endpoint, token = endpoint_of(args), token_of(args)

    def make_api() -> Any:  # called in the upload thread: huggingface_hub loads while the conversion starts
        from huggingface_hub import HfApi

        return HfApi(endpoint=endpoint, token=token)

    with _progress_bars(source.label) as progress:
        done = import_split(make_api, source, ref.repo_id, split=args.split, revision=args.revision,
                            private=args.private, message=args.message, work_dir=args.work_dir, progress=progress,
                            **options)
    print(f"Imported {done.num_rows:,} rows of {source.label} into {done.repo_id}@{done.revision} as split "
          f"{done.split!r} ({done.files} file(s), {done.size / 2**20:.1f} MiB): commit {done.commit}")
    print(f'Load it with:  datasets.load_dataset("{done.repo_id}", split="{done.split}")')
    print(f'Query it with: vitrine dataset sql {done.repo_id} "SELECT count(*) FROM {done.split}"')
    # Done and committed: leave without the interpreter's teardown of DuckDB, pyarrow and huggingface_hub
    # (freeing every object they made, 0.15 to 0.4 s here), as mypy's CLI does. Nothing is left to flush but
    # the output, and the temp directory is gone already.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one read-only SELECT on a dataset revision, its splits as views, and print the rows as a table."""
    repo_id, revision, path = _repo_and_revision(args.repo)
    body: dict[str, Any] = {"sql": args.sql, "revision": revision}
    if args.limit is not None:
        body["limit"] = args.limit
    if args.timeout is not None:
        body["timeout_s"] = args.timeout
    result = send_json(endpoint_of(args), token_of(args), "POST", f"{path}/sql", body=body, repo_id=repo_id,
                       progress=f"Querying {repo_id}@{revision} on the hub")
    if args.json:
        print(json.dumps(result))
        return 0
    _print_rows(result, note=(f"{len(result['rows'])} rows shown; there are more (limit {result['limit']}): "
                              "raise --limit, or aggregate") if result["truncated"] else
                f"{len(result['rows'])} row(s) in {result['elapsed_s']:.3f} s")
    return 0


def _print_rows(result: dict[str, Any], *, note: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*[escape(c["name"]) for c in result["columns"]])
    for row in result["rows"]:
        table.add_row(*["" if v is None else escape(v if isinstance(v, str) else json.dumps(v)) for v in row])
    console = Console()
    console.print(table)
    console.print(note, markup=False, highlight=False)


def cmd_splits(args: argparse.Namespace) -> int:
    """List the splits of a dataset revision: rows, files and columns."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    repo_id, revision, path = _repo_and_revision(args.repo)
    result = send_json(endpoint_of(args), token_of(args), "GET", f"{path}/splits", params={"revision": revision},
                       repo_id=repo_id)
    if not result["splits"]:
        raise CliError(f"{repo_id}@{revision} has no parquet data files. Add a split with: "
                       f"vitrine dataset import FILE {repo_id} --split train")
    table = Table("split", "rows", "files", "columns")
    for split in result["splits"]:
        columns = ", ".join(f"{c['name']}: {c['type']}" for c in split["columns"])
        table.add_row(escape(split["name"]), f"{split['num_rows']:,}", str(len(split["files"])), escape(columns))
    Console().print(table)
    return 0


def register(sub: Any) -> None:
    """Add `dataset import`, `dataset sql` and `dataset splits` to the `vitrine` parser."""
    group = sub.add_parser("dataset", help="dataset repos: import, query").add_subparsers(dest="dataset_command",
                                                                                         required=True)
    imp = add_client_args(group.add_parser(
        "import", help="convert a CSV, Parquet, JSON Lines file or DuckDB table into a split of a dataset repo"))
    imp.add_argument("source", help="FILE (.csv .tsv .parquet .jsonl .json, .gz too), a URI, or DB.duckdb::TABLE")
    imp.add_argument("repo_id", help="dataset repo, e.g. acme/reviews (created if missing)")
    imp.add_argument("--split", default="train", help="split name (default train)")
    imp.add_argument("--revision", default="main", help="branch to commit to (default main)")
    imp.add_argument("--format", choices=["csv", "parquet", "json", "duckdb"], help="override the format the name says")
    imp.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its own)")
    imp.add_argument("--max-shard-bytes", default="64MB", help="start a new shard before this size (default 64MB)")
    imp.add_argument("--row-group-size", type=int, default=None, help="rows per parquet row group (default 100000)")
    imp.add_argument("--memory-limit", default=None,
                     help="DuckDB memory limit while converting; it spills to --work-dir past it (default 384MB)")
    imp.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    imp.add_argument("--work-dir", default=None, help="where shards are written before upload (default: temp dir)")
    imp.add_argument("--message", default=None, help="commit message")
    imp.set_defaults(func=cmd_import)

    sql = add_client_args(group.add_parser("sql", help="run one read-only SELECT on a dataset revision"))
    sql.add_argument("repo", help="dataset repo, optionally @revision: acme/reviews@main")
    sql.add_argument("sql", help='one SELECT; splits are views, e.g. "SELECT lang, count(*) FROM test GROUP BY lang"')
    sql.add_argument("--limit", type=int, default=None, help="rows to return (default and cap: the hub's)")
    sql.add_argument("--timeout", type=float, default=None, help="seconds before the hub interrupts the query")
    sql.add_argument("--json", action="store_true", help="print the hub's JSON answer instead of a table")
    sql.set_defaults(func=cmd_sql)

    splits = add_client_args(group.add_parser("splits", help="list the splits of a dataset revision"))
    splits.add_argument("repo", help="dataset repo, optionally @revision: acme/reviews@main")
    splits.set_defaults(func=cmd_splits)
