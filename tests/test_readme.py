"""The README documents every setting and the two commands CI relies on."""

from __future__ import annotations

from pathlib import Path

from registry.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [env for env, _, _ in Settings.describe() if f"`{env}`" not in readme]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/dev.sh test" in readme and "./scripts/dev.sh up" in readme
    assert "./scripts/dev.sh test" in (ROOT / ".ci" / "run").read_text()


def test_settings_from_env_and_overrides(tmp_path: Path) -> None:
    s = Settings.from_env({"VITRINE_HOME": str(tmp_path), "VITRINE_MAX_UPLOAD_BYTES": "42"}, port=9)
    assert s.home == tmp_path and s.max_upload_bytes == 42 and s.port == 9
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'vitrine.db'}"
    try:
        Settings.from_env({"VITRINE_PORT": "eighty"})
    except ValueError as exc:
        assert "VITRINE_PORT" in str(exc)
    else:
        raise AssertionError("a bad integer setting must be refused")
