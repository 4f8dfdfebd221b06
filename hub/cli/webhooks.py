"""`vitrine webhook add|list|remove|deliveries|replay`: manage webhooks on a hub over HTTP."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hub.cli.client import CliError, add_client_args, endpoint_of, get_json, send_json, token_of

BASE = "/api/vitrine/webhooks"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _target(hook: dict[str, Any]) -> str:
    target = hook["target"]
    if target["type"] == "repo":
        return f"{target['repoType']}s/{target['repo']}"
    return f"namespace {target['namespace']}"


def cmd_add(args: argparse.Namespace) -> int:
    """Register a webhook on a repo (--repo) or a whole namespace (--namespace)."""
    if bool(args.repo) == bool(args.namespace):
        raise CliError("Give exactly one of --repo owner/name and --namespace NS.")
    kinds = [k.strip() for k in args.events.split(",") if k.strip()]
    body: dict[str, Any] = {"url": args.url, "secret": args.secret, "events": kinds}
    if args.repo:
        body.update(repo=args.repo, repoType=args.repo_type)
    else:
        body["namespace"] = args.namespace
    if args.owner:
        body["owner"] = args.owner
    made = send_json(endpoint_of(args), token_of(args), "POST", BASE, body=body, repo_id=args.repo)
    print(f"Webhook {made['id']} ({made['owner']}) on {_target(made)}: {', '.join(made['events'])} -> {made['url']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List your webhooks and those of the organisations you administer."""
    from rich.console import Console
    from rich.table import Table

    found = get_json(endpoint_of(args), token_of(args), BASE, params={})
    if not found:
        print("No webhooks yet (vitrine webhook add URL --repo owner/name --events repo.content --secret S).")
        return 0
    table = Table("id", "owner", "target", "events", "url", "active", "created")
    for h in found:
        table.add_row(str(h["id"]), h["owner"], _target(h), ", ".join(h["events"]), h["url"],
                      "yes" if h["active"] else "no", _when(h["createdAt"]))
    Console().print(table)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove a webhook (and its delivery log)."""
    send_json(endpoint_of(args), token_of(args), "DELETE", f"{BASE}/{args.id}")
    print(f"Removed webhook {args.id}.")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    """Print a webhook's delivery log, newest first."""
    from rich.console import Console
    from rich.table import Table

    found = get_json(endpoint_of(args), token_of(args), f"{BASE}/{args.id}/deliveries",
                     params={"limit": str(args.limit)})
    if not found:
        print(f"Webhook {args.id} has no deliveries yet.")
        return 0
    table = Table("id", "event", "status", "attempts", "last code", "last error", "created", "replay of")
    for d in found:
        table.add_row(str(d["id"]), d["event"], d["status"], str(d["attempts"]),
                      str(d["lastStatusCode"] or "-"), (d["lastError"] or "")[:80], _when(d["createdAt"]),
                      str(d["replayOf"] or ""))
    Console().print(table)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Send an earlier delivery's payload again."""
    made = send_json(endpoint_of(args), token_of(args), "POST",
                     f"{BASE}/{args.id}/deliveries/{args.delivery_id}/replay")
    print(f"Queued delivery {made['id']} (replay of {made['replayOf']}) of webhook {args.id}.")
    return 0


def register(sub: Any) -> None:
    """Add `webhook` (add, list, remove, deliveries, replay) to the `vitrine` parser."""
    group = sub.add_parser("webhook", help="manage webhooks: repo events POSTed, signed, to a URL")
    cmds = group.add_subparsers(dest="webhook_command", required=True)

    p = add_client_args(cmds.add_parser("add", help="register a webhook on a repo or a namespace"))
    p.add_argument("url", help="where the hub POSTs the events (http or https)")
    p.add_argument("--repo", help="the repo to watch, owner/name")
    p.add_argument("--repo-type", default="model", choices=["model", "dataset", "space"])
    p.add_argument("--namespace", help="watch every repo of this user or organisation instead")
    p.add_argument("--events", required=True,
                   help="comma-separated kinds: repo.content, repo.refs, alias.moved, promotion.refused, "
                        "evaluation.finished, drift.detected")
    p.add_argument("--secret", required=True, help="signs each body (X-Webhook-Signature: sha256=HMAC)")
    p.add_argument("--owner", help="an organisation you administer that owns the webhook (default: you)")
    p.set_defaults(func=cmd_add)

    p = add_client_args(cmds.add_parser("list", help="your webhooks and your organisations'"))
    p.set_defaults(func=cmd_list)

    p = add_client_args(cmds.add_parser("remove", help="remove a webhook"))
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_remove)

    p = add_client_args(cmds.add_parser("deliveries", help="a webhook's delivery log"))
    p.add_argument("id", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_deliveries)

    p = add_client_args(cmds.add_parser("replay", help="send a delivery's payload again"))
    p.add_argument("id", type=int)
    p.add_argument("delivery_id", type=int)
    p.set_defaults(func=cmd_replay)
