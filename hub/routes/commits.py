"""Writing files: preupload and the NDJSON commit API (inline files, LFS files, deletes, copies)."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object, parse_json
from hub.routes.vitrine import stats_of
from hub.deps import principal_of, registry_of, repo_for, repo_url
from registry.commits import PR_REF_RE, CommitRecord
from registry.commits import commit as commit_changes
from registry.blobs import check_oid, git_blob_oid, lfs_pointer
from registry.core import Registry
from registry.discussions import check_can_participate, create_discussion, delete_discussion
from registry.errors import InvalidInputError, PayloadTooLargeError
from registry.names import check_folder, check_path
from registry.repos import RepoRecord, load_version
from registry.trees import AddFile, DeleteFile, DeleteFolder, Operation, TreeEntry, ignored_by

router = APIRouter()

LFS_THRESHOLD = 10 * 1024 * 1024
LFS_EXTENSIONS = {
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gz", ".h5", ".joblib", ".mlmodel", ".model", ".msgpack",
    ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth", ".rar", ".safetensors",
    ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst", ".png", ".jpg", ".jpeg", ".wav", ".mp3", ".flac",
}


def upload_mode(path: str, size: int, sample: bytes) -> str:
    """`lfs` for large, binary or LFS-extension files, else `regular` (as the Hub decides)."""
    if size == 0:
        return "regular"
    if size >= LFS_THRESHOLD or os.path.splitext(path)[1].lower() in LFS_EXTENSIONS or b"\x00" in sample:
        return "lfs"
    return "regular"


def _creates_pr(request: Request) -> bool:
    return request.query_params.get("create_pr") in ("1", "true", "True")


async def _writable(request: Request, plural: str, namespace: str, name: str,
                    revision: str) -> tuple[Registry, RepoRecord, Any]:
    # Opening a PR, or pushing to one, needs only a write token and read access: `commit()` checks the rest.
    contributes = _creates_pr(request) or PR_REF_RE.match(revision) is not None
    repo = await repo_for(request, plural, namespace, name, write=not contributes)
    principal = await principal_of(request)
    if contributes:
        check_can_participate(principal)
    return registry_of(request), repo, principal


@router.post("/api/{plural}/{namespace}/{name}/preupload/{revision:path}",
             openapi_extra=json_body_doc({"files": {"type": "array", "items": {"type": "object"}}},
                                         required=("files",)))
async def preupload(request: Request, plural: str, namespace: str, name: str, revision: str) -> dict[str, Any]:
    """Tell the client, per file, whether to send it inline or through LFS, and what is already there."""
    reg, repo, _ = await _writable(request, plural, namespace, name, revision)
    body = await json_object(request, what="preupload body")
    files = body.get("files")
    if not isinstance(files, list):
        raise InvalidInputError("Field 'files' must be a list.")

    gitignore = body.get("gitIgnore")
    if gitignore is not None and not isinstance(gitignore, str):
        raise InvalidInputError("Field 'gitIgnore' must be a string.")

    def run() -> dict[str, Any]:
        commit, tree = load_version(reg, repo, revision)
        rules = gitignore
        if rules is None and ".gitignore" in tree:  # the commit's own .gitignore wins (the client sends it)
            rules = reg.blobs.path(tree[".gitignore"].oid).read_text(errors="replace")
        paths = [f.get("path", "") for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]
        ignored = ignored_by(rules, paths) if rules else set()
        out = []
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("size"), int) or f["size"] < 0:
                raise InvalidInputError("Each file needs a 'path' and a non-negative integer 'size'.")
            path = check_path(f.get("path", ""))
            try:
                sample = base64.b64decode(f.get("sample") or "", validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError(f"Invalid base64 sample for {path!r}.") from None
            mode = upload_mode(path, f["size"], sample)
            existing = tree.get(path)
            oid = None
            if existing is not None:
                oid = existing.oid if mode == "lfs" else existing.git_oid
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": path in ignored, "oid": oid})
        return {"files": out, "commitOid": commit.oid}

    return await run_in_threadpool(run)


async def _lines(stream: AsyncIterator[bytes], max_line: int) -> AsyncIterator[bytes]:
    buf = b""
    async for chunk in stream:
        buf += chunk
        while (nl := buf.find(b"\n")) >= 0:
            line, buf = buf[:nl], buf[nl + 1:]
            if line.strip():
                yield line
        if len(buf) > max_line:
            raise PayloadTooLargeError(f"A commit line exceeds {max_line} bytes; send large files through LFS.")
    if buf.strip():
        yield buf


async def parse_commit(reg: Registry, request: Request) -> tuple[dict[str, Any], list[Operation]]:
    """Read the NDJSON commit body into a header and operations, storing inline files as blobs on the way."""
    max_inline = reg.settings.max_inline_bytes
    header: dict[str, Any] | None = None
    ops: list[Operation] = []
    async for line in _lines(request.stream(), max_inline * 4 // 3 + 64 * 1024):
        item = parse_json(line, what="NDJSON line in commit")
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise InvalidInputError("Each commit line must be an object with 'key' and an object 'value'.")
        key, value = item.get("key"), item["value"]
        if header is None:
            if key != "header":
                raise InvalidInputError("The first line of a commit must be its header.")
            header = value
            continue
        if key == "file":
            ops.append(await run_in_threadpool(_inline_file, reg, value, max_inline))
        elif key == "lfsFile":
            ops.append(await run_in_threadpool(_lfs_file, reg, value))
        elif key == "deletedFile":
            ops.append(DeleteFile(check_path(str(value.get("path", "")))))
        elif key == "deletedFolder":
            ops.append(DeleteFolder(check_folder(str(value.get("path", "")))))
        else:
            raise InvalidInputError(f"Unknown commit operation {key!r}.")
    if header is None:
        raise InvalidInputError("Empty commit body: expected an NDJSON header line.")
    return header, ops


def _inline_file(reg: Registry, value: dict[str, Any], max_inline: int) -> AddFile:
    path = check_path(str(value.get("path", "")))
    if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
        raise InvalidInputError(f"{path}: inline content must be a base64 string.")
    try:
        data = base64.b64decode(value["content"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{path}: content is not valid base64.") from None
    if len(data) > max_inline:
        raise PayloadTooLargeError(f"{path}: {len(data)} bytes inline exceeds {max_inline}; upload it through LFS.")
    stored = reg.blobs.put_bytes(data)
    return AddFile(TreeEntry(path, stored.oid, stored.size, git_blob_oid(data), False))


def _lfs_file(reg: Registry, value: dict[str, Any]) -> AddFile:
    path = check_path(str(value.get("path", "")))
    if value.get("algo", "sha256") != "sha256":
        raise InvalidInputError(f"{path}: only sha256 LFS objects are supported.")
    oid = check_oid(str(value.get("oid", "")))
    # Whether the caller may cite it is the commit's to check (registry.commits.commit), with the same message.
    if not reg.blobs.exists(oid):
        raise InvalidInputError(f"{path}: LFS object {oid} was never uploaded (upload it through the batch API first).")
    size = reg.blobs.size(oid)
    # A copy sends no size; an upload must match what was stored.
    if value.get("size") is not None and value["size"] != size:
        raise InvalidInputError(f"{path}: announced size {value['size']} but object {oid} has {size} bytes.")
    return AddFile(TreeEntry(path, oid, size, git_blob_oid(lfs_pointer(oid, size)), True))


@router.post("/api/{plural}/{namespace}/{name}/commit/{revision:path}")
async def commit(request: Request, plural: str, namespace: str, name: str, revision: str) -> dict[str, Any]:
    """Create a commit from NDJSON operations (inline files, LFS files, deletes, copies) on a branch."""
    reg, repo, principal = await _writable(request, plural, namespace, name, revision)
    header, ops = await parse_commit(reg, request)
    title = header.get("summary")
    if not isinstance(title, str) or not title.strip():
        raise InvalidInputError("Commit header needs a non-empty 'summary'.")
    parent = header.get("parentCommit")
    if parent is not None and not isinstance(parent, str):
        raise InvalidInputError(f"Invalid parentCommit {parent!r}: expected a 40-hex commit id.")

    description = str(header.get("description") or "")

    def run() -> tuple[CommitRecord, int | None]:
        if not _creates_pr(request):
            return commit_changes(reg, repo, principal, branch=revision, operations=ops, title=title,
                                  message=description, parent_commit=parent), None
        pr = create_discussion(reg, repo, principal, title=title, description=description, pull_request=True,
                               base=revision, start=parent)
        try:
            return commit_changes(reg, repo, principal, branch=pr.git_ref, operations=ops, title=title,
                                  message=description), pr.num
        except Exception:
            delete_discussion(reg, repo, pr.num)  # a refused commit opens no PR
            raise

    made, pr_num = await run_in_threadpool(run)
    stats_of(request)["commits"] += 1
    url = f"{repo_url(request, repo.ref)}/commit/{made.oid}"
    pr_url = f"{repo_url(request, repo.ref)}/discussions/{pr_num}" if pr_num is not None else None
    return {"success": True, "commitOid": made.oid, "commitUrl": url, "pullRequestUrl": pr_url,
            "commit": {"oid": made.oid, "url": url}}


@router.post("/api/{plural}/{namespace}/{name}/super-squash/{branch:path}",
             openapi_extra=json_body_doc({"message": {"type": "string"}}, optional=True))
async def super_squash(request: Request, plural: str, namespace: str, name: str, branch: str) -> dict[str, Any]:
    """Replace a branch's history by one commit holding its current files (`super_squash_history`)."""
    reg, repo, principal = await _writable(request, plural, namespace, name, branch)
    body = await json_object(request, what="super-squash body", optional=True)
    message = body.get("message") or f"Super-squash branch '{branch}'"
    if not isinstance(message, str):
        raise InvalidInputError("Field 'message' must be a string.")
    made = await run_in_threadpool(lambda: commit_changes(reg, repo, principal, branch=branch, operations=[],
                                                          title=message, squash=True))
    return {"commitOid": made.oid}
