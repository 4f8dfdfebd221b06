"""A model version's Space bundle: the registry's facts and rules, rendered by the pure renderer in apps/demo."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from apps.demo import render_bundle, spec_from_version_facts
from registry.core import Registry
from registry.demos import TEXT_INPUT_TASKS, dataset_examples
from registry.errors import UnsafeFileError
from registry.names import RepoRef
from registry.repos import RepoRecord
from registry.trees import TreeEntry
from registry.versions import RepoVersion, read_version

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
    """What the live demo runs and `vitrine space export` writes: may hold rows of `example_source`."""
    space_files: dict[str, str]
    """What the hub commits to the Space repo: only what the model repo itself says, never another repo's rows."""
    example_source: RepoRef | None
    """The dataset whose rows `files` shows as examples, if any (re-checked on every request)."""
    versions: tuple[RepoVersion, ...]
    weight_bytes: int
    """Bytes of weights the demo loads, summed over its versions: the base of its memory estimate."""
    unsafe_files: list[str]
    """Pickles in either version that import unsafe globals; the hub never loads those in-process."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"repo_id": self.repo_id, "sha": self.sha, "compare_sha": self.compare_sha, "task": self.task,
                "files": dict(self.files), "unsafe_files": list(self.unsafe_files),
                "example_source": self.example_source.repo_id if self.example_source else None}


def render_model_bundle(reg: Registry, repo: RepoRecord, revision: str, *, compare: str | None = None) -> Bundle:
    """Render the Space bundle of `repo` at `revision` (and `compare`, run side by side).

    The card and config come from `revision`'s version record; the task is the card's `pipeline_tag`,
    else the one detected from the config. An unknown task renders the model info page.

    Raises:
        RevisionNotFoundError: a revision does not exist.
    """
    version = read_version(reg, repo, revision)
    other = read_version(reg, repo, compare) if compare is not None else None
    versions = (version,) if other is None else (version, other)
    spec = spec_from_version_facts(
        repo.ref.repo_id, version.card.data, version.card.body, revision=version.commit.oid,
        compare_revision=other.commit.oid if other is not None else None,
        config=version.config, task=version.meta.pipeline_tag, labels=version.meta.labels,
    )
    space_files = render_bundle(spec)
    files, source = space_files, None
    if not spec.examples and spec.task in TEXT_INPUT_TASKS:
        found = dataset_examples(reg, repo, spec.model_info.get("datasets"))
        if found.texts:
            files = render_bundle(dataclasses.replace(spec, examples=[{"text": t} for t in found.texts]))
            source = found.source
    unsafe = sorted({u.path for v in versions for u in v.unsafe_files})
    return Bundle(
        repo_id=repo.ref.repo_id, sha=version.commit.oid, compare_sha=spec.compare_revision, task=spec.task,
        files=files, space_files=space_files, example_source=source, versions=versions,
        weight_bytes=sum(weight_bytes(v.tree) for v in versions), unsafe_files=unsafe,
    )


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
