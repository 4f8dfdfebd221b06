"""The Promote page: a model's aliases, the gate's verdict for a candidate, promotion, rollback and the audit log."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from apps.console.client import GateRefusedError, HubError
from apps.console.common import Hub, attempt, explain, paged_table, pick, query, revisions

POLL_S = 0.5
GATE_TIMEOUT_S = 900.0
RECENT_COMMITS = 20


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Promote")
    found = attempt(lambda: [m.id for m in hub.api.list_models(sort="last_modified", limit=500)])
    if found is None:
        return
    if not found:
        st.info("No models yet. Push one with `hf upload <namespace>/<name> ./folder .` first.")
        return
    repo_id = pick("Model", found, key="promote_repo", default=query("repo"))
    aliases_box, audit_box = st.container(), st.container()  # filled last, so they show what the buttons just did
    candidates = candidate_revisions(hub, repo_id)
    if candidates is None:
        return
    cols = st.columns(2)
    with cols[0]:
        revision = pick("Candidate revision", candidates, key="promote_revision", default=query("revision"))
    alias = cols[1].text_input("Target alias", "production", key="promote_alias").strip() or "production"
    verdict_key = f"{repo_id}|{revision}|{alias}"
    if st.button("Check gate", key="promote_check"):
        outcome = _until_settled(lambda: hub.client.promote(repo_id, revision, alias=alias, dry_run=True), hub)
        if outcome is not None:
            st.session_state["promote_verdict"] = {"key": verdict_key, "outcome": outcome}
    saved = st.session_state.get("promote_verdict") or {}
    outcome = saved.get("outcome") if saved.get("key") == verdict_key else None
    if outcome is not None:
        show_verdict(outcome.get("gate"), str(outcome.get("status")))
    force = st.checkbox("Force (skip a failing gate; needs a reason, and is logged)", key="promote_force")
    reason = st.text_input("Reason", "", key="promote_reason").strip()
    gate_ok = outcome is not None and outcome.get("status") in ("passed", "none")
    if force and not reason:
        st.warning("A forced promotion needs a reason.")
    allowed = (gate_ok and not force) or (force and bool(reason))
    if outcome is None and not force:
        st.caption("Check the gate first: Promote unlocks once it passes (or the repo has no gate).")
    if st.button(f"Promote to {alias}", type="primary", disabled=not allowed, key="promote_go"):
        _promote(hub, repo_id, revision, alias, reason, force)
    st.subheader("Rollback")
    rb_reason = st.text_input("Rollback reason", "", key="promote_rollback_reason").strip()
    if st.button(f"Roll back {alias}", key="promote_rollback"):
        event = attempt(lambda: hub.client.rollback(repo_id, alias=alias, reason=rb_reason))
        if event is not None:
            ev = event.get("event") or {}
            st.success(f"Rolled back {alias}: {str(ev.get('from') or '')[:10]} → {str(ev.get('to') or '')[:10]}.")
            st.session_state.pop("promote_verdict", None)
    listing = attempt(lambda: hub.client.aliases(repo_id, history=True))
    if listing is None:
        return
    with aliases_box:
        show_aliases(listing.get("aliases") or [])
    with audit_box:
        show_audit(listing.get("history") or [])


def candidate_revisions(hub: Hub, repo_id: str) -> list[str] | None:
    """Branches and tags of the repo, then its recent commit ids (a URL's `?revision=` too); None on error."""
    refs = attempt(lambda: revisions(hub, repo_id, "model"))
    if refs is None:
        return None
    page = attempt(lambda: hub.client.commits(repo_id, revision="main", limit=RECENT_COMMITS)) if "main" in refs else None
    commits = [c["id"] for c in (page[0] if page else [])]
    options = [*refs, *[c for c in commits if c not in refs]]
    wanted = query("revision")
    if wanted and wanted not in options:
        options.append(wanted)
    return options


def show_aliases(rows: list[dict[str, Any]]) -> None:
    """The aliases table: name, commit, protected, when it last moved."""
    st.subheader("Aliases")
    if not rows:
        st.info("No aliases yet: promote a revision to create `production`.")
        return
    st.dataframe([{"alias": a.get("name"), "commit": a.get("commit"), "protected": bool(a.get("protected")),
                   "updated": a.get("updatedAt")} for a in rows], width="stretch")


def show_audit(events: list[dict[str, Any]]) -> None:
    """The audit log, newest first: who moved which alias, from, to, why, forced or not."""
    st.subheader("Audit log")
    if not events:
        st.caption("No alias has moved yet.")
        return
    paged_table([{"when": e.get("createdAt"), "alias": e.get("alias"), "action": e.get("action"),
                  "from": str(e.get("from") or "")[:10], "to": str(e.get("to") or "")[:10],
                  "actor": e.get("actor"), "reason": e.get("reason") or "", "forced": bool(e.get("forced"))}
                 for e in events], key="promote_audit_page")


def show_verdict(gate: dict[str, Any] | None, status: str) -> None:
    """The gate's verdict: its status, the policy it applied, and every check with its numbers."""
    if not gate or status == "none" or not gate.get("checks"):
        st.info("No gate for this alias (no policy file in the repo): the promotion is not checked.")
        return
    policy = gate.get("policy") or {}
    where = f" (policy `{policy.get('path')}` @ {str(policy.get('commit') or '')[:10]})" if policy else ""
    current = str(gate.get("current") or "")[:10] or "nothing yet"
    line = f"Gate **{status}**{where}: candidate {str(gate.get('candidate') or '')[:10]} against {current}."
    if status == "passed":
        st.success(line)
    elif status == "failed":
        st.error(line)
    else:
        st.info(line)
    st.dataframe(verdict_rows(gate), width="stretch")


def verdict_rows(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check: dataset, split, metric, candidate and current values, bound, pass/FAIL/running."""
    rows = []
    for c in gate.get("checks") or []:
        cand, cur = c.get("candidate") or {}, c.get("current") or {}
        passed = c.get("passed")
        result = "pass" if passed is True else "FAIL" if passed is False else "running"
        rows.append({"dataset": f"{c.get('dataset')}@{str(c.get('datasetCommit') or '')[:7]}",
                     "split": c.get("split"), "metric": c.get("metric"),
                     "candidate": cand.get("value"), "current": cur.get("value") if cur else None,
                     "bound": c.get("bound"), "result": result,
                     "summary": c.get("summary") or cand.get("error") or cur.get("error") or ""})
    return rows


def gate_progress(hub: Hub, gate: dict[str, Any] | None) -> tuple[int, int]:
    """Examples done and to do over every evaluation the gate waits on."""
    done = total = 0
    for check in (gate or {}).get("checks") or []:
        for side in (check.get("candidate"), check.get("current")):
            job_id = (side or {}).get("eval")
            if not job_id:
                continue
            try:
                progress = hub.client.evaluation(job_id).get("progress") or {}
            except HubError:
                continue
            done, total = done + int(progress.get("done") or 0), total + int(progress.get("total") or 0)
    return done, total


def _until_settled(call: Any, hub: Hub) -> dict[str, Any] | None:
    """Call promote until the gate is no longer pending, with a progress bar; None (error shown) on failure."""
    bar = None
    deadline = time.time() + GATE_TIMEOUT_S
    while True:
        try:
            outcome = dict(call())
        except GateRefusedError as exc:
            st.error(str(exc))
            return {"status": "failed", "gate": exc.gate, "refused": str(exc)}
        except Exception as exc:  # noqa: BLE001  # shown as the hub's message, never a traceback
            st.error(explain(exc))
            return None
        if outcome.get("status") != "pending":
            if bar is not None:
                bar.empty()
            return outcome
        done, total = gate_progress(hub, outcome.get("gate"))
        text = f"Gate evaluations running: {done}/{total} examples" if total else "Gate evaluations queued"
        if bar is None:
            bar = st.progress(0.0, text=text)
        bar.progress(min(done / total, 1.0) if total else 0.0, text=text)
        if time.time() > deadline:
            st.warning("The gate's evaluations are still running; check the gate again later.")
            return outcome
        time.sleep(POLL_S)


def _promote(hub: Hub, repo_id: str, revision: str, alias: str, reason: str, force: bool) -> None:
    outcome = _until_settled(lambda: hub.client.promote(repo_id, revision, alias=alias, reason=reason,
                                                        force=force), hub)
    if outcome is None:
        return
    if outcome.get("status") == "promoted":
        event = outcome.get("event") or {}
        forced = " (forced)" if outcome.get("forced") else ""
        st.success(f"Promoted {revision} to {alias}{forced}: {str(event.get('from') or 'nothing')[:10]} → "
                   f"{str(event.get('to') or '')[:10]}.")
        st.session_state.pop("promote_verdict", None)
    else:
        st.session_state["promote_verdict"] = {"key": f"{repo_id}|{revision}|{alias}", "outcome": outcome}
        show_verdict(outcome.get("gate"), str(outcome.get("status")))
