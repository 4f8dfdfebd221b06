"""The rules of a model's demo: which other repos' rows it may show, and the Space repo the hub keeps for it.

Two rules keep every byte of a repo away from callers who cannot read it:
- A dataset's rows may appear in a live demo only while everyone who can read the model can read the
  dataset: the dataset is public, or both are private in one namespace. The host re-checks this on every
  request, so a visibility change takes effect at once, whatever demo is loaded.
- The Space repo's history is permanent and may become public with the model, so it never holds rows of
  another repo: the bundle the hub commits there has only what the model repo itself says (its card).
The Space repo named like a model is the hub's only while every commit in it is the hub's own; a Space a
person created or committed to is theirs, and the hub never writes to it nor changes its visibility.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.auth import HUB_PRINCIPAL
from registry.blobs import git_blob_oid
from registry.commits import CommitRecord, commit, is_hub_managed
from registry.core import Registry
from registry.datasets import sample_texts
from registry.errors import ConflictError, InvalidInputError, PreconditionFailedError, RepoNotFoundError
from registry.names import BOT_USER, RepoRef, parse_repo_id
from registry.repos import RepoRecord, create_repo, get_repo, load_version, resolve_commit
from registry.trees import AddFile, Operation, TreeEntry

# Tasks whose demo takes one text input, so a linked dataset's text column can give its examples.
TEXT_INPUT_TASKS = ("text-classification", "token-classification", "text-generation")


@dataclass(frozen=True)
class DatasetExamples:
    """Example inputs drawn from a dataset, and the dataset they came from (None: no rows of another repo)."""

    texts: list[str]
    source: RepoRef | None = None


def may_show_rows(model: RepoRecord, dataset: RepoRecord) -> bool:
    """Whether everyone who can read `model` can also read `dataset`, so its rows may appear in the demo."""
    if not dataset.private:
        return True
    return model.private and model.ref.namespace == dataset.ref.namespace


def dataset_examples(reg: Registry, model: RepoRecord, linked: Any) -> DatasetExamples:
    """Example texts from the first dataset the card links (`datasets:`) that is on this hub and may be shown."""
    for dataset_id in [linked] if isinstance(linked, str) else list(linked or []):
        try:
            dataset = get_repo(reg, parse_repo_id(str(dataset_id), "dataset"))
        except (InvalidInputError, RepoNotFoundError):
            continue
        if not may_show_rows(model, dataset):
            continue
        texts = sample_texts(reg, dataset)
        if texts:
            return DatasetExamples(texts, dataset.ref)
    return DatasetExamples([])


def rows_still_allowed(reg: Registry, model: RepoRecord, source: RepoRef | None) -> bool:
    """Whether a demo built with rows of `source` may still be shown to readers of `model` as it is now."""
    if source is None:
        return True
    try:
        return may_show_rows(model, get_repo(reg, source))
    except RepoNotFoundError:
        return False


def managed_space(reg: Registry, model: RepoRecord) -> RepoRecord | None:
    """The Space repo named like `model` if the hub manages it, created (as private as the model) when missing.

    Returns:
        The Space, or None when a person created or committed to a Space of that name: it is theirs.
    """
    ref = RepoRef("space", model.ref.namespace, model.ref.name)
    try:
        space = get_repo(reg, ref)
    except RepoNotFoundError:
        try:
            return create_repo(reg, ref, author=BOT_USER, private=model.private, sdk="gradio")
        except ConflictError:  # another request or replica created it first
            space = get_repo(reg, ref)
    return space if is_hub_managed(reg, space.pk) else None


def sync_space(reg: Registry, model: RepoRecord, files: dict[str, str], *, sha: str,
               task: str | None) -> CommitRecord | None:
    """Commit `files` (a bundle without other repos' rows) to the model's managed Space when they differ from its `main`.

    The write goes through `registry.commits.commit` as the hub's own account, which may write only the
    Spaces it manages; the Space's visibility is never changed here (it follows the model's, see
    `registry.repos.set_private`).

    Several replicas may sync one Space at once: each commits only on top of the `main` it compared against
    (a compare-and-swap through `parent_commit`), and a loser compares again, so equal bundles land once. A
    bundle of a commit that is no longer the model's `main` is not committed over a newer one.

    Returns:
        The new commit, or None when nothing was committed (same files, an older version, a Space a person owns).
    """
    space = managed_space(reg, model)
    if space is None:
        return None
    stored = {path: (text.encode("utf-8"), reg.blobs.put_bytes(text.encode("utf-8"))) for path, text in files.items()}
    for _ in range(5):
        if resolve_commit(reg, model, "main").oid != sha:
            return None  # the model moved on: whoever shows the newer version syncs that one
        head, tree = load_version(reg, space, "main")
        operations: list[Operation] = [
            AddFile(TreeEntry(path, blob.oid, blob.size, git_blob_oid(data), False))
            for path, (data, blob) in sorted(stored.items()) if path not in tree or tree[path].oid != blob.oid
        ]
        if not operations:
            return None
        try:
            return commit(
                reg, space, HUB_PRINCIPAL, branch="main", operations=operations, parent_commit=head.oid,
                title=f"Demo for {model.ref.repo_id}@{sha[:7]}",
                message=f"Generated by Vitrine from model {model.ref.repo_id}@{sha} (task {task or 'none'}).",
            )
        except PreconditionFailedError:
            continue  # another replica committed first: compare with what it wrote
    return None
