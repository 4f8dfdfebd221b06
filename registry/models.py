"""Model versions side by side: weight diffs between revisions and the card a version would have."""

from __future__ import annotations

from registry.core import Registry
from registry.versions import SHARD_INDEX, read_json, read_version
from registry.errors import InvalidInputError
from registry.cards import render_model_card
from registry.repos import RepoRecord, load_version
from registry.weightdiff import WeightDiff, diff_weights


def diff_revisions(reg: Registry, repo: RepoRecord, old: str, new: str) -> WeightDiff:
    """Tensor-by-tensor diff of the safetensors weights of two revisions, streamed from the blob store."""
    sides = []
    for revision in (old, new):
        _, tree = load_version(reg, repo, revision)
        files = {p: reg.blobs.path(e.oid) for p, e in tree.items() if p.endswith(".safetensors")}
        if not files:
            raise InvalidInputError(f"{repo.ref.repo_id}@{revision} has no .safetensors weights to compare.")
        sides.append((files, read_json(reg, tree, SHARD_INDEX)))
    (old_files, old_index), (new_files, new_index) = sides
    return diff_weights(old_files, new_files, old_index=old_index, new_index=new_index)


def model_card(reg: Registry, repo: RepoRecord, revision: str, *, endpoint: str | None = None) -> dict[str, object]:
    """The version's README.md if it has one, else a card rendered from what we know (never committed here)."""
    version = read_version(reg, repo, revision)
    sha = version.commit.oid
    if version.card.text is not None:
        return {"card": version.card.text, "generated": False, "sha": sha, "cardError": version.card.error}
    rendered = render_model_card(repo.ref.repo_id, sha, version.meta, weights=version.weights,
                                 files=sorted(version.tree), endpoint=endpoint)
    return {"card": rendered, "generated": True, "sha": sha, "cardError": None}
