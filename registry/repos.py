"""Repos: create (with an initial commit), find, list, move, delete, change visibility."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.auth import Principal, check_can_read, check_can_write, ensure_user
from registry.blobs import git_blob_oid
from registry.commits import (
    CommitRecord,
    commit,
    history,
    last_commits,
    managed_by_hub,
    resolve_revision,
    set_ref,
    write_commit,
)
from registry.core import Registry
from registry.errors import ConflictError, InvalidInputError, RepoNotFoundError
from registry.names import BOT_USER, RESERVED_NAMESPACES, SPACE_SDKS, RepoRef, check_repo_type
from registry.trees import AddFile, TreeEntry

# What the Hub writes into every new repo, so large binaries are tracked by LFS when cloned with git.
GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in (
        "7z arrow bin bz2 ckpt ftz gz h5 joblib lfs.* mlmodel model msgpack npy npz onnx ot parquet pb pickle pkl "
        "pt pth rar safetensors tar tflite tgz wasm xz zip zst"
    ).split()
) + "*tfevents* filter=lfs diff=lfs merge=lfs -text\n"


@dataclass(frozen=True)
class RepoRecord:
    """A repo row."""

    pk: int
    ref: RepoRef
    private: bool
    sdk: str | None
    created_at: float
    updated_at: float


def _record(row: sa.Row) -> RepoRecord:  # type: ignore[type-arg]
    return RepoRecord(row.id, RepoRef(row.type, row.namespace, row.name), bool(row.private), row.sdk,
                      row.created_at, row.updated_at)


def find_repo(conn: Connection, ref: RepoRef) -> RepoRecord:
    """The repo `ref`, or RepoNotFoundError."""
    row = conn.execute(
        sa.select(db.repos).where(db.repos.c.type == ref.type, db.repos.c.namespace == ref.namespace,
                                  db.repos.c.name == ref.name)
    ).first()
    if row is None:
        raise RepoNotFoundError(ref.repo_id, ref.type)
    return _record(row)


def open_repo(reg: Registry, ref: RepoRef, principal: Principal | None, *, write: bool = False) -> RepoRecord:
    """The repo if the caller may see it (else RepoNotFound) and, with `write`, change it (else 401/403)."""
    repo = get_repo(reg, ref)
    check_can_read(principal, ref, private=repo.private)
    if write:
        check_can_write(principal, ref.namespace)
    return repo


def get_repo(reg: Registry, ref: RepoRef) -> RepoRecord:
    """The repo `ref`, or RepoNotFoundError (no permission check)."""
    with reg.engine.connect() as conn:
        return find_repo(conn, ref)


def create_repo(
    reg: Registry, ref: RepoRef, *, author: str, private: bool = False, sdk: str | None = None, url: str = ""
) -> RepoRecord:
    """Create repo `ref` with an initial commit on `main` holding `.gitattributes`."""
    if ref.namespace in RESERVED_NAMESPACES or ref.namespace == BOT_USER:
        raise InvalidInputError(f"Namespace {ref.namespace!r} is reserved.")
    if ref.type == "space":
        if sdk not in SPACE_SDKS:
            raise InvalidInputError(f"Invalid Space sdk {sdk!r}: expected one of {', '.join(SPACE_SDKS)}.")
    else:
        sdk = None
    content = GITATTRIBUTES.encode()
    stored = reg.blobs.put_bytes(content)
    entry = TreeEntry(".gitattributes", stored.oid, stored.size, git_blob_oid(content), False)
    try:
        with reg.write().begin() as conn:
            row = conn.execute(sa.select(db.users.c.id).where(db.users.c.name == ref.namespace)).first()
            if row is None:
                ensure_user(conn, ref.namespace, is_org=True)
            now = db.now()
            res = conn.execute(
                sa.insert(db.repos).values(type=ref.type, namespace=ref.namespace, name=ref.name, private=private,
                                           sdk=sdk, created_at=now, updated_at=now)
            )
            key = res.inserted_primary_key
            assert key is not None
            pk = int(key[0])
            commit = write_commit(conn, pk, {entry.path: entry}, parents=(), author=author, title="initial commit",
                                  message="")
            set_ref(conn, pk, "branch", "main", commit.oid, expected=None)
            return RepoRecord(pk, ref, private, sdk, now, now)
    except IntegrityError:
        raise ConflictError(f"You already created this {ref.type} repo: {ref.repo_id}", url=url) from None


def delete_repo(reg: Registry, ref: RepoRef) -> None:
    """Delete repo `ref` with its refs and commits (blobs go at the next `vitrine gc`)."""
    with reg.write().begin() as conn:
        repo = find_repo(conn, ref)
        conn.execute(sa.delete(db.refs).where(db.refs.c.repo_id == repo.pk))
        conn.execute(sa.delete(db.commits).where(db.commits.c.repo_id == repo.pk))
        conn.execute(sa.delete(db.repos).where(db.repos.c.id == repo.pk))


def move_repo(reg: Registry, ref: RepoRef, new: RepoRef, *, url: str = "") -> None:
    """Rename repo `ref` to `new` (same type)."""
    if new.namespace in RESERVED_NAMESPACES:
        raise InvalidInputError(f"Namespace {new.namespace!r} is reserved.")
    try:
        with reg.write().begin() as conn:
            repo = find_repo(conn, ref)
            conn.execute(sa.update(db.repos).where(db.repos.c.id == repo.pk)
                         .values(namespace=new.namespace, name=new.name, updated_at=db.now()))
    except IntegrityError:
        raise ConflictError(f"Repo {new.repo_id} already exists.", url=url) from None


def set_private(reg: Registry, ref: RepoRef, private: bool) -> None:
    """Make repo `ref` private or public; a model's Space that the hub manages follows it in the same transaction.

    The managed Space holds only what the model repo says (see registry/demos.py), so it may be exactly as
    visible as the model; a Space a person owns keeps the visibility its owner chose.
    """
    with reg.write().begin() as conn:
        repo = find_repo(conn, ref)
        conn.execute(sa.update(db.repos).where(db.repos.c.id == repo.pk).values(private=private))
        if ref.type == "model":
            try:
                space = find_repo(conn, RepoRef("space", ref.namespace, ref.name))
            except RepoNotFoundError:
                return
            if managed_by_hub(conn, space.pk):
                conn.execute(sa.update(db.repos).where(db.repos.c.id == space.pk).values(private=private))


def duplicate_repo(reg: Registry, source: RepoRecord, target: RepoRef, principal: Principal | None, *,
                   private: bool | None = None, url: str = "") -> RepoRecord:
    """Create `target` holding the files of `source` at `main`, in one commit made through `commit()`.

    Raises:
        UnauthorizedError, ForbiddenError: the caller may not create repos under `target`'s namespace.
        ConflictError: `target` exists (with its `url`).
    """
    who = check_can_write(principal, target.namespace)
    if target.type != source.ref.type:
        raise InvalidInputError(f"A {source.ref.type} repo is duplicated into a {source.ref.type} repo.")
    _, tree = load_version(reg, source, "main")
    made = create_repo(reg, target, author=who.user, private=source.private if private is None else private,
                       sdk=source.sdk, url=url)
    try:
        commit(reg, made, who, branch="main", operations=[AddFile(e) for e in tree.values()],
               title=f"Duplicate from {source.ref.repo_id}")
    except Exception:
        delete_repo(reg, target)  # no half-made copy left behind
        raise
    return made


@dataclass(frozen=True)
class LfsFile:
    """An LFS object in a repo's history: the path and the time it first arrived with."""

    oid: str
    git_oid: str
    path: str
    size: int
    pushed_at: float


def _history_entries(reg: Registry, conn: Connection, repo: RepoRecord) -> dict[str, tuple[TreeEntry, float]]:
    """Every distinct blob the repo's commits hold, with the entry and time it first appeared."""
    seen: dict[str, tuple[TreeEntry, float]] = {}
    rows = conn.execute(sa.select(db.commits.c.tree_oid, db.commits.c.created_at)
                        .where(db.commits.c.repo_id == repo.pk).order_by(db.commits.c.created_at)).all()
    for row in rows:
        for entry in reg.tree(conn, row.tree_oid).values():
            seen.setdefault(entry.oid, (entry, row.created_at))
    return seen


def lfs_files(reg: Registry, repo: RepoRecord) -> list[LfsFile]:
    """The LFS objects `repo` keeps, on any branch or in any commit, oldest first (`list_lfs_files`)."""
    with reg.engine.connect() as conn:
        seen = _history_entries(reg, conn, repo)
    return [LfsFile(e.oid, e.git_oid, e.path, e.size, at) for e, at in seen.values() if e.lfs]


def storage_of(reg: Registry, repo: RepoRecord) -> int:
    """Bytes the repo keeps: each distinct file of its history counted once."""
    with reg.engine.connect() as conn:
        return sum(e.size for e, _ in _history_entries(reg, conn, repo).values())


SORT_KEYS = {"lastModified": db.repos.c.updated_at, "last_modified": db.repos.c.updated_at,
             "createdAt": db.repos.c.created_at, "created_at": db.repos.c.created_at, "id": db.repos.c.name,
             # Downloads, likes and trends are not counted yet: every repo has 0, so they keep the newest first.
             "downloads": db.repos.c.updated_at, "likes": db.repos.c.updated_at,
             "trending_score": db.repos.c.updated_at, "trendingScore": db.repos.c.updated_at}


def list_repos(
    reg: Registry, repo_type: str, *, viewer: Principal | None, search: str | None = None,
    author: str | None = None, sort: str | None = None, descending: bool = True,
) -> list[RepoRecord]:
    """Repos of `repo_type` the viewer may see, filtered by author and a substring of the id."""
    repo_type = check_repo_type(repo_type)
    q = sa.select(db.repos).where(db.repos.c.type == repo_type)
    if author:
        q = q.where(db.repos.c.namespace == author)
    if search:
        needle = search.lower()
        q = q.where(sa.func.lower(db.repos.c.namespace + "/" + db.repos.c.name).contains(needle, autoescape=True))
    if viewer is None:
        q = q.where(db.repos.c.private == sa.false())
    elif not viewer.is_admin:
        q = q.where(sa.or_(db.repos.c.private == sa.false(),
                           db.repos.c.namespace.in_([viewer.user, *viewer.orgs])))
    if sort is not None and sort not in SORT_KEYS:
        raise InvalidInputError(f"Invalid sort {sort!r}: expected one of {', '.join(SORT_KEYS)}.")
    col = SORT_KEYS.get(sort or "lastModified", db.repos.c.updated_at)
    # No LIMIT here: the caller filters on card tags before it pages.
    q = q.order_by(col.desc() if descending else col.asc(), db.repos.c.id)
    with reg.engine.connect() as conn:
        return [_record(r) for r in conn.execute(q)]


def resolve_commit(reg: Registry, repo: RepoRecord, revision: str) -> CommitRecord:
    """The commit `revision` (branch, tag or commit id) names in `repo`."""
    with reg.engine.connect() as conn:
        return resolve_revision(conn, repo.pk, repo.ref, revision)


def commit_history(reg: Registry, repo: RepoRecord, revision: str, *, limit: int) -> list[CommitRecord]:
    """Up to `limit` commits of `repo` reachable from `revision` by first parents, newest first."""
    with reg.engine.connect() as conn:
        start = resolve_revision(conn, repo.pk, repo.ref, revision)
        return history(conn, repo.pk, start.oid, limit=limit)


def last_changes(reg: Registry, repo: RepoRecord, commit: CommitRecord, paths: list[str]) -> dict[str, CommitRecord]:
    """For each path (file or folder), the newest commit from `commit` back that changed it."""
    with reg.engine.connect() as conn:
        return last_commits(reg, conn, repo.pk, commit.oid, paths)


def load_version(reg: Registry, repo: RepoRecord, revision: str) -> tuple[CommitRecord, dict[str, TreeEntry]]:
    """The commit and tree of `repo` at `revision`."""
    with reg.engine.connect() as conn:
        commit = resolve_revision(conn, repo.pk, repo.ref, revision)
        return commit, reg.tree(conn, commit.tree_oid)
