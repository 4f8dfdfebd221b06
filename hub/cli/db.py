"""`vitrine db upgrade` and `vitrine db current`: the schema migrations of the hub's metadata DB."""

from __future__ import annotations

import argparse
import re
from typing import Any

from hub.cli.client import CliError
from hub.cli.operate import _settings


def _redacted(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _existing_url(args: argparse.Namespace) -> str:
    """The database URL of an existing home, resolved as `vitrine fsck` does; never where a hub never ran."""
    settings = _settings(args)
    if not settings.database_url and not (settings.home / "vitrine.db").exists():
        home = settings.home
        raise CliError(f"No Vitrine home at {home}: start it with `vitrine serve --home {home}` "
                       "or pass --home / set VITRINE_HOME.")
    return settings.effective_database_url


def _unreachable(url: str, exc: Exception) -> CliError:
    return CliError(f"cannot open the database {_redacted(url)}: {str(exc).splitlines()[0]}")


def cmd_db_current(args: argparse.Namespace) -> int:
    """Print the DB's current revision and whether it is at head; exit 1 when migrations are pending."""
    from sqlalchemy import exc as sa_exc  # here, not at the top: every `vitrine` command imports this module

    from registry import db, migrations

    url = _existing_url(args)
    engine = db.connect(url, migrate=False)
    try:
        st = migrations.status(engine)
    except sa_exc.OperationalError as exc:
        raise _unreachable(url, exc) from exc
    finally:
        engine.dispose()
    print(f"database: {_redacted(url)}")
    if st.at_head:
        print(f"current revision: {st.revision} (head)")
        return 0
    if st.revision is not None:
        print(f"current revision: {st.revision}; head is {st.head}: run `vitrine db upgrade`")
    elif st.legacy:
        print(f"current revision: none (made by a release before migrations); head is {st.head}: "
              "run `vitrine db upgrade` to upgrade it in place")
    else:
        print(f"current revision: none (empty database); head is {st.head}: run `vitrine db upgrade`")
    return 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply every pending migration (the hub also does this at start) and print what changed."""
    from sqlalchemy import exc as sa_exc

    from registry import db, migrations

    url = _existing_url(args)
    engine = db.connect(url, migrate=False)
    try:
        before = migrations.status(engine)
        if before.at_head:
            print(f"database {_redacted(url)} is already at head ({before.head}); nothing to do")
            return 0
        old, new = migrations.upgrade(engine)
    except sa_exc.OperationalError as exc:
        raise _unreachable(url, exc) from exc
    finally:
        engine.dispose()
    if old == new:
        print(f"database {_redacted(url)} is at head ({new}): another process upgraded it meanwhile")
    elif before.legacy and old is None:
        print(f"upgraded {_redacted(url)} from a release before migrations (stamped {migrations.BASELINE}) "
              f"to {new} (head)")
    else:
        print(f"upgraded {_redacted(url)} from {old or 'an empty database'} to {new} (head)")
    return 0


def register(sub: Any) -> None:
    """Add `db upgrade` and `db current` to the `vitrine` parser."""
    group = sub.add_parser("db", help="schema migrations of the metadata database")
    cmds = group.add_subparsers(dest="db_command", required=True)
    home_help = "data directory (default: $VITRINE_HOME, else $XDG_DATA_HOME/vitrine or ~/.local/share/vitrine)"
    upgrade = cmds.add_parser("upgrade", help="apply pending migrations (the hub also applies them at start)")
    upgrade.add_argument("--home", help=home_help)
    upgrade.set_defaults(func=cmd_db_upgrade)
    current = cmds.add_parser("current", help="print the current revision and whether it is at head")
    current.add_argument("--home", help=home_help)
    current.set_defaults(func=cmd_db_current)
