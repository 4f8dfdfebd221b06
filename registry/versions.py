"""What a repo version is: one typed record per commit (card, task, labels, weights, unsafe files), cached by commit.

Everything that needs to know about a version reads this record: repo info and listings in hub/,
demos, the console and evaluation. Nothing else re-reads the card or the config.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from threading import Lock
from typing import Any

import yaml

from registry.commits import CommitRecord
from registry.core import Registry
from registry.datasetcards import dataset_tags
from registry.errors import InvalidInputError
from registry.inspect import scan_pickle
from registry.modelmeta import Card, ModelMeta, jsonable, detect_model_meta, parse_card
from registry.pickles import is_pickle_path
from registry.repos import RepoRecord, load_version
from registry.trees import TreeEntry
from registry.weights import SafetensorsHeader, WeightsIndex, blob_safetensors_header, index_weights

MAX_SMALL_FILE = 2 * 1024 * 1024
EVAL_RESULTS_DIR = ".eval_results"
SHARD_INDEX = "model.safetensors.index.json"
_CACHE_SIZE = 512


@dataclass(frozen=True)
class UnsafeFile:
    """A pickle that imports globals outside the allow-list."""

    path: str
    globals: tuple[str, ...]


@dataclass(frozen=True)
class RepoVersion:
    """One commit of a repo, understood: the card parsed once and, for models, what the files say."""

    repo_type: str
    commit: CommitRecord
    tree: dict[str, TreeEntry]
    card: Card
    meta: ModelMeta
    """Library, task, labels, architecture and tags (for datasets and Spaces: only the card's tags)."""
    config: dict[str, Any] | None
    weights: WeightsIndex | None
    weights_error: str | None
    unsafe_files: tuple[UnsafeFile, ...]
    eval_results: tuple[dict[str, Any], ...] = ()
    """Entries of `.eval_results/*.yaml`, as the Hub serves them: `{"filename", "data"}` or `{"filename", "error"}`."""

    @property
    def tags(self) -> list[str]:
        """The version's tags as the Hub lists them."""
        return list(self.meta.tags)


_cache: OrderedDict[tuple[int, str], RepoVersion] = OrderedDict()
_lock = Lock()


def read_version(reg: Registry, repo: RepoRecord, revision: str) -> RepoVersion:
    """The record of `repo` at `revision` (a branch, tag or commit).

    Raises:
        RevisionNotFoundError: the revision does not exist.
    """
    commit, tree = load_version(reg, repo, revision)
    return version_of(reg, repo.ref.type, commit, tree)


def version_of(reg: Registry, repo_type: str, commit: CommitRecord, tree: dict[str, TreeEntry]) -> RepoVersion:
    """The record of `commit` (with its `tree`), built on first use and then served from a cache by commit id."""
    key = (id(reg), commit.oid)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    version = _build(reg, repo_type, commit, tree)
    with _lock:
        _cache[key] = version
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return version


def _build(reg: Registry, repo_type: str, commit: CommitRecord, tree: dict[str, TreeEntry]) -> RepoVersion:
    card = parse_card(card_text(reg, tree))
    if repo_type != "model":
        tags = [str(t) for t in card.data.get("tags") or [] if isinstance(t, (str, int, float))]
        if repo_type == "dataset":  # the Hub derives tags from a dataset's card fields and files
            tags = list(dict.fromkeys([*dataset_tags(card.data, files=sorted(tree)), *tags]))
        meta = ModelMeta(None, [], None, None, None, [], tags, card.data, card.error)
        return RepoVersion(repo_type, commit, tree, card, meta, None, None, None, ())
    config = read_json(reg, tree, "config.json")
    meta = detect_model_meta(config, card, filenames=sorted(tree))
    weights, weights_error = None, None
    try:
        weights = weights_index(reg, tree)
    except InvalidInputError as exc:  # committed before this check existed, or by an operator override
        weights_error = exc.message
    unsafe = []
    for path, entry in sorted(tree.items()):
        if is_pickle_path(path):
            facts = scan_pickle(reg, entry)
            if facts["unsafe"]:
                unsafe.append(UnsafeFile(path, tuple(facts["unsafe"])))
    return RepoVersion(repo_type, commit, tree, card, meta, config, weights, weights_error, tuple(unsafe),
                       read_eval_results(reg, tree))


def read_eval_results(reg: Registry, tree: dict[str, TreeEntry]) -> tuple[dict[str, Any], ...]:
    """Every entry of the version's `.eval_results/*.yaml` files; a file that does not parse gives one error entry."""
    out: list[dict[str, Any]] = []
    for path in sorted(p for p in tree if p.startswith(EVAL_RESULTS_DIR + "/") and p.endswith((".yaml", ".yml"))):
        raw = read_small(reg, tree, path)
        try:
            data = yaml.safe_load(raw or b"")
        except yaml.YAMLError as exc:
            out.append({"filename": path, "error": f"invalid YAML: {' '.join(str(exc).split())}"})
            continue
        entries = data if isinstance(data, list) else [data]
        for entry in entries:
            dataset = entry.get("dataset") if isinstance(entry, dict) else None
            if not isinstance(dataset, dict) or not dataset.get("id") or not dataset.get("task_id") \
                    or "value" not in entry:
                out.append({"filename": path, "error": "each entry needs dataset.id, dataset.task_id and value"})
                continue
            out.append({"filename": path, "data": jsonable(entry)})
    return tuple(out)


def read_small(reg: Registry, tree: dict[str, TreeEntry], path: str) -> bytes | None:
    """Content of a small file of the tree, or None when absent or too large to be metadata."""
    entry = tree.get(path)
    if entry is None or entry.size > MAX_SMALL_FILE:
        return None
    return reg.blobs.read(entry.oid)


def read_json(reg: Registry, tree: dict[str, TreeEntry], path: str) -> dict[str, Any] | None:
    """A small JSON object file of the tree, or None when absent or not a JSON object."""
    raw = read_small(reg, tree, path)
    if raw is None:
        return None
    try:
        loaded = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return loaded if isinstance(loaded, dict) else None


def card_text(reg: Registry, tree: dict[str, TreeEntry]) -> str | None:
    """The README.md of the tree, if any."""
    raw = read_small(reg, tree, "README.md")
    return raw.decode("utf-8", "replace") if raw is not None else None


def weights_index(reg: Registry, tree: dict[str, TreeEntry]) -> WeightsIndex | None:
    """The safetensors index of a tree (sharded or not), or None when it holds no safetensors."""
    # Only the headers are read: with S3 storage, from the bucket, without fetching the tensors.
    files: dict[str, Path | Callable[[], SafetensorsHeader]] = {
        p: partial(blob_safetensors_header, reg.blobs, e.oid, e.size, name=p)
        for p, e in tree.items() if p.endswith(".safetensors")}
    if not files:
        return None
    return index_weights(files, index_json=read_json(reg, tree, SHARD_INDEX))
