"""Trees: the full list of files of a commit, stored once per distinct content, and edits applied to them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pathspec

from registry.blobs import lfs_pointer
from registry.errors import EntryNotFoundError, InvalidInputError
from registry.names import check_folder, check_path


@dataclass(frozen=True)
class TreeEntry:
    """One file of a tree: its content (sha256) and how git would see it."""

    path: str
    oid: str  # sha256 of the content: the blob store key and the LFS oid
    size: int
    git_oid: str  # git blob sha1 of the content (regular) or of the LFS pointer (lfs)
    lfs: bool

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file that git would store in place of this file."""
        return len(lfs_pointer(self.oid, self.size))


@dataclass(frozen=True)
class AddFile:
    """Put a stored blob at `entry.path`."""

    entry: TreeEntry


@dataclass(frozen=True)
class DeleteFile:
    """Remove the file at `path`."""

    path: str


@dataclass(frozen=True)
class DeleteFolder:
    """Remove every file under folder `path`."""

    path: str


Operation = AddFile | DeleteFile | DeleteFolder


def encode_tree(entries: Mapping[str, TreeEntry]) -> tuple[str, str]:
    """Serialise a tree canonically; returns (tree oid, JSON text)."""
    rows = [[e.path, e.oid, e.size, e.git_oid, int(e.lfs)] for e in sorted(entries.values(), key=lambda e: e.path)]
    text = json.dumps(rows, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), text


def decode_tree(text: str) -> dict[str, TreeEntry]:
    """Parse a tree stored by `encode_tree`."""
    return {row[0]: TreeEntry(row[0], row[1], int(row[2]), row[3], bool(row[4])) for row in json.loads(text)}


def apply_operations(
    entries: Mapping[str, TreeEntry], operations: Iterable[Operation], *, repo_id: str, revision: str
) -> dict[str, TreeEntry]:
    """Return a new tree with `operations` applied in order; refuses deletes of missing paths and file/folder clashes."""
    tree = dict(entries)
    for op in operations:
        if isinstance(op, AddFile):
            path = check_path(op.entry.path)
            _check_no_clash(tree, path)
            tree[path] = op.entry
        elif isinstance(op, DeleteFile):
            path = check_path(op.path)
            if path in tree:
                del tree[path]
                continue
            # A folder named without its trailing '/' is deleted as a folder, as on the Hub.
            doomed = [p for p in tree if p.startswith(path + "/")]
            if not doomed:
                raise EntryNotFoundError(repo_id, path, revision)
            for p in doomed:
                del tree[p]
        elif isinstance(op, DeleteFolder):
            folder = check_folder(op.path)
            prefix = f"{folder}/" if folder else ""
            doomed = [p for p in tree if p.startswith(prefix)]
            if not doomed:
                raise EntryNotFoundError(repo_id, folder or "/", revision)
            for p in doomed:
                del tree[p]
        else:  # pragma: no cover - exhaustive over Operation
            raise InvalidInputError(f"Unknown operation {op!r}")
    return tree


def _check_no_clash(tree: Mapping[str, TreeEntry], path: str) -> None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in tree:
            raise InvalidInputError(f"Cannot add {path!r}: {parent!r} is a file.")
    prefix = path + "/"
    if any(p.startswith(prefix) for p in tree):
        raise InvalidInputError(f"Cannot add {path!r}: it is a folder.")


def list_dir(entries: Mapping[str, TreeEntry], folder: str, *, recursive: bool) -> tuple[list[TreeEntry], list[str]]:
    """Files and sub-folders under `folder` (sorted); raises KeyError-free: an unknown folder gives two empty lists."""
    prefix = f"{folder}/" if folder else ""
    files: list[TreeEntry] = []
    folders: set[str] = set()
    for path, entry in entries.items():
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        parts = rest.split("/")
        for i in range(1, len(parts) if recursive else min(2, len(parts))):
            folders.add(prefix + "/".join(parts[:i]))
        if recursive or len(parts) == 1:
            files.append(entry)
    return sorted(files, key=lambda e: e.path), sorted(folders)


def folder_oid(entries: Mapping[str, TreeEntry], folder: str) -> str:
    """A stable 40-hex id for a folder's content, standing in for git's tree sha1."""
    prefix = folder + "/"
    h = hashlib.sha1()
    for path in sorted(p for p in entries if p.startswith(prefix)):
        h.update(f"{path}\0{entries[path].git_oid}\n".encode())
    return h.hexdigest()


def ignored_by(gitignore: str, paths: Iterable[str]) -> set[str]:
    """The paths a `.gitignore` with this text ignores, by git's own rules (pathspec's GitIgnoreSpec)."""
    spec = pathspec.GitIgnoreSpec.from_lines(gitignore.splitlines())
    return {p for p in paths if spec.match_file(p)}
