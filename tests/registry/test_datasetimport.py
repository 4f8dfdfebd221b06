"""The conversion's shards: each one's sha256, computed while it was written, is the sha256 of the file on disk."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from registry.datasetimport import Shard, convert, parse_source
from registry.errors import InvalidInputError


def _csv(path: Path, rows: int, *, tail: str = "") -> Path:
    with open(path, "w") as fh:
        fh.write("id,text,lang\n" + "".join(f"{i},review {i} says {i * 7919 % 10007},{'enfr'[i % 2]}\n"
                                            for i in range(rows)) + tail)
    return path


def _hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shard-hash"]


def test_each_shard_is_announced_in_order_with_the_sha256_of_its_file(tmp_path: Path) -> None:
    seen: list[Shard] = []
    done = convert(parse_source(str(_csv(tmp_path / "rows.csv", 60_000))), tmp_path / "out", split="train",
                   max_shard_bytes=60_000, row_group_size=2_000, on_shard=seen.append)
    assert len(done.files) >= 5
    assert [s.path for s in seen] == done.files
    for shard in seen:
        data = shard.path.read_bytes()
        assert shard.size == len(data)
        assert shard.sha256() == hashlib.sha256(data).hexdigest()
    assert sum(pq.read_metadata(f).num_rows for f in done.files) == done.num_rows == 60_000
    assert not _hash_threads()


def test_a_failed_conversion_leaves_no_hashing_thread(tmp_path: Path) -> None:
    source = _csv(tmp_path / "late-error.csv", 300_000, tail="not-a-number,oops,en\n")
    seen: list[Shard] = []
    with pytest.raises(InvalidInputError, match="Cannot convert late-error.csv"):
        convert(parse_source(str(source)), tmp_path / "out", split="train", max_shard_bytes=200_000,
                row_group_size=4_096, on_shard=seen.append)
    assert seen, "the error comes after some shards were complete"
    assert all(s.sha256() == hashlib.sha256(s.path.read_bytes()).hexdigest() for s in seen)
    assert not _hash_threads()


def test_columns_of_few_distinct_values_are_dictionary_encoded_and_ids_are_not(tmp_path: Path) -> None:
    source = tmp_path / "scores.csv"
    with open(source, "w") as fh:  # a score of 10,001 possible values, as prices or ratings have
        fh.write("id,text,lang,score\n" + "".join(f"{i},review {i},{'enfr'[i % 2]},{(i * 7919) % 10001 / 100}\n"
                                                 for i in range(100_000)))
    done = convert(parse_source(str(source)), tmp_path / "out", split="train", row_group_size=100_000)
    group = pq.read_metadata(done.files[0]).row_group(0)
    dictionary = {group.column(i).path_in_schema: group.column(i).has_dictionary_page
                  for i in range(group.num_columns)}
    assert dictionary == {"id": False, "text": False, "lang": True, "score": True}
    assert pq.read_table(done.files[0]).column("score").to_pylist()[:3] == [0.0, 79.19, 58.37]
