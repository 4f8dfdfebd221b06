"""Alembic environment of Vitrine: runs on the connection `registry.migrations` passes in (or the URL given)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from registry import db

target_metadata = db.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Run the migrations on the bound connection, or on `sqlalchemy.url` for the stock `alembic` command."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    import registry.webhooks  # noqa: F401  (its tables are on `db.metadata` too, which autogenerate compares)

    engine = db.connect(context.config.get_main_option("sqlalchemy.url") or "", migrate=False)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Vitrine's migrations run online only: `vitrine db upgrade`.")
run()
