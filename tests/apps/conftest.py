"""Fixtures for the demo generator tests: quiet environment, tiny models per task, servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.apps.checks import Media, make_media
from tests.apps.models import BUILDERS, build_task_model
from tests.apps.servers import serving


@pytest.fixture(scope="session")
def gradio_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where Gradio keeps uploads and outputs during the tests."""
    return tmp_path_factory.mktemp("gradio")


@pytest.fixture(scope="module", autouse=True)
def _quiet_environment(gradio_temp_dir: Path) -> Iterator[None]:
    """No analytics or telemetry, and Gradio's files under the test's temp dir.

    Module-scoped rather than session-scoped so the variables are gone again before tests in
    other folders (which may start hub clients in subprocesses) run.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        patch.setenv("GRADIO_TEMP_DIR", str(gradio_temp_dir))
        yield


@pytest.fixture(scope="session")
def task_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny saved model per supported task, built once per session."""
    root = tmp_path_factory.mktemp("models")
    return {task: build_task_model(task, root / task) for task in BUILDERS}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Sample image and audio inputs."""
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def serve() -> Callable:
    """The `serving` context manager: `with serve(demo) as url: ...`."""
    return serving
