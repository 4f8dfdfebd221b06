"""What a model version is: library, task, labels and card metadata, read from config.json and the card.

Architecture -> task follows what the Hub shows for `config.architectures[0]`, written as tables
here rather than imported from transformers, which registry/ only loads for inference.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import model_index_to_eval_results



# First marker contained in the architecture name wins, so more specific markers come first.
_ARCH_TASKS: list[tuple[str, str]] = [
    ("ForTableQuestionAnswering", "table-question-answering"),
    ("ForDocumentQuestionAnswering", "document-question-answering"),
    ("ForVisualQuestionAnswering", "visual-question-answering"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForAudioClassification", "audio-classification"),
    ("ForAudioFrameClassification", "audio-classification"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCausalLM", "text-generation"),
    ("WithLMHeadModel", "fill-mask"),
    ("LMHeadModel", "text-generation"),
    ("ForMaskedLM", "fill-mask"),
    ("ForZeroShotImageClassification", "zero-shot-image-classification"),
    ("ForImageClassification", "image-classification"),
    ("ForZeroShotObjectDetection", "zero-shot-object-detection"),
    ("ForObjectDetection", "object-detection"),
    ("ForSemanticSegmentation", "image-segmentation"),
    ("ForUniversalSegmentation", "image-segmentation"),
    ("ForInstanceSegmentation", "image-segmentation"),
    ("ForImageSegmentation", "image-segmentation"),
    ("ForSegmentation", "image-segmentation"),
    ("ForDepthEstimation", "depth-estimation"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForSpeechToText", "automatic-speech-recognition"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForVideoClassification", "video-classification"),
    ("ForImageTextToText", "image-text-to-text"),
    ("ForVision2Seq", "image-to-text"),
    ("ForTextToSpeech", "text-to-speech"),
    ("ForTextToWaveform", "text-to-speech"),
    ("ForMaskGeneration", "mask-generation"),
    ("ForKeypointDetection", "keypoint-detection"),
    ("ForKeypointMatching", "keypoint-matching"),
    ("ForDecision", "decision"),
    ("ForImageSuperResolution", "image-to-image"),
    ("ForImageToImage", "image-to-image"),
]
_AUDIO_TYPES = frozenset(
    {"wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "data2vec-audio", "unispeech",
     "unispeech-sat", "sew", "sew-d", "audio-spectrogram-transformer", "whisper", "clap"}
)  # fmt: skip
_DOCUMENT_QA_TYPES = frozenset({"layoutlm", "layoutlmv2", "layoutlmv3", "lilt"})
_ZERO_SHOT_IMAGE_TYPES = frozenset({"clip", "siglip", "siglip2", "altclip", "chinese_clip", "align", "metaclip_2"})
_ZERO_SHOT_DETECTION_TYPES = frozenset({"owlvit", "owlv2", "grounding-dino", "omdet-turbo"})
_ZERO_SHOT_AUDIO_TYPES = frozenset({"clap"})
# Models whose bare/"conditional generation" class says nothing about the task, by model_type.
_TYPE_TASKS: dict[str, str] = {
    **dict.fromkeys(["whisper", "speech_to_text", "speech-encoder-decoder", "moonshine"], "automatic-speech-recognition"),
    **dict.fromkeys(["marian", "fsmt", "m2m_100", "nllb-moe", "seamless_m4t", "seamless_m4t_v2"], "translation"),
    **dict.fromkeys(["pegasus", "pegasus_x", "led", "bigbird_pegasus"], "summarization"),
    **dict.fromkeys(["vision-encoder-decoder", "blip", "git", "pix2struct", "kosmos-2"], "image-to-text"),
    **dict.fromkeys(["musicgen", "musicgen_melody"], "text-to-audio"),
    **dict.fromkeys(["vits", "bark", "speecht5"], "text-to-speech"),
    **dict.fromkeys(["sam", "sam2", "sam_hq"], "mask-generation"),
    "encoder-decoder": "text2text-generation",
}  # fmt: skip
_DEFAULT_LABEL = re.compile(r"LABEL_\d+")
_FRAMEWORK_FILES: list[tuple[str, re.Pattern[str]]] = [
    ("pytorch", re.compile(r"(pytorch_model.*\.bin|.*\.pt|.*\.pth)")),
    ("tf", re.compile(r"(tf_model.*\.h5|saved_model\.pb)")),
    ("jax", re.compile(r"flax_model.*\.msgpack")),
    ("safetensors", re.compile(r".*\.safetensors")),
    ("onnx", re.compile(r".*\.onnx")),
    ("gguf", re.compile(r".*\.gguf")),
]


@dataclass(frozen=True)
class ModelMeta:
    """What we know about a model version from its config, card and file list."""

    library_name: str | None
    frameworks: list[str]
    architecture: str | None
    model_type: str | None
    pipeline_tag: str | None
    labels: list[str]
    tags: list[str]
    card_data: dict[str, Any] = field(default_factory=dict)
    card_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {
            "library_name": self.library_name,
            "frameworks": list(self.frameworks),
            "architecture": self.architecture,
            "model_type": self.model_type,
            "pipeline_tag": self.pipeline_tag,
            "labels": list(self.labels),
            "tags": list(self.tags),
            "card_data": self.card_data,
            "card_error": self.card_error,
        }


@dataclass(frozen=True)
class Card:
    """A README.md parsed once: its text, its YAML metadata, the body after it, and what is wrong with the YAML."""

    text: str | None
    data: dict[str, Any]
    body: str
    error: str | None


def parse_card(text: str | None) -> Card:
    """Split a card into metadata and body, as huggingface_hub reads it; never raises (errors go in `error`)."""
    if text is None:
        return Card(None, {}, "", None)
    data, error = read_card_metadata(text)
    match = REGEX_YAML_BLOCK.search(text.lstrip("\ufeff"))
    body = text.lstrip("\ufeff")[match.end():] if match else text
    return Card(text, data, body, error)


def read_card_metadata(card_text: str | None) -> tuple[dict[str, Any], str | None]:
    """Parse a card's YAML header as huggingface_hub does; return (metadata, error), never raising."""
    if not card_text:
        return {}, None
    match = REGEX_YAML_BLOCK.search(card_text.lstrip("\ufeff"))
    if not match:
        return {}, None
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as e:
        return {}, f"invalid YAML in card header: {' '.join(str(e).split())}"
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"card header must be a YAML mapping, got {type(data).__name__}"
    return jsonable(data), None


def card_metadata_errors(data: dict[str, Any], *, repo_type: str = "model") -> list[str]:
    """What makes a card's metadata invalid on the Hub: for a model, a `model-index` that does not parse."""
    if repo_type != "model" or "model-index" not in data:
        return []
    try:
        model_index_to_eval_results(data["model-index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"Invalid model-index: {' '.join(str(exc).split()) or type(exc).__name__} "
                "(expected a list of {name, results: [{task: {type}, dataset: {type, name}, metrics: [{type, value}]}]})."]
    return []


def detect_model_meta(config: dict[str, Any] | None, card: str | Card | None, *, filenames: list[str]) -> ModelMeta:
    """Detect library, task, labels and tags; the card's `pipeline_tag`/`library_name` win over config.

    Args:
        config: the parsed config.json, if any.
        card: README.md (text or parsed), if any; an invalid YAML header is reported in `card_error`.
        filenames: every path in the repo at this revision.
    """
    config = config if isinstance(config, dict) else {}
    parsed = card if isinstance(card, Card) else parse_card(card)
    card_data, card_error = parsed.data, parsed.error
    basenames = {PurePosixPath(f).name for f in filenames}
    archs = config.get("architectures")
    architecture = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None

    library = _str_or_none(card_data.get("library_name")) or _detect_library(config, filenames, architecture)
    pipeline_tag = _str_or_none(card_data.get("pipeline_tag"))
    if pipeline_tag is None:
        if library == "sentence-transformers":
            pipeline_tag = "feature-extraction"
        elif library == "timm":
            pipeline_tag = "image-classification"
        elif architecture is not None:
            pipeline_tag = task_for_architecture(architecture, model_type, config)
    frameworks = [name for name, pattern in _FRAMEWORK_FILES if any(pattern.fullmatch(b) for b in basenames)]

    tags: list[str] = [t for t in (library, *frameworks, model_type, pipeline_tag) if t]
    tags += [str(t) for t in as_list(card_data.get("tags"))]
    tags += [f"dataset:{d}" for d in as_list(card_data.get("datasets"))]
    tags += [str(lang) for lang in as_list(card_data.get("language"))]
    tags += [f"license:{lic}" for lic in as_list(card_data.get("license"))]
    return ModelMeta(
        library_name=library,
        frameworks=frameworks,
        architecture=architecture,
        model_type=model_type,
        pipeline_tag=pipeline_tag,
        labels=config_labels(config),
        tags=list(dict.fromkeys(tags)),
        card_data=card_data,
        card_error=card_error,
    )


def task_for_architecture(
    architecture: str, model_type: str | None, config: dict[str, Any] | None = None
) -> str | None:
    """The Hub's pipeline tag for a transformers architecture name, or None when it implies none."""
    config = config or {}
    if model_type in _AUDIO_TYPES and "ForSequenceClassification" in architecture:
        return "audio-classification"
    if model_type in _DOCUMENT_QA_TYPES and "ForQuestionAnswering" in architecture:
        return "document-question-answering"
    if model_type == "tapas" and "ForQuestionAnswering" in architecture:
        return "table-question-answering"
    if model_type in ("vilt", "blip") and "ForQuestionAnswering" in architecture:
        return "visual-question-answering"
    if model_type in _ZERO_SHOT_DETECTION_TYPES and "ForObjectDetection" in architecture:
        return "zero-shot-object-detection"
    if config.get("is_encoder_decoder") and "LMHead" in architecture:  # e.g. the old T5WithLMHeadModel
        return _conditional_generation_task(config)
    for marker, task in _ARCH_TASKS:
        if marker in architecture:
            return task
    if model_type in _TYPE_TASKS:
        return _TYPE_TASKS[model_type]
    if architecture.endswith("ForConditionalGeneration"):
        return _conditional_generation_task(config)
    if architecture.endswith("Model"):
        if model_type in _ZERO_SHOT_IMAGE_TYPES:
            return "zero-shot-image-classification"
        if model_type in _ZERO_SHOT_AUDIO_TYPES:
            return "zero-shot-audio-classification"
        is_vision = ("image_size" in config or "num_channels" in config) and "vocab_size" not in config
        return "image-feature-extraction" if is_vision else "feature-extraction"
    return None


def _detect_library(config: dict[str, Any], filenames: list[str], architecture: str | None) -> str | None:
    top = {f for f in filenames if "/" not in f}
    if top & {"modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"}:
        return "sentence-transformers"
    if "model_index.json" in top:
        return "diffusers"
    if "adapter_config.json" in top:
        return "peft"
    if top & {"open_clip_config.json", "open_clip_pytorch_model.bin", "open_clip_model.safetensors"}:
        return "open_clip"
    if isinstance(config.get("architecture"), str) and "pretrained_cfg" in config:
        return "timm"
    if any(f.endswith(".keras") for f in top) or "keras_metadata.pb" in top:
        return "keras"
    if architecture or "model_type" in config or "config.json" in top:
        return "transformers"
    return None


def _conditional_generation_task(config: dict[str, Any]) -> str:
    if "vision_config" in config:
        return "image-text-to-text"
    if "audio_config" in config:
        return "audio-text-to-text"
    # e.g. bart-large-cnn lists only summarization; t5 lists several tasks, so stays generic.
    params = config.get("task_specific_params")
    if isinstance(params, dict) and params:
        kinds = {"translation" if str(k).startswith("translation") else str(k) for k in params}
        if kinds == {"summarization"}:
            return "summarization"
        if kinds == {"translation"}:
            return "translation"
    return "text2text-generation"


def config_labels(config: dict[str, Any] | None) -> list[str]:
    """Class names from `config.json`'s `id2label` (a mapping by id, or a list), ordered by id; [] when unnamed."""
    id2label = (config or {}).get("id2label")
    if isinstance(id2label, list):
        labels = [str(v) for v in id2label]
    elif isinstance(id2label, dict):
        try:
            ordered = sorted(id2label.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError):
            ordered = list(id2label.items())
        labels = [str(v) for _, v in ordered]
    else:
        return []
    # transformers fills LABEL_0..N in when nobody named the classes; those say nothing.
    return [] if all(_DEFAULT_LABEL.fullmatch(lbl) for lbl in labels) else labels


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_list(value: Any) -> list[Any]:
    """A YAML field that may be one value or a list, as a list without None."""
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def jsonable(value: Any) -> Any:
    """YAML gives dates and other non-JSON scalars; the API needs plain JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
