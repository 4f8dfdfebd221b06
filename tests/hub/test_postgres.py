"""The same hub on PostgreSQL: round trip, racing writers, restart."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from tests.conftest import Server, start_server
from tests.helpers import safetensors_bytes

PG_ADMIN_URL = os.environ.get("VITRINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    sa = pytest.importorskip("sqlalchemy")
    name = f"vitrine_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="module")
def pg_hub(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub whose metadata lives in PostgreSQL."""
    server = start_server(tmp_path_factory.mktemp("pg-hub"), VITRINE_DATABASE_URL=pg_url)
    yield server
    server.stop()


def test_racing_first_likes_and_downloads_on_postgres(pg_hub: Server, tmp_path: Path) -> None:
    # Both are "update or insert" on a row that may not exist yet: the racers must not turn into 500s.
    api = HfApi(endpoint=pg_hub.url, token=pg_hub.admin_token)
    api.create_repo("acme/pg-likes")
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="acme/pg-likes")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def racer() -> None:
        try:
            start.wait()
            # huggingface_hub 2.x has no `like`: the Hub's route, called directly.
            r = httpx.post(f"{pg_hub.url}/api/models/acme/pg-likes/like", headers={"authorization": f"Bearer {pg_hub.admin_token}"})
            assert r.status_code == 200, r.text
            hf_hub_download("acme/pg-likes", "config.json", endpoint=pg_hub.url, token=pg_hub.admin_token,
                            force_download=True, cache_dir=tmp_path / str(threading.get_ident()))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = api.model_info("acme/pg-likes", expand=["likes", "downloads"])
    assert info.likes == 1
    assert info.downloads == 8


def test_roundtrip_and_race_on_postgres(pg_hub: Server, pg_url: str, tmp_path: Path) -> None:
    api = HfApi(endpoint=pg_hub.url, token=pg_hub.admin_token)
    api.create_repo("acme/pg-model", private=True)
    api.upload_file(path_or_fileobj=safetensors_bytes(2 * 1024 * 1024), path_in_repo="w.safetensors", repo_id="acme/pg-model")
    api.create_tag("acme/pg-model", tag="v1")
    errors: list[BaseException] = []

    def writer(who: str) -> None:
        try:
            for i in range(8):
                api.create_commit("acme/pg-model", commit_message=f"{who}{i}",
                                  operations=[CommitOperationAdd(f"{who}/{i}.txt", b"x")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = set(api.list_repo_files("acme/pg-model"))
    assert {f"{w}/{i}.txt" for w in "ab" for i in range(8)} <= files
    assert len(list(api.list_repo_commits("acme/pg-model"))) == 18  # initial commit, the upload, 16 racing commits
    path = hf_hub_download("acme/pg-model", "w.safetensors", revision="v1", endpoint=pg_hub.url,
                           token=pg_hub.admin_token, cache_dir=tmp_path)
    assert Path(path).read_bytes() == safetensors_bytes(2 * 1024 * 1024)

    pg_hub.stop()
    again = start_server(pg_hub.home, VITRINE_DATABASE_URL=pg_url)
    try:
        api2 = HfApi(endpoint=again.url, token=again.admin_token)
        assert set(api2.list_repo_files("acme/pg-model")) == files
        assert "acme/pg-model" not in {m.id for m in HfApi(endpoint=again.url, token=False).list_models(author="acme")}
    finally:
        again.stop()
