"""Promotion: move an alias to a version only when the repo's policy says its evaluations are good enough.

A model repo declares its gates in a file it versions, `.vitrine/promotion.yaml` on its main branch:

    gates:
      production:                      # the alias this gate guards
        - dataset: acme/reviews        # evaluated on this dataset repo...
          revision: main               # ...at this revision (pinned to its commit when checked)
          split: test
          metric: f1_macro
          max_drop: 0.01               # at most this far below the alias's current target
          min: 0.80                    # and never below this (`max:` for metrics where lower is better)
          columns: {text: text, label: label}   # optional column mapping, as `vitrine eval --column`

Promotion runs (or reuses: equal inputs give the stored result) the evaluations each check names,
of the candidate and of the alias's current target, and refuses with the numbers when one fails.
`force` with a reason skips the gate and is logged as forced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from registry import aliases, jobs
from registry.aliases import AliasEvent
from registry.auth import Principal
from registry.core import Registry
from registry.errors import GateRefusedError, InvalidInputError
from registry.evaluation import EvalRequest, start_evaluation
from registry.names import parse_repo_id
from registry.repos import RepoRecord, open_repo, resolve_commit
from registry.versions import read_small

POLICY_PATH = ".vitrine/promotion.yaml"
POLICY_BRANCH = "main"
MAX_CHECKS = 20
# Metrics where a smaller value is the better one: the gate's bound is an upper one for these.
LOWER_IS_BETTER = frozenset({"wer", "cer", "mae", "rmse"})
_RULE_KEYS = {"dataset", "revision", "split", "metric", "max_drop", "min", "max", "columns"}


@dataclass(frozen=True)
class Rule:
    """One check of a gate: a metric of an evaluation, bounded absolutely and/or against the current target."""

    dataset: str
    metric: str
    revision: str = "main"
    split: str = "test"
    max_drop: float | None = None
    floor: float | None = None
    ceiling: float | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller value of the metric is better (error rates, regression errors)."""
        return self.metric in LOWER_IS_BETTER


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{POLICY_PATH}: {what} must be a number, got {value!r}.")
    return float(value)


def parse_policy(text: str) -> dict[str, list[Rule]]:
    """The gates of a policy file: alias -> its rules.

    Raises:
        InvalidInputError: the file is not YAML of the documented shape, naming what is wrong.
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{POLICY_PATH} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("gates", {}), dict):
        raise InvalidInputError(f"{POLICY_PATH} must be a mapping with a `gates:` mapping of alias -> checks.")
    gates: dict[str, list[Rule]] = {}
    for alias, items in (data.get("gates") or {}).items():
        aliases.check_alias_name(str(alias))
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CHECKS:
            raise InvalidInputError(f"{POLICY_PATH}: gate {alias!r} must be a list of 1 to {MAX_CHECKS} checks.")
        rules = []
        for n, item in enumerate(items, 1):
            where = f"check {n} of gate {alias!r}"
            if not isinstance(item, dict) or not isinstance(item.get("dataset"), str) \
                    or not isinstance(item.get("metric"), str):
                raise InvalidInputError(f"{POLICY_PATH}: {where} needs `dataset:` and `metric:`.")
            unknown = sorted(set(map(str, item)) - _RULE_KEYS)
            if unknown:
                raise InvalidInputError(f"{POLICY_PATH}: {where} has unknown keys {unknown} "
                                        f"(known: {sorted(_RULE_KEYS)}).")
            columns = item.get("columns") or {}
            if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
                raise InvalidInputError(f"{POLICY_PATH}: {where}: `columns` maps roles to column names.")
            rule = Rule(dataset=item["dataset"], metric=item["metric"], revision=str(item.get("revision", "main")),
                        split=str(item.get("split", "test")), max_drop=_number(item.get("max_drop"), "max_drop"),
                        floor=_number(item.get("min"), "min"), ceiling=_number(item.get("max"), "max"),
                        columns={str(k): v for k, v in columns.items()})
            if rule.max_drop is None and rule.floor is None and rule.ceiling is None:
                raise InvalidInputError(f"{POLICY_PATH}: {where} bounds nothing; give max_drop, min or max.")
            parse_repo_id(rule.dataset, "dataset")
            rules.append(rule)
        gates[str(alias)] = rules
    return gates


def read_policy(reg: Registry, repo: RepoRecord) -> tuple[str | None, dict[str, list[Rule]]]:
    """(commit of main the policy was read at, its gates); (None, {}) when main has no policy file."""
    from registry.repos import load_version

    try:
        commit, tree = load_version(reg, repo, POLICY_BRANCH)
    except LookupError:
        return None, {}
    raw = read_small(reg, tree, POLICY_PATH)
    if raw is None:
        return None, {}
    return commit.oid, parse_policy(raw.decode("utf-8", errors="replace"))


def _metric_of(job: jobs.Job, metric: str) -> tuple[float | None, str]:
    """(value, status) of `metric` in an evaluation job: the value once it succeeded."""
    if job.status != "succeeded":
        return None, job.status
    value = (job.result or {}).get("metrics", {}).get(metric)
    return (float(value), "succeeded") if isinstance(value, int | float) else (None, "succeeded")


def _evaluate(reg: Registry, principal: Principal | None, repo: RepoRecord, commit: str, rule: Rule,
              dataset_commit: str) -> dict[str, Any]:
    job, _cached = start_evaluation(reg, principal, EvalRequest(
        model=repo.ref.repo_id, model_revision=commit, dataset=rule.dataset, dataset_revision=dataset_commit,
        split=rule.split, mapping=dict(rule.columns)))
    if rule.metric not in job.params.get("metrics", []):
        raise InvalidInputError(
            f"{POLICY_PATH}: metric {rule.metric!r} is not computed for task {job.params.get('task')!r} "
            f"(metrics: {', '.join(m for m in job.params.get('metrics', []) if m != 'confusion_matrix')}).")
    value, status = _metric_of(job, rule.metric)
    return {"commit": commit, "eval": job.id, "status": status, "value": value, "error": job.error}


def _judge(rule: Rule, candidate: dict[str, Any], current: dict[str, Any] | None) -> tuple[bool | None, float | None,
                                                                                         str]:
    """(passed, bound, why): None while an evaluation is still running."""
    for side in (candidate, current):
        if side is not None and side["status"] in ("failed", "cancelled"):
            return False, None, f"evaluation {side['eval']} {side['status']}: {side['error'] or 'no reason given'}"
    if candidate["status"] != "succeeded" or (current is not None and current["status"] != "succeeded"):
        return None, None, "evaluation running"
    bounds = []
    if rule.lower_is_better:
        if rule.ceiling is not None:
            bounds.append(rule.ceiling)
        if rule.max_drop is not None and current is not None and current["value"] is not None:
            bounds.append(current["value"] + rule.max_drop)
        bound = min(bounds) if bounds else None
        ok = bound is None or (candidate["value"] is not None and candidate["value"] <= bound + 1e-12)
        sign = "<="
    else:
        if rule.floor is not None:
            bounds.append(rule.floor)
        if rule.max_drop is not None and current is not None and current["value"] is not None:
            bounds.append(current["value"] - rule.max_drop)
        bound = max(bounds) if bounds else None
        ok = bound is None or (candidate["value"] is not None and candidate["value"] >= bound - 1e-12)
        sign = ">="
    value = candidate["value"]
    shown = "missing" if value is None else f"{value:.4f}"
    why = f"{rule.metric} {shown} {sign} {bound:.4f}" if bound is not None else f"{rule.metric} {shown} (no bound)"
    if current is not None and current["value"] is not None:
        why += f" (current {current['value']:.4f}, delta {value - current['value']:+.4f})" if value is not None else ""
    return ok, bound, why


def check_gate(reg: Registry, principal: Principal | None, repo: RepoRecord, revision: str,
               alias: str) -> dict[str, Any]:
    """The verdict of `alias`'s gate on `revision`: starts (or reuses) the evaluations it needs, never waits.

    Returns a JSON object: `status` is "passed", "failed", "pending" (evaluations running: poll again)
    or "none" (the policy sets no gate for this alias), with every check's numbers.
    """
    candidate = resolve_commit(reg, repo, revision).oid
    current_alias = aliases.get_alias(reg, repo, alias)
    current = current_alias.commit_oid if current_alias else None
    policy_commit, gates = read_policy(reg, repo)
    verdict: dict[str, Any] = {"alias": alias, "candidate": candidate, "current": current,
                               "policy": {"path": POLICY_PATH, "commit": policy_commit} if policy_commit else None,
                               "checks": []}
    rules = gates.get(alias, [])
    for rule in rules:
        dataset_repo = open_repo(reg, parse_repo_id(rule.dataset, "dataset"), principal)
        dataset_commit = resolve_commit(reg, dataset_repo, rule.revision).oid
        cand = _evaluate(reg, principal, repo, candidate, rule, dataset_commit)
        base = None
        if rule.max_drop is not None and current is not None:
            base = cand if current == candidate else _evaluate(reg, principal, repo, current, rule, dataset_commit)
        passed, bound, why = _judge(rule, cand, base)
        verdict["checks"].append({
            "dataset": rule.dataset, "datasetCommit": dataset_commit, "split": rule.split, "metric": rule.metric,
            "maxDrop": rule.max_drop, "min": rule.floor, "max": rule.ceiling, "lowerIsBetter": rule.lower_is_better,
            "candidate": cand, "current": base, "bound": bound, "passed": passed, "summary": why,
        })
    results = [c["passed"] for c in verdict["checks"]]
    verdict["status"] = ("none" if not rules else "failed" if False in results
                         else "pending" if None in results else "passed")
    return verdict


def refusal_message(repo: RepoRecord, verdict: dict[str, Any]) -> str:
    """One readable paragraph: which checks failed, with their numbers."""
    failed = [c for c in verdict["checks"] if c["passed"] is False]
    lines = [f"{c['dataset']}@{c['datasetCommit'][:7]} {c['split']}: {c['summary']}" for c in failed]
    return (f"Promotion of {repo.ref.repo_id}@{verdict['candidate'][:7]} to {verdict['alias']!r} refused by "
            f"{POLICY_PATH}: " + "; ".join(lines) + ". Pass --force with --reason to override (it is logged).")


def promote(reg: Registry, principal: Principal | None, repo: RepoRecord, revision: str, alias: str, *,
            reason: str = "", force: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Move `alias` to `revision` if its gate passes (or `force` with a reason); the event carries the evidence.

    Returns `{"status": "promoted" | "pending" | "passed" | "failed" | "none", "gate": ..., "event": ...}`:
    "pending" while evaluations run (nothing moved; call again), and, with `dry_run`, the verdict alone.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not move this alias (checked before any evaluation).
        GateRefusedError: the gate failed; the refusal is logged, the alias stays where it was.
        InvalidInputError: `force` without a reason, or a malformed policy.
    """
    aliases.check_alias_name(alias)
    caller = aliases.check_can_move(reg, principal, repo, alias)
    if force and not reason.strip():
        raise InvalidInputError("A forced promotion needs a reason (--reason); it is kept in the audit log.")
    current = aliases.get_alias(reg, repo, alias)
    expected = current.commit_oid if current else None
    if force and not dry_run:
        event = aliases.move_alias(reg, caller, repo, alias, revision, reason=reason, action="promote", forced=True,
                                   evidence={"gate": "skipped: forced"}, expected=expected)
        return {"status": "promoted", "forced": True, "event": event.to_json(), "gate": None}
    verdict = check_gate(reg, caller, repo, revision, alias)
    if dry_run or verdict["status"] == "pending":
        return {"status": verdict["status"], "gate": verdict, "event": None}
    if verdict["status"] == "failed":
        _log_refusal(reg, caller, repo, alias, verdict, reason)
        raise GateRefusedError(refusal_message(repo, verdict), gate=verdict)
    moved: AliasEvent = aliases.move_alias(reg, caller, repo, alias, verdict["candidate"], reason=reason,
                                           action="promote", evidence={"gate": verdict}, expected=expected)
    return {"status": "promoted", "forced": False, "event": moved.to_json(), "gate": verdict}


def _log_refusal(reg: Registry, caller: Principal, repo: RepoRecord, alias: str, verdict: dict[str, Any],
                 reason: str) -> None:
    with reg.write().begin() as conn:
        aliases.record_event(conn, repo, alias, action="refused", actor=caller.user, from_oid=verdict["current"],
                             to_oid=verdict["candidate"], reason=reason.strip()[:aliases.MAX_REASON],
                             evidence={"gate": verdict})
