"""Schema migrations: a new DB and an older release's DB both reach head, matching `db.metadata` exactly,
on SQLite and PostgreSQL; concurrent starts migrate once; a DB at head costs one read; `vitrine db`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import registry.webhooks  # noqa: F401  (its tables are on db.metadata)
from hub.cli import db as db_cli
from registry import db, migrations
from tests.backends import PG_ADMIN_URL, postgres_database

ROOT = Path(__file__).resolve().parents[2]

# The tables of the release before migrations (git fdfb65c), made the way that release made them: create_all.
BASELINE_TABLES = ["users", "memberships", "tokens", "repos", "trees", "commits", "refs", "blob_meta", "repo_blobs",
                   "jobs", "discussions", "discussion_events", "kv"]
NEW_TABLES = ["alias_events", "protected_aliases", "events", "endpoint_traffic", "prediction_segments",
              "prediction_feedback", "repo_redirects", "repo_downloads", "repo_likes", "webhooks", "webhook_deliveries"]


def _pg_admin() -> sa.Engine:
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    return admin


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards (skipped without a server)."""
    _pg_admin().dispose()  # skips the test when there is no server
    with postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'vhome' / 'vitrine.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, db.metadata))


def _revisions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _make_old_release(url: str) -> None:
    """A DB as the release before migrations left it: its tables (no alembic_version) with some rows."""
    engine = db.connect(url, migrate=False)
    try:
        db.metadata.create_all(engine, tables=[db.metadata.tables[n] for n in BASELINE_TABLES])
        with engine.begin() as conn:
            # No explicit ids: PostgreSQL's sequences must move on as they did under the old release.
            conn.execute(sa.insert(db.users).values(name="alice", is_org=False, is_admin=True, created_at=1.0))
            repo_id = conn.execute(sa.insert(db.repos).values(
                type="model", namespace="alice", name="m", private=False, created_at=1.0, updated_at=2.0,
            ).returning(db.repos.c.id)).scalar_one()
            assert repo_id == 1
            conn.execute(sa.insert(db.trees).values(oid="t" * 64, data="[]"))
            conn.execute(sa.insert(db.commits).values(oid="c" * 40, repo_id=1, tree_oid="t" * 64, parents="[]",
                                                      author="alice", title="init", message="", created_at=1.0))
            conn.execute(sa.insert(db.refs).values(repo_id=1, kind="branch", name="main", commit_oid="c" * 40,
                                                   updated_at=2.0))
            conn.execute(sa.insert(db.kv).values(key="secret", value="ab" * 32))
        assert not sa.inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()


def test_head_constant_is_the_scripts_head() -> None:
    assert migrations.HEAD == migrations.head()


def test_new_database_migrates_from_nothing_to_head_matching_metadata(url: str) -> None:
    engine = db.connect(url)
    try:
        assert _revisions(engine) == [migrations.head()]
        assert _diff(engine) == []
        assert migrations.status(engine).at_head
    finally:
        engine.dispose()


def test_old_release_database_upgrades_in_place(url: str) -> None:
    _make_old_release(url)
    before = db.connect(url, migrate=False)
    st = migrations.status(before)
    before.dispose()
    assert st.revision is None and st.legacy and not st.at_head

    engine = db.connect(url)
    try:
        assert _revisions(engine) == [migrations.head()]
        assert set(NEW_TABLES) <= set(sa.inspect(engine).get_table_names())
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.execute(sa.select(db.users.c.name)).scalars().all() == ["alice"]
            assert conn.execute(sa.select(db.refs.c.commit_oid)).scalars().all() == ["c" * 40]
            assert conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == "secret")).scalar_one() == "ab" * 32
        with db.writer(engine).begin() as conn:  # the new tables work, with their foreign keys to old rows
            conn.execute(sa.insert(db.protected_aliases).values(repo_id=1, alias="production"))
    finally:
        engine.dispose()


def test_database_made_by_create_all_before_migrations_upgrades(url: str) -> None:
    # Builds between the baseline release and migrations made every table with create_all.
    engine = db.connect(url, migrate=False)
    db.metadata.create_all(engine)
    engine.dispose()
    engine = db.connect(url)
    try:
        assert _revisions(engine) == [migrations.head()]
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_at_head_start_is_one_read_and_takes_no_lock(url: str) -> None:
    db.connect(url).dispose()
    engine = db.connect(url, migrate=False)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        db.ensure_schema(engine)
    finally:
        engine.dispose()
    text = " ".join(statements).lower()
    assert "alembic_version" in text
    assert "advisory" not in text and "create" not in text and "immediate" not in text
    assert len(statements) <= 4, statements


def test_at_head_start_does_not_import_alembic(sqlite_url: str) -> None:
    db.connect(sqlite_url).dispose()
    code = f"import sys; from registry import db; db.connect({sqlite_url!r}).dispose(); print('alembic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_RACER = """
import sys
from registry import db
for _ in range(2):
    db.connect(sys.argv[1]).dispose()
"""


@pytest.mark.parametrize("old_release", [False, True], ids=["new", "old-release"])
def test_concurrent_starts_migrate_once(url: str, old_release: bool) -> None:
    if old_release:
        _make_old_release(url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, url], cwd=ROOT, env=env, stderr=subprocess.PIPE)
             for _ in range(5)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, "\n".join(errors)
    engine = db.connect(url, migrate=False)
    try:
        assert _revisions(engine) == [migrations.head()]
        assert _diff(engine) == []
        if old_release:
            with engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(db.users)).scalar_one() == 1
    finally:
        engine.dispose()


def _vitrine_db(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vitrine")
    db_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["db", *argv])
    return int(args.func(args))


def test_cli_current_and_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)
    home = tmp_path / "vhome"
    with pytest.raises(db_cli.CliError, match="No Vitrine home"):
        _vitrine_db("current", "--home", str(home))
    with pytest.raises(db_cli.CliError, match="No Vitrine home"):
        _vitrine_db("upgrade", "--home", str(home))
    assert not home.exists()

    _make_old_release(f"sqlite:///{home / 'vitrine.db'}")
    capsys.readouterr()
    assert _vitrine_db("current", "--home", str(home)) == 1
    out = capsys.readouterr().out
    assert "release before migrations" in out and "vitrine db upgrade" in out

    assert _vitrine_db("upgrade", "--home", str(home)) == 0
    out = capsys.readouterr().out
    assert f"stamped {migrations.BASELINE}" in out and f"to {migrations.head()} (head)" in out

    assert _vitrine_db("current", "--home", str(home)) == 0
    assert f"current revision: {migrations.head()} (head)" in capsys.readouterr().out
    assert _vitrine_db("upgrade", "--home", str(home)) == 0
    assert "already at head" in capsys.readouterr().out


def test_cli_uses_database_url_setting(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VITRINE_DATABASE_URL", pg_url)
    home = str(tmp_path / "nowhere")
    assert _vitrine_db("current", "--home", home) == 1
    assert "empty database" in capsys.readouterr().out
    assert _vitrine_db("upgrade", "--home", home) == 0
    assert f"from an empty database to {migrations.head()} (head)" in capsys.readouterr().out
    assert _vitrine_db("current", "--home", home) == 0
    assert "(head)" in capsys.readouterr().out


def test_cli_reports_an_unreachable_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITRINE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(db_cli.CliError, match="cannot open the database"):
        _vitrine_db("current", "--home", str(tmp_path))


def test_hub_starts_on_an_old_release_home(url: str, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    from tests.conftest import start_server

    _make_old_release(url)
    home = tmp_path / "vhome"
    extra: dict[str, str] = {} if url.startswith("sqlite") else {"VITRINE_DATABASE_URL": url}
    server = start_server(home, None, **extra)
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        assert api.model_info("alice/m").id == "alice/m"  # the old release's repo, still there
        api.create_repo("acme/after-upgrade")
    finally:
        server.stop()
    engine = db.connect(url, migrate=False)
    try:
        assert _revisions(engine) == [migrations.head()]
    finally:
        engine.dispose()
