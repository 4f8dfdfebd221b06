"""Inference shared by model evaluation and the inference endpoint: one `Predictor` per task.

    predictor = load_predictor("text-classification", snapshot_folder)
    results = predictor.run([{"text": "I loved it"}])  # [{"label": ..., "score": ..., "scores": {...}}]

Adding a task is one `Predictor` subclass and one entry in `PREDICTORS`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from registry.errors import InvalidInputError
from registry.predictors.audio import AudioClassificationPredictor, SpeechRecognitionPredictor
from registry.predictors.base import Predictor, read_config
from registry.predictors.classification import (
    TextClassificationPredictor,
    TextRegressionPredictor,
    ZeroShotClassificationPredictor,
    is_regression,
)
from registry.predictors.language import FillMaskPredictor, TextGenerationPredictor
from registry.predictors.similarity import SentenceSimilarityPredictor
from registry.predictors.tokens import TokenClassificationPredictor
from registry.predictors.vision import ImageClassificationPredictor

PREDICTORS: dict[str, type[Predictor]] = {
    "text-classification": TextClassificationPredictor,
    "text-regression": TextRegressionPredictor,
    "zero-shot-classification": ZeroShotClassificationPredictor,
    "token-classification": TokenClassificationPredictor,
    "fill-mask": FillMaskPredictor,
    "text-generation": TextGenerationPredictor,
    "image-classification": ImageClassificationPredictor,
    "audio-classification": AudioClassificationPredictor,
    "automatic-speech-recognition": SpeechRecognitionPredictor,
    "sentence-similarity": SentenceSimilarityPredictor,
}

# Pipeline tags served by another task's predictor: sentence-transformers models are tagged
# feature-extraction when their card names no pipeline tag.
_TAG_TASKS = {"feature-extraction": "sentence-similarity"}


def resolve_task(task: str, path: Path) -> str:
    """The predictor task for a model tagged `task` in folder `path` (a one-output classifier is text-regression)."""
    task = _TAG_TASKS.get(task, task)
    if task == "text-classification" and is_regression(read_config(path)):
        return "text-regression"
    return task


def load_predictor(task: str, path: Path, *, device: str = "cpu", **options: Any) -> Predictor:
    """Build the predictor for `task` (resolved by `resolve_task`) and load the model folder `path` onto `device`.

    Args:
        task: the model's pipeline tag, or a key of `PREDICTORS`.
        path: a local model folder (a commit's snapshot, see registry/snapshots.py).
        device: "cpu", "cuda", "cuda:1", "mps"...
        options: the task's predictor arguments, e.g. `candidate_labels=[...]` for zero-shot
            classification, `max_new_tokens=` for text generation, `top_k=` for fill-mask,
            `allow_paths=True` for image and audio tasks reading local files.

    Raises:
        InvalidInputError: the task has no predictor, or an option is not one it takes.
    """
    resolved = resolve_task(task, path)
    if resolved not in PREDICTORS:
        raise InvalidInputError(f"No predictor for task {task!r}; supported tasks: {', '.join(sorted(PREDICTORS))}.")
    cls = PREDICTORS[resolved]
    accepted = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) or "no options"
        raise InvalidInputError(f"Task {resolved!r} takes {takes}; unknown option(s): {', '.join(unknown)}.")
    predictor = cls(**options)
    predictor.load(Path(path), device=device)
    return predictor


__all__ = ["PREDICTORS", "Predictor", "load_predictor", "resolve_task"]
