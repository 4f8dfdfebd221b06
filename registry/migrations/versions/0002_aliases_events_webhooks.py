"""aliases, events, traffic, prediction log, repo redirects/downloads/likes, webhooks: the tables added since the
baseline.

Revision ID: 0002_aliases_events_webhooks
Revises: 0001_baseline

Builds between the baseline release and migrations made some of these tables with `create_all`; a table that
already exists is left as it is, so such a database upgrades too.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0002_aliases_events_webhooks"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

TABLES = ("alias_events", "protected_aliases", "events", "prediction_segments", "prediction_feedback",
          "endpoint_traffic", "repo_redirects", "repo_downloads", "repo_likes", "webhooks", "webhook_deliveries")


def _repo_fk() -> sa.ForeignKey:
    return sa.ForeignKey("repos.id", ondelete="CASCADE")


def _alias_events() -> None:
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo_id", sa.Integer, _repo_fk(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_oid", sa.String(40), nullable=True),
        sa.Column("to_oid", sa.String(40), nullable=True),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_alias_events_repo_id", "alias_events", ["repo_id"])


def _protected_aliases() -> None:
    op.create_table(
        "protected_aliases",
        sa.Column("repo_id", sa.Integer, _repo_fk(), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
    )


def _events() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("repo_id", sa.Integer, _repo_fk(), nullable=False),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_repo_id", "events", ["repo_id"])


def _prediction_segments() -> None:
    op.create_table(
        "prediction_segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo_id", sa.Integer, _repo_fk(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("first_time", sa.Float, nullable=False),
        sa.Column("last_time", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_prediction_segments_repo_id", "prediction_segments", ["repo_id"])


def _prediction_feedback() -> None:
    op.create_table(
        "prediction_feedback",
        sa.Column("repo_id", sa.Integer, _repo_fk(), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _endpoint_traffic() -> None:
    op.create_table(
        "endpoint_traffic",
        sa.Column("repo_id", sa.Integer, _repo_fk(), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def _repo_redirects() -> None:
    op.create_table(
        "repo_redirects",
        sa.Column("type", sa.String(16), primary_key=True),
        sa.Column("namespace_lower", sa.String(96), primary_key=True),
        sa.Column("name_lower", sa.String(96), primary_key=True),
        sa.Column("repo_id", sa.Integer, _repo_fk(), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_repo_redirects_repo_id", "repo_redirects", ["repo_id"])


def _repo_downloads() -> None:
    op.create_table(
        "repo_downloads",
        sa.Column("repo_id", sa.Integer, _repo_fk(), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def _repo_likes() -> None:
    op.create_table(
        "repo_likes",
        sa.Column("repo_id", sa.Integer, _repo_fk(), primary_key=True),
        sa.Column("user", sa.String(96), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_repo_likes_user", "repo_likes", ["user"])


def _webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(96), nullable=False),
        sa.Column("repo_id", sa.Integer, _repo_fk(), nullable=True),
        sa.Column("namespace", sa.String(96), nullable=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("after_event", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_webhooks_owner", "webhooks", ["owner"])
    op.create_index("ix_webhooks_repo_id", "webhooks", ["repo_id"])
    op.create_index("ix_webhooks_namespace", "webhooks", ["namespace"])


def _webhook_deliveries() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("repo_id", sa.Integer, nullable=False),
        sa.Column("replay_of", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("next_attempt_at", sa.Float, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])
    op.create_index("ix_webhook_deliveries_status", "webhook_deliveries", ["status"])
    op.create_index("ix_webhook_deliveries_next_attempt_at", "webhook_deliveries", ["next_attempt_at"])


_CREATE: dict[str, Callable[[], None]] = {
    "alias_events": _alias_events,
    "protected_aliases": _protected_aliases,
    "events": _events,
    "prediction_segments": _prediction_segments,
    "prediction_feedback": _prediction_feedback,
    "endpoint_traffic": _endpoint_traffic,
    "repo_redirects": _repo_redirects,
    "repo_downloads": _repo_downloads,
    "repo_likes": _repo_likes,
    "webhooks": _webhooks,
    "webhook_deliveries": _webhook_deliveries,
}


def upgrade() -> None:
    """Create the tables added since the baseline (those a pre-migration build already made are kept)."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in TABLES:
        if name not in existing:
            _CREATE[name]()


def downgrade() -> None:
    """Drop the tables added since the baseline."""
    for name in reversed(TABLES):
        op.drop_table(name)
