"""The dataset API (splits, preview, stats, read-only SQL) and `vitrine dataset sql`, against the real hub."""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
import subprocess
import uuid
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import VITRINE, Server
from tests.helpers import assert_hub_error

ORG = "dsteam"
_SUFFIX = uuid.uuid4().hex[:8]
PUBLIC = f"{ORG}/reviews-{_SUFFIX}"
PRIVATE = f"{ORG}/private-reviews-{_SUFFIX}"
HIDDEN = f"secretds/hidden-{_SUFFIX}"  # another org's private dataset, for the sandbox tests


def _rows(n: int, *, offset: int = 0) -> dict[str, list[Any]]:
    ids = list(range(offset, offset + n))
    return {"id": ids, "text": [f"review {i} " + "x" * (i % 7) for i in ids],
            "lang": [["en", "fr", "de"][i % 3] for i in ids], "label": [i % 2 for i in ids],
            "score": [None if i % 10 == 0 else i / 4 for i in ids]}


def _parquet(columns: dict[str, list[Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _push(api: HfApi, repo_id: str, files: dict[str, bytes], *, private: bool) -> None:
    api.create_repo(repo_id, repo_type="dataset", private=private)
    api.create_commit(repo_id, [CommitOperationAdd(p, c) for p, c in files.items()], repo_type="dataset",
                      commit_message="data")


@pytest.fixture(scope="module")
def callers(hub: Server) -> dict[str, str | None]:
    """A token per kind of caller, a public and a private dataset (train 50 rows, test 20) in ORG."""
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("ds-outsider", "write"),
        "read": hub.token("ds-reader", "read", org=ORG),
        "write": hub.token("ds-writer", "write", org=ORG),
        "admin": hub.admin_token,
    }
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    layout = {"data/train-00000-of-00001.parquet": _parquet(_rows(50)),
              "data/test-00000-of-00001.parquet": _parquet(_rows(20, offset=1000))}
    _push(api, PUBLIC, layout, private=False)
    _push(api, PRIVATE, layout, private=True)
    admin = HfApi(endpoint=hub.url, token=hub.admin_token)
    _push(admin, HIDDEN, {"data/train-00000-of-00001.parquet": HIDDEN_PARQUET}, private=True)
    return tokens


HIDDEN_PARQUET = _parquet({"secret": ["launch codes"]})
# Languages of the test split, counted: what `GROUP BY lang` must answer.
TEST_LANGS = sorted(Counter(_rows(20, offset=1000)["lang"]).items())


def _headers(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _api(hub: Server, repo_id: str, route: str) -> str:
    return f"{hub.url}/api/vitrine/datasets/{repo_id}/{route}"


def _sql(hub: Server, sql: str, *, repo_id: str = PUBLIC, token: str | None = None, **extra: Any) -> httpx.Response:
    return httpx.post(_api(hub, repo_id, "sql"), json={"sql": sql, **extra}, headers=_headers(token), timeout=60)


def test_splits_found_as_datasets_finds_them(hub: Server, callers: dict[str, str | None]) -> None:
    r = httpx.get(_api(hub, PUBLIC, "splits"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["name"] for s in body["splits"]] == ["train", "test"]
    train = body["splits"][0]
    assert train["num_rows"] == 50 and train["files"] == ["data/train-00000-of-00001.parquet"]
    assert train["features"] == [{"name": "id", "dtype": "int64"}, {"name": "text", "dtype": "string"},
                                 {"name": "lang", "dtype": "string"}, {"name": "label", "dtype": "int64"},
                                 {"name": "score", "dtype": "float64"}]
    assert len(body["sha"]) == 40


def test_card_configs_win_over_file_names(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"{ORG}/{repo_name}"
    card = ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: holdout\n    path: held/*.parquet\n"
            "  - split: train\n    path: [\"raw/a.parquet\", \"raw/b.parquet\"]\n---\n# cfg\n")
    _push(admin_api, repo_id, {"README.md": card.encode(), "held/x.parquet": _parquet(_rows(3)),
                               "raw/a.parquet": _parquet(_rows(2)), "raw/b.parquet": _parquet(_rows(4)),
                               "data/test-00000-of-00001.parquet": _parquet(_rows(9))}, private=False)
    splits = httpx.get(_api(hub, repo_id, "splits")).json()["splits"]
    assert [(s["name"], s["num_rows"], s["files"]) for s in splits] == [
        ("holdout", 3, ["held/x.parquet"]), ("train", 6, ["raw/a.parquet", "raw/b.parquet"])]
    r = _sql(hub, "SELECT count(*) FROM holdout UNION ALL SELECT count(*) FROM train", repo_id=repo_id)
    assert r.json()["rows"] == [[3], [6]]


def test_preview_pages_and_filters(hub: Server, callers: dict[str, str | None]) -> None:
    r = httpx.get(_api(hub, PUBLIC, "preview"), params={"split": "train", "offset": 10, "limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["id", "text", "lang", "label", "score"]
    assert [row[0] for row in body["rows"]] == [10, 11, 12] and body["rows"][0][4] is None
    assert body["num_rows"] == 50 and body["offset"] == 10 and body["limit"] == 3
    r = httpx.get(_api(hub, PUBLIC, "preview"), params={"split": "test", "where": "lang = 'fr' AND label = 1",
                                                        "limit": 100})
    assert [row[0] for row in r.json()["rows"]] == [i for i in range(1000, 1020) if i % 3 == 1 and i % 2 == 1]
    bad = httpx.get(_api(hub, PUBLIC, "preview"), params={"split": "train", "where": "1=1; DROP VIEW train"})
    assert_hub_error(bad, 400, "BadRequest", contains="Invalid SQL")
    missing = httpx.get(_api(hub, PUBLIC, "preview"), params={"split": "dev"})
    assert_hub_error(missing, 400, "BadRequest", contains="its splits: train, test")


def test_stats_per_column(hub: Server, callers: dict[str, str | None]) -> None:
    r = httpx.get(_api(hub, PUBLIC, "stats"), params={"split": "train"})
    assert r.status_code == 200, r.text
    columns = {c["name"]: c for c in r.json()["columns"]}
    assert columns["id"]["min"] == 0 and columns["id"]["max"] == 49 and columns["id"]["mean"] == pytest.approx(24.5)
    assert columns["score"]["null_count"] == 5 and columns["score"]["type"] == "DOUBLE"
    lengths = [len(f"review {i} " + "x" * (i % 7)) for i in range(50)]
    text = columns["text"]
    assert (text["min_length"], text["max_length"]) == (min(lengths), max(lengths))
    assert text["mean_length"] == pytest.approx(sum(lengths) / 50)
    assert columns["lang"]["approx_distinct"] == 3 and columns["lang"]["null_count"] == 0


def test_sql_select_limit_and_truncation(hub: Server, callers: dict[str, str | None]) -> None:
    r = _sql(hub, "SELECT lang, count(*) AS n FROM test GROUP BY lang ORDER BY lang")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["lang", "n"]
    assert body["rows"] == [list(kv) for kv in TEST_LANGS] and body["truncated"] is False
    r = _sql(hub, "SELECT id FROM train ORDER BY id", limit=5)
    assert r.json()["rows"] == [[0], [1], [2], [3], [4]] and r.json()["truncated"] is True
    r = _sql(hub, "SELECT id FROM train", limit=50)
    assert len(r.json()["rows"]) == 50 and r.json()["truncated"] is False
    # A query on an older revision sees that revision's files.
    assert _sql(hub, "SELECT count(*) FROM train", revision=r.json()["sha"]).json()["rows"] == [[50]]


# Every statement the SQL route refuses, and what its message says.
REFUSED = [
    ("COPY train TO '/tmp/vitrine-leak.csv'", "COPY statements are refused"),
    ("ATTACH '/tmp/vitrine-x.db' AS x", "ATTACH statements are refused"),
    ("DETACH memory", "DETACH statements are refused"),
    ("INSTALL httpfs", "LOAD statements are refused"),
    ("LOAD httpfs", "LOAD statements are refused"),
    ("SET threads = 64", "SET statements are refused"),
    ("RESET memory_limit", "statements are refused"),
    ("PRAGMA database_list", "PRAGMA statements are refused"),
    ("CALL pragma_version()", "CALL statements are refused"),
    ("CREATE TABLE t AS SELECT 1", "CREATE statements are refused"),
    ("CREATE TEMP TABLE t AS SELECT * FROM train", "CREATE statements are refused"),
    ("INSERT INTO train VALUES (1)", "INSERT statements are refused"),
    ("DROP VIEW train", "DROP statements are refused"),
    ("EXPORT DATABASE '/tmp/vitrine-export'", "EXPORT statements are refused"),
    ("EXPLAIN SELECT 1", "EXPLAIN statements are refused"),
    ("SELECT 1; SELECT 2", "one SELECT statement, not 2"),
    ("SELECT count(*) FROM train; DROP VIEW train", "not 2 (SELECT, DROP)"),
    ("SELECT * FROM read_csv('/etc/passwd')", "Not allowed"),
    ("SELECT * FROM read_text('/etc/hostname')", "Not allowed"),
    ("SELECT * FROM glob('/*')", "Not allowed"),
    ("SELECT * FROM 'vitrine.db'", "Not allowed"),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "Not allowed"),
    ("SELEC 1", "Invalid SQL"),
    ("SELECT * FROM validation", "The views of this revision: train, test"),
    ("   ", "Missing SQL"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED, ids=[s for s, _ in REFUSED])
def test_sql_refusals_through_the_route(hub: Server, callers: dict[str, str | None], sql: str, message: str) -> None:
    r = _sql(hub, sql)
    assert_hub_error(r, 400, "BadRequest", contains=message)
    assert "\n" not in r.headers["x-error-message"]


@pytest.mark.parametrize(("sql", "message"), REFUSED, ids=[s for s, _ in REFUSED])
def test_sql_refusals_through_the_cli(hub: Server, callers: dict[str, str | None], sql: str, message: str) -> None:
    out = subprocess.run([VITRINE, "dataset", "sql", f"{PUBLIC}@main", sql], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "HF_ENDPOINT": hub.url})
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_sql_cannot_reach_another_datasets_blob(hub: Server, callers: dict[str, str | None]) -> None:
    oid = hashlib.sha256(HIDDEN_PARQUET).hexdigest()  # blobs are named by the sha256 of their content
    reg = hub.registry()
    try:
        blob = reg.blobs.path(oid)  # the blob's file where the hub keeps it (with S3: its local cache)
    finally:
        reg.close()
    assert blob.is_file()
    r = _sql(hub, f"SELECT * FROM read_parquet('{blob}')", token=callers["write"])
    assert_hub_error(r, 400, "BadRequest", contains="Not allowed")
    assert "launch codes" not in r.text


def test_sql_time_limit(hub: Server, callers: dict[str, str | None]) -> None:
    r = _sql(hub, "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) = 0", timeout_s=1)
    assert_hub_error(r, 400, "BadRequest", contains="time limit of 1 s")


@pytest.mark.parametrize(("body", "message"), [
    ({}, "needs `sql`"), ({"sql": 1}, "needs `sql`"), ({"sql": "SELECT 1", "limit": 0}, "`limit`"),
    ({"sql": "SELECT 1", "limit": "ten"}, "`limit`"), ({"sql": "SELECT 1", "timeout_s": -1}, "`timeout_s`"),
    ({"sql": "SELECT 1", "revision": ""}, "`revision`"),
])
def test_sql_bad_bodies(hub: Server, callers: dict[str, str | None], body: dict[str, Any], message: str) -> None:
    r = httpx.post(_api(hub, PUBLIC, "sql"), json=body)
    assert_hub_error(r, 400, "BadRequest", contains=message)


def test_sql_unknown_revision_and_not_json(hub: Server, callers: dict[str, str | None]) -> None:
    assert_hub_error(_sql(hub, "SELECT 1", revision="nope"), 404, "RevisionNotFound")
    r = httpx.post(_api(hub, PUBLIC, "sql"), content=b"{not json", headers={"content-type": "application/json"})
    assert_hub_error(r, 400, "BadRequest", contains="Malformed")


def test_cli_sql_prints_a_table(hub: Server, callers: dict[str, str | None]) -> None:
    out = subprocess.run([VITRINE, "dataset", "sql", PUBLIC, "SELECT lang, count(*) AS n FROM test GROUP BY lang "
                          "ORDER BY lang", "--endpoint", hub.url], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "│" in line]
    assert [[c.strip() for c in line.strip("│").split("│")] for line in lines] == [[k, str(v)] for k, v in TEST_LANGS]
    assert "3 row(s)" in out.stdout
    private = subprocess.run([VITRINE, "dataset", "sql", PRIVATE, "SELECT 1", "--endpoint", hub.url],
                             capture_output=True, text=True, timeout=120)
    assert private.returncode == 1 and "not found" in private.stderr and "--token" in private.stderr


ROUTES = {
    "splits": ("GET", "splits", None),
    "preview": ("GET", "preview?split=train&limit=2", None),
    "stats": ("GET", "stats?split=test", None),
    "sql": ("POST", "sql", {"sql": "SELECT count(*) FROM train"}),
}


@pytest.mark.parametrize("who", ["anonymous", "outsider", "read", "write", "admin"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_private_dataset_routes_follow_download_rule(hub: Server, callers: dict[str, str | None], route: str,
                                                     who: str) -> None:
    method, path, body = ROUTES[route]
    r = httpx.request(method, _api(hub, PRIVATE, path), json=body, headers=_headers(callers[who]), timeout=60)
    download = httpx.get(f"{hub.url}/datasets/{PRIVATE}/resolve/main/data/test-00000-of-00001.parquet",
                         headers=_headers(callers[who]))
    if who in ("anonymous", "outsider"):
        assert_hub_error(r, 404, "RepoNotFound")
        assert download.status_code == 404
        assert "data/" not in r.text and "num_rows" not in r.text and "rows" not in r.json()
    else:
        assert r.status_code == 200, r.text
        assert download.status_code == 200


def test_registry_api_for_evaluation(hub: Server, callers: dict[str, str | None]) -> None:
    """The typed API evaluation reads splits with, on the hub's own home."""
    from registry.datasets import count_rows, dataset_splits, iter_batches
    from registry.names import parse_repo_id
    from registry.repos import get_repo

    reg = hub.registry()
    try:
        repo = get_repo(reg, parse_repo_id(PRIVATE, "dataset"))
        splits = dataset_splits(reg, repo, "main")
        assert {n: s.num_rows for n, s in splits.items()} == {"train": 50, "test": 20}
        # The hub's own files, or with blobs in a bucket the bucket's objects, which DuckDB reads where they lie.
        assert all(f.startswith(hub.env["VITRINE_STORAGE_URL"] + "/") if isinstance(f, str)
                   else f.is_file() and str(f).startswith(str(hub.home)) for f in splits["train"].files)
        batches = list(iter_batches(splits["train"], ["id", "label"], batch_size=16))
        assert [b.num_rows for b in batches] == [16, 16, 16, 2]
        assert [i for b in batches for i in b.column("id").to_pylist()] == list(range(50))
        assert batches[0].schema.names == ["id", "label"]
        picked = list(iter_batches(splits["test"], ["id"], batch_size=100, where="label = 1 AND score > 250"))
        assert [i for b in picked for i in b.column("id").to_pylist()] == [i for i in range(1001, 1020, 2)
                                                                         if i % 10 and i / 4 > 250]
        assert count_rows(splits["train"]) == 50 and count_rows(splits["train"], "score IS NULL") == 5
    finally:
        reg.close()


def _rss_mib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_a_query_that_builds_gigabytes_is_refused_not_served(hub: Server, callers: dict[str, str | None]) -> None:
    """DuckDB's memory limit does not cover per-row strings: the worker's address-space cap does."""
    before = _rss_mib(hub.proc.pid)
    r = _sql(hub, "SELECT repeat('x', 100000000) AS big FROM range(100)")
    assert_hub_error(r, 400, "BadRequest", contains="more memory than a query may use")
    assert _rss_mib(hub.proc.pid) < before + 200  # the hub itself never held the strings
    # The answer is bounded in bytes too, and the next query gets a working worker.
    r = _sql(hub, "SELECT repeat('x', 1000000) AS wide FROM range(100)", limit=100)
    assert r.status_code == 200 and r.json()["truncated"] is True and 0 < len(r.json()["rows"]) < 100
    assert _sql(hub, "SELECT count(*) FROM train").json()["rows"] == [[50]]
    bad = httpx.get(_api(hub, PUBLIC, "preview"), params={"split": "train",
                                                          "where": "length(repeat(text, 50000000)) > 0"}, timeout=60)
    assert_hub_error(bad, 400, "BadRequest", contains="memory")
