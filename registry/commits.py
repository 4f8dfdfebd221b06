"""Commits: 40-hex ids, parents, authors and messages; moving a branch only by compare-and-swap."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from registry import db, events
from registry.auth import Principal, check_can_read, check_can_write
from registry.core import Registry
from registry.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    PreconditionFailedError,
    RevisionNotFoundError,
    UnauthorizedError,
)
from registry.inspect import inspect_additions
from registry.lfs import link_blobs, may_reference
from registry.names import BOT_USER, RepoRef, check_folder, check_path
from registry.trees import AddFile, DeleteFile, DeleteFolder, Operation, TreeEntry, apply_operations, encode_tree

if TYPE_CHECKING:
    from registry.repos import RepoRecord

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# The head of pull request N: a ref of kind "pr" named `refs/pr/N`, as the Hub names it.
PR_REF_RE = re.compile(r"^refs/pr/([1-9][0-9]{0,8})$")
MAX_RETRIES = 50


@dataclass(frozen=True)
class CommitRecord:
    """One commit as stored."""

    oid: str
    repo_pk: int
    tree_oid: str
    parents: tuple[str, ...]
    author: str
    title: str
    message: str
    created_at: float


def _record(row: sa.Row) -> CommitRecord:  # type: ignore[type-arg]
    return CommitRecord(
        row.oid, row.repo_id, row.tree_oid, tuple(json.loads(row.parents)), row.author, row.title, row.message,
        row.created_at,
    )


def get_commit(conn: Connection, repo_pk: int, oid: str) -> CommitRecord | None:
    """The commit `oid` of repo `repo_pk`, or None."""
    row = conn.execute(sa.select(db.commits).where(db.commits.c.oid == oid, db.commits.c.repo_id == repo_pk)).first()
    return _record(row) if row is not None else None


def ref_kind(branch: str) -> str:
    """`pr` for a pull request's head (`refs/pr/N`), else `branch`."""
    return "pr" if PR_REF_RE.match(branch) else "branch"


def branch_head(conn: Connection, repo_pk: int, branch: str) -> str | None:
    """The commit a branch (or a PR head, `refs/pr/N`) points at, or None when it does not exist."""
    return conn.execute(
        sa.select(db.refs.c.commit_oid).where(
            db.refs.c.repo_id == repo_pk, db.refs.c.kind == ref_kind(branch), db.refs.c.name == branch
        )
    ).scalar_one_or_none()


def resolve_revision(conn: Connection, repo_pk: int, ref: RepoRef, revision: str) -> CommitRecord:
    """Resolve a branch, tag or commit id (full 40-hex, or a unique prefix of 7+) to its commit."""
    oid = conn.execute(
        sa.select(db.refs.c.commit_oid)
        .where(db.refs.c.repo_id == repo_pk, db.refs.c.name == revision)
        .order_by(db.refs.c.kind)  # "branch" sorts before "tag": a branch wins a name clash, as in git
    ).scalars().first()
    if oid is None and re.fullmatch(r"[0-9a-f]{7,40}", revision or ""):
        matches = conn.execute(
            sa.select(db.commits.c.oid).where(db.commits.c.repo_id == repo_pk, db.commits.c.oid.startswith(revision))
            .limit(2)
        ).scalars().all()
        oid = matches[0] if len(matches) == 1 else None
    commit = get_commit(conn, repo_pk, oid) if oid else None
    if commit is None:
        raise RevisionNotFoundError(ref.repo_id, revision)
    return commit


def _commit_oid(repo_pk: int, tree_oid: str, parents: Iterable[str], author: str, title: str, message: str,
                created_at: float) -> str:
    body = json.dumps([repo_pk, tree_oid, list(parents), author, title, message, repr(created_at)])
    return hashlib.sha1(body.encode()).hexdigest()


def write_commit(
    conn: Connection, repo_pk: int, entries: dict[str, TreeEntry], *, parents: tuple[str, ...], author: str,
    title: str, message: str,
) -> CommitRecord:
    """Store a tree and a commit pointing at it (no ref moves here)."""
    tree_oid, text = encode_tree(entries)
    if conn.execute(sa.select(db.trees.c.oid).where(db.trees.c.oid == tree_oid)).first() is None:
        conn.execute(sa.insert(db.trees).values(oid=tree_oid, data=text))
    created = db.now()
    oid = _commit_oid(repo_pk, tree_oid, parents, author, title, message, created)
    conn.execute(
        sa.insert(db.commits).values(
            oid=oid, repo_id=repo_pk, tree_oid=tree_oid, parents=json.dumps(list(parents)), author=author,
            title=title, message=message, created_at=created,
        )
    )
    return CommitRecord(oid, repo_pk, tree_oid, parents, author, title, message, created)


def set_ref(conn: Connection, repo_pk: int, kind: str, name: str, commit_oid: str, *, expected: str | None) -> bool:
    """Point ref `name` at `commit_oid` if it still points at `expected` (None: must not exist). True if it moved."""
    if expected is None:
        exists = conn.execute(
            sa.select(db.refs.c.name).where(db.refs.c.repo_id == repo_pk, db.refs.c.kind == kind, db.refs.c.name == name)
        ).first()
        if exists is not None:
            return False
        conn.execute(
            sa.insert(db.refs).values(repo_id=repo_pk, kind=kind, name=name, commit_oid=commit_oid, updated_at=db.now())
        )
        return True
    res = conn.execute(
        sa.update(db.refs)
        .where(db.refs.c.repo_id == repo_pk, db.refs.c.kind == kind, db.refs.c.name == name,
               db.refs.c.commit_oid == expected)
        .values(commit_oid=commit_oid, updated_at=db.now())
    )
    return res.rowcount == 1


def commit(
    reg: Registry,
    repo: RepoRecord,
    principal: Principal | None,
    *,
    branch: str,
    operations: list[Operation],
    title: str,
    message: str = "",
    parent_commit: str | None = None,
    squash: bool = False,
) -> CommitRecord:
    """The one way anything writes to a repo, a user's push and the hub's own writes alike.

    With `squash`, the new commit has no parent: the branch's history becomes that one commit
    (`super_squash_history`).

    In order: the caller may write the repo; the branch, title and paths are valid; every LFS file cited
    is one the caller may cite; new files pass inspection (safetensors headers, pickle imports). Then the
    commit, the ref move and the repo's new LFS citations land in one transaction.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not write `repo`.
        InvalidInputError: a bad branch, title or path, or an LFS object the caller may not cite.
        UnsafeFileError: a file failed inspection.
        PreconditionFailedError: `parent_commit` is no longer the branch head.
    """
    pr = PR_REF_RE.match(branch)
    if pr:
        check_can_push_pr(reg, principal, repo, int(pr.group(1)))
    else:
        check_can_write_repo(reg, principal, repo)
    if COMMIT_RE.match(branch):
        raise InvalidInputError("Commits go to a branch, not to a commit id.")
    if not title.strip():
        raise InvalidInputError("A commit needs a non-empty summary.")
    if parent_commit is not None and not COMMIT_RE.match(parent_commit):
        raise InvalidInputError(f"Invalid parentCommit {parent_commit!r}: expected a 40-hex commit id.")
    additions = [op.entry for op in operations if isinstance(op, AddFile)]
    for op in operations:
        if isinstance(op, AddFile | DeleteFile):
            check_path(op.entry.path if isinstance(op, AddFile) else op.path)
        elif isinstance(op, DeleteFolder) and not check_folder(op.path):
            raise InvalidInputError("Invalid path '': deleting the repo's root folder is not allowed.")
    cited = [e.oid for e in additions if e.lfs]
    for entry in additions:
        # Same answer for "absent" and "not yours to cite": the existence of a private object must not leak.
        if entry.lfs and not (reg.blobs.exists(entry.oid) and may_reference(reg, principal, repo.pk, entry.oid)):
            raise InvalidInputError(
                f"{entry.path}: LFS object {entry.oid} was never uploaded (upload it through the batch API first)."
            )
    inspect_additions(reg, additions)
    for oid in cited:
        reg.blobs.touch(oid)  # cited now: gc must not take it before the commit lands
    for _ in range(MAX_RETRIES):
        try:
            return _commit_once(reg, repo.pk, repo.ref, branch=branch, operations=operations, title=title.strip(),
                                message=message, author=principal.user if principal else "", cited=cited,
                                parent_commit=parent_commit, squash=squash)
        except _BranchMoved:
            continue
    raise ConflictError(f"Branch {branch} of {repo.ref} kept moving; gave up after {MAX_RETRIES} attempts.")


def check_can_write_repo(reg: Registry, principal: Principal | None, repo: RepoRecord) -> Principal:
    """Raise unless `principal` may commit to `repo`; the hub's own account writes only the Spaces it manages."""
    if principal is not None and principal.user == BOT_USER:
        if repo.ref.type != "space" or not is_hub_managed(reg, repo.pk):
            raise ForbiddenError(f"The hub does not manage {repo.ref} and never writes to it.")
        return principal
    return check_can_write(principal, repo.ref.namespace)


def check_can_push_pr(reg: Registry, principal: Principal | None, repo: RepoRecord, num: int) -> Principal:
    """Raise unless `principal` may push to open PR `num` of `repo`: its author or a writer, with a write token.

    Raises:
        UnauthorizedError, ForbiddenError: no token, a read token, or neither the PR's author nor a writer.
        RepoNotFoundError: the caller may not see `repo`.
        RevisionNotFoundError: no open pull request `num`.
    """
    check_can_read(principal, repo.ref, private=repo.private)
    if principal is None:
        raise UnauthorizedError("You must be authenticated (HF_TOKEN) to push to a pull request.")
    if principal.role != "write":
        raise ForbiddenError(f"Token '{principal.token_name}' has the read role and cannot write.")
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.discussions.c.author, db.discussions.c.status).where(
            db.discussions.c.repo_id == repo.pk, db.discussions.c.num == num, db.discussions.c.is_pr == sa.true(),
        )).first()
    if row is None or row.status not in ("open", "draft"):
        raise RevisionNotFoundError(repo.ref.repo_id, f"refs/pr/{num}")
    if row.author != principal.user and not principal.may_write_namespace(repo.ref.namespace):
        raise ForbiddenError(f"Only the author of pull request #{num} and the repo's writers may push to it.")
    return principal


def is_hub_managed(reg: Registry, repo_pk: int) -> bool:
    """Whether every commit of the repo, on any branch, was made by the hub's own account."""
    with reg.engine.connect() as conn:
        return managed_by_hub(conn, repo_pk)


def managed_by_hub(conn: Connection, repo_pk: int) -> bool:
    """`is_hub_managed` inside an open transaction."""
    other = conn.execute(
        sa.select(db.commits.c.oid).where(db.commits.c.repo_id == repo_pk, db.commits.c.author != BOT_USER).limit(1)
    ).first()
    return other is None


class _BranchMoved(Exception):
    """Another writer moved the branch between our read and our compare-and-swap: roll back and retry."""


def _commit_once(
    reg: Registry, repo_pk: int, ref: RepoRef, *, branch: str, operations: list[Operation], title: str,
    message: str, author: str, cited: list[str], parent_commit: str | None, squash: bool = False,
) -> CommitRecord:
    # Without `parent_commit`, a writer that moved the branch first just makes us re-apply our operations
    # on its commit (they are path-level edits); with it, a moved branch is a PreconditionFailedError.
    with reg.write().begin() as conn:
        head = branch_head(conn, repo_pk, branch)
        if head is None:
            raise RevisionNotFoundError(ref.repo_id, branch)
        if parent_commit is not None and parent_commit != head:
            raise PreconditionFailedError(
                f"A commit has happened since {parent_commit} on {branch} (head is now {head}). "
                "Please refresh and try again."
            )
        base = get_commit(conn, repo_pk, head)
        assert base is not None
        entries = apply_operations(reg.tree(conn, base.tree_oid), operations, repo_id=ref.repo_id, revision=branch)
        made = write_commit(conn, repo_pk, entries, parents=() if squash else (head,), author=author, title=title,
                            message=message)
        if not set_ref(conn, repo_pk, ref_kind(branch), branch, made.oid, expected=head):
            raise _BranchMoved
        full_ref = branch if ref_kind(branch) == "pr" else f"refs/heads/{branch}"
        events.emit(conn, "repo.content", repo_pk, actor=author, data={
            "updatedRefs": [{"ref": full_ref, "oldSha": head, "newSha": made.oid}],
            "commit": {"id": made.oid, "title": made.title}})
        link_blobs(conn, repo_pk, cited)  # objects copied from other repos become this repo's to cite too
        conn.execute(sa.update(db.repos).where(db.repos.c.id == repo_pk).values(updated_at=made.created_at))
        return made


def history(conn: Connection, repo_pk: int, start: str, *, limit: int | None = None) -> list[CommitRecord]:
    """Commits reachable from `start` by first parents, newest first."""
    out: list[CommitRecord] = []
    oid: str | None = start
    while oid is not None and (limit is None or len(out) < limit):
        commit = get_commit(conn, repo_pk, oid)
        if commit is None:
            break
        out.append(commit)
        oid = commit.parents[0] if commit.parents else None
    return out


def last_commits(reg: Registry, conn: Connection, repo_pk: int, start: str, paths: list[str]) -> dict[str, CommitRecord]:
    """For each path (file or folder), the newest commit from `start` back that changed it."""
    found: dict[str, CommitRecord] = {}
    pending = set(paths)
    chain = history(conn, repo_pk, start)
    for i, commit in enumerate(chain):
        if not pending:
            break
        tree = reg.tree(conn, commit.tree_oid)
        parent_tree = reg.tree(conn, chain[i + 1].tree_oid) if i + 1 < len(chain) else {}
        for path in list(pending):
            if _signature(tree, path) != _signature(parent_tree, path):
                found[path] = commit
                pending.discard(path)
    return found


def _signature(tree: dict[str, TreeEntry], path: str) -> tuple[tuple[str, str], ...]:
    if path in tree:
        return ((path, tree[path].oid),)
    prefix = path + "/"
    return tuple(sorted((p, e.oid) for p, e in tree.items() if p.startswith(prefix)))
