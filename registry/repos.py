"""Repos: create (with an initial commit), find, list, move, delete, change visibility."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.auth import Principal, check_can_read, check_can_write, ensure_user
from registry.blobs import check_oid, git_blob_oid
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
from registry.errors import ConflictError, EntryNotFoundError, InvalidInputError, RepoNotFoundError
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
    downloads: int = 0
    likes: int = 0


class RepoMovedError(RepoNotFoundError):
    """The repo asked for was moved: `new` is where it lives now (hub/ answers a 307 redirect there)."""

    def __init__(self, old: RepoRef, new: RepoRef) -> None:
        super().__init__(old.repo_id, old.type)
        self.old = old
        self.new = new


_dl, _lk = db.repo_downloads.alias("dl"), db.repo_likes.alias("lk")
_DOWNLOADS = sa.select(_dl.c.count).where(_dl.c.repo_id == db.repos.c.id).correlate(db.repos).scalar_subquery()
_LIKES = (sa.select(sa.func.count()).select_from(_lk).where(_lk.c.repo_id == db.repos.c.id).correlate(db.repos)
          .scalar_subquery())
DOWNLOADS_COL = sa.func.coalesce(_DOWNLOADS, 0)
LIKES_COL = sa.func.coalesce(_LIKES, 0)


def _select() -> sa.Select:  # type: ignore[type-arg]
    return sa.select(db.repos, DOWNLOADS_COL.label("downloads"), LIKES_COL.label("likes"))


def _record(row: sa.Row) -> RepoRecord:  # type: ignore[type-arg]
    mapping = row._mapping
    return RepoRecord(row.id, RepoRef(row.type, row.namespace, row.name), bool(row.private), row.sdk,
                      row.created_at, row.updated_at, int(mapping.get("downloads") or 0),
                      int(mapping.get("likes") or 0))


def _same_id(ref: RepoRef) -> sa.ColumnElement[bool]:
    """Rows whose id is `ref`'s up to case (repo ids are case-insensitive, as on the Hub)."""
    return sa.and_(db.repos.c.type == ref.type, sa.func.lower(db.repos.c.namespace) == ref.namespace.lower(),
                   sa.func.lower(db.repos.c.name) == ref.name.lower())


def find_repo(conn: Connection, ref: RepoRef) -> RepoRecord:
    """The repo `ref` (exact case first, else matched case-insensitively), or RepoNotFoundError."""
    row = conn.execute(
        _select().where(db.repos.c.type == ref.type, db.repos.c.namespace == ref.namespace,
                        db.repos.c.name == ref.name)
    ).first()
    if row is None:
        row = conn.execute(_select().where(_same_id(ref)).order_by(db.repos.c.id)).first()
    if row is None:
        raise RepoNotFoundError(ref.repo_id, ref.type)
    return _record(row)


def _redirect_key(ref: RepoRef) -> dict[str, str]:
    return {"type": ref.type, "namespace_lower": ref.namespace.lower(), "name_lower": ref.name.lower()}


def find_moved(conn: Connection, ref: RepoRef) -> RepoRecord | None:
    """The repo that was moved away from the name `ref`, if the name still redirects to it."""
    key = _redirect_key(ref)
    row = conn.execute(
        _select().join(db.repo_redirects, db.repo_redirects.c.repo_id == db.repos.c.id)
        .where(*(db.repo_redirects.c[k] == v for k, v in key.items()))
    ).first()
    return None if row is None else _record(row)


def open_repo(reg: Registry, ref: RepoRef, principal: Principal | None, *, write: bool = False) -> RepoRecord:
    """The repo if the caller may see it (else RepoNotFound) and, with `write`, change it (else 401/403).

    Raises:
        RepoMovedError: `ref` is the old name of a moved repo the caller may read (a RepoNotFound to others).
    """
    try:
        repo = get_repo(reg, ref)
    except RepoNotFoundError:
        with reg.engine.connect() as conn:
            moved = find_moved(conn, ref)
        if moved is None:
            raise
        try:
            check_can_read(principal, moved.ref, private=moved.private)
        except RepoNotFoundError:
            raise RepoNotFoundError(ref.repo_id, ref.type) from None  # never reveal where a private repo went
        raise RepoMovedError(ref, moved.ref) from None
    check_can_read(principal, repo.ref, private=repo.private)
    if write:
        check_can_write(principal, repo.ref.namespace)
    return repo


def get_repo(reg: Registry, ref: RepoRef) -> RepoRecord:
    """The repo `ref`, or RepoNotFoundError (no permission check)."""
    with reg.engine.connect() as conn:
        return find_repo(conn, ref)


def space_readme(ref: RepoRef, sdk: str) -> str:
    """The README the Hub seeds a new Space with: front matter naming its title, sdk and looks."""
    app = {"gradio": "app_file: app.py\n", "streamlit": "app_file: app.py\n", "static": "app_file: index.html\n",
           "docker": "app_port: 7860\n"}[sdk]
    return (f"---\ntitle: {ref.name}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: green\nsdk: {sdk}\n{app}"
            "pinned: false\n---\n\n"
            "Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference\n")


def _conflict(ref: RepoRef, url: str) -> ConflictError:
    return ConflictError(f"You already created this {ref.type} repo: {ref.repo_id}", url=url)


def create_repo(
    reg: Registry, ref: RepoRef, *, author: str, private: bool = False, sdk: str | None = None, url: str = "",
    seed_readme: bool = False,
) -> RepoRecord:
    """Create repo `ref` with an initial commit on `main` holding `.gitattributes` (and, for a Space with
    `seed_readme`, the README the Hub seeds); 409 if a repo of that id exists, whatever its case."""
    if ref.namespace in RESERVED_NAMESPACES or ref.namespace == BOT_USER:
        raise InvalidInputError(f"Namespace {ref.namespace!r} is reserved.")
    if ref.type == "space":
        if sdk not in SPACE_SDKS:
            raise InvalidInputError(f"Invalid Space sdk {sdk!r}: expected one of {', '.join(SPACE_SDKS)}.")
    else:
        sdk = None
    files = {".gitattributes": GITATTRIBUTES.encode()}
    if seed_readme and ref.type == "space" and sdk is not None:
        files["README.md"] = space_readme(ref, sdk).encode()
    entries = {}
    for path, content in files.items():
        stored = reg.blobs.put_bytes(content)
        entries[path] = TreeEntry(path, stored.oid, stored.size, git_blob_oid(content), False)
    try:
        with reg.write().begin() as conn:
            row = conn.execute(sa.select(db.users.c.id).where(db.users.c.name == ref.namespace)).first()
            if row is None:
                ensure_user(conn, ref.namespace, is_org=True)
            if conn.execute(sa.select(db.repos.c.id).where(_same_id(ref))).first() is not None:
                raise _conflict(ref, url)
            # The name is taken again: it stops redirecting to the repo that moved away from it.
            conn.execute(sa.delete(db.repo_redirects).where(
                *(db.repo_redirects.c[k] == v for k, v in _redirect_key(ref).items())))
            now = db.now()
            res = conn.execute(
                sa.insert(db.repos).values(type=ref.type, namespace=ref.namespace, name=ref.name, private=private,
                                           sdk=sdk, created_at=now, updated_at=now)
            )
            key = res.inserted_primary_key
            assert key is not None
            pk = int(key[0])
            commit = write_commit(conn, pk, entries, parents=(), author=author, title="initial commit",
                                  message="")
            set_ref(conn, pk, "branch", "main", commit.oid, expected=None)
            return RepoRecord(pk, ref, private, sdk, now, now)
    except IntegrityError:
        raise _conflict(ref, url) from None


def delete_repo(reg: Registry, ref: RepoRef) -> None:
    """Delete repo `ref` with its refs and commits (blobs go at the next `vitrine gc`)."""
    with reg.write().begin() as conn:
        repo = find_repo(conn, ref)
        conn.execute(sa.delete(db.refs).where(db.refs.c.repo_id == repo.pk))
        conn.execute(sa.delete(db.commits).where(db.commits.c.repo_id == repo.pk))
        conn.execute(sa.delete(db.repos).where(db.repos.c.id == repo.pk))


def move_repo(reg: Registry, ref: RepoRef, new: RepoRef, *, url: str = "") -> None:
    """Rename repo `ref` to `new` (same type); the old name redirects to it until a repo takes that name."""
    if new.namespace in RESERVED_NAMESPACES:
        raise InvalidInputError(f"Namespace {new.namespace!r} is reserved.")
    try:
        with reg.write().begin() as conn:
            repo = find_repo(conn, ref)
            clash = conn.execute(sa.select(db.repos.c.id).where(_same_id(new), db.repos.c.id != repo.pk)).first()
            if clash is not None:
                raise _conflict(new, url)
            conn.execute(sa.delete(db.repo_redirects).where(
                *(db.repo_redirects.c[k] == v for k, v in _redirect_key(new).items())))
            conn.execute(sa.update(db.repos).where(db.repos.c.id == repo.pk)
                         .values(namespace=new.namespace, name=new.name, updated_at=db.now()))
            old = repo.ref
            if _redirect_key(old) != _redirect_key(new):
                conn.execute(sa.insert(db.repo_redirects).values(**_redirect_key(old), repo_id=repo.pk,
                                                                 created_at=db.now()))
    except IntegrityError:
        raise _conflict(new, url) from None


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


# `blob_meta` rows of kind "purged:<repo pk>" mark an LFS object permanently deleted from that repo.
PURGED_KIND = "purged:"


def purged_oids(conn: Connection, repo_pk: int) -> set[str]:
    """The LFS objects permanently deleted from repo `repo_pk` (`permanently_delete_lfs_files`)."""
    return set(conn.execute(sa.select(db.blob_meta.c.oid)
                            .where(db.blob_meta.c.kind == f"{PURGED_KIND}{repo_pk}")).scalars())


def check_not_purged(reg: Registry, repo: RepoRecord, entry: TreeEntry, revision: str) -> None:
    """Refuse to serve a file whose LFS object was permanently deleted from the repo (EntryNotFound, as on the Hub).

    Raises:
        EntryNotFoundError: the object was deleted with `permanently_delete_lfs_files`.
    """
    if not entry.lfs:
        return
    with reg.engine.connect() as conn:
        gone = conn.execute(sa.select(db.blob_meta.c.oid).where(
            db.blob_meta.c.oid == entry.oid, db.blob_meta.c.kind == f"{PURGED_KIND}{repo.pk}")).first()
    if gone is not None:
        raise EntryNotFoundError(repo.ref.repo_id, entry.path, revision)


def lfs_files(reg: Registry, repo: RepoRecord) -> list[LfsFile]:
    """The LFS objects `repo` keeps, on any branch or in any commit, oldest first (`list_lfs_files`)."""
    with reg.engine.connect() as conn:
        seen = _history_entries(reg, conn, repo)
        gone = purged_oids(conn, repo.pk)
    return [LfsFile(e.oid, e.git_oid, e.path, e.size, at) for e, at in seen.values() if e.lfs and e.oid not in gone]


def _used_elsewhere(reg: Registry, conn: Connection, repo_pk: int, oid: str) -> bool:
    """Whether a repo other than `repo_pk` holds `oid`: linked to it (uploaded, cited) or in one of its trees."""
    linked = conn.execute(sa.select(db.repo_blobs.c.repo_id).where(
        db.repo_blobs.c.oid == oid, db.repo_blobs.c.repo_id != repo_pk)).first()
    if linked is not None:
        return True
    purged_from = {int(k.removeprefix(PURGED_KIND)) for k in conn.execute(
        sa.select(db.blob_meta.c.kind).where(db.blob_meta.c.oid == oid,
                                             db.blob_meta.c.kind.startswith(PURGED_KIND))).scalars()}
    rows = conn.execute(sa.select(db.commits.c.repo_id, db.commits.c.tree_oid).distinct()
                        .where(db.commits.c.repo_id != repo_pk)).all()
    return any(r.repo_id not in purged_from and oid in {e.oid for e in reg.tree(conn, r.tree_oid).values()}
               for r in rows)


def permanently_delete_lfs_files(reg: Registry, repo: RepoRecord, oids: list[str]) -> list[str]:
    """Delete these LFS objects from every revision of `repo`; free each blob no other repo holds.

    The commits keep their trees (and ids); a file whose object is gone answers EntryNotFound on download, and
    `list_lfs_files` no longer lists it. Objects the repo never held are ignored. Returns the blobs freed.

    Raises:
        InvalidInputError: an oid is not a sha256.
    """
    wanted = {check_oid(o) for o in oids}
    freed = []
    with reg.write().begin() as conn:
        held = {e.oid for e, _ in _history_entries(reg, conn, repo).values() if e.lfs}
        held |= set(conn.execute(sa.select(db.repo_blobs.c.oid).where(db.repo_blobs.c.repo_id == repo.pk)).scalars())
        gone = purged_oids(conn, repo.pk)
        for oid in sorted(wanted & held):
            if oid not in gone:
                conn.execute(sa.insert(db.blob_meta).values(oid=oid, kind=f"{PURGED_KIND}{repo.pk}",
                                                            data=json.dumps({"at": db.now()})))
            conn.execute(sa.delete(db.repo_blobs).where(db.repo_blobs.c.repo_id == repo.pk,
                                                        db.repo_blobs.c.oid == oid))
            if not _used_elsewhere(reg, conn, repo.pk, oid):
                freed.append(oid)
    for oid in freed:
        reg.blobs.delete(oid)
    return freed


def storage_of(reg: Registry, repo: RepoRecord) -> int:
    """Bytes the repo keeps: each distinct file of its history counted once (deleted LFS objects not)."""
    with reg.engine.connect() as conn:
        gone = purged_oids(conn, repo.pk)
        return sum(e.size for e, _ in _history_entries(reg, conn, repo).values() if e.oid not in gone)


# What the Hub counts as a download of a repo: a GET of `config.json` where the revision has one, else a GET
# of any file; HEAD requests (the client's metadata probes) never count.
DOWNLOAD_FILE = "config.json"


def counts_as_download(method: str, path: str, tree: dict[str, TreeEntry]) -> bool:
    """Whether a resolve request for `path` counts as one download of the repo (the Hub's default rule)."""
    if method != "GET":
        return False
    return path == DOWNLOAD_FILE or DOWNLOAD_FILE not in tree


def count_download(reg: Registry, repo: RepoRecord) -> None:
    """Add one download to `repo`."""
    for last in (False, True):
        try:
            with reg.write().begin() as conn:
                done = conn.execute(sa.update(db.repo_downloads).where(db.repo_downloads.c.repo_id == repo.pk)
                                    .values(count=db.repo_downloads.c.count + 1)).rowcount
                if not done:
                    conn.execute(sa.insert(db.repo_downloads).values(repo_id=repo.pk, count=1))
            return
        except IntegrityError:
            # On PostgreSQL two first downloads may both find no row and both insert; the loser's update now finds it.
            if last:
                raise


def like(reg: Registry, repo: RepoRecord, user: str) -> None:
    """`user` likes `repo` (idempotent)."""
    try:
        with reg.write().begin() as conn:
            have = conn.execute(sa.select(db.repo_likes.c.user).where(db.repo_likes.c.repo_id == repo.pk,
                                                                      db.repo_likes.c.user == user)).first()
            if have is None:
                conn.execute(sa.insert(db.repo_likes).values(repo_id=repo.pk, user=user, created_at=db.now()))
    except IntegrityError:
        # On PostgreSQL two likes at once may both find no row; the loser's row is the winner's: liked either way.
        pass


def unlike(reg: Registry, repo: RepoRecord, user: str) -> None:
    """`user` no longer likes `repo` (idempotent)."""
    with reg.write().begin() as conn:
        conn.execute(sa.delete(db.repo_likes).where(db.repo_likes.c.repo_id == repo.pk, db.repo_likes.c.user == user))


def liked_repos(reg: Registry, user: str, viewer: Principal | None) -> list[tuple[RepoRecord, float]]:
    """The repos `user` likes that `viewer` may see, with when each was liked, newest first."""
    with reg.engine.connect() as conn:
        rows = conn.execute(_select().add_columns(db.repo_likes.c.created_at.label("liked_at"))
                            .join(db.repo_likes, db.repo_likes.c.repo_id == db.repos.c.id)
                            .where(sa.func.lower(db.repo_likes.c.user) == user.lower())
                            .order_by(db.repo_likes.c.created_at.desc())).all()
    out = []
    for row in rows:
        repo = _record(row)
        if not repo.private or (viewer is not None and viewer.may_read_namespace(repo.ref.namespace)):
            out.append((repo, row.liked_at))
    return out


def likers(reg: Registry, repo: RepoRecord) -> list[str]:
    """Users who like `repo`, oldest like first."""
    with reg.engine.connect() as conn:
        return list(conn.execute(sa.select(db.repo_likes.c.user).where(db.repo_likes.c.repo_id == repo.pk)
                                 .order_by(db.repo_likes.c.created_at)).scalars())


SORT_KEYS = {"lastModified": db.repos.c.updated_at, "last_modified": db.repos.c.updated_at,
             "createdAt": db.repos.c.created_at, "created_at": db.repos.c.created_at, "id": db.repos.c.name,
             "downloads": DOWNLOADS_COL, "likes": LIKES_COL,
             # Trends are not computed: they keep the newest first.
             "trending_score": db.repos.c.updated_at, "trendingScore": db.repos.c.updated_at}


def list_repos(
    reg: Registry, repo_type: str, *, viewer: Principal | None, search: str | None = None,
    author: str | None = None, sort: str | None = None, descending: bool = True,
) -> list[RepoRecord]:
    """Repos of `repo_type` the viewer may see, filtered by author and a substring of the id."""
    repo_type = check_repo_type(repo_type)
    q = _select().where(db.repos.c.type == repo_type)
    if author:
        q = q.where(sa.func.lower(db.repos.c.namespace) == author.lower())
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
    q = q.order_by(col.desc() if descending else col.asc(), db.repos.c.updated_at.desc(), db.repos.c.id)
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
