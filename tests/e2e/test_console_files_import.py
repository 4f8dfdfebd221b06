"""The console pages big repos' files a page at a time, and imports an uploaded file as a dataset split (AppTest)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.e2e.consoles import console_app
from tests.conftest import Server
from tests.helpers import bearer

ROOT = Path(__file__).resolve().parents[2]
MANY = "filespage/many-files"
N_FILES = 120  # with .gitattributes: 121 entries, three pages of 50
ORG = "consoleimports"


def _console(hub: Server, monkeypatch: pytest.MonkeyPatch, token: str | None, **params: str) -> Any:
    return console_app(hub.url, monkeypatch, token, **params)


@pytest.fixture(scope="module")
def many(admin_api: HfApi) -> list[str]:
    """A public model repo of 120 small files in one commit; its entries in path order."""
    admin_api.create_repo(MANY, exist_ok=True)
    admin_api.create_commit(MANY, [CommitOperationAdd(path_in_repo=f"shards/part-{i:04d}.txt",
                                                      path_or_fileobj=str(i).encode()) for i in range(N_FILES)],
                            commit_message="many files")
    return sorted([".gitattributes", "shards", *(f"shards/part-{i:04d}.txt" for i in range(N_FILES))])


def _files(at: Any) -> list[str]:
    frame = next(d.value for d in at.dataframe if {"path", "type"} <= set(d.value.columns))
    return list(frame["path"])


def _caption(at: Any) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Page "))


def test_files_tab_shows_one_page_then_the_next(hub: Server, many: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, None, repo=MANY)
    assert at.header[0].value == MANY
    assert _files(at) == many[:50]
    assert _caption(at) == "Page 1: entries 1–50, more on the next page."
    assert at.button(key="model_files_prev").disabled
    at.button(key="model_files_next").click().run()
    assert not at.exception
    assert _files(at) == many[50:100] and _caption(at).startswith("Page 2: entries 51–100")
    at.button(key="model_files_next").click().run()
    assert _files(at) == many[100:] and _caption(at) == f"Page 3: entries 101–{len(many)}."
    assert at.button(key="model_files_next").disabled
    at.button(key="model_files_prev").click().run()
    assert _files(at) == many[50:100] and _caption(at).startswith("Page 2:")


def _csv(rows: int, *, offset: int = 0) -> bytes:
    return ("id,text,lang\n" + "".join(f"{i},review {i},{['en', 'de'][i % 2]}\n"
                                       for i in range(offset, offset + rows))).encode()


def _parquet(rows: int, *, offset: int = 0) -> bytes:
    buf = io.BytesIO()
    ids = list(range(offset, offset + rows))
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "text": [f"review {i}" for i in ids],
                             "lang": [["en", "de"][i % 2] for i in ids]}), buf)
    return buf.getvalue()


def _duckdb(tmp: Path, rows: int) -> bytes:
    path = tmp / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE reviews AS SELECT i::BIGINT AS id, 'review ' || i AS text, "
                f"CASE WHEN i % 2 = 0 THEN 'en' ELSE 'de' END AS lang FROM range({rows}) t(i)")
    con.close()
    return path.read_bytes()


def _upload(at: Any, name: str, data: bytes, repo_id: str, *, split: str = "train", table: str | None = None,
            create: bool = False, private: bool = False) -> Any:
    at.file_uploader(key="ds_import_file").set_value((name, data, "application/octet-stream"))
    at.text_input(key="ds_import_repo").set_value(repo_id)
    at.text_input(key="ds_import_split").set_value(split)
    at.run()
    if table is not None:
        at.text_input(key="ds_import_table").set_value(table).run()
    if create:
        at.checkbox(key="ds_import_create").check().run()
        if private:
            at.checkbox(key="ds_import_private").check().run()
    at.button(key="ds_import_run").click().run()
    assert not at.exception, at.exception
    return at


def _sql(hub: Server, repo_id: str, sql: str, token: str) -> list[list[Any]]:
    r = httpx.post(f"{hub.url}/api/vitrine/datasets/{repo_id}/sql", json={"sql": sql}, headers=bearer(token),
                   timeout=120)
    assert r.status_code == 200, r.text
    return list(r.json()["rows"])


@pytest.fixture(scope="module")
def people(hub: Server) -> dict[str, str]:
    """A write member of the organisation and an outsider (with a write token of their own)."""
    return {"writer": hub.token("cimp-writer", "write", org=ORG), "outsider": hub.token("cimp-outsider", "write")}


def test_import_each_kind_of_file_into_a_new_private_repo(hub: Server, admin_api: HfApi, people: dict[str, str],
                                                          repo_name: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    repo_id = f"{ORG}/{repo_name}"
    at = _console(hub, monkeypatch, people["writer"], page="Datasets", **{"import": "1"})
    _upload(at, "reviews.csv", _csv(40), repo_id, create=True, private=True)
    success = [s.value for s in at.main.success]
    assert success and success[0].startswith(f"Imported 40 rows of reviews.csv into {repo_id}@main as split `train`")
    assert not at.main.error
    assert admin_api.repo_info(repo_id, repo_type="dataset").private is True
    # The repo exists now: no "create it" box; a Parquet file as split test, a DuckDB table as validation.
    _upload(at, "holdout.parquet", _parquet(7, offset=100), repo_id, split="test")
    assert "ds_import_create" not in [c.key for c in at.checkbox] and [s.value for s in at.main.success][0].startswith("Imported 7 rows of holdout.parquet")
    _upload(at, "shop.duckdb", _duckdb(tmp_path, 5), repo_id, split="validation", table="reviews")
    assert [s.value for s in at.main.success][0].startswith("Imported 5 rows of shop.duckdb::reviews")
    jsonl = b"".join(f'{{"id": {i}, "text": "line {i}", "lang": "fr"}}\n'.encode() for i in range(3))
    _upload(at, "more.jsonl", jsonl, repo_id, split="extra_1")
    assert [s.value for s in at.main.success][0].startswith("Imported 3 rows of more.jsonl")

    loaded = datasets.load_dataset(repo_id, split="train", token=people["writer"], cache_dir=str(tmp_path / "ds"))
    assert loaded.to_list() == [{"id": i, "text": f"review {i}", "lang": ["en", "de"][i % 2]} for i in range(40)]
    assert _sql(hub, repo_id, "SELECT count(*), min(id) FROM test", people["writer"]) == [[7, 100]]
    assert _sql(hub, repo_id, "SELECT count(*) FROM validation", people["writer"]) == [[5]]
    assert _sql(hub, repo_id, "SELECT text FROM extra_1 ORDER BY id", people["writer"]) == [["line 0"], ["line 1"],
                                                                                              ["line 2"]]


def test_outsider_gets_the_hubs_refusal_as_a_readable_message(hub: Server, admin_api: HfApi, people: dict[str, str],
                                                              repo_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    repo_id = f"{ORG}/{repo_name}"
    admin_api.create_repo(repo_id, repo_type="dataset")  # public: the outsider sees it, may not write it
    head = admin_api.dataset_info(repo_id).sha
    at = _console(hub, monkeypatch, people["outsider"], page="Datasets", **{"import": "1"})
    _upload(at, "reviews.csv", _csv(10), repo_id)
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "this token may not write it" in errors[0] and "Traceback" not in errors[0], errors
    assert "may not write to namespace" in errors[0], errors
    assert not at.main.success
    assert admin_api.dataset_info(repo_id).sha == head
    # In a namespace not theirs, creating is refused too, and nothing is left behind.
    other = f"{ORG}/{repo_name}-new"
    _upload(at, "reviews.csv", _csv(10), other, create=True)
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "Traceback" not in errors[0], errors
    assert not admin_api.repo_exists(other, repo_type="dataset")


def test_bad_or_oversized_files_are_refused_before_any_commit(hub: Server, admin_api: HfApi, people: dict[str, str],
                                                              repo_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    repo_id = f"{ORG}/{repo_name}"
    at = _console(hub, monkeypatch, people["writer"], page="Datasets", **{"import": "1"})
    _upload(at, "empty.csv", b"id,text\n", repo_id, create=True)
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "has no rows" in errors[0], errors
    _upload(at, "shop.duckdb", b"not a database", repo_id, table="reviews", create=True)
    assert len(at.main.error) == 1 and "Traceback" not in at.main.error[0].value
    assert not admin_api.repo_exists(repo_id, repo_type="dataset")
    monkeypatch.setenv("VITRINE_CONSOLE_MAX_UPLOAD_MB", "1")
    at = _console(hub, monkeypatch, people["writer"], page="Datasets", **{"import": "1"})
    _upload(at, "big.csv", _csv(60_000), repo_id, create=True)
    errors = [e.value for e in at.main.error]
    assert len(errors) == 1 and "more than the console takes (1 MB" in errors[0], errors
    assert not admin_api.repo_exists(repo_id, repo_type="dataset")


def test_anonymous_is_asked_to_sign_in(hub: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _console(hub, monkeypatch, None, page="Datasets", **{"import": "1"})
    assert any("Sign in with a write token" in i.value for i in at.info)
    assert not at.file_uploader
