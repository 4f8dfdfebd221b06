"""Domain records -> the JSON shapes huggingface_hub parses (ModelInfo, RepoFile, GitCommitInfo...)."""

from __future__ import annotations

import html
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from registry.commits import CommitRecord
from registry.refs import RefInfo
from registry.repos import RepoRecord
from registry.trees import TreeEntry
from registry.versions import RepoVersion


def iso(ts: float) -> str:
    """UNIX time -> the Hub's `2022-08-19T07:19:38.123Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def lfs_info(entry: TreeEntry) -> dict[str, Any] | None:
    """The `lfs` object of a tree item, or None for a regular file."""
    return {"oid": entry.oid, "size": entry.size, "pointerSize": entry.pointer_size} if entry.lfs else None


def last_commit_item(commit: CommitRecord) -> dict[str, Any]:
    """The `lastCommit` object of an expanded tree item."""
    return {"id": commit.oid, "title": commit.title, "date": iso(commit.created_at)}


def file_item(entry: TreeEntry, *, last_commit: CommitRecord | None = None,
              security: dict[str, Any] | None = None, xet_hash: str | None = None) -> dict[str, Any]:
    """A file in a tree listing / paths-info answer (`xetHash` for a file uploaded through Xet, as the Hub has it)."""
    item: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": entry.path}
    if entry.lfs:
        item["lfs"] = lfs_info(entry)
        if xet_hash is not None:
            item["xetHash"] = xet_hash
    if last_commit is not None:
        item["lastCommit"] = last_commit_item(last_commit)
    if security is not None:
        item["securityFileStatus"] = security
    return item


def folder_item(path: str, oid: str, *, last_commit: CommitRecord | None = None) -> dict[str, Any]:
    """A folder in a tree listing / paths-info answer."""
    item: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if last_commit is not None:
        item["lastCommit"] = last_commit_item(last_commit)
    return item


def sibling(entry: TreeEntry) -> dict[str, Any]:
    """A `siblings` element of repo info."""
    item: dict[str, Any] = {"rfilename": entry.path, "size": entry.size, "blobId": entry.git_oid}
    if entry.lfs:
        item["lfs"] = {"sha256": entry.oid, "size": entry.size, "pointerSize": entry.pointer_size}
    return item


def version_meta(v: RepoVersion) -> dict[str, Any]:
    """A version record in the Hub's terms (cardData, tags, pipeline_tag, safetensors...) plus Vitrine's own block."""
    out: dict[str, Any] = {
        "cardData": (v.card.data or None) if v.card.error is None else None,
        "tags": v.tags,
        "description": v.card.body.strip()[:2000] or None,
        "vitrine": {"cardError": v.card.error, "hasCard": v.card.text is not None, "fileCount": len(v.tree)},
    }
    if v.repo_type != "model":
        return out
    out.update(pipeline_tag=v.meta.pipeline_tag, library_name=v.meta.library_name)
    if v.config is not None:
        out["config"] = {k: v.config[k] for k in ("architectures", "model_type") if k in v.config}
    vitrine = out["vitrine"]
    vitrine.update(architecture=v.meta.architecture, modelType=v.meta.model_type, labels=v.meta.labels,
                   frameworks=v.meta.frameworks)
    if v.weights_error is not None:
        vitrine["weightsError"] = v.weights_error
    if v.weights is not None:
        out["safetensors"] = v.weights.to_hub_json()
        vitrine["weights"] = {"files": list(v.weights.files), "totalBytes": v.weights.total_bytes,
                              "sharded": v.weights.sharded, "tensors": len(v.weights.tensors)}
    vitrine["unsafeFiles"] = [{"path": u.path, "unsafeGlobals": list(u.globals)} for u in v.unsafe_files]
    if v.eval_results:
        out["evalResults"] = list(v.eval_results)
    return out


def expanded(full: dict[str, Any], expand: Collection[str]) -> dict[str, Any]:
    """Only the `expand` properties of a repo answer that has them, with its `_id` and `id`, as the Hub answers."""
    return {"_id": full["_id"], "id": full["id"], **{k: full[k] for k in expand if k in full}}


def repo_summary(repo: RepoRecord, version: RepoVersion, *, expand: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a repo in listings (list_models / list_datasets / list_spaces), from its head's record;
    with `expand`, only those properties, any of repo info's."""
    out: dict[str, Any] = {
        "_id": f"{repo.pk:024x}",
        "id": repo.ref.repo_id,
        "author": repo.ref.namespace,
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": version.tags,
        "createdAt": iso(repo.created_at),
        "lastModified": iso(repo.updated_at),
    }
    if repo.ref.type == "model":
        out["modelId"] = repo.ref.repo_id
        out["pipeline_tag"] = version.meta.pipeline_tag
        out["library_name"] = version.meta.library_name
    if repo.ref.type == "space":
        out["sdk"] = repo.sdk
    if expand:  # the listing's own values win: `lastModified` stays the repo's, as without `expand`
        return expanded({**repo_info(repo, version, expand=expand), **out}, expand)
    return out


def repo_info(repo: RepoRecord, version: RepoVersion, *, expand: Collection[str] = ()) -> dict[str, Any]:
    """Full repo info at a commit: `model_info`, `dataset_info`, `space_info`; with `expand`, only those
    properties (and `_id`, `id`), `siblings` built only when asked."""
    meta = version_meta(version)
    tree, commit = version.tree, version.commit
    out = repo_summary(repo, version)
    out.update(sha=commit.oid, lastModified=iso(commit.created_at), cardData=meta.get("cardData"))
    if not expand or "siblings" in expand:  # one entry per file: ~100 bytes each
        out["siblings"] = [sibling(e) for e in sorted(tree.values(), key=lambda e: e.path)]
    out["usedStorage"] = sum(e.size for e in tree.values())
    for key in ("safetensors", "config", "vitrine", "evalResults"):
        if meta.get(key) is not None:
            out[key] = meta[key]
    if repo.ref.type == "dataset":
        out["description"] = meta.get("description")
    if repo.ref.type == "space":
        out["runtime"] = {"stage": "RUNNING", "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}}
        out["subdomain"] = repo.ref.repo_id.replace("/", "-")
    return expanded(out, expand) if expand else out


def commit_item(commit: CommitRecord, *, formatted: bool = False) -> dict[str, Any]:
    """An element of `list_repo_commits`; with `formatted`, also the title and message as HTML."""
    item: dict[str, Any] = {
        "id": commit.oid,
        "title": commit.title,
        "message": commit.message,
        "authors": [{"user": commit.author, "avatar": None}],
        "date": iso(commit.created_at),
        "parents": list(commit.parents),
    }
    if formatted:
        item["formatted"] = {"title": html.escape(commit.title),
                             "message": "".join(f"<p>{html.escape(p)}</p>" for p in commit.message.split("\n\n") if p)}
    return item


def refs_body(refs: list[RefInfo], *, include_prs: bool = False) -> dict[str, Any]:
    """The `list_repo_refs` body (PR heads only when asked, as the Hub does)."""

    def item(r: RefInfo) -> dict[str, str]:
        return {"name": r.name, "ref": r.full_ref, "targetCommit": r.commit_oid}

    return {
        "branches": [item(r) for r in refs if r.kind == "branch"],
        "tags": [item(r) for r in refs if r.kind == "tag"],
        "converts": [],
        "pullRequests": [item(r) for r in refs if r.kind == "pr"] if include_prs else [],
    }
