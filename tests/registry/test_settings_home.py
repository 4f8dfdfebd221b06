"""VITRINE_HOME defaults to the per-user data directory, computed when settings are built."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.settings import Settings


def test_default_home_follows_xdg_not_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "alice"
    assert Settings.from_env({"HOME": str(home)}).home == home / ".local" / "share" / "vitrine"
    xdg = tmp_path / "data"
    assert Settings.from_env({"HOME": str(home), "XDG_DATA_HOME": str(xdg)}).home == xdg / "vitrine"
    # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
    assert Settings.from_env({"HOME": str(home), "XDG_DATA_HOME": "rel"}).home == home / ".local/share/vitrine"
    # VITRINE_HOME and --home still win.
    assert Settings.from_env({"HOME": str(home), "VITRINE_HOME": str(tmp_path / "v")}).home == tmp_path / "v"
    assert Settings.from_env({"HOME": str(home)}, home=tmp_path / "flag").home == tmp_path / "flag"


def test_default_home_is_read_at_build_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITRINE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "one"))
    first = Settings.from_env()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "two"))
    assert (first.home, Settings.from_env().home) == (tmp_path / "one/vitrine", tmp_path / "two/vitrine")


def test_describe_shows_the_rule_not_a_path() -> None:
    shown = {env: default for env, default, _ in Settings.describe()}
    assert shown["VITRINE_HOME"] == "$XDG_DATA_HOME/vitrine (~/.local/share/vitrine)"
