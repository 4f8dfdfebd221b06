"""Model cards Vitrine renders for a version pushed without one (from `templates/cards/model.md.j2`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from registry.modelmeta import ModelMeta, as_list
from registry.weights import WeightsIndex

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def render_model_card(
    repo_id: str,
    revision: str,
    meta: ModelMeta,
    *,
    weights: WeightsIndex | None = None,
    files: list[str] | None = None,
    endpoint: str | None = None,
) -> str:
    """Render README.md for a model version from `templates/cards/model.md.j2`."""
    front: dict[str, Any] = {k: v for k, v in meta.card_data.items() if v is not None}
    if meta.pipeline_tag:
        front.setdefault("pipeline_tag", meta.pipeline_tag)
    if meta.library_name:
        front.setdefault("library_name", meta.library_name)
    # The card's own tags plus what the files say; languages, datasets and license have their own keys.
    derived = [*as_list(meta.card_data.get("tags")), *meta.frameworks, meta.model_type]
    tags = [str(t) for t in dict.fromkeys(derived) if t and t not in (meta.pipeline_tag, meta.library_name)]
    if tags:
        front["tags"] = tags
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["md_cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    env.filters["human"] = _human_count
    env.filters["human_bytes"] = _human_bytes
    all_files = sorted(files or [])
    return env.get_template("cards/model.md.j2").render(
        repo_id=repo_id,
        revision=revision,
        endpoint=endpoint,
        front_matter=yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip("\n"),
        meta=meta,
        weights=weights,
        files=all_files[:100],
        more_files=max(0, len(all_files) - 100),
        loader=_loader(meta),
    )


_AUTO_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "table-question-answering": "AutoModelForTableQuestionAnswering",
    "text-generation": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "translation": "AutoModelForSeq2SeqLM",
    "summarization": "AutoModelForSeq2SeqLM",
    "fill-mask": "AutoModelForMaskedLM",
    "image-classification": "AutoModelForImageClassification",
    "object-detection": "AutoModelForObjectDetection",
    "image-segmentation": "AutoModelForImageSegmentation",
    "depth-estimation": "AutoModelForDepthEstimation",
    "audio-classification": "AutoModelForAudioClassification",
    "image-text-to-text": "AutoModelForImageTextToText",
}
_VISION_TASKS = frozenset(
    {"image-classification", "object-detection", "image-segmentation", "depth-estimation", "image-feature-extraction"}
)


def _loader(meta: ModelMeta) -> dict[str, str]:
    if meta.library_name == "sentence-transformers":
        return {"kind": "sentence-transformers"}
    if meta.library_name != "transformers":
        return {"kind": "snapshot"}
    task = meta.pipeline_tag or ""
    auto = _AUTO_CLASSES.get(task, "AutoModel")
    if task == "automatic-speech-recognition":
        auto = "AutoModelForCTC" if (meta.architecture or "").endswith("ForCTC") else "AutoModelForSpeechSeq2Seq"
    if task.startswith(("image-segmentation",)) and "Semantic" in (meta.architecture or ""):
        auto = "AutoModelForSemanticSegmentation"
    if task in _VISION_TASKS:
        processor = "AutoImageProcessor"
    elif any(w in task for w in ("audio", "speech", "image", "video", "visual", "document")):
        processor = "AutoProcessor"
    else:
        processor = "AutoTokenizer"
    return {"kind": "transformers", "auto_class": auto, "processor": processor}


def _human_count(n: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
