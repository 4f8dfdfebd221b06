"""What a demo is built from: `DemoSpec`, and `spec_from_card` to fill one from a model card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import ModelCard

from registry.modelmeta import config_labels, parse_card

_COMMIT = re.compile(r"[0-9a-f]{40}")


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
    """Build a `DemoSpec` from a model card's text (YAML front matter + body) and `config.json`, standalone.

    The card is parsed and the labels read by the registry's own rules (`registry.modelmeta`), so a
    standalone render and the hub's agree. The hub itself calls `spec_from_version_facts` with the
    facts of its version record.

    Args:
        repo_id: The model repo id.
        card: README.md content, or an already parsed `ModelCard`.
        revision: Commit to pin the demo to.
        compare_revision: Optional second commit for the side-by-side demo.
        config: The model's parsed `config.json`, for labels and architecture facts.
        task: Overrides the card's `pipeline_tag` (e.g. a task detected from the config).
    """
    if isinstance(card, ModelCard):
        data, body = card.data.to_dict(), card.text
    else:
        parsed = parse_card(card)
        data, body = parsed.data, parsed.body
    return spec_from_version_facts(repo_id, data, body, revision=revision, compare_revision=compare_revision,
                                   config=config, task=task, labels=config_labels(config))


def spec_from_version_facts(
    repo_id: str,
    card_data: dict[str, Any],
    card_body: str,
    *,
    revision: str | None = None,
    compare_revision: str | None = None,
    config: dict[str, Any] | None = None,
    task: str | None = None,
    labels: list[str] | None = None,
) -> DemoSpec:
    """Build a `DemoSpec` from a version's parsed card (metadata and body), config, task and labels."""
    config = config or {}
    widget = card_data.get("widget") or []
    examples = [entry for entry in widget if isinstance(entry, dict)] if isinstance(widget, list) else []
    tag = card_data.get("pipeline_tag")
    return DemoSpec(
        repo_id=repo_id,
        revision=revision,
        task=task or (tag if isinstance(tag, str) else None),
        title=str(card_data.get("title") or ""),
        description=card_body.strip(),
        labels=list(labels or []),
        examples=examples,
        compare_revision=compare_revision,
        model_info=_model_info(card_data, config),
    )


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
