"""The prediction log's writer: a flush returns only once every row queued before it is written, even when the
writer thread had taken some of them and was still writing them (a report flushes first and must count them)."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.core import Registry
from registry.names import RepoRef
from registry.predictionlog import PredictionLog, segments
from registry.repos import create_repo
from registry.settings import Settings


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    """A registry on a fresh embedded home."""
    registry = Registry(Settings.from_env({}, home=tmp_path / "home"))
    yield registry
    registry.close()


def _rows(n: int, start: int) -> list[dict[str, object]]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return [{"request_id": f"r{start + i}", "time": now, "input_index": 0, "alias": "prod", "role": "answer",
             "output": json.dumps(i), "score": i / n} for i in range(n)]


def test_a_flush_waits_for_rows_another_flush_is_writing(reg: Registry) -> None:
    repo = create_repo(reg, RepoRef("model", "acme", "logged"), author="ana")
    log = PredictionLog(reg, repo.pk, "prod", roll_s=3600)
    try:
        queued = 0
        for round_no in range(30):
            log.record(_rows(2_000, queued))
            queued += 2_000
            other = threading.Thread(target=log.flush)  # as the writer thread's own flush would
            other.start()
            log.flush()  # as a report does before it reads
            written = sum(s.rows for s in segments(reg, repo.pk, "prod"))
            other.join()
            assert written == queued, f"round {round_no}: the report would see {written} of {queued} rows"
    finally:
        log.close()
    assert log.health()["written"] == queued and log.health()["dropped"] == 0
