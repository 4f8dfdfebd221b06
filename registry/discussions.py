"""Discussions and pull requests, as the Hub has them: numbered per repo, with comments, status and title changes.

A pull request's head is the ref `refs/pr/N`, which commits reach through `registry.commits.commit()` like any
branch; merging squashes its changes into one commit on the target branch, through the same `commit()`.
"""

from __future__ import annotations

import difflib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.auth import Principal
from registry.commits import MAX_RETRIES, CommitRecord, branch_head, commit, get_commit, set_ref
from registry.core import Registry
from registry.errors import (
    ConflictError,
    DiscussionNotFoundError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RevisionNotFoundError,
    UnauthorizedError,
)
from registry.repos import RepoRecord
from registry.trees import AddFile, DeleteFile, Operation, TreeEntry

STATUSES = ("open", "closed", "merged", "draft")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Discussion:
    """A discussion or pull request of a repo."""

    pk: int
    num: int
    title: str
    author: str
    is_pr: bool
    status: str
    target_branch: str | None
    base_oid: str | None
    merge_oid: str | None
    created_at: float

    @property
    def git_ref(self) -> str:
        """The ref a pull request's commits go to: `refs/pr/<num>`."""
        return f"refs/pr/{self.num}"


@dataclass(frozen=True)
class Event:
    """One thing that happened in a discussion: `comment`, `status-change`, `title-change` or `commit`."""

    id: str
    type: str
    author: str
    data: dict[str, Any]
    created_at: float


def _discussion(row: sa.Row) -> Discussion:  # type: ignore[type-arg]
    return Discussion(row.id, row.num, row.title, row.author, bool(row.is_pr), row.status, row.target_branch,
                      row.base_oid, row.merge_oid, row.created_at)


def _event(row: sa.Row) -> Event:  # type: ignore[type-arg]
    return Event(row.id, row.type, row.author, json.loads(row.data), row.created_at)


def check_can_participate(principal: Principal | None) -> Principal:
    """Raise unless the caller may open, comment on or edit discussions: any write-role token (as on the Hub)."""
    if principal is None:
        raise UnauthorizedError("You must be authenticated (HF_TOKEN) to take part in discussions.")
    if principal.role != "write":
        raise ForbiddenError(f"Token '{principal.token_name}' has the read role and cannot write.")
    return principal


def _is_writer(principal: Principal, repo: RepoRecord) -> bool:
    return principal.may_write_namespace(repo.ref.namespace)


def _check_author_or_writer(principal: Principal | None, repo: RepoRecord, author: str, what: str) -> Principal:
    who = check_can_participate(principal)
    if who.user != author and not _is_writer(who, repo):
        raise ForbiddenError(f"Only its author and the repo's writers may {what}.")
    return who


def _new_id() -> str:
    return secrets.token_hex(12)


def _add_event(conn: Connection, discussion_pk: int, kind: str, author: str, data: dict[str, Any]) -> Event:
    made = Event(_new_id(), kind, author, data, db.now())
    conn.execute(sa.insert(db.discussion_events).values(
        id=made.id, discussion_id=discussion_pk, type=kind, author=author, data=json.dumps(data),
        created_at=made.created_at))
    return made


def _comment_data(text: str, author: str, at: float) -> dict[str, Any]:
    return {"edited": False, "hidden": False, "latest": {"raw": text, "author": author, "updatedAt": at},
            "history": []}


def create_discussion(
    reg: Registry, repo: RepoRecord, principal: Principal | None, *, title: str, description: str = "",
    pull_request: bool = False, base: str = "main", start: str | None = None,
) -> Discussion:
    """Open discussion (or pull request onto branch `base`, its head at `start` or `base`'s head) `title`.

    Raises:
        UnauthorizedError, ForbiddenError: no token or a read-role token.
        InvalidInputError: an empty title.
        RevisionNotFoundError: `base` is not a branch of the repo, or `start` is not a commit of it.
    """
    who = check_can_participate(principal)
    if not isinstance(title, str) or not title.strip():
        raise InvalidInputError("A discussion needs a non-empty title.")
    for _ in range(MAX_RETRIES):
        try:
            return _create_once(reg, repo, who, title=title, description=description, pull_request=pull_request,
                                base=base, start=start)
        except IntegrityError:
            continue  # another discussion took the number first (PostgreSQL): take the next one
    raise ConflictError(f"Could not number a new discussion of {repo.ref}; try again.")


def _create_once(reg: Registry, repo: RepoRecord, who: Principal, *, title: str, description: str,
                 pull_request: bool, base: str, start: str | None) -> Discussion:
    with reg.write().begin() as conn:
        head = None
        if pull_request:
            head = branch_head(conn, repo.pk, base)
            if head is None or base.startswith("refs/"):
                raise RevisionNotFoundError(repo.ref.repo_id, base)
            if start is not None:
                if get_commit(conn, repo.pk, start) is None:
                    raise RevisionNotFoundError(repo.ref.repo_id, start)
                head = start
        last = conn.execute(sa.select(sa.func.max(db.discussions.c.num))
                            .where(db.discussions.c.repo_id == repo.pk)).scalar()
        num = int(last or 0) + 1
        now = db.now()
        res = conn.execute(sa.insert(db.discussions).values(
            repo_id=repo.pk, num=num, title=title.strip(), author=who.user, is_pr=pull_request, status="open",
            target_branch=base if pull_request else None, base_oid=head, merge_oid=None, created_at=now))
        key = res.inserted_primary_key
        assert key is not None
        _add_event(conn, int(key[0]), "comment", who.user, _comment_data(description, who.user, now))
        if pull_request and head is not None:
            set_ref(conn, repo.pk, "pr", f"refs/pr/{num}", head, expected=None)
        row = conn.execute(sa.select(db.discussions).where(db.discussions.c.id == int(key[0]))).one()
        return _discussion(row)


def delete_discussion(reg: Registry, repo: RepoRecord, num: int) -> None:
    """Remove discussion `num` and its PR ref (used when the commit opening a PR was refused)."""
    with reg.write().begin() as conn:
        conn.execute(sa.delete(db.refs).where(db.refs.c.repo_id == repo.pk, db.refs.c.kind == "pr",
                                              db.refs.c.name == f"refs/pr/{num}"))
        pk = conn.execute(sa.select(db.discussions.c.id).where(
            db.discussions.c.repo_id == repo.pk, db.discussions.c.num == num)).scalar_one_or_none()
        if pk is not None:
            conn.execute(sa.delete(db.discussion_events).where(db.discussion_events.c.discussion_id == pk))
            conn.execute(sa.delete(db.discussions).where(db.discussions.c.id == pk))


def _find(conn: Connection, repo: RepoRecord, num: int) -> Discussion:
    row = conn.execute(sa.select(db.discussions).where(
        db.discussions.c.repo_id == repo.pk, db.discussions.c.num == num)).first()
    if row is None:
        raise DiscussionNotFoundError(repo.ref.repo_id, num)
    return _discussion(row)


def get_discussion(reg: Registry, repo: RepoRecord, num: int) -> Discussion:
    """Discussion `num` of `repo`, or DiscussionNotFoundError."""
    with reg.engine.connect() as conn:
        return _find(conn, repo, num)


def list_discussions(
    reg: Registry, repo: RepoRecord, *, kind: str = "all", status: str = "all", author: str | None = None,
    page: int = 0,
) -> tuple[list[Discussion], int, int]:
    """One page of the repo's discussions, newest first, filtered as the client asks; with the total and start.

    Raises:
        InvalidInputError: an unknown `kind` (all, discussion, pull_request) or `status` (all, open, closed).
    """
    if kind not in ("all", "discussion", "pull_request"):
        raise InvalidInputError(f"Invalid type {kind!r}: expected all, discussion or pull_request.")
    if status not in ("all", "open", "closed"):
        raise InvalidInputError(f"Invalid status {status!r}: expected all, open or closed.")
    if page < 0:
        raise InvalidInputError("Query parameter 'p' must be >= 0.")
    t = db.discussions
    q = sa.select(t).where(t.c.repo_id == repo.pk)
    if kind != "all":
        q = q.where(t.c.is_pr == (kind == "pull_request"))
    if status == "open":
        q = q.where(t.c.status.in_(("open", "draft")))
    elif status == "closed":
        q = q.where(t.c.status.in_(("closed", "merged")))
    if author:
        q = q.where(t.c.author == author)
    with reg.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
        rows = conn.execute(q.order_by(t.c.num.desc()).offset(page * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return [_discussion(r) for r in rows], int(count), page * PAGE_SIZE


def events_of(reg: Registry, repo: RepoRecord, d: Discussion) -> list[Event]:
    """Everything that happened in `d`, oldest first: its stored events and, for a PR, the commits on its ref."""
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(db.discussion_events).where(db.discussion_events.c.discussion_id == d.pk)
                            .order_by(db.discussion_events.c.created_at)).all()
        found = [_event(r) for r in rows]
        if d.is_pr:
            found += [Event(c.oid[:24], "commit", c.author, {"subject": c.title, "oid": c.oid}, c.created_at)
                      for c in _pr_commits(conn, repo, d)]
    return sorted(found, key=lambda e: e.created_at)


def _pr_commits(conn: Connection, repo: RepoRecord, d: Discussion) -> list[CommitRecord]:
    out: list[CommitRecord] = []
    oid = branch_head(conn, repo.pk, d.git_ref)
    while oid is not None and oid != d.base_oid:
        made = get_commit(conn, repo.pk, oid)
        if made is None:
            break
        out.append(made)
        oid = made.parents[0] if made.parents else None
    return out


def comment(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, text: str) -> Event:
    """Add comment `text` to discussion `num`."""
    who = check_can_participate(principal)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("A comment needs a non-empty 'comment'.")
    with reg.write().begin() as conn:
        d = _find(conn, repo, num)
        return _add_event(conn, d.pk, "comment", who.user, _comment_data(text, who.user, db.now()))


def _comment_row(conn: Connection, d: Discussion, comment_id: str) -> Event:
    row = conn.execute(sa.select(db.discussion_events).where(
        db.discussion_events.c.discussion_id == d.pk, db.discussion_events.c.id == comment_id.lower(),
        db.discussion_events.c.type == "comment")).first()
    if row is None:
        raise NotFoundError(f"Comment {comment_id} not found in discussion #{d.num}.")
    return _event(row)


def _store(conn: Connection, made: Event) -> None:
    conn.execute(sa.update(db.discussion_events).where(db.discussion_events.c.id == made.id)
                 .values(data=json.dumps(made.data)))


def edit_comment(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, comment_id: str,
                 content: str) -> Event:
    """Replace the text of comment `comment_id` of discussion `num`; only its author may."""
    who = check_can_participate(principal)
    if not isinstance(content, str) or not content.strip():
        raise InvalidInputError("An edited comment needs a non-empty 'content'.")
    with reg.write().begin() as conn:
        old = _comment_row(conn, _find(conn, repo, num), comment_id)
        if old.author != who.user:
            raise ForbiddenError("Only the author of a comment may edit it.")
        if old.data["hidden"]:
            raise InvalidInputError("A hidden comment cannot be edited.")
        latest = {"raw": content, "author": who.user, "updatedAt": db.now()}
        made = Event(old.id, old.type, old.author, {**old.data, "edited": True, "latest": latest,
                                                     "history": [old.data["latest"], *old.data["history"]]},
                     old.created_at)
        _store(conn, made)
        return made


def hide_comment(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, comment_id: str) -> Event:
    """Hide comment `comment_id` for good (its text is dropped); its author or a writer may."""
    who = check_can_participate(principal)
    with reg.write().begin() as conn:
        old = _comment_row(conn, _find(conn, repo, num), comment_id)
        if old.author != who.user and not _is_writer(who, repo):
            raise ForbiddenError("Only the author of a comment and the repo's writers may hide it.")
        latest = {"raw": "", "author": who.user, "updatedAt": db.now()}
        made = Event(old.id, old.type, old.author, {**old.data, "hidden": True, "latest": latest, "history": []},
                     old.created_at)
        _store(conn, made)
        return made


def rename(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, title: str) -> Event:
    """Retitle discussion `num`; its author or a writer may."""
    if not isinstance(title, str) or not title.strip():
        raise InvalidInputError("A discussion needs a non-empty title.")
    with reg.write().begin() as conn:
        d = _find(conn, repo, num)
        who = _check_author_or_writer(principal, repo, d.author, "rename a discussion")
        conn.execute(sa.update(db.discussions).where(db.discussions.c.id == d.pk).values(title=title.strip()))
        return _add_event(conn, d.pk, "title-change", who.user, {"from": d.title, "to": title.strip()})


def change_status(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, status: str,
                  note: str = "") -> Event:
    """Close or reopen discussion `num` (with an optional comment); its author or a writer may."""
    if status not in ("open", "closed"):
        raise InvalidInputError(f"Invalid status {status!r}: expected 'open' or 'closed'.")
    with reg.write().begin() as conn:
        d = _find(conn, repo, num)
        who = _check_author_or_writer(principal, repo, d.author, "close or reopen a discussion")
        if d.status == "merged":
            raise ConflictError(f"Pull request #{num} is merged; its status cannot change.")
        conn.execute(sa.update(db.discussions).where(db.discussions.c.id == d.pk).values(status=status))
        if note.strip():
            _add_event(conn, d.pk, "comment", who.user, _comment_data(note.strip(), who.user, db.now()))
        return _add_event(conn, d.pk, "status-change", who.user, {"status": status})


def _sig(entry: TreeEntry | None) -> tuple[str, bool] | None:
    return None if entry is None else (entry.oid, entry.lfs)


@dataclass(frozen=True)
class PrState:
    """The trees a pull request is judged on: where it started, its head, and its target's head."""

    base: dict[str, TreeEntry]
    head: dict[str, TreeEntry]
    target: dict[str, TreeEntry]
    target_oid: str

    @property
    def changed(self) -> list[str]:
        """Paths the PR adds, changes or deletes relative to where it started."""
        return sorted(p for p in set(self.base) | set(self.head) if _sig(self.base.get(p)) != _sig(self.head.get(p)))

    @property
    def conflicts(self) -> list[str]:
        """Changed paths the target also changed since, differently."""
        return [p for p in self.changed if _sig(self.target.get(p)) not in (_sig(self.base.get(p)),
                                                                          _sig(self.head.get(p)))]


def pr_state(reg: Registry, repo: RepoRecord, d: Discussion) -> PrState:
    """The base, head and target trees of pull request `d`."""
    with reg.engine.connect() as conn:
        head_oid = branch_head(conn, repo.pk, d.git_ref)
        target_oid = branch_head(conn, repo.pk, d.target_branch or "main")
        if head_oid is None or target_oid is None or d.base_oid is None:
            raise RevisionNotFoundError(repo.ref.repo_id, d.target_branch or d.git_ref)

        def tree(oid: str) -> dict[str, TreeEntry]:
            made = get_commit(conn, repo.pk, oid)
            assert made is not None
            return reg.tree(conn, made.tree_oid)

        return PrState(tree(d.base_oid), tree(head_oid), tree(target_oid), target_oid)


def diff_text(reg: Registry, state: PrState) -> str:
    """The PR's changes as a git-style unified diff (binary and LFS files named only)."""
    out: list[str] = []
    for path in state.changed:
        old, new = state.base.get(path), state.head.get(path)
        out.append(f"diff --git a/{path} b/{path}\n")
        texts = [_text(reg, e) for e in (old, new)]
        if texts[0] is None or texts[1] is None:
            out.append(f"Binary files {'a/' + path if old else '/dev/null'} and {'b/' + path if new else '/dev/null'}"
                       " differ\n")
            continue
        out.extend(difflib.unified_diff(texts[0].splitlines(True), texts[1].splitlines(True),
                                        f"a/{path}" if old else "/dev/null", f"b/{path}" if new else "/dev/null"))
    return "".join(out)


def _text(reg: Registry, entry: TreeEntry | None) -> str | None:
    if entry is None:
        return ""
    if entry.lfs or entry.size > 1024 * 1024:
        return None
    try:
        return reg.blobs.path(entry.oid).read_text()
    except UnicodeDecodeError:
        return None


def merge(reg: Registry, repo: RepoRecord, principal: Principal | None, num: int, note: str = "") -> CommitRecord:
    """Squash pull request `num` into one commit on its target, titled "<title> (#num)"; only writers merge.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not write the repo.
        InvalidInputError: `num` is a discussion, not a pull request.
        ConflictError: the PR is not open, or it conflicts with its target (the message names the files).
    """
    who = check_can_participate(principal)
    if not _is_writer(who, repo):
        raise ForbiddenError("Only the repo's writers may merge a pull request.")
    d = get_discussion(reg, repo, num)
    if not d.is_pr:
        raise InvalidInputError(f"#{num} is a discussion, not a pull request.")
    if d.status not in ("open", "draft"):
        raise ConflictError(f"Pull request #{num} is {d.status} and cannot be merged.")
    state = pr_state(reg, repo, d)
    if state.conflicts:
        raise ConflictError(f"This Pull Request has conflicts with {d.target_branch}: the following files have "
                            f"conflicts: {', '.join(state.conflicts)}. Resolve them on {d.git_ref} and try again.")
    ops: list[Operation] = []
    for path in state.changed:
        entry = state.head.get(path)
        if _sig(state.target.get(path)) == _sig(entry):
            continue
        ops.append(AddFile(entry) if entry is not None else DeleteFile(path))
    made = commit(reg, repo, who, branch=d.target_branch or "main", operations=ops, title=f"{d.title} (#{num})",
                  message=note, parent_commit=state.target_oid)
    with reg.write().begin() as conn:
        conn.execute(sa.update(db.discussions).where(db.discussions.c.id == d.pk)
                     .values(status="merged", merge_oid=made.oid))
        if note.strip():
            _add_event(conn, d.pk, "comment", who.user, _comment_data(note.strip(), who.user, db.now()))
        _add_event(conn, d.pk, "status-change", who.user, {"status": "merged"})
    return made
