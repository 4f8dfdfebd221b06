"""Per-task checks: a live demo's answer must equal a direct `transformers.pipeline` call.

Reusable beyond local models: render a bundle for a hub repo, launch it, then call
`check_demo(task, url, pipe, media)` with a pipeline loaded from the same model version.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

Predict = Callable[..., Any]
TOL = 1e-5


@dataclass(frozen=True)
class Media:
    """Sample inputs for the image and audio demos."""

    image: Path
    other_image: Path
    """A second, different image, for the demos that compare images."""
    audio: Path
    audio_samples: np.ndarray
    """The WAV's samples as the demo feeds them to the model: mono float32 in [-1, 1)."""
    video: Path
    """Eight frames of noise as H.264 MP4."""
    document: Path
    """A white page with a few printed lines, for OCR."""

    def load_image(self) -> Image.Image:
        """The sample image as the demo's `gr.Image(type="pil")` hands it to the model."""
        with Image.open(self.image) as image:
            return image.convert("RGB")


def make_media(out_dir: Path) -> Media:
    """Write two small random PNGs, a printed page, a one-second 16 kHz WAV chirp and a short MP4 into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = out_dir / "sample.png"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image)
    other_image = out_dir / "other.png"
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(other_image)
    t = np.arange(16000) / 16000
    pcm = (0.4 * np.sin(2 * np.pi * (200 + 400 * t) * t) * 32767).astype("<i2")
    audio = out_dir / "sample.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm.tobytes())
    return Media(
        image=image, other_image=other_image, audio=audio, audio_samples=pcm.astype(np.float32) / 32768.0,
        video=_write_video(out_dir / "sample.mp4", rng), document=_write_document(out_dir / "document.png"),
    )


def _write_video(path: Path, rng: np.random.Generator) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(8):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write_document(path: Path) -> Path:
    from PIL import ImageDraw, ImageFont

    page = Image.new("RGB", (400, 200), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=24)
    for row, line in enumerate(["INVOICE 1234", "Total: 56 EUR", "Date: 2024-05-01"]):
        draw.text((20, 20 + 60 * row), line, fill="black", font=font)
    page.save(path)
    return path


def confidences(label_value: dict[str, Any]) -> dict[str, float]:
    """`gr.Label` output as {label: score}."""
    return {item["label"]: item["confidence"] for item in label_value["confidences"]}


def assert_label_matches(label_value: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    """The Label's top class and every expected score match the pipeline's answer."""
    assert expected, "the direct pipeline call returned nothing to compare"
    best = max(expected, key=lambda item: item["score"])
    assert label_value["label"] == best["label"]
    got = confidences(label_value)
    for item in expected:
        assert got[item["label"]] == pytest.approx(item["score"], abs=TOL)


def _text_classification(predict: Predict, pipe: Any, media: Media) -> None:
    text = "I love this movie, it was wonderful"
    assert_label_matches(predict(text), pipe(text, top_k=None))


def _token_classification(predict: Predict, pipe: Any, media: Media) -> None:
    text = "John Smith works at Acme Corp in New York"
    entities = pipe(text, aggregation_strategy="simple")
    expected = [(text[e["start"] : e["end"]], e["entity_group"]) for e in entities]
    tokens = predict(text)
    got = [(t["token"], t["class_or_confidence"]) for t in tokens if t["class_or_confidence"] is not None]
    assert expected and got == expected


def _fill_mask(predict: Predict, pipe: Any, media: Media) -> None:
    text = "Paris is the [MASK] of France."
    expected: dict[str, float] = {}
    for item in pipe(text, top_k=5):
        expected.setdefault(item["token_str"], item["score"])
    result = predict(text)
    assert_label_matches(result, [{"label": k, "score": v} for k, v in expected.items()])


def _feature_extraction(predict: Predict, pipe: Any, media: Media) -> None:
    source, others = "That is a happy person", ["That is a happy dog", "Today is a sunny day"]

    def embed(sentence: str) -> np.ndarray:
        return np.asarray(pipe(sentence), dtype=np.float64)[0].mean(axis=0)

    anchor = embed(source)
    expected = [
        {"label": s, "score": float(anchor @ embed(s) / (np.linalg.norm(anchor) * np.linalg.norm(embed(s))))}
        for s in others
    ]
    assert_label_matches(predict(source, "\n".join(others)), expected)


def _text_generation(predict: Predict, pipe: Any, media: Media) -> None:
    prompt = "Once upon a time"
    expected = pipe(prompt, max_new_tokens=8, return_full_text=True)[0]["generated_text"]
    assert predict(prompt, 8) == expected


def _zero_shot_classification(predict: Predict, pipe: Any, media: Media) -> None:
    text, labels = "I love this movie", ["music", "sport", "cinema"]
    result = pipe(text, candidate_labels=labels, multi_label=False)
    expected = [{"label": label, "score": score} for label, score in zip(result["labels"], result["scores"])]
    assert_label_matches(predict(text, ", ".join(labels), False), expected)


def _table_question_answering(predict: Predict, pipe: Any, media: Media) -> None:
    import pandas as pd

    question = "How many stars does the datasets repository have?"
    headers, data = ["repository", "stars"], [["transformers", "36542"], ["datasets", "4512"]]
    expected = pipe(table=pd.DataFrame(data, columns=headers), query=question)
    answer, details = predict(question, {"headers": headers, "data": data, "metadata": None})
    assert answer == expected["answer"]
    assert details["cells"] == list(expected["cells"])
    assert details["aggregator"] == expected.get("aggregator")


def _image_classification(predict: Predict, pipe: Any, media: Media) -> None:
    assert_label_matches(predict(handle_file(str(media.image))), pipe(media.load_image()))


def _zero_shot_image_classification(predict: Predict, pipe: Any, media: Media) -> None:
    labels = ["a cat", "a dog", "a car"]
    expected = pipe(media.load_image(), candidate_labels=labels)
    assert_label_matches(predict(handle_file(str(media.image)), ", ".join(labels)), expected)


def _assert_same_boxes(annotated: Any, boxes: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The demo's boxes (JSON list and drawn annotations) are the pipeline's, score for score."""
    assert expected and len(boxes) == len(expected)
    for got, want in zip(boxes, expected):
        assert (got["label"], got["box"]) == (want["label"], want["box"])
        assert got["score"] == pytest.approx(want["score"], abs=TOL)
    assert [a["label"] for a in annotated["annotations"]] == [b["label"] for b in expected]
    assert Path(annotated["image"]).is_file()


def _object_detection(predict: Predict, pipe: Any, media: Media) -> None:
    # Threshold 0 keeps every query, so a random model still has boxes to compare.
    expected = pipe(media.load_image(), threshold=0.0)
    _assert_same_boxes(*predict(handle_file(str(media.image)), 0.0), expected)


def _image_segmentation(predict: Predict, pipe: Any, media: Media) -> None:
    expected = pipe(media.load_image())
    annotated = predict(handle_file(str(media.image)))
    assert [a["label"] for a in annotated["annotations"]] == [s["label"] for s in expected]
    for annotation, segment in zip(annotated["annotations"], expected):
        with Image.open(annotation["image"]) as overlay:
            alpha = np.asarray(overlay.convert("RGBA"))[:, :, 3]
        assert np.array_equal(alpha > 0, np.asarray(segment["mask"]) > 0)


def _audio_classification(predict: Predict, pipe: Any, media: Media) -> None:
    assert_label_matches(predict(handle_file(str(media.audio))), pipe(media.audio_samples))


def _automatic_speech_recognition(predict: Predict, pipe: Any, media: Media) -> None:
    assert predict(handle_file(str(media.audio))) == pipe(media.audio_samples)["text"]


def _image_feature_extraction(predict: Predict, pipe: Any, media: Media) -> None:
    def embed(image: Image.Image) -> np.ndarray:
        return np.asarray(pipe(image.convert("RGB")), dtype=np.float64)[0].mean(axis=0)

    anchor = embed(media.load_image())
    with Image.open(media.other_image) as other:
        candidates = {"1. other.png": embed(other), "2. itself": anchor}
    expected = [
        {"label": name, "score": float(anchor @ v / (np.linalg.norm(anchor) * np.linalg.norm(v)))}
        for name, v in candidates.items()
    ]
    gallery = [
        {"image": handle_file(str(media.other_image)), "caption": None},
        {"image": handle_file(str(media.image)), "caption": "itself"},
    ]
    similarity, embedding = predict(handle_file(str(media.image)), gallery)
    assert_label_matches(similarity, expected)
    assert confidences(similarity)["2. itself"] == pytest.approx(1.0, abs=TOL)
    assert embedding["dimension"] == anchor.size
    assert np.allclose(embedding["embedding"], anchor, atol=TOL)


def _depth_estimation(predict: Predict, pipe: Any, media: Media) -> None:
    expected = pipe(media.load_image())
    depth_map, stats = predict(handle_file(str(media.image)))
    with Image.open(depth_map) as shown:
        assert np.array_equal(np.asarray(shown.convert("L")), np.asarray(expected["depth"].convert("L")))
    predicted = np.asarray(expected["predicted_depth"], dtype=np.float64)
    assert stats["shape"] == list(predicted.shape)
    assert (stats["min"], stats["max"]) == pytest.approx((predicted.min(), predicted.max()), abs=TOL)


def _zero_shot_object_detection(predict: Predict, pipe: Any, media: Media) -> None:
    labels = ["a cat", "a dog"]
    # Threshold 0 keeps every box, so a random model still has boxes to compare.
    expected = pipe(media.load_image(), candidate_labels=labels, threshold=0.0)
    _assert_same_boxes(*predict(handle_file(str(media.image)), ", ".join(labels), 0.0), expected)


def _image_text_to_text(predict: Predict, pipe: Any, media: Media) -> None:
    prompt = "What is in the picture?"
    content = [{"type": "image", "image": media.load_image()}, {"type": "text", "text": prompt}]
    expected = pipe(text=[{"role": "user", "content": content}], max_new_tokens=8, return_full_text=False)
    answer = expected[0]["generated_text"]
    assert answer and predict(handle_file(str(media.image)), prompt, 8) == answer


def _zero_shot_audio_classification(predict: Predict, pipe: Any, media: Media) -> None:
    labels = ["a dog barking", "a piano", "a siren"]
    expected = pipe(media.audio_samples, candidate_labels=labels)
    assert_label_matches(predict(handle_file(str(media.audio)), ", ".join(labels)), expected)


def _text_to_audio(predict: Predict, pipe: Any, media: Media) -> None:
    text = "hello world, how are you today?"
    expected = pipe(text)
    pcm = (np.clip(np.squeeze(np.asarray(expected["audio"], dtype=np.float32)), -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(predict(text), "rb") as got:
        assert got.getframerate() == expected["sampling_rate"]
        assert (got.getnchannels(), got.getsampwidth()) == (1, 2)
        samples = np.frombuffer(got.readframes(got.getnframes()), dtype="<i2")
    assert pcm.size > 0 and np.array_equal(samples, pcm)


def _video_classification(predict: Predict, pipe: Any, media: Media) -> None:
    assert_label_matches(predict(handle_file(str(media.video))), pipe(str(media.video), top_k=5))


def _document_question_answering(predict: Predict, pipe: Any, media: Media) -> None:
    question = "What is the total?"
    with Image.open(media.document) as page:
        expected = pipe(image=page.convert("RGB"), question=question, top_k=3)
    answer, details = predict(handle_file(str(media.document)), question)
    # The random model still answers with words Tesseract read off the page.
    assert expected and answer == expected[0]["answer"] and answer
    assert [(d["answer"], d["start"], d["end"]) for d in details] == [(e["answer"], e["start"], e["end"]) for e in expected]
    assert [d["score"] for d in details] == pytest.approx([e["score"] for e in expected], abs=TOL)


def _keypoint_matching(predict: Predict, pipe: Any, media: Media) -> None:
    with Image.open(media.other_image) as other:
        expected = pipe([media.load_image(), other.convert("RGB")], threshold=0.0)
    drawing, pairs = predict(handle_file(str(media.image)), handle_file(str(media.other_image)), 0.0)
    assert expected and len(pairs) == len(expected)
    for got, want in zip(pairs, expected):
        for side in ("keypoint_image_0", "keypoint_image_1"):
            assert got[side] == pytest.approx(want[side], abs=TOL)
        assert got["score"] == pytest.approx(want["score"], abs=TOL)
    with Image.open(media.image) as first, Image.open(media.other_image) as second, Image.open(drawing) as shown:
        assert shown.size == (first.width + second.width, max(first.height, second.height))


def assert_nested_close(got: Any, want: Any) -> None:
    """Equal JSON-like values, numbers within `TOL`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for key in want:
            assert_nested_close(got[key], want[key])
    elif isinstance(want, (int, float)) and not isinstance(want, bool):
        assert got == pytest.approx(want, abs=TOL)
    else:
        assert got == want


def _decision(predict: Predict, pipe: Any, media: Media) -> None:
    state = "I was charged twice for my order and want a refund."
    questions = {
        "refund": {"type": "noul", "instructions": "Is a refund requested?"},
        "topic": {"type": "choice", "instructions": "What is it about?",
                  "criteria": {"billing": "money", "shipping": "delivery"}},
        "anger": {"type": "score", "instructions": "How angry?", "criteria": ["calm", "annoyed", "furious"]},
    }
    expected = pipe({"state": state, "questions": questions})
    assert set(expected) == set(questions)
    assert_nested_close(predict(state, json.dumps(questions)), expected)


CHECKS: dict[str, Callable[[Predict, Any, Media], None]] = {
    "text-classification": _text_classification,
    "token-classification": _token_classification,
    "fill-mask": _fill_mask,
    "feature-extraction": _feature_extraction,
    "sentence-similarity": _feature_extraction,
    "text-generation": _text_generation,
    "zero-shot-classification": _zero_shot_classification,
    "table-question-answering": _table_question_answering,
    "image-classification": _image_classification,
    "zero-shot-image-classification": _zero_shot_image_classification,
    "object-detection": _object_detection,
    "image-segmentation": _image_segmentation,
    "audio-classification": _audio_classification,
    "automatic-speech-recognition": _automatic_speech_recognition,
    "image-feature-extraction": _image_feature_extraction,
    "depth-estimation": _depth_estimation,
    "zero-shot-object-detection": _zero_shot_object_detection,
    "image-text-to-text": _image_text_to_text,
    "zero-shot-audio-classification": _zero_shot_audio_classification,
    "text-to-audio": _text_to_audio,
    "text-to-speech": _text_to_audio,
    "video-classification": _video_classification,
    "document-question-answering": _document_question_answering,
    "keypoint-matching": _keypoint_matching,
    "decision": _decision,
}


def check_demo(task: str, url: str, pipe: Any, media: Media) -> None:
    """Call the demo at `url` through gradio_client and compare with `pipe` on the same input."""
    client = Client(url, verbose=False)
    CHECKS[task](lambda *args: client.predict(*args, api_name="/predict"), pipe, media)
