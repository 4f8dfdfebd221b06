"""`vitrine endpoint serve`: one model's alias as a standalone inference server, reading the hub's own home."""

from __future__ import annotations

import argparse
from typing import Any

import json
from pathlib import Path

from hub.cli.client import CliError, add_client_args, endpoint_of, get_json, send_json, token_of


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


def _base(args: argparse.Namespace) -> str:
    if args.repo.count("/") != 1:
        raise CliError(f"Model {args.repo!r} must look like namespace/name.")
    return f"/api/models/{args.repo}/endpoints/{args.alias}"


def cmd_traffic(args: argparse.Namespace) -> int:
    """Show, or set, the canary or shadow of an alias's endpoint."""
    endpoint, token = endpoint_of(args), token_of(args)
    if args.canary or args.shadow or args.off:
        body: dict[str, Any] = {"mode": "off", "reason": args.reason}
        if args.canary:
            body.update(mode="canary", target=args.canary, share=args.share)
        elif args.shadow:
            body.update(mode="shadow", target=args.shadow)
        rule = send_json(endpoint, token, "PUT", f"{_base(args)}/traffic", body=body, repo_id=args.repo)
    else:
        rule = get_json(endpoint, token, f"{_base(args)}/traffic", params={}, repo_id=args.repo)
    if rule["mode"] == "off":
        print(f"{args.repo}@{args.alias}: all traffic to {args.alias}, no shadow.")
    elif rule["mode"] == "canary":
        print(f"{args.repo}@{args.alias}: {rule['share']:.0%} of requests answered by {rule['target']}.")
    else:
        print(f"{args.repo}@{args.alias}: every request mirrored to {rule['target']} (answers from {args.alias}).")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """Run read-only SQL over the endpoint's prediction log (table `log`) and print the rows."""
    from rich.console import Console
    from rich.table import Table

    result = send_json(endpoint_of(args), token_of(args), "POST", f"{_base(args)}/log/sql",
                       body={"sql": args.sql, "limit": args.limit}, repo_id=args.repo)
    table = Table(*result["columns"])
    for row in result["rows"]:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)
    if result["truncated"]:
        print(f"(cut at {len(result['rows'])} rows)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print how often the canary or shadow agreed with the alias's version, and their confusion."""
    report = get_json(endpoint_of(args), token_of(args), f"{_base(args)}/comparison",
                      params={"window": str(args.window)}, repo_id=args.repo)
    agreement = report["agreement"]
    print(f"{args.alias} vs {report['other'] or '-'}: {report['compared']} inputs compared, agreement "
          f"{'-' if agreement is None else f'{agreement:.1%}'}; {report['failed']} failed on one side")
    for mine, theirs in report["confusion"].items():
        print(f"  {args.alias}={mine}: " + ", ".join(f"{report['other']}={k}: {v}" for k, v in theirs.items()))
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    """Print the drift report of the window against the baseline evaluation; exit 1 when drifted."""
    from rich.console import Console
    from rich.table import Table

    params = {"window": str(args.window), **({"eval": args.eval} if args.eval else {})}
    report = get_json(endpoint_of(args), token_of(args), f"{_base(args)}/drift", params=params, repo_id=args.repo,
                      progress="computing drift")
    base = report["baseline"]
    print(f"{args.repo}@{args.alias} ({report['commit'][:12]}): {report['live']['rows']} live answers vs evaluation "
          f"{base['eval']} on {base['dataset']}@{base['datasetCommit'][:7]} {base['split']} ({base['rows']} rows)")
    table = Table("feature", "test", "statistic", "p", "PSI", "band", "drifted")
    for f in report["features"]:
        table.add_row(f["name"], f["test"], f"{f['statistic']:.4f}", f"{f['pvalue']:.4g}", f"{f['psi']:.4f}",
                      f["band"], "DRIFT" if f["drifted"] else "")
    Console().print(table)
    print(f"status: {report['status']}" + (f" ({', '.join(report['drifted'])})" if report["drifted"] else ""))
    return 1 if report["status"] == "drifted" else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """Post ground truth from a JSON Lines file of {"requestId": ..., "label": ...}."""
    try:
        lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        labels = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise CliError(f"Cannot read {args.file}: {exc}") from None
    done = send_json(endpoint_of(args), token_of(args), "POST", f"{_base(args)}/feedback", body={"labels": labels},
                     repo_id=args.repo)
    print(f"Stored {done['stored']} labels.")
    return 0


def cmd_accuracy(args: argparse.Namespace) -> int:
    """Print live metrics over the answers that have ground truth, per commit served."""
    report = get_json(endpoint_of(args), token_of(args), f"{_base(args)}/accuracy",
                      params={"window": str(args.window)}, repo_id=args.repo)
    print(f"{report['labelled']} labelled answers in the last {report['windowSeconds']:.0f} s")
    for commit, item in report["commits"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in item["metrics"].items() if isinstance(v, float))
        print(f"  {commit[:12]} ({item['rows']} rows): {shown}")
    return 0


def register(sub: Any) -> None:
    """Add `endpoint serve|traffic|log|compare|drift|feedback|accuracy` to the `vitrine` parser."""
    group = sub.add_parser("endpoint", help="inference endpoints").add_subparsers(dest="endpoint_command",
                                                                                 required=True)

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = add_client_args(group.add_parser(name, help=help))
        p.add_argument("repo", help="model repo, namespace/name")
        p.add_argument("--alias", default="production", help="the endpoint's alias (default: production)")
        return p

    p = client("traffic", "show or set the endpoint's canary or shadow")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--canary", metavar="ALIAS", help="answer a share of requests with ALIAS")
    mode.add_argument("--shadow", metavar="ALIAS", help="mirror every request to ALIAS, never answering with it")
    mode.add_argument("--off", action="store_true", help="no canary, no shadow")
    p.add_argument("--share", type=float, default=0.1, help="the canary's share of requests (default 0.1)")
    p.add_argument("--reason", default="", help="why, kept in the audit log")
    p.set_defaults(func=cmd_traffic)
    p = client("log", "read-only SQL over the prediction log (table `log`)")
    p.add_argument("sql")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_log)
    p = client("compare", "agreement of the canary or shadow with the alias's version")
    p.add_argument("--window", type=float, default=3600, help="seconds of traffic (default 3600)")
    p.set_defaults(func=cmd_compare)
    p = client("drift", "drift of live traffic against an evaluation of the commit served")
    p.add_argument("--window", type=float, default=3600, help="seconds of traffic (default 3600)")
    p.add_argument("--eval", help="the baseline evaluation id (default: the latest of the commit served)")
    p.set_defaults(func=cmd_drift)
    p = client("feedback", "post ground truth for logged requests")
    p.add_argument("file", help='JSON Lines: {"requestId": "<X-Request-Id>", "label": "..."} per line')
    p.set_defaults(func=cmd_feedback)
    p = client("accuracy", "live metrics over requests with ground truth")
    p.add_argument("--window", type=float, default=3600)
    p.set_defaults(func=cmd_accuracy)

    p = group.add_parser("serve", help="serve a model's alias as a standalone endpoint")
    p.add_argument("repo", help="model repo, namespace/name")
    p.add_argument("--alias", default="production", help="the alias to follow (default: production)")
    p.add_argument("--home", help="the hub's data directory (default: $VITRINE_HOME)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_endpoint_serve)
