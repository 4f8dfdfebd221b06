"""Splits found as `datasets` finds them, and features written as `datasets` writes them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from registry.datalayout import check_split_name, discover_splits, features_of
from registry.errors import InvalidInputError


@pytest.mark.parametrize(("paths", "expected"), [
    (["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/test-00000-of-00001.parquet",
      "README.md"],
     {"train": ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"],
      "test": ["data/test-00000-of-00001.parquet"]}),
    (["test.parquet", "train.parquet", "valid.parquet"],
     {"train": ["train.parquet"], "validation": ["valid.parquet"], "test": ["test.parquet"]}),
    (["train/a.parquet", "train/b.parquet", "dev/x.parquet"],
     {"train": ["train/a.parquet", "train/b.parquet"], "validation": ["dev/x.parquet"]}),
    (["data/my_train.parquet", "data/evaluation.parquet", ".cache/train.parquet"],
     {"train": ["data/my_train.parquet"], "test": ["data/evaluation.parquet"]}),
    (["data/contest.parquet", "b.parquet"], {"train": ["b.parquet", "data/contest.parquet"]}),
    (["data/train.csv"], {}),
])
def test_splits_from_file_names(paths: list[str], expected: dict[str, list[str]]) -> None:
    assert discover_splits(paths) == expected


def test_card_configs_win() -> None:
    paths = ["data/train-00000-of-00001.parquet", "x/a.parquet", "x/sub/b.parquet", "y.parquet"]
    card = {"configs": [
        {"config_name": "small", "data_files": "y.parquet"},
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"},
                                                  {"split": "test", "path": ["x/*.parquet"]}]},
    ]}
    assert discover_splits(paths, card) == {"train": ["data/train-00000-of-00001.parquet"], "test": ["x/a.parquet"]}
    assert discover_splits(paths, card, config="small") == {"train": ["y.parquet"]}
    assert discover_splits(paths, {"configs": [{"data_files": {"eval": "x/**"}}]}) == {
        "eval": ["x/a.parquet", "x/sub/b.parquet"]}
    with pytest.raises(InvalidInputError, match="declares small, default"):
        discover_splits(paths, card, config="large")


@pytest.mark.parametrize("name", ["my split", "test-2", "all", "", "../x", "a" * 65, "train."])
def test_bad_split_names(name: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid split name"):
        check_split_name(name)


def test_features_match_datasets_own() -> None:
    datasets = pytest.importorskip("datasets")
    schema = pa.schema([
        ("i", pa.int32()), ("u", pa.uint8()), ("f", pa.float32()), ("d", pa.float64()), ("b", pa.bool_()),
        ("s", pa.string()), ("day", pa.date32()), ("ts", pa.timestamp("us", tz="UTC")), ("dec", pa.decimal128(10, 2)),
        ("bin", pa.binary()), ("tags", pa.list_(pa.string())), ("nested", pa.list_(pa.list_(pa.int64()))),
        ("point", pa.struct([("x", pa.int64()), ("label", pa.string())])),
        ("spans", pa.list_(pa.struct([("start", pa.int32())]))),
    ])
    assert features_of(schema) == datasets.Features.from_arrow_schema(schema)._to_yaml_list()
    assert features_of(pa.schema([("m", pa.map_(pa.string(), pa.int32()))])) is None
