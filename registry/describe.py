"""What a commit says about itself: card metadata, tags and task, computed from its tree and cached per tree."""

from __future__ import annotations

import json
from collections import OrderedDict
from threading import Lock
from typing import Any

import yaml

from registry.core import Registry
from registry.trees import TreeEntry

MAX_SMALL_FILE = 2 * 1024 * 1024
_cache: OrderedDict[tuple[int, str], dict[str, Any]] = OrderedDict()
_lock = Lock()


def read_small(reg: Registry, tree: dict[str, TreeEntry], path: str) -> bytes | None:
    """Content of a small file of the tree, or None when absent or too large to be metadata."""
    entry = tree.get(path)
    if entry is None or entry.size > MAX_SMALL_FILE:
        return None
    return reg.blobs.read(entry.oid)


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str, str | None]:
    """(metadata, body, error) of a card: the YAML between leading `---` lines, the rest, and what was wrong."""
    if not text.startswith("---"):
        return None, text, None
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            head, body = "".join(lines[1:i]), "".join(lines[i + 1:])
            try:
                data = yaml.safe_load(head)
            except yaml.YAMLError as exc:
                return None, body, f"Invalid YAML in README.md metadata: {exc}".replace("\n", " ")
            if data is None:
                return {}, body, None
            if not isinstance(data, dict):
                return None, body, "Invalid README.md metadata: the YAML header must be a mapping."
            return data, body, None
    return None, text, "Invalid README.md metadata: the YAML header has no closing '---'."


def describe(reg: Registry, repo_type: str, tree_oid: str, tree: dict[str, TreeEntry]) -> dict[str, Any]:
    """Metadata of a tree (cardData, tags, pipeline_tag, library_name...), cached since trees never change."""
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
    readme = read_small(reg, tree, "README.md")
    card_text = readme.decode("utf-8", "replace") if readme is not None else None
    card, body, card_error = split_front_matter(card_text) if card_text is not None else (None, "", None)
    card = card or {}
    raw_config = read_small(reg, tree, "config.json") if repo_type == "model" else None
    config: dict[str, Any] | None = None
    if raw_config is not None:
        try:
            loaded = json.loads(raw_config)
            config = loaded if isinstance(loaded, dict) else None
        except ValueError:
            config = None
    tags = [str(t) for t in card.get("tags") or [] if isinstance(t, (str, int, float))]
    meta: dict[str, Any] = {
        "cardData": card or None,
        "tags": tags,
        "pipeline_tag": card.get("pipeline_tag"),
        "library_name": card.get("library_name"),
        "description": body.strip()[:2000] or None,
        "vitrine": {"cardError": card_error},
    }
    if config is not None:
        meta["config"] = {k: config[k] for k in ("architectures", "model_type") if k in config}
    for value in (meta["pipeline_tag"], meta["library_name"]):
        if value and value not in tags:
            tags.append(str(value))
    return meta
