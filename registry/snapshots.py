"""A commit's files as a local folder of links into the blob store, for code that wants a model directory.

Live demos, evaluations and endpoints load a model version with `from_pretrained(folder)`: no HTTP
round trip, no token, no second copy of the weights. Folders live under `$VITRINE_HOME/snapshots/<commit>`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from registry.core import Registry
from registry.trees import TreeEntry


def snapshot_dir(reg: Registry, sha: str, tree: dict[str, TreeEntry]) -> Path:
    """A folder holding the files of commit `sha` as symlinks into the blob store, made once per commit.

    Built under a temporary name and renamed into place, so a folder that exists is complete.
    """
    root = reg.settings.home / "snapshots"
    final = root / sha
    if final.is_dir():
        for entry in tree.values():  # a store whose local files are a bounded cache may have evicted some
            reg.blobs.path(entry.oid)
        return final
    staging = root / f".{sha}.{uuid.uuid4().hex}"
    for path, entry in tree.items():
        target = staging / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(reg.blobs.path(entry.oid), target)
    staging.mkdir(parents=True, exist_ok=True)  # an empty tree still gets its folder
    try:
        os.rename(staging, final)
    except OSError:  # a concurrent build of the same commit won
        shutil.rmtree(staging, ignore_errors=True)
    return final


def drop_snapshot_dir(reg: Registry, sha: str) -> None:
    """Remove the folder of links made by `snapshot_dir` (the blobs stay)."""
    shutil.rmtree(reg.settings.home / "snapshots" / sha, ignore_errors=True)
