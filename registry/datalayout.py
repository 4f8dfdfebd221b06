"""The Hub's dataset layout: which files make which split, split names, and features in the card's YAML form.

Pure functions over paths, card metadata and Arrow schemas (no DB, no DuckDB), shared by the hub, which
reads a revision's splits, and by `vitrine dataset import`, which writes them. Splits are found as the
`datasets` library finds them: the card's `configs[].data_files` when present, else the sharded layout
`data/{split}-00000-of-00001.parquet`, else split keywords in directory names, then in file names, else
everything is `train`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import pyarrow as pa

from registry.errors import InvalidInputError

# The split keywords `datasets` looks for, and the characters it accepts around them.
SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_SEP = "[-._ 0-9]"
_SHARDED = re.compile(r"data/(?P<split>[^/]+?)-\d{5}-of-\d{5}[^/]*\.[^/]+")
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
# `datasets` itself accepts any `\w+(\.\w+)*` split; this is what it can load back from a card.
_LOADABLE_SPLIT = re.compile(r"\w+(\.\w+)*")
DATA_SUFFIX = ".parquet"


def check_split_name(split: str) -> str:
    """`split` if it can name a split in the Hub's layout (`data/{split}-*`), else InvalidInputError."""
    if not _SPLIT_NAME.fullmatch(split) or len(split) > 64 or split == "all":
        raise InvalidInputError(
            f"Invalid split name {split!r}: use letters, digits and underscores (dots between words), at most 64 "
            "characters, and not `all` (which `datasets` reserves), e.g. train, test, validation."
        )
    return split


def shard_path(split: str, index: int, count: int) -> str:
    """The repo path of shard `index` of `count` of `split`, as `push_to_hub` names it."""
    return f"data/{split}-{index:05d}-of-{count:05d}.parquet"


def split_pattern(split: str) -> str:
    """The `data_files` pattern of a split in the Hub's layout."""
    return f"data/{split}-*"


def discover_splits(paths: Iterable[str], card_data: Mapping[str, Any] | None = None, *,
                    config: str | None = None) -> dict[str, list[str]]:
    """Split name -> the parquet files of the split (sorted), as `datasets.load_dataset` would find them.

    Args:
        paths: every file path of the revision.
        card_data: the card's YAML metadata; its `configs` win when present.
        config: the config to read (default: the one marked `default`, else `default`, else the first).

    Raises:
        InvalidInputError: `config` names no config of the card.
    """
    files = sorted(p for p in paths if p.endswith(DATA_SUFFIX) and not _hidden(p))
    configs = [c for c in (card_data or {}).get("configs") or [] if isinstance(c, dict)]
    if configs:
        chosen = _choose_config(configs, config)
        return _from_data_files(files, chosen.get("data_files"))
    if config not in (None, "default"):
        raise InvalidInputError(f"Unknown config {config!r}: the card declares no configs, only `default` exists.")
    return _from_patterns(files)


def _choose_config(configs: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    if name is not None:
        for c in configs:
            if c.get("config_name", "default") == name:
                return c
        names = ", ".join(str(c.get("config_name", "default")) for c in configs)
        raise InvalidInputError(f"Unknown config {name!r}: the card declares {names}.")
    return next((c for c in configs if c.get("default") is True), None) \
        or next((c for c in configs if c.get("config_name", "default") == "default"), configs[0])


def data_files_entries(data_files: Any) -> list[tuple[str, list[str]]]:
    """A config's `data_files` (a pattern, a list of them, `{split: ...}` or `[{split, path}]`) as (split, patterns)."""
    def patterns(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or [] if isinstance(v, str)]

    if not data_files:
        return []
    if isinstance(data_files, str) or (isinstance(data_files, list)
                                       and all(isinstance(v, str) for v in data_files)):
        return [("train", patterns(data_files))]
    if isinstance(data_files, dict):
        return [(str(k), patterns(v)) for k, v in data_files.items()]
    out = []
    for entry in data_files or []:
        if isinstance(entry, dict) and "path" in entry:
            out.append((str(entry.get("split", "train")), patterns(entry["path"])))
    return out


def _from_data_files(files: list[str], data_files: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for split, pats in data_files_entries(data_files):
        regexes = [glob_regex(p.removeprefix("./")) for p in pats]
        matched = [f for f in files if any(r.fullmatch(f) for r in regexes)]
        if matched:
            found.setdefault(split, [])
            found[split] += [f for f in matched if f not in found[split]]
    return found


def _from_patterns(files: list[str]) -> dict[str, list[str]]:
    sharded: dict[str, list[str]] = {}
    for f in files:
        m = _SHARDED.fullmatch(f)
        if m and _LOADABLE_SPLIT.fullmatch(m["split"]):
            sharded.setdefault(m["split"], []).append(f)
    if sharded:
        return _ordered(sharded)
    for where in (_DIR_PATTERNS, _FILE_PATTERNS):
        found: dict[str, list[str]] = {}
        for split, keywords in SPLIT_KEYWORDS.items():
            regexes = [glob_regex(p.format(keyword=k, sep=_SEP)) for k in keywords for p in where]
            matched = [f for f in files if any(r.fullmatch(f) for r in regexes)]
            if matched:
                found[split] = matched
        if found:
            return found
    return {"train": files} if files else {}


# `datasets`' patterns (for fsspec >= 2023.12): a keyword as a directory name, then within a file name.
_DIR_PATTERNS = ("**/{keyword}/**", "**/{keyword}{sep}*/**", "**/*{sep}{keyword}/**", "**/*{sep}{keyword}{sep}*/**")
_FILE_PATTERNS = ("**/{keyword}{sep}*", "**/*{sep}{keyword}{sep}*")


def _ordered(splits: dict[str, list[str]]) -> dict[str, list[str]]:
    """train, validation, test first, then the others by name, as `datasets` orders them."""
    known = [s for s in SPLIT_KEYWORDS if s in splits]
    return {s: splits[s] for s in known + sorted(set(splits) - set(known))}


def _hidden(path: str) -> bool:
    return any(part.startswith((".", "__")) for part in path.split("/"))


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex for an fsspec-style glob: `**` spans directories, `*` and `?` stay within one."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and pattern.find("]", i + 2) != -1:  # a `]` right after `[` is part of the class
            end = pattern.find("]", i + 2)
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def features_of(schema: pa.Schema) -> list[dict[str, Any]] | None:
    """The schema as the card's `dataset_info.features` (`[{name, dtype}]`, `datasets`' YAML form).

    None when a column has a type `datasets` has no name for (maps, unions, extension types): the card then
    leaves features out and `datasets` reads them from the files.
    """
    try:
        return [{"name": field.name, **_feature(field.type)} for field in schema]
    except _Unnamed:
        return None


class _Unnamed(Exception):
    pass


# The Arrow types `datasets.Value` names (maps, unions, intervals, fixed-size binaries and the like it does not).
_VALUE_DTYPE = re.compile(r"null|bool|u?int(8|16|32|64)|float(16|32|64)|date(32|64)|(large_)?(binary|string)"
                          r"|(time32|time64|duration)\[\w+\]|timestamp\[\w+(, tz=[^\]]+)?\]|decimal(128|256)\(\d+, \d+\)")
_SIMPLE = {"float": "float32", "double": "float64", "halffloat": "float16", "date32[day]": "date32",
           "date64[ms]": "date64"}


def _feature(t: pa.DataType) -> dict[str, Any]:
    if pa.types.is_struct(t):
        return {"struct": [{"name": t.field(i).name, **_feature(t.field(i).type)} for i in range(t.num_fields)]}
    if pa.types.is_fixed_size_list(t):
        return {"list": _inner(t.value_type), "length": t.list_size}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"list": _inner(t.value_type)}
    name = _SIMPLE.get(str(t), str(t))
    if isinstance(t, pa.ExtensionType) or not _VALUE_DTYPE.fullmatch(name):
        raise _Unnamed(name)
    return {"dtype": name}


def _inner(t: pa.DataType) -> Any:
    feature = _feature(t)
    if "dtype" in feature:
        return feature["dtype"]
    if "struct" in feature:
        return feature["struct"]
    return feature
