"""Discussions and pull requests: list, open, read (with events and diff), comment, rename, close, merge.

Also the read routes at a PR's head (`refs/pr/N`), which clients send with its slashes percent-encoded, so they
reach the hub as extra path segments.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of, repo_for, repo_url
from hub.routes import files
from hub.serialize import iso
from registry import discussions as talk
from registry.discussions import Discussion, Event
from registry.errors import InvalidInputError
from registry.repos import RepoRecord

router = APIRouter()

_BASE = "/api/{plural}/{namespace}/{name}/discussions"


def event_item(e: Event) -> dict[str, Any]:
    """An event as `huggingface_hub.community.deserialize_event` reads it."""
    data = dict(e.data)
    if e.type == "comment":
        latest = data["latest"]
        data["latest"] = {"raw": latest["raw"], "html": latest["raw"], "updatedAt": iso(latest["updatedAt"]),
                          "author": {"name": latest["author"]}}
        data["history"] = [{"raw": h["raw"], "updatedAt": iso(h["updatedAt"]), "author": {"name": h["author"]}}
                           for h in data.get("history", [])]
        data["numEdits"] = len(data["history"])
    return {"id": e.id, "type": e.type, "createdAt": iso(e.created_at), "author": {"name": e.author}, "data": data}


def discussion_item(repo: RepoRecord, d: Discussion) -> dict[str, Any]:
    """A discussion as a listing entry."""
    return {"num": d.num, "title": d.title, "status": d.status, "isPullRequest": d.is_pr,
            "createdAt": iso(d.created_at), "author": {"name": d.author}, "pinned": False,
            "repo": {"name": repo.ref.repo_id, "type": repo.ref.type}}


async def _repo(request: Request, plural: str, namespace: str, name: str) -> RepoRecord:
    return await repo_for(request, plural, namespace, name)


def _num(num: int) -> int:
    if not 0 < num < 10**9:
        raise InvalidInputError(f"Invalid discussion number {num}: expected a positive integer below 10^9.")
    return num


@router.get(_BASE)
async def list_discussions(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """A page of the repo's discussions and PRs (`type`, `status`, `author`, `p`)."""
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)
    q = request.query_params
    try:
        page = int(q.get("p", "0"))
    except ValueError:
        raise InvalidInputError("Query parameter 'p' must be an integer.") from None
    items, count, start = await run_in_threadpool(
        lambda: talk.list_discussions(reg, repo, kind=q.get("type", "all"), status=q.get("status", "all"),
                                      author=q.get("author"), page=page))
    return {"discussions": [discussion_item(repo, d) for d in items], "count": count, "start": start,
            "numClosedDiscussions": sum(1 for d in items if d.status in ("closed", "merged"))}


@router.post(_BASE, openapi_extra=json_body_doc(
    {"title": {"type": "string"}, "description": {"type": "string"}, "pullRequest": {"type": "boolean"}},
    required=("title",)))
async def create_discussion(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Open a discussion, or an (empty) pull request onto `main` with `pullRequest`."""
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)
    principal = await principal_of(request)
    talk.check_can_participate(principal)
    body = await json_object(request, what="discussion body")
    title, description = body.get("title"), body.get("description") or ""
    if not isinstance(title, str) or not isinstance(description, str):
        raise InvalidInputError("Fields 'title' and 'description' must be strings.")
    made = await run_in_threadpool(lambda: talk.create_discussion(
        reg, repo, principal, title=title, description=description, pull_request=bool(body.get("pullRequest"))))
    return {"num": made.num, "url": f"{repo_url(request, repo.ref)}/discussions/{made.num}",
            "pullRequest": made.is_pr}


def _details(reg: Any, repo: RepoRecord, num: int, with_diff: bool) -> dict[str, Any]:
    d = talk.get_discussion(reg, repo, num)
    out = {**discussion_item(repo, d), "events": [event_item(e) for e in talk.events_of(reg, repo, d)]}
    if d.is_pr:
        state = talk.pr_state(reg, repo, d)
        changes: dict[str, Any] = {"base": f"refs/heads/{d.target_branch}"}
        if d.merge_oid:
            changes["mergeCommitId"] = d.merge_oid
        out["changes"] = changes
        out["filesWithConflicts"] = [] if d.status == "merged" else state.conflicts
        if with_diff:
            out["diff"] = talk.diff_text(reg, state)
    return out


@router.get(_BASE + "/{num}")
async def discussion_details(request: Request, plural: str, namespace: str, name: str, num: int) -> dict[str, Any]:
    """A discussion with its events; a PR also with its target, conflicting files and (`diff=1`) its diff."""
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)
    with_diff = request.query_params.get("diff") in ("1", "true")
    return await run_in_threadpool(_details, reg, repo, _num(num), with_diff)


@router.get(_BASE + "/{num}/diff")
async def discussion_diff(request: Request, plural: str, namespace: str, name: str, num: int) -> Response:
    """A pull request's changes as a unified diff (text)."""
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)

    def run() -> str:
        d = talk.get_discussion(reg, repo, _num(num))
        if not d.is_pr:
            raise InvalidInputError(f"#{num} is a discussion, not a pull request.")
        return talk.diff_text(reg, talk.pr_state(reg, repo, d))

    return Response(await run_in_threadpool(run), media_type="text/plain; charset=utf-8")


async def _change(request: Request, plural: str, namespace: str, name: str, *, what: str,
                  optional: bool = False) -> tuple[Any, RepoRecord, Any, dict[str, Any]]:
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)
    principal = await principal_of(request)
    talk.check_can_participate(principal)
    body = await json_object(request, what=what, optional=optional)
    return reg, repo, principal, body


def _text(body: dict[str, Any], field: str, *, default: str | None = None) -> str:
    value = body.get(field, default)
    if not isinstance(value, str):
        raise InvalidInputError(f"Field {field!r} must be a string.")
    return value


@router.post(_BASE + "/{num}/comment", openapi_extra=json_body_doc({"comment": {"type": "string"}},
                                                                    required=("comment",)))
async def comment(request: Request, plural: str, namespace: str, name: str, num: int) -> dict[str, Any]:
    """Comment on a discussion or PR."""
    reg, repo, principal, body = await _change(request, plural, namespace, name, what="comment body")
    text = _text(body, "comment")
    made = await run_in_threadpool(talk.comment, reg, repo, principal, _num(num), text)
    return {"newMessage": event_item(made)}


@router.post(_BASE + "/{num}/title", openapi_extra=json_body_doc({"title": {"type": "string"}}, required=("title",)))
async def rename(request: Request, plural: str, namespace: str, name: str, num: int) -> dict[str, Any]:
    """Retitle a discussion or PR (its author or a writer)."""
    reg, repo, principal, body = await _change(request, plural, namespace, name, what="title body")
    made = await run_in_threadpool(talk.rename, reg, repo, principal, _num(num), _text(body, "title"))
    return {"newTitle": event_item(made)}


@router.post(_BASE + "/{num}/status", openapi_extra=json_body_doc(
    {"status": {"type": "string"}, "comment": {"type": "string"}}, required=("status",)))
async def change_status(request: Request, plural: str, namespace: str, name: str, num: int) -> dict[str, Any]:
    """Close or reopen a discussion or PR (its author or a writer), with an optional comment."""
    reg, repo, principal, body = await _change(request, plural, namespace, name, what="status body")
    status, note = _text(body, "status"), _text(body, "comment", default="")
    made = await run_in_threadpool(talk.change_status, reg, repo, principal, _num(num), status, note)
    return {"newStatus": event_item(made)}


@router.post(_BASE + "/{num}/merge", openapi_extra=json_body_doc({"comment": {"type": "string"}}, optional=True))
async def merge(request: Request, plural: str, namespace: str, name: str, num: int) -> dict[str, Any]:
    """Squash-merge a PR into its target branch (writers only); 409 naming the files on a conflict."""
    reg, repo, principal, body = await _change(request, plural, namespace, name, what="merge body", optional=True)
    note = _text(body, "comment", default="")
    made = await run_in_threadpool(talk.merge, reg, repo, principal, _num(num), note)
    return {"success": True, "commitOid": made.oid}


@router.post(_BASE + "/{num}/comment/{comment_id}/edit", openapi_extra=json_body_doc(
    {"content": {"type": "string"}}, required=("content",)))
async def edit_comment(request: Request, plural: str, namespace: str, name: str, num: int,
                       comment_id: str) -> dict[str, Any]:
    """Edit one's own comment."""
    reg, repo, principal, body = await _change(request, plural, namespace, name, what="comment edit body")
    made = await run_in_threadpool(talk.edit_comment, reg, repo, principal, _num(num), comment_id,
                                   _text(body, "content"))
    return {"updatedComment": event_item(made)}


@router.post(_BASE + "/{num}/comment/{comment_id}/hide")
async def hide_comment(request: Request, plural: str, namespace: str, name: str, num: int,
                       comment_id: str) -> dict[str, Any]:
    """Hide a comment for good (its author or a writer)."""
    reg, repo = registry_of(request), await _repo(request, plural, namespace, name)
    principal = await principal_of(request)
    made = await run_in_threadpool(talk.hide_comment, reg, repo, principal, _num(num), comment_id)
    return {"updatedComment": event_item(made)}


# Reads at a PR's head: `refs%2Fpr%2FN` arrives decoded, as three path segments.
@router.api_route("/{namespace}/{name}/resolve/refs/pr/{num}/{path:path}", methods=["GET", "HEAD"])
async def resolve_pr_model_file(request: Request, namespace: str, name: str, num: int, path: str) -> Response:
    """Download a model repo file at the head of PR `num`."""
    return await files.resolve_model_file(request, namespace, name, f"refs/pr/{_num(num)}", path)


@router.api_route("/{plural}/{namespace}/{name}/resolve/refs/pr/{num}/{path:path}", methods=["GET", "HEAD"])
async def resolve_pr_file(request: Request, plural: str, namespace: str, name: str, num: int, path: str) -> Response:
    """Download a dataset or Space repo file at the head of PR `num`."""
    return await files.resolve_file(request, plural, namespace, name, f"refs/pr/{_num(num)}", path)


@router.get("/api/{plural}/{namespace}/{name}/tree/refs/pr/{num}")
@router.get("/api/{plural}/{namespace}/{name}/tree/refs/pr/{num}/{path:path}")
async def list_pr_tree(request: Request, plural: str, namespace: str, name: str, num: int, path: str = "") -> Response:
    """List files and folders at the head of PR `num`."""
    return await files.list_tree(request, plural, namespace, name, f"refs/pr/{_num(num)}", path)


_PATHS_INFO_BODY = {"type": "object", "required": ["paths"], "properties": {
    "paths": {"type": "array", "items": {"type": "string"}}, "expand": {"type": "boolean"}}}


@router.post("/api/{plural}/{namespace}/{name}/paths-info/refs/pr/{num}", openapi_extra={"requestBody": {
    "required": True, "content": {"application/x-www-form-urlencoded": {"schema": _PATHS_INFO_BODY},
                                  "application/json": {"schema": _PATHS_INFO_BODY}}}})
async def pr_paths_info(request: Request, plural: str, namespace: str, name: str, num: int) -> Response:
    """Info on the given paths at the head of PR `num`."""
    return await files.paths_info(request, plural, namespace, name, f"refs/pr/{_num(num)}")
