"""`vitrine endpoint serve`: one model's alias as a standalone inference server, reading the hub's own home."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli.client import CliError


def cmd_endpoint_serve(args: argparse.Namespace) -> int:
    """Serve `repo`'s alias on its own port; it follows the alias (hot swap) like the hub's endpoints."""
    import uvicorn

    from hub.app import RequestGuard
    from hub.cli.operate import _existing_registry
    from hub.endpoints.app import EndpointApp
    from hub.endpoints.serving import Endpoint
    from registry import aliases
    from registry.names import parse_repo_id
    from registry.repos import get_repo

    reg = _existing_registry(args)
    ref = parse_repo_id(args.repo, "model")
    if aliases.get_alias(reg, get_repo(reg, ref), args.alias) is None:
        raise CliError(f"{args.repo} has no alias {args.alias!r}; promote a version first "
                       f"(vitrine promote {args.repo} REVISION --to {args.alias}).")
    endpoint = Endpoint(reg, ref, args.alias)
    app = RequestGuard(EndpointApp(endpoint))
    print(f"Endpoint {args.repo}@{args.alias} on http://{args.host}:{args.port}  (loading; GET /ready tells when)",
          flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    finally:
        endpoint.close()
    return 0


def register(sub: Any) -> None:
    """Add `endpoint serve` to the `vitrine` parser."""
    group = sub.add_parser("endpoint", help="inference endpoints").add_subparsers(dest="endpoint_command",
                                                                                 required=True)
    p = group.add_parser("serve", help="serve a model's alias as a standalone endpoint")
    p.add_argument("repo", help="model repo, namespace/name")
    p.add_argument("--alias", default="production", help="the alias to follow (default: production)")
    p.add_argument("--home", help="the hub's data directory (default: $VITRINE_HOME)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_endpoint_serve)
