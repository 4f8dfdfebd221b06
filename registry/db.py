"""The metadata database: SQLAlchemy Core tables that run unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(96), nullable=False, unique=True),
    sa.Column("is_org", sa.Boolean, nullable=False, default=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(96), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

repos = sa.Table(
    "repos",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("namespace", sa.String(96), nullable=False),
    sa.Column("name", sa.String(96), nullable=False),
    sa.Column("private", sa.Boolean, nullable=False, default=False),
    sa.Column("sdk", sa.String(32), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("type", "namespace", "name", name="uq_repo_identity"),
)

trees = sa.Table(
    "trees",
    metadata,
    sa.Column("oid", sa.String(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("oid", sa.String(40), primary_key=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("tree_oid", sa.String(64), nullable=False),
    sa.Column("parents", sa.Text, nullable=False),
    sa.Column("author", sa.String(96), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

refs = sa.Table(
    "refs",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("commit_oid", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

blob_meta = sa.Table(
    "blob_meta",
    metadata,
    sa.Column("oid", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)

# Which repos hold (or held) which LFS objects: a client may only cite an object it has proven to have
# (uploaded it) or could download from a repo it can read, so knowing a sha256 never leaks a private file.
repo_blobs = sa.Table(
    "repo_blobs",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("oid", sa.String(64), primary_key=True, index=True),
)

# Background jobs (evaluations): claimed by exactly one worker, heartbeated, resumed when their worker dies.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("owner", sa.String(96), nullable=False),
    sa.Column("done", sa.Integer, nullable=False, default=0),
    sa.Column("total", sa.Integer, nullable=False, default=0),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(160), nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
)

# Discussions and pull requests, numbered per repo; a PR's head is the ref `refs/pr/<num>` (kind "pr").
discussions = sa.Table(
    "discussions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("num", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("author", sa.String(96), nullable=False),
    sa.Column("is_pr", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("target_branch", sa.String(255), nullable=True),
    sa.Column("base_oid", sa.String(40), nullable=True),
    sa.Column("merge_oid", sa.String(40), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("repo_id", "num", name="uq_discussion_num"),
)

# What happened in a discussion: comments, status and title changes (a PR's commits are read from its ref).
discussion_events = sa.Table(
    "discussion_events",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("discussion_id", sa.Integer, sa.ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("author", sa.String(96), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Every move of an alias (a named, movable pointer to a commit, stored in `refs` with kind "alias"),
# every refused promotion, and protection changes: who, when, from, to, why, and the evidence the gate used.
alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("alias", sa.String(255), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_oid", sa.String(40), nullable=True),
    sa.Column("to_oid", sa.String(40), nullable=True),
    sa.Column("actor", sa.String(96), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Aliases a repo's organisation admins marked protected (`production` of an organisation's repo always is).
protected_aliases = sa.Table(
    "protected_aliases",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
)

# The outbox of repo events (commits, ref changes, alias moves, refused promotions, finished evaluations,
# drift): written in the same transaction as what happened, delivered to webhooks afterwards.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("actor", sa.String(96), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The prediction log of endpoints: parquet segments in the blob store (registry/predictionlog.py), and
# ground truth posted later for logged request ids.
prediction_segments = sa.Table(
    "prediction_segments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("alias", sa.String(255), nullable=False),
    sa.Column("oid", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("first_time", sa.Float, nullable=False),
    sa.Column("last_time", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

prediction_feedback = sa.Table(
    "prediction_feedback",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


# How an endpoint splits its traffic: a canary alias answers a share of it, or a shadow alias sees every
# request without answering (registry/traffic.py); changes are audited in `alias_events`.
endpoint_traffic = sa.Table(
    "endpoint_traffic",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Old names of moved repos: the name keeps answering (a redirect) until a repo is created or moved there.
repo_redirects = sa.Table(
    "repo_redirects",
    metadata,
    sa.Column("type", sa.String(16), primary_key=True),
    sa.Column("namespace_lower", sa.String(96), primary_key=True),
    sa.Column("name_lower", sa.String(96), primary_key=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Downloads counted per repo (registry/repos.py `count_download` says which requests count).
repo_downloads = sa.Table(
    "repo_downloads",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False, default=0),
)

# Who likes which repo (`HfApi.like`); a repo's `likes` is the number of its rows.
repo_likes = sa.Table(
    "repo_likes",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user", sa.String(96), primary_key=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Xet storage (registry/xet/): xorbs are blobs of the blob store named by their sha256; these rows say which
# xorb hash each is, its chunks, which repos may read or dedupe against it, and each Xet file's reconstruction.
xet_xorbs = sa.Table(
    "xet_xorbs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("oid", sa.String(64), nullable=False, index=True),
    sa.Column("length", sa.BigInteger, nullable=False),
    sa.Column("chunks", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

xet_chunks = sa.Table(
    "xet_chunks",
    metadata,
    sa.Column("chunk_hash", sa.String(64), primary_key=True),
    sa.Column("xorb_hash", sa.String(64), primary_key=True, index=True),
)

xet_xorb_repos = sa.Table(
    "xet_xorb_repos",
    metadata,
    sa.Column("xorb_hash", sa.String(64), primary_key=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# Which xorbs each Xet file cites: a dedupe answer offers the xorbs uploaded with the one holding the chunk asked.
xet_file_xorbs = sa.Table(
    "xet_file_xorbs",
    metadata,
    sa.Column("file_hash", sa.String(64), primary_key=True),
    sa.Column("xorb_hash", sa.String(64), primary_key=True, index=True),
)

xet_files = sa.Table(
    "xet_files",
    metadata,
    sa.Column("file_hash", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("terms", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def connect(url: str, *, migrate: bool = True) -> Engine:
    """Open the metadata DB at `url` (creating SQLite's folder) and, unless `migrate=False`, migrate it to head."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers run beside the writer; FULL sync makes a commit survive SIGKILL and power loss.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy's `begin()` issue BEGIN IMMEDIATE so writers queue instead of deadlocking.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers (see `writer`) take the write lock up front so two of them never deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN")

    else:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if migrate:
        ensure_schema(engine)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Upgrade the DB to the head migration (a new DB from nothing, an older release's in place); cheap at head."""
    from registry import migrations

    # The common case, a DB already at head, costs one small read and takes no lock.
    if migrations.at_head(engine):
        return
    migrations.upgrade(engine)


def writer(engine: Engine) -> Engine:
    """The engine to open write transactions with (`with writer(engine).begin() as conn`)."""
    return engine.execution_options(writer=True)


def now() -> float:
    """Current UNIX time, the one clock every table uses."""
    return time.time()
