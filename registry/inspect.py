"""Checks run on files before a commit that adds them may land (weights headers, pickle imports)."""

from __future__ import annotations

from registry.core import Registry
from registry.trees import TreeEntry


def inspect_additions(reg: Registry, entries: list[TreeEntry]) -> None:
    """Refuse a commit whose new files are malformed or unsafe (raises UnsafeFileError / InvalidInputError)."""
    return None
