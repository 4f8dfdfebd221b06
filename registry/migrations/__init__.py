"""Schema migrations of the metadata DB (Alembic), run at start by `registry.db.connect` and by `vitrine db`.

`upgrade` brings a database to head under a lock (a PostgreSQL advisory lock, or SQLite's write lock taken with
BEGIN IMMEDIATE), so two processes starting at once never both migrate. A database made by a release from before
migrations (tables but no `alembic_version`) is stamped at `baseline` first, then upgraded in place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
BASELINE = "0001_baseline"
# Any table of the baseline: its presence without `alembic_version` marks a database from an older release.
_BASELINE_MARKER = "users"
# The key of the PostgreSQL advisory lock held while migrating (advisory locks are scoped to one database).
PG_LOCK_KEY = 0x5649_5452_494E_4501  # "VITRINE" + 1


def config(connection: Connection | None = None) -> Config:
    """The Alembic config of Vitrine's migrations, optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head() -> str:
    """The head revision of the shipped migrations."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def current(conn: Connection) -> str | None:
    """The revision the database is at (None when it has no `alembic_version`)."""
    return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True)
class Status:
    """Where a database stands: its revision, the head, and whether it predates migrations."""

    revision: str | None
    head: str
    legacy: bool  # tables of an older release, but no `alembic_version`
    empty: bool  # no tables at all

    @property
    def at_head(self) -> bool:
        """Whether nothing is left to apply."""
        return self.revision == self.head


def status(engine: Engine) -> Status:
    """Read where `engine`'s database stands, changing nothing."""
    with engine.connect() as conn:
        rev = current(conn)
        legacy = empty = False
        if rev is None:
            names = set(sa.inspect(conn).get_table_names())
            legacy = _BASELINE_MARKER in names
            empty = not names
        conn.rollback()
    return Status(rev, head(), legacy, empty)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to head under a migration lock; answer (revision before, revision after)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({PG_LOCK_KEY})")
            conn.commit()
            try:
                with conn.begin():
                    return _upgrade_locked(conn)
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_LOCK_KEY})")
                conn.commit()
    if engine.dialect.name == "sqlite":
        # The `writer` option makes registry.db's `begin` hook issue BEGIN IMMEDIATE: the write lock, held to commit.
        with engine.execution_options(writer=True).begin() as conn:
            return _upgrade_locked(conn)
    with engine.begin() as conn:
        return _upgrade_locked(conn)


def _upgrade_locked(conn: Connection) -> tuple[str | None, str]:
    # Read again under the lock: another process may have migrated while this one waited.
    before = current(conn)
    if before == head():
        return before, before
    cfg = config(conn)
    if before is None and sa.inspect(conn).has_table(_BASELINE_MARKER):
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
    return before, head()
