"""`vitrine migrate-storage`: copy a stopped hub's home (SQLite + local blobs) into PostgreSQL + S3, verified.

An offline operation, run on the hub's machine with the hub stopped (so there is no API route for it); the work is
`registry.migrate`. Interrupted, it is rerun with the same arguments and continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli.operate import _settings


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def cmd_migrate_storage(args: argparse.Namespace) -> int:
    """Copy the home's database and blobs to `--to` and `--storage`, verify them, print a summary."""
    from registry.migrate import migrate, redacted

    settings = _settings(args)
    if args.workers < 1:
        raise ValueError("--workers must be at least 1.")
    source_db = settings.effective_database_url
    source_store = settings.storage_url or f"file://{settings.blobs_dir}"
    print(f"Migrating {settings.home}\n  from {redacted(source_db)} + {source_store}\n"
          f"  to   {redacted(args.to)} + {args.storage}", flush=True)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        report = migrate(settings, database_url=args.to, storage_url=args.storage, progress=not args.quiet,
                         workers=args.workers, log=log)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    if report.already_done:
        return 0
    if report.resumed:
        print("Resumed an interrupted migration.")
    print(f"blobs: {report.blobs} ({_size(report.blob_bytes)}), every one re-hashed as the target stores it: "
          f"{report.copied} copied ({_size(report.copied_bytes)}), {report.rehashed} found there and re-hashed, "
          f"{report.skipped} verified by the earlier run")
    removed = sum(t.removed for t in report.tables)
    print(f"tables: {len(report.tables)}, {report.rows} rows copied and verified (count and digest of every table)"
          + (f"; {removed} rows the source no longer holds removed" if removed else ""))
    print(f"done in {report.seconds:.1f} s. Start the hub on the new storage with:\n"
          f"  VITRINE_DATABASE_URL={redacted(args.to)} VITRINE_STORAGE_URL={args.storage} vitrine serve")
    sys.stdout.flush()
    return 0


def register(sub: Any) -> None:
    """Add `migrate-storage` to the `vitrine` parser."""
    p = sub.add_parser("migrate-storage", help="copy a stopped hub's database and blobs to PostgreSQL + S3, verified")
    p.add_argument("--to", required=True, metavar="URL",
                   help="target database, an empty one: postgresql://user:pass@host:5432/db")
    p.add_argument("--storage", required=True, metavar="URL",
                   help="target blob storage: s3://bucket/prefix (endpoint, region, keys from AWS_*)")
    p.add_argument("--home", help="the hub's data directory (default: $VITRINE_HOME, else $XDG_DATA_HOME/vitrine "
                                  "or ~/.local/share/vitrine)")
    p.add_argument("--workers", type=int, default=4, help="blobs copied at once (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_migrate_storage)
