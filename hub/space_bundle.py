"""A model version's Space bundle: rendered from the registry, and kept in the Space repo of the same name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from apps.demo import render_bundle, spec_from_card
from registry.blobs import git_blob_oid
from registry.commits import CommitRecord, create_commit, history, resolve_revision
from registry.core import Registry
from registry.describe import card_text, describe, read_json
from registry.datasets import sample_texts
from registry.errors import ConflictError, InvalidInputError, RepoNotFoundError, UnsafeFileError
from registry.names import BOT_USER, RepoRef, parse_repo_id
from registry.repos import RepoRecord, create_repo, get_repo, load_version, set_private
from registry.trees import AddFile, TreeEntry

# Tasks whose demo takes one text input, so a linked dataset's text column can give its examples.
_TEXT_INPUT_TASKS = ("text-classification", "token-classification", "text-generation")

# What transformers may load weights from; with safetensors present it loads nothing else.
_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")


@dataclass(frozen=True)
class Bundle:
    """The Space files rendered for one model version (or two, side by side)."""

    repo_id: str
    sha: str
    compare_sha: str | None
    task: str | None
    files: dict[str, str]
    weight_bytes: int
    """Bytes of weights the demo loads, summed over its versions: the base of its memory estimate."""
    unsafe_files: list[str]
    """Pickles in either version that import unsafe globals; the hub never loads those in-process."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"repo_id": self.repo_id, "sha": self.sha, "compare_sha": self.compare_sha, "task": self.task,
                "files": dict(self.files), "unsafe_files": list(self.unsafe_files)}


def render_model_bundle(reg: Registry, repo: RepoRecord, revision: str, *, compare: str | None = None) -> Bundle:
    """Render the Space bundle of `repo` at `revision` (and `compare`, run side by side).

    The card and `config.json` come from `revision`; the task is the card's `pipeline_tag`, else the
    one detected from the config. An unknown task renders the model info page.

    Raises:
        RevisionNotFoundError: a revision does not exist.
    """
    commit, tree = load_version(reg, repo, revision)
    versions = [(commit, tree)]
    if compare is not None:
        versions.append(load_version(reg, repo, compare))
    meta = describe(reg, "model", commit.tree_oid, tree)
    spec = spec_from_card(
        repo.ref.repo_id, card_text(reg, tree) or "", revision=commit.oid,
        compare_revision=versions[1][0].oid if compare is not None else None,
        config=read_json(reg, tree, "config.json"), task=meta.get("pipeline_tag"),
    )
    if not spec.examples and spec.task in _TEXT_INPUT_TASKS:
        texts = dataset_examples(reg, repo, spec.model_info.get("datasets"))
        spec = dataclasses.replace(spec, examples=[{"text": t} for t in texts])
    unsafe: list[str] = []
    for version_commit, version_tree in versions:
        facts = describe(reg, "model", version_commit.tree_oid, version_tree)["vitrine"]
        unsafe += [item["path"] for item in facts.get("unsafeFiles", [])]
    return Bundle(
        repo_id=repo.ref.repo_id, sha=commit.oid, compare_sha=spec.compare_revision, task=spec.task,
        files=render_bundle(spec), weight_bytes=sum(weight_bytes(t) for _, t in versions),
        unsafe_files=sorted(set(unsafe)),
    )


def dataset_examples(reg: Registry, model: RepoRecord, datasets: Any) -> list[str]:
    """Example inputs from the first dataset the card links (`datasets:`) that is on this hub and may be shown.

    A dataset's rows may appear in the model's demo only if everyone who sees the demo may see the dataset:
    it is public, or it is private in the private model's own namespace.
    """
    for dataset_id in [datasets] if isinstance(datasets, str) else list(datasets or []):
        try:
            ref = parse_repo_id(str(dataset_id), "dataset")
            dataset = get_repo(reg, ref)
        except (InvalidInputError, RepoNotFoundError):
            continue
        if dataset.private and not (model.private and model.ref.namespace == ref.namespace):
            continue
        _, tree = load_version(reg, dataset, "main")
        texts = sample_texts(reg, tree)
        if texts:
            return texts
    return []


def check_loadable(bundle: Bundle) -> None:
    """Refuse to load a demo whose model holds unsafe pickles (loading one runs its code in the hub).

    Raises:
        UnsafeFileError: naming the first unsafe file.
    """
    if bundle.unsafe_files:
        raise UnsafeFileError(
            f"No live demo for {bundle.repo_id}@{bundle.sha[:7]}: {', '.join(bundle.unsafe_files)} "
            "imports unsafe globals. Push safetensors weights instead.",
            path=bundle.unsafe_files[0], details=bundle.unsafe_files,
        )


def weight_bytes(tree: dict[str, TreeEntry]) -> int:
    """Bytes of the weight files transformers would load from `tree` (safetensors when there are any)."""
    safetensors = [e.size for p, e in tree.items() if p.endswith(".safetensors")]
    if safetensors:
        return sum(safetensors)
    return sum(e.size for p, e in tree.items() if p.endswith(_WEIGHT_SUFFIXES))


def sync_space_repo(reg: Registry, model: RepoRecord, bundle: Bundle) -> CommitRecord | None:
    """Commit `bundle` to the Space repo named like the model, when its files differ from the Space's `main`.

    The Space is created (sdk gradio, as private as the model) on first use and authored by
    `vitrine-bot`. Once anyone else commits to it, it is theirs: the hub leaves it alone.

    Returns:
        The new commit, or None when nothing was committed (same files, or a Space the hub does not manage).
    """
    ref = RepoRef("space", model.ref.namespace, model.ref.name)
    try:
        space = get_repo(reg, ref)
    except RepoNotFoundError:
        try:
            space = create_repo(reg, ref, author=BOT_USER, private=model.private, sdk="gradio")
        except ConflictError:  # another request or replica created it first
            space = get_repo(reg, ref)
    if space.private != model.private:
        set_private(reg, ref, model.private)
    with reg.engine.connect() as conn:
        chain = history(conn, space.pk, resolve_revision(conn, space.pk, ref, "main").oid)
        tree = reg.tree(conn, chain[0].tree_oid)
    if any(commit.author != BOT_USER for commit in chain):
        return None
    operations = []
    for path, text in sorted(bundle.files.items()):
        data = text.encode("utf-8")
        stored = reg.blobs.put_bytes(data)
        if path not in tree or tree[path].oid != stored.oid:
            operations.append(AddFile(TreeEntry(path, stored.oid, stored.size, git_blob_oid(data), False)))
    if not operations:
        return None
    model_version = f"{model.ref.repo_id}@{bundle.sha}"
    return create_commit(
        reg, space.pk, ref, branch="main", operations=list(operations), author=BOT_USER,
        title=f"Demo for {model.ref.repo_id}@{bundle.sha[:7]}",
        message=f"Generated by Vitrine from model {model_version} (task {bundle.task or 'none'}).",
    )
