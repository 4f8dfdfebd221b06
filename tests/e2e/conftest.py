"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sentiment_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The (good, flipped) sentiment model folders, built once per session."""
    from tests.e2e.sentiment import build_versions

    return build_versions(tmp_path_factory.mktemp("sentiment"))
