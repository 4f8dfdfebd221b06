"""`vitrine serve`, `token create`, `fsck` and `gc`: the commands that run on the hub's own home."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hub.cli.client import CliError
from registry.settings import Settings

if TYPE_CHECKING:
    from registry.core import Registry


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(home=getattr(args, "home", None), host=getattr(args, "host", None),
                             port=getattr(args, "port", None))


def _existing_registry(args: argparse.Namespace) -> Registry:
    """The registry of an existing home; maintenance commands never create one where a hub never ran."""
    from registry.core import Registry

    settings = _settings(args)
    if not settings.database_url and not (settings.home / "vitrine.db").exists():
        home = settings.home
        raise CliError(f"No Vitrine home at {home}: start it with `vitrine serve --home {home}` "
                       "or pass --home / set VITRINE_HOME.")
    return Registry(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the hub with uvicorn, creating its home on first start."""
    import uvicorn

    from hub.app import create_app

    settings = _settings(args)
    settings.home.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    print(f"Vitrine hub on http://{settings.host}:{settings.port}  (home: {settings.home})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create a token (and the user, and their org membership, when missing); prints it last."""
    from registry import auth

    reg = _existing_registry(args)
    if args.org_role and not args.org:
        raise ValueError("--org-role needs --org ORG.")
    token = auth.create_token(reg, args.user, role=args.role, org=args.org, name=args.name or "",
                              org_role=args.org_role)
    where = f" (member of {args.org}{', ' + args.org_role if args.org_role else ''})" if args.org else ""
    print(f"Created a {args.role} token for {args.user}{where}:")
    print(token)
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    """Verify every blob, tree, commit and ref; exit 1 on any problem."""
    from registry.maintenance import fsck

    report = fsck(_existing_registry(args), progress=not args.quiet)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    print(f"checked {report.blobs} blobs, {report.commits} commits, {report.refs} refs: "
          f"{'clean' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete blobs no commit references (older than the grace period) and stale partial uploads."""
    from registry.maintenance import gc

    reg = _existing_registry(args)
    grace = args.grace if args.grace is not None else reg.settings.gc_grace_seconds
    report = gc(reg, grace_seconds=grace, dry_run=args.dry_run, progress=not args.quiet)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(report.removed)} blobs ({report.freed_bytes} bytes) and {report.temp_files} partial uploads; "
          f"kept {report.kept} referenced blobs")
    return 0


def register(sub: Any) -> None:
    """Add `serve`, `token create`, `fsck` and `gc` to the `vitrine` parser."""

    def with_home(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", help="data directory (default: $VITRINE_HOME, else $XDG_DATA_HOME/vitrine "
                                      "or ~/.local/share/vitrine)")
        return p

    serve = with_home(sub.add_parser("serve", help="run the hub"))
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="manage tokens").add_subparsers(dest="token_command", required=True)
    create = with_home(token.add_parser("create", help="create a token"))
    create.add_argument("--user", required=True)
    create.add_argument("--role", required=True, choices=["read", "write"])
    create.add_argument("--org", help="organisation to add the user to")
    create.add_argument("--org-role", choices=["read", "write", "admin"],
                        help="the user's role in --org (default: write for a new member; an existing one keeps theirs)")
    create.add_argument("--name", help="a label for the token")
    create.set_defaults(func=cmd_token_create)

    fsck = with_home(sub.add_parser("fsck", help="verify blobs, trees, commits and refs"))
    fsck.add_argument("--quiet", action="store_true", help="no progress bar")
    fsck.set_defaults(func=cmd_fsck)

    gc = with_home(sub.add_parser("gc", help="remove unreferenced blobs"))
    gc.add_argument("--grace", type=int, help="keep unreferenced blobs younger than this many seconds")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--quiet", action="store_true", help="no progress bar")
    gc.set_defaults(func=cmd_gc)
