"""`vitrine aliases`, `vitrine promote` and `vitrine rollback`: move a model's aliases through the hub's gate."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hub.cli.client import CliError, add_client_args, endpoint_of, get_json, send_json, token_of

POLL_S = 0.5


def _repo(repo_id: str) -> str:
    if repo_id.count("/") != 1:
        raise CliError(f"Model {repo_id!r} must look like namespace/name.")
    return repo_id


def _short(oid: str | None) -> str:
    return oid[:12] if oid else "-"


def cmd_aliases(args: argparse.Namespace) -> int:
    """List a model's aliases (and with --history the audit log), or set, delete or protect one."""
    from rich.console import Console
    from rich.table import Table

    endpoint, token, repo = endpoint_of(args), token_of(args), _repo(args.repo)
    base = f"/api/models/{repo}/aliases"
    if args.set:
        alias, revision = args.set
        done = send_json(endpoint, token, "PUT", f"{base}/{alias}", body={"revision": revision, "reason": args.reason},
                         repo_id=repo)
        print(f"{alias} -> {done['event']['to']} (was {_short(done['event']['from'])})")
        return 0
    if args.delete:
        send_json(endpoint, token, "DELETE", f"{base}/{args.delete}", params={"reason": args.reason}, repo_id=repo)
        print(f"Deleted alias {args.delete} of {repo}.")
        return 0
    if args.protect or args.unprotect:
        alias = args.protect or args.unprotect
        done = send_json(endpoint, token, "PUT", f"{base}/{alias}/protection", body={"protected": bool(args.protect)},
                         repo_id=repo)
        print(f"Alias {alias} of {repo} is {'now' if done['protected'] else 'no longer'} protected.")
        return 0
    body = get_json(endpoint, token, base, params={"history": "1"} if args.history else {}, repo_id=repo)
    console = Console()
    table = Table("alias", "commit", "protected", "updated")
    for a in body["aliases"]:
        table.add_row(a["name"], a["commit"], "yes" if a["protected"] else "", _when(a["updatedAt"]))
    console.print(table if body["aliases"] else f"{repo} has no aliases yet (vitrine promote {repo} REV --to NAME).")
    if args.history:
        log = Table("when", "alias", "action", "from", "to", "by", "forced", "reason")
        for e in body["history"]:
            log.add_row(_when(e["createdAt"]), e["alias"], e["action"], _short(e["from"]), _short(e["to"]), e["actor"],
                        "yes" if e["forced"] else "", e["reason"])
        console.print(log)
    return 0


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def print_gate(gate: dict[str, Any] | None) -> None:
    """Print a gate verdict as a table of checks with their numbers."""
    from rich.console import Console
    from rich.table import Table

    if not gate or not gate.get("checks"):
        print("No gate for this alias (the repo's .vitrine/promotion.yaml sets none).")
        return
    table = Table("dataset", "split", "metric", "candidate", "current", "bound", "result")
    for c in gate["checks"]:
        cur = c["current"] or {}
        table.add_row(f"{c['dataset']}@{c['datasetCommit'][:7]}", c["split"], c["metric"],
                      _num(c["candidate"]["value"]), _num(cur.get("value")), _num(c["bound"]),
                      {True: "pass", False: "FAIL", None: "running"}[c["passed"]])
    Console().print(table)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _wait_for(endpoint: str, token: str | None, gate: dict[str, Any], quiet: bool) -> None:
    """Show one progress bar per evaluation the gate is waiting for, until they all end."""
    from tqdm import tqdm

    ids = [side["eval"] for c in gate["checks"] for side in (c["candidate"], c["current"])
           if side and side["status"] in ("queued", "running")]
    for job_id in dict.fromkeys(ids):
        bar = tqdm(unit="row", desc=f"gate evaluation {job_id[:8]}", disable=quiet)
        try:
            while True:
                job = get_json(endpoint, token, f"/api/vitrine/evals/{job_id}", params={})
                bar.total = job["progress"]["total"] or bar.total
                bar.update(job["progress"]["done"] - bar.n)
                if job["status"] not in ("queued", "running"):
                    break
                time.sleep(POLL_S)
        finally:
            bar.close()


def cmd_promote(args: argparse.Namespace) -> int:
    """Promote a revision to an alias: run the gate's evaluations with progress, then move it or print why not."""
    endpoint, token, repo = endpoint_of(args), token_of(args), _repo(args.repo)
    body = {"revision": args.revision, "alias": args.to, "reason": args.reason or "", "force": args.force,
            "dryRun": args.dry_run}
    while True:
        try:
            outcome = send_json(endpoint, token, "POST", f"/api/models/{repo}/promote", body=body, repo_id=repo)
        except CliError as exc:
            if isinstance(exc.body, dict) and exc.body.get("gate"):
                print_gate(exc.body["gate"])  # the refusal's numbers, before its one-line reason
            raise
        if outcome["status"] != "pending":
            break
        _wait_for(endpoint, token, outcome["gate"], args.quiet)
    if args.dry_run:
        print_gate(outcome["gate"])
        print(f"Gate verdict for {repo}@{args.revision} -> {args.to}: {outcome['status']}")
        return 0 if outcome["status"] in ("passed", "none") else 1
    if not outcome.get("forced"):
        print_gate(outcome["gate"])
    event = outcome["event"]
    print(f"Promoted {repo}@{_short(event['to'])} to {args.to} (was {_short(event['from'])})"
          + (" — forced, logged with the reason given" if outcome.get("forced") else ""))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Return an alias to its previous target."""
    endpoint, token, repo = endpoint_of(args), token_of(args), _repo(args.repo)
    done = send_json(endpoint, token, "POST", f"/api/models/{repo}/rollback",
                     body={"alias": args.alias, "reason": args.reason or ""}, repo_id=repo)
    event = done["event"]
    print(f"Rolled back {args.alias} of {repo}: {_short(event['from'])} -> {_short(event['to'])}")
    return 0


def register(sub: Any) -> None:
    """Add `aliases`, `promote` and `rollback` to the `vitrine` parser."""
    p = add_client_args(sub.add_parser("aliases", help="list, set, delete or protect a model's aliases"))
    p.add_argument("repo", help="model repo, namespace/name")
    p.add_argument("--history", action="store_true", help="also print the audit log")
    p.add_argument("--set", nargs=2, metavar=("ALIAS", "REVISION"), help="point ALIAS at REVISION (no gate)")
    p.add_argument("--delete", metavar="ALIAS")
    p.add_argument("--protect", metavar="ALIAS", help="only the organisation's admins may move ALIAS")
    p.add_argument("--unprotect", metavar="ALIAS")
    p.add_argument("--reason", default="", help="why, kept in the audit log")
    p.set_defaults(func=cmd_aliases)

    p = add_client_args(sub.add_parser("promote", help="move an alias to a revision through the repo's gate"))
    p.add_argument("repo", help="model repo, namespace/name")
    p.add_argument("revision", help="branch, tag, alias or commit to promote")
    p.add_argument("--to", default="production", help="the alias to move (default: production)")
    p.add_argument("--reason", help="why, kept in the audit log (required with --force)")
    p.add_argument("--force", action="store_true", help="skip the gate (logged as forced)")
    p.add_argument("--dry-run", action="store_true", help="print the gate's verdict, move nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_promote)

    p = add_client_args(sub.add_parser("rollback", help="return an alias to its previous target"))
    p.add_argument("repo", help="model repo, namespace/name")
    p.add_argument("--alias", default="production")
    p.add_argument("--reason", help="why, kept in the audit log")
    p.set_defaults(func=cmd_rollback)
