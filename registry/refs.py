"""Branches and tags: list, create from any revision, delete."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from registry import db, events
from registry.commits import resolve_revision, set_ref
from registry.core import Registry
from registry.errors import ConflictError, InvalidInputError, RevisionNotFoundError
from registry.names import check_ref_name
from registry.repos import RepoRecord


@dataclass(frozen=True)
class RefInfo:
    """A branch or tag and the commit it names."""

    kind: str
    name: str
    commit_oid: str

    @property
    def full_ref(self) -> str:
        """`refs/heads/<name>`, `refs/tags/<name>`, or a PR head's own name (`refs/pr/<num>`)."""
        if self.kind == "pr":
            return self.name
        return f"refs/{'heads' if self.kind == 'branch' else 'tags'}/{self.name}"


def list_refs(reg: Registry, repo: RepoRecord) -> list[RefInfo]:
    """Every branch, tag and pull-request head of `repo` (aliases: registry/aliases.py), sorted by kind then name."""
    with reg.engine.connect() as conn:
        rows = conn.execute(
            sa.select(db.refs).where(db.refs.c.repo_id == repo.pk, db.refs.c.kind != "alias")
            .order_by(db.refs.c.kind, db.refs.c.name)
        ).all()
    return [RefInfo(r.kind, r.name, r.commit_oid) for r in rows]


def create_ref(reg: Registry, repo: RepoRecord, kind: str, name: str, *, revision: str, actor: str = "") -> RefInfo:
    """Create branch or tag `name` at `revision`; RevisionNotFoundError first, then a bad or existing name."""
    with reg.write().begin() as conn:
        commit = resolve_revision(conn, repo.pk, repo.ref, revision)
        check_ref_name(name, what=kind)
        # A branch may share a tag's name, as in git and on the Hub (a revision names the branch first).
        clash = conn.execute(
            sa.select(db.refs.c.kind).where(db.refs.c.repo_id == repo.pk, db.refs.c.kind == kind,
                                            db.refs.c.name == name)
        ).scalar_one_or_none()
        if clash is not None:
            raise ConflictError(f"Reference already exists: {name} is a {clash} of {repo.ref}.")
        if conn.execute(sa.select(db.refs.c.name).where(db.refs.c.repo_id == repo.pk, db.refs.c.kind == "alias",
                                                        db.refs.c.name == name)).first() is not None:
            raise ConflictError(f"{name} is an alias of {repo.ref}; a {kind} needs another name.")
        set_ref(conn, repo.pk, kind, name, commit.oid, expected=None)
        made = RefInfo(kind, name, commit.oid)
        events.emit(conn, "repo.refs", repo.pk, actor=actor,
                    data={"updatedRefs": [{"ref": made.full_ref, "oldSha": None, "newSha": commit.oid}]})
    return made


def delete_ref(reg: Registry, repo: RepoRecord, kind: str, name: str, *, actor: str = "") -> None:
    """Delete branch or tag `name`; `main` cannot be deleted."""
    if kind == "branch" and name == "main":
        raise InvalidInputError("The main branch cannot be deleted.")
    with reg.write().begin() as conn:
        where = (db.refs.c.repo_id == repo.pk, db.refs.c.kind == kind, db.refs.c.name == name)
        old = conn.execute(sa.select(db.refs.c.commit_oid).where(*where)).scalar_one_or_none()
        res = conn.execute(sa.delete(db.refs).where(*where))
        if res.rowcount == 0:
            raise RevisionNotFoundError(repo.ref.repo_id, name)
        events.emit(conn, "repo.refs", repo.pk, actor=actor, data={"updatedRefs": [
            {"ref": RefInfo(kind, name, old or "").full_ref, "oldSha": old, "newSha": None}]})
