"""What a demo is built from: `DemoSpec`, and `spec_from_card` to fill one from a model card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from huggingface_hub import ModelCard

_COMMIT = re.compile(r"[0-9a-f]{40}")
_FRONT_MATTER = re.compile(r"\A\s*---\r?\n.*?\r?\n---\s*?(\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class DemoSpec:
    """Everything the renderer needs to turn one model version into a Space bundle."""

    repo_id: str
    """Model repo id on the hub (or a local model directory, for standalone use and tests)."""
    revision: str | None = None
    """40-hex commit the demo is pinned to; None follows the default branch."""
    task: str | None = None
    """Pipeline tag; None or an unknown tag renders the model info page instead of a demo."""
    title: str = ""
    """Space title; empty means the repo name."""
    description: str = ""
    """Markdown shown under the title and in the Space README (the model card body)."""
    labels: list[str] = field(default_factory=list)
    """Class names the model predicts, shown in the demo header."""
    examples: list[Any] = field(default_factory=list)
    """Card `widget` entries (dicts) or ready rows (lists); empty means the task's defaults."""
    compare_revision: str | None = None
    """Second 40-hex commit: the demo then runs both versions side by side on the same input."""
    model_info: dict[str, Any] = field(default_factory=dict)
    """Facts about the model shown on the page rendered when there is no demo for its task."""

    def __post_init__(self) -> None:
        if not self.repo_id:
            raise ValueError("DemoSpec.repo_id must not be empty")
        for name in ("revision", "compare_revision"):
            value = getattr(self, name)
            if value is not None and not _COMMIT.fullmatch(value):
                raise ValueError(f"DemoSpec.{name} must be a 40-hex commit id or None, got {value!r}")

    @property
    def display_title(self) -> str:
        """The title to show: the explicit one, else the last part of the repo id."""
        return self.title or self.repo_id.rstrip("/").rsplit("/", 1)[-1]


def spec_from_card(
    repo_id: str,
    card: str | ModelCard,
    *,
    revision: str | None = None,
    compare_revision: str | None = None,
    config: dict[str, Any] | None = None,
    task: str | None = None,
) -> DemoSpec:
    """Build a `DemoSpec` from a model card's text (YAML front matter + body) and `config.json`.

    Args:
        repo_id: The model repo id.
        card: README.md content, or an already parsed `ModelCard`.
        revision: Commit to pin the demo to.
        compare_revision: Optional second commit for the side-by-side demo.
        config: The model's parsed `config.json`, for labels and architecture facts.
        task: Overrides the card's `pipeline_tag` (e.g. a task detected from the config).
    """
    data, body = _parse_card(card)
    config = config or {}
    widget = data.get("widget") or []
    examples = [entry for entry in widget if isinstance(entry, dict)] if isinstance(widget, list) else []
    tag = data.get("pipeline_tag")
    return DemoSpec(
        repo_id=repo_id,
        revision=revision,
        task=task or (tag if isinstance(tag, str) else None),
        title=str(data.get("title") or ""),
        description=body.strip(),
        labels=_labels(config),
        examples=examples,
        compare_revision=compare_revision,
        model_info=_model_info(data, config),
    )


def _parse_card(card: str | ModelCard) -> tuple[dict[str, Any], str]:
    if isinstance(card, ModelCard):
        return card.data.to_dict(), card.text
    if not card.lstrip().startswith("---"):
        # No front matter; ModelCard would only log that the metadata block is missing.
        return {}, card
    try:
        parsed = ModelCard(card, ignore_metadata_errors=True)
    except (ValueError, yaml.YAMLError):
        # Broken front matter must not cost the model its page: keep the body, drop the metadata.
        return {}, _FRONT_MATTER.sub("", card, count=1)
    return parsed.data.to_dict(), parsed.text


def _labels(config: dict[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    try:
        ordered = sorted(id2label.items(), key=lambda item: int(item[0]))
    except (TypeError, ValueError):
        ordered = list(id2label.items())
    labels = [str(label) for _, label in ordered]
    # transformers fills LABEL_0, LABEL_1 when a config names no classes; those say nothing.
    if all(label == f"LABEL_{i}" for i, label in enumerate(labels)):
        return []
    return labels


def _model_info(data: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for key in ("library_name", "license", "language", "tags", "datasets", "base_model"):
        if data.get(key):
            info[key] = data[key]
    if config.get("model_type"):
        info["model_type"] = config["model_type"]
    if config.get("architectures"):
        info["architectures"] = config["architectures"]
    return info
