"""`registry.commits.commit` is the one write path: the hub's own account passes the same checks as a user."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.auth import HUB_PRINCIPAL, Principal
from registry.blobs import git_blob_oid
from registry.commits import commit
from registry.core import Registry
from registry.demos import managed_space, sync_space
from registry.errors import ForbiddenError, InvalidInputError, UnsafeFileError
from registry.names import BOT_USER, RepoRef
from registry.repos import create_repo, get_repo, load_version, resolve_commit, set_private
from registry.settings import Settings
from registry.trees import AddFile, DeleteFolder, TreeEntry


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    """A registry on SQLite and local blobs under tmp_path."""
    registry = Registry(Settings.from_env({}, home=tmp_path / "home"))
    yield registry
    registry.close()


def _add(reg: Registry, path: str, data: bytes) -> AddFile:
    stored = reg.blobs.put_bytes(data)
    return AddFile(TreeEntry(path, stored.oid, stored.size, git_blob_oid(data), False))


def test_the_hub_account_writes_only_the_spaces_it_manages(reg: Registry) -> None:
    owner = Principal("ana", "write")
    model = create_repo(reg, RepoRef("model", "ana", "m"), author="ana")
    with pytest.raises(ForbiddenError):
        commit(reg, model, HUB_PRINCIPAL, branch="main", operations=[_add(reg, "x.txt", b"x")], title="x")

    space = managed_space(reg, model)
    assert space is not None and get_repo(reg, space.ref).private is False
    head = resolve_commit(reg, model, "main").oid  # a demo syncs the model's current main
    made = sync_space(reg, model, {"app.py": "print(1)\n"}, sha=head, task=None)
    assert made is not None and made.author == BOT_USER
    # Once a person commits to it, the Space is theirs: the hub may no longer write it, nor sync into it.
    commit(reg, space, owner, branch="main", operations=[_add(reg, "NOTES.md", b"mine")], title="notes")
    with pytest.raises(ForbiddenError):
        commit(reg, space, HUB_PRINCIPAL, branch="main", operations=[_add(reg, "app.py", b"y")], title="y")
    assert sync_space(reg, model, {"app.py": "print(2)\n"}, sha=head, task=None) is None
    assert managed_space(reg, model) is None


def test_the_hub_account_gets_the_same_file_checks(reg: Registry) -> None:
    model = create_repo(reg, RepoRef("model", "ana", "m2"), author="ana")
    space = managed_space(reg, model)
    assert space is not None
    with pytest.raises(UnsafeFileError):
        commit(reg, space, HUB_PRINCIPAL, branch="main", title="bad",
               operations=[_add(reg, "model.pkl", pickle.dumps(_Exploit()))])
    with pytest.raises(InvalidInputError):
        commit(reg, space, HUB_PRINCIPAL, branch="main", title="wipe", operations=[DeleteFolder("")])
    _, tree = load_version(reg, space, "main")
    assert sorted(tree) == [".gitattributes"]


def test_model_visibility_carries_its_managed_space_only(reg: Registry) -> None:
    owned = create_repo(reg, RepoRef("model", "ana", "owned"), author="ana")
    create_repo(reg, RepoRef("space", "ana", "owned"), author="ana", sdk="gradio")  # a person's Space
    managed = create_repo(reg, RepoRef("model", "ana", "kept"), author="ana")
    assert managed_space(reg, managed) is not None
    set_private(reg, owned.ref, True)
    set_private(reg, managed.ref, True)
    assert get_repo(reg, RepoRef("space", "ana", "owned")).private is False
    assert get_repo(reg, RepoRef("space", "ana", "kept")).private is True
