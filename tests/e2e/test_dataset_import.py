"""`vitrine dataset import` from every source into the Hub's layout, read back by `datasets` and by the SQL route."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import HfApi

from tests.conftest import VITRINE, Server

SOURCES = ["csv", "parquet", "jsonl", "duckdb"]


def _table(n: int, *, offset: int = 0) -> pa.Table:
    ids = list(range(offset, offset + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "text": [f'review {i}, says "{["good", "bad", "fine"][i % 3]}"' for i in ids],
        "lang": [["en", "fr", "de", "es"][i % 4] for i in ids],
        "label": pa.array([i % 5 for i in ids], pa.int64()),
        "score": [i / 8 for i in ids],
    })


def _write(table: pa.Table, directory: Path, kind: str) -> str:
    """`table` written as a `kind` source with DuckDB or pyarrow; returns what to pass to `vitrine dataset import`."""
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.register("rows", table)
    if kind == "csv":
        path = directory / "rows.csv"
        con.execute(f"COPY rows TO '{path}' (HEADER)")
        return str(path)
    if kind == "jsonl":
        path = directory / "rows.jsonl"
        con.execute(f"COPY rows TO '{path}' (FORMAT json)")
        return str(path)
    if kind == "parquet":
        path = directory / "rows.parquet"
        pq.write_table(table, path)
        return str(path)
    path = directory / "shop.duckdb"
    db = duckdb.connect(str(path))
    db.register("rows", table)
    db.execute("CREATE TABLE reviews AS SELECT * FROM rows")
    db.execute("CREATE TABLE other AS SELECT 1 AS x")
    db.close()
    return f"{path}::reviews"


def _import(hub: Server, source: str, repo_id: str, *extra: str, token: str | None = None,
            tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": token or hub.admin_token, "HF_HOME": str(tmp / "hf")}
    return subprocess.run([VITRINE, "dataset", "import", source, repo_id, *extra], capture_output=True, text=True,
                          timeout=300, env=env)


def _load(repo_id: str, split: str, tmp: Path) -> list[dict[str, Any]]:
    import datasets

    return datasets.load_dataset(repo_id, split=split, cache_dir=str(tmp / "ds-cache")).to_list()  # type: ignore[union-attr]


def _sql(hub: Server, repo_id: str, sql: str) -> dict[str, Any]:
    r = httpx.post(f"{hub.url}/api/vitrine/datasets/{repo_id}/sql", json={"sql": sql},
                   headers={"authorization": f"Bearer {hub.admin_token}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _card(api: HfApi, repo_id: str) -> dict[str, Any]:
    text = Path(api.hf_hub_download(repo_id, "README.md", repo_type="dataset")).read_text()
    return yaml.safe_load(text.split("---\n")[1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", SOURCES)
def test_import_each_source_reads_back_the_same(hub: Server, admin_api: HfApi, repo_name: str, tmp_path: Path,
                                                kind: str) -> None:
    repo_id = f"acme/{repo_name}"
    table = _table(3000)
    out = _import(hub, _write(table, tmp_path / "src", kind), repo_id, "--split", "test", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Imported 3,000 rows" in out.stdout and "split 'test'" in out.stdout

    expected = table.to_pylist()
    assert _load(repo_id, "test", tmp_path) == expected
    answer = _sql(hub, repo_id, "SELECT * FROM test")
    assert [c["name"] for c in answer["columns"]] == table.column_names
    assert [dict(zip(table.column_names, row)) for row in answer["rows"]] == expected

    files = sorted(admin_api.list_repo_files(repo_id, repo_type="dataset"))
    assert files == [".gitattributes", "README.md", "data/test-00000-of-00001.parquet"]
    card = _card(admin_api, repo_id)
    assert card["configs"] == [{"config_name": "default", "data_files": [{"split": "test", "path": "data/test-*"}]}]
    info = card["dataset_info"]
    assert info["features"] == [{"name": "id", "dtype": "int64"}, {"name": "text", "dtype": "string"},
                                {"name": "lang", "dtype": "string"}, {"name": "label", "dtype": "int64"},
                                {"name": "score", "dtype": "float64"}]
    assert [(s["name"], s["num_examples"]) for s in info["splits"]] == [("test", 3000)]


def test_second_split_keeps_the_first_and_merges_the_card(hub: Server, admin_api: HfApi, repo_name: str,
                                                          tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    train, test = _table(1200), _table(300, offset=50_000)
    assert _import(hub, _write(train, tmp_path / "a", "csv"), repo_id, tmp=tmp_path).returncode == 0
    out = _import(hub, _write(test, tmp_path / "b", "parquet"), repo_id, "--split", "test", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    card = _card(admin_api, repo_id)
    assert [e["split"] for e in card["configs"][0]["data_files"]] == ["train", "test"]
    assert [(s["name"], s["num_examples"]) for s in card["dataset_info"]["splits"]] == [("train", 1200), ("test", 300)]
    assert _load(repo_id, "train", tmp_path) == train.to_pylist()
    assert _load(repo_id, "test", tmp_path) == test.to_pylist()

    # Importing a split again replaces it: its old shards go, the other split stays.
    smaller = _table(40, offset=90_000)
    out = _import(hub, _write(smaller, tmp_path / "c", "jsonl"), repo_id, "--split", "train", "--max-shard-bytes",
                  "1KB", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _sql(hub, repo_id, "SELECT (SELECT count(*) FROM train), (SELECT count(*) FROM test)")["rows"] == [[40, 300]]
    card = _card(admin_api, repo_id)
    assert [(s["name"], s["num_examples"]) for s in card["dataset_info"]["splits"]] == [("train", 40), ("test", 300)]
    assert "Imported with `vitrine dataset import` from `rows.csv`" in Path(
        admin_api.hf_hub_download(repo_id, "README.md", repo_type="dataset")).read_text()


def test_large_split_is_sharded_in_order(hub: Server, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    table = _table(30_000)
    out = _import(hub, _write(table, tmp_path / "src", "csv"), repo_id, "--max-shard-bytes", "100KB",
                  "--row-group-size", "2048", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    shards = sorted(f for f in admin_api.list_repo_files(repo_id, repo_type="dataset") if f.startswith("data/"))
    n = len(shards)
    assert n >= 3 and shards == [f"data/train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    splits = httpx.get(f"{hub.url}/api/vitrine/datasets/{repo_id}/splits").json()["splits"]
    assert [(s["name"], s["num_rows"], len(s["files"])) for s in splits] == [("train", 30_000, n)]
    assert [r["id"] for r in _load(repo_id, "train", tmp_path)] == list(range(30_000))


def _empty_csv(tmp: Path) -> str:
    (tmp / "empty.csv").write_text("id,text\n")
    return str(tmp / "empty.csv")


def _sheet(tmp: Path) -> str:
    (tmp / "rows.xlsx").write_bytes(b"PK\x03\x04")
    return str(tmp / "rows.xlsx")


def _duckdb_file(tmp: Path) -> str:
    return _write(_table(5), tmp, "duckdb").split("::")[0]


# A source (built in tmp), extra arguments, what the one-line error says.
INVALID = {
    "missing file": (lambda tmp: str(tmp / "nope.csv"), (), "No such file"),
    "unknown format": (_sheet, (), "Unknown format"),
    "bad split name": (lambda tmp: _write(_table(5), tmp, "csv"), ("--split", "my split"), "Invalid split name"),
    "split with a dash": (lambda tmp: _write(_table(5), tmp, "csv"), ("--split", "test-2"), "Invalid split name"),
    "empty table": (_empty_csv, (), "has no rows"),
    "unknown table": (lambda tmp: _duckdb_file(tmp) + "::missing", (), "its tables: other, reviews"),
    "database without table": (_duckdb_file, (), "name the table to import"),
    "bad shard size": (lambda tmp: _write(_table(5), tmp, "csv"), ("--max-shard-bytes", "lots"), "Invalid size"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_is_one_line_and_commits_nothing(hub: Server, admin_api: HfApi, repo_name: str,
                                                       tmp_path: Path, case: str) -> None:
    make, extra, message = INVALID[case]
    repo_id = f"acme/{repo_name}"
    out = _import(hub, make(tmp_path), repo_id, *extra, tmp=tmp_path)
    assert out.returncode != 0
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not admin_api.repo_exists(repo_id, repo_type="dataset")


def test_other_columns_in_a_new_split_are_refused(hub: Server, admin_api: HfApi, repo_name: str,
                                                  tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    assert _import(hub, _write(_table(10), tmp_path / "a", "csv"), repo_id, tmp=tmp_path).returncode == 0
    head = admin_api.dataset_info(repo_id).sha
    other = pa.table({"id": [1, 2], "comment": ["x", "y"]})
    out = _import(hub, _write(other, tmp_path / "b", "parquet"), repo_id, "--split", "test", tmp=tmp_path)
    assert out.returncode != 0 and "has columns (id: int64, comment: string)" in out.stderr, out.stderr
    assert admin_api.dataset_info(repo_id).sha == head


def test_push_to_hub_repo_is_first_class(hub: Server, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    import datasets

    repo_id = f"acme/{repo_name}"
    train = {"text": [f"sentence {i}" for i in range(30)], "label": [i % 3 for i in range(30)]}
    datasets.Dataset.from_dict(train).push_to_hub(repo_id, split="train", token=hub.admin_token)
    datasets.Dataset.from_dict({"text": ["held out"], "label": [2]}).push_to_hub(repo_id, split="test",
                                                                                token=hub.admin_token)
    listed = [d.id for d in admin_api.list_datasets(search=repo_name)]
    assert listed == [repo_id]
    splits = httpx.get(f"{hub.url}/api/vitrine/datasets/{repo_id}/splits").json()["splits"]
    assert [(s["name"], s["num_rows"]) for s in splits] == [("train", 30), ("test", 1)]
    assert splits[0]["features"] == [{"name": "text", "dtype": "string"}, {"name": "label", "dtype": "int64"}]
    answer = _sql(hub, repo_id, "SELECT label, count(*) FROM train GROUP BY label ORDER BY label")
    assert answer["rows"] == [[0, 10], [1, 10], [2, 10]]

    extra = pa.table({"text": ["new one", "new two"], "label": pa.array([0, 1], pa.int64())})
    out = _import(hub, _write(extra, tmp_path / "v", "parquet"), repo_id, "--split", "validation", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    loaded = datasets.load_dataset(repo_id, cache_dir=str(tmp_path / "ds-cache"))
    assert {name: part.num_rows for name, part in loaded.items()} == {"train": 30, "test": 1, "validation": 2}
    assert loaded["validation"].to_list() == extra.to_pylist()


def test_failure_after_shards_went_up_leaves_no_repo(hub: Server, admin_api: HfApi, repo_name: str,
                                                     tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    source = tmp_path / "late-error.csv"
    with open(source, "w") as fh:  # a bad value past what DuckDB samples to pick the column types
        fh.write("id,text\n" + "".join(f"{i},row {i}\n" for i in range(300_000)) + "not-a-number,oops\n")
    out = _import(hub, str(source), repo_id, "--max-shard-bytes", "20KB", "--row-group-size", "4096", tmp=tmp_path)
    assert out.returncode != 0
    assert out.stderr.startswith("error: Cannot convert late-error.csv") and "CSV Error on Line" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1
    assert not admin_api.repo_exists(repo_id, repo_type="dataset")
