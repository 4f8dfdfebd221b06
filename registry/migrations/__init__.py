"""Schema migrations of the metadata DB (Alembic), run at start by `registry.db.connect` and by `vitrine db`.

`upgrade` brings a database to head under a lock (a PostgreSQL advisory lock, or SQLite's write lock taken with
BEGIN IMMEDIATE), so two processes starting at once never both migrate. A database made by a release from before
migrations (tables but no `alembic_version`) is stamped at `baseline` first, then upgraded in place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent
BASELINE = "0001_baseline"
# The newest revision, known without importing Alembic (~150 ms) so a start at head stays a single cheap read;
# bump it with every new revision (tests/hub/test_migrations.py checks it against the scripts).
HEAD = "0003_xet"
# Any table of the baseline: its presence without `alembic_version` marks a database from an older release.
_BASELINE_MARKER = "users"
# The key of the PostgreSQL advisory lock held while migrating (advisory locks are scoped to one database).
PG_LOCK_KEY = 0x5649_5452_494E_4501  # "VITRINE" + 1


def config(connection: Connection | None = None) -> Config:
    """The Alembic config of Vitrine's migrations, optionally bound to an open connection."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head() -> str:
    """The head revision of the shipped migrations, read from the scripts."""
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def current(conn: Connection) -> str | None:
    """The revision the database is at (None when it has no `alembic_version`)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    revs = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(revs) > 1:
        raise RuntimeError(f"alembic_version holds several revisions {revs}: Vitrine's migrations have one head")
    return revs[0] if revs else None


def at_head(engine: Engine) -> bool:
    """Whether the DB is at `HEAD`: the check every start makes, one small read, no lock, no Alembic import."""
    with engine.connect() as conn:
        rev = current(conn)
        conn.rollback()
    return rev == HEAD


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
    """Read where `engine`'s database stands (against the scripts' head), changing nothing."""
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
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # Batch migrations recreate tables; with foreign keys on, dropping the old copy of a parent table would
            # cascade-delete its children. SQLite only switches them outside a transaction, so: before BEGIN.
            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                # The `writer` option makes registry.db's `begin` hook issue BEGIN IMMEDIATE: the write lock,
                # held until commit, so a second process waits here and then finds the DB at head.
                with conn.execution_options(writer=True).begin():
                    result = _upgrade_locked(conn)
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left rows whose foreign keys point nowhere: {broken[:5]}")
                return result
            finally:
                raw.execute("PRAGMA foreign_keys=ON")
    with engine.begin() as conn:
        return _upgrade_locked(conn)


def _upgrade_locked(conn: Connection) -> tuple[str | None, str]:
    # Read again under the lock: another process may have migrated while this one waited.
    before = current(conn)
    if before == head():
        return before, before
    cfg = config(conn)
    from alembic import command

    if before is None and sa.inspect(conn).has_table(_BASELINE_MARKER):
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
    return before, head()
