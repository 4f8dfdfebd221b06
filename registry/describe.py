"""What a commit says about itself: card metadata, task, labels, weights and unsafe files, cached per tree."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from threading import Lock
from typing import Any

from registry.core import Registry
from registry.errors import InvalidInputError
from registry.inspect import scan_pickle
from registry.modelmeta import ModelMeta, detect_model_meta, read_card_metadata
from registry.pickles import is_pickle_path
from registry.trees import TreeEntry
from registry.weights import WeightsIndex, index_weights

MAX_SMALL_FILE = 2 * 1024 * 1024
SHARD_INDEX = "model.safetensors.index.json"
_FRONT_MATTER = re.compile(r"^---\s*\n.*?\n---\s*(\n|$)", re.DOTALL)
_cache: OrderedDict[tuple[int, str], dict[str, Any]] = OrderedDict()
_lock = Lock()


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
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def card_text(reg: Registry, tree: dict[str, TreeEntry]) -> str | None:
    """The README.md of the tree, if any."""
    raw = read_small(reg, tree, "README.md")
    return raw.decode("utf-8", "replace") if raw is not None else None


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str, str | None]:
    """(metadata, body, error) of a card; the error says what is wrong with the YAML header, if anything."""
    data, error = read_card_metadata(text)
    match = _FRONT_MATTER.match(text)
    body = text[match.end():] if match else text
    return (data or None) if error is None else None, body, error


def model_meta(reg: Registry, tree: dict[str, TreeEntry]) -> ModelMeta:
    """Framework, architecture, task, labels and card data of a model tree."""
    return detect_model_meta(read_json(reg, tree, "config.json"), card_text(reg, tree), filenames=sorted(tree))


def weights_index(reg: Registry, tree: dict[str, TreeEntry]) -> WeightsIndex | None:
    """The safetensors index of a tree (sharded or not), or None when it holds no safetensors."""
    files = {p: reg.blobs.path(e.oid) for p, e in tree.items() if p.endswith(".safetensors")}
    if not files:
        return None
    return index_weights(files, index_json=read_json(reg, tree, SHARD_INDEX))


def describe(reg: Registry, repo_type: str, tree_oid: str, tree: dict[str, TreeEntry]) -> dict[str, Any]:
    """Metadata of a tree in the Hub's terms (cardData, tags, pipeline_tag...) plus Vitrine's own; cached."""
    key = (id(reg), tree_oid)
    with _lock:
        if key in _cache:
            return _cache[key]
    meta = _describe(reg, repo_type, tree)
    with _lock:
        _cache[key] = meta
        while len(_cache) > 512:
            _cache.popitem(last=False)
    return meta


def _describe(reg: Registry, repo_type: str, tree: dict[str, TreeEntry]) -> dict[str, Any]:
    text = card_text(reg, tree)
    card, body, card_error = split_front_matter(text) if text is not None else (None, "", None)
    out: dict[str, Any] = {
        "cardData": card,
        "tags": [str(t) for t in (card or {}).get("tags") or [] if isinstance(t, (str, int, float))],
        "description": body.strip()[:2000] or None,
        "vitrine": {"cardError": card_error, "hasCard": text is not None},
    }
    if repo_type != "model":
        return out
    meta = model_meta(reg, tree)
    out.update(pipeline_tag=meta.pipeline_tag, library_name=meta.library_name, tags=meta.tags)
    config = read_json(reg, tree, "config.json")
    if config is not None:
        out["config"] = {k: config[k] for k in ("architectures", "model_type") if k in config}
    vitrine = out["vitrine"]
    vitrine.update(architecture=meta.architecture, modelType=meta.model_type, labels=meta.labels,
                   frameworks=meta.frameworks)
    try:
        weights = weights_index(reg, tree)
    except InvalidInputError as exc:  # committed before this check existed, or by an operator override
        weights, vitrine["weightsError"] = None, exc.message
    if weights is not None:
        out["safetensors"] = weights.to_hub_json()
        vitrine["weights"] = {"files": list(weights.files), "totalBytes": weights.total_bytes,
                              "sharded": weights.sharded, "tensors": len(weights.tensors)}
    unsafe = []
    for path, entry in sorted(tree.items()):
        if is_pickle_path(path):
            facts = scan_pickle(reg, entry)
            if facts["unsafe"]:
                unsafe.append({"path": path, "unsafeGlobals": facts["unsafe"]})
    vitrine["unsafeFiles"] = unsafe
    return out
