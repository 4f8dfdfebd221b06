"""xet: xorbs, their chunks and repos, Xet files' reconstructions and the xorbs they cite (registry/xet/).

Revision ID: 0003_xet
Revises: 0002_aliases_events_webhooks

As in 0002, a table that already exists (a database some build made with `create_all`) is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_xet"
down_revision = "0002_aliases_events_webhooks"
branch_labels = None
depends_on = None


TABLES = ("xet_xorbs", "xet_chunks", "xet_xorb_repos", "xet_file_xorbs", "xet_files")


def upgrade() -> None:
    """Create the Xet tables (those that already exist are kept)."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in TABLES:
        if name not in existing:
            _CREATE[name]()


def _xorbs() -> None:
    op.create_table(
        "xet_xorbs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("chunks", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_xet_xorbs_oid", "xet_xorbs", ["oid"])


def _chunks() -> None:
    op.create_table(
        "xet_chunks",
        sa.Column("chunk_hash", sa.String(64), primary_key=True),
        sa.Column("xorb_hash", sa.String(64), primary_key=True),
    )
    op.create_index("ix_xet_chunks_xorb_hash", "xet_chunks", ["xorb_hash"])


def _xorb_repos() -> None:
    op.create_table(
        "xet_xorb_repos",
        sa.Column("xorb_hash", sa.String(64), primary_key=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_xet_xorb_repos_repo_id", "xet_xorb_repos", ["repo_id"])


def _file_xorbs() -> None:
    op.create_table(
        "xet_file_xorbs",
        sa.Column("file_hash", sa.String(64), primary_key=True),
        sa.Column("xorb_hash", sa.String(64), primary_key=True),
    )
    op.create_index("ix_xet_file_xorbs_xorb_hash", "xet_file_xorbs", ["xorb_hash"])


def _files() -> None:
    op.create_table(
        "xet_files",
        sa.Column("file_hash", sa.String(64), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("terms", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_xet_files_sha256", "xet_files", ["sha256"])


_CREATE = {"xet_xorbs": _xorbs, "xet_chunks": _chunks, "xet_xorb_repos": _xorb_repos, "xet_file_xorbs": _file_xorbs,
           "xet_files": _files}


def downgrade() -> None:
    """Drop the Xet tables."""
    for name in reversed(TABLES):
        op.drop_table(name)
