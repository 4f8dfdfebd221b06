"""Text classification, regression heads and zero-shot classification."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry.errors import InvalidInputError
from registry.predictors.base import Predictor, grouped_calls, require_mapping, require_text

_CLASSIFICATION_PROBLEMS = ("single_label_classification", "multi_label_classification")


def scores_result(items: list[dict[str, Any]]) -> dict[str, Any]:
    """`[{"label", "score"}, ...]` (best first, as pipelines give them) -> `{"label", "score", "scores"}`."""
    scores = {str(item["label"]): float(item["score"]) for item in items}
    best = max(scores, key=scores.__getitem__)
    return {"label": best, "score": scores[best], "scores": scores}


def is_regression(config: dict[str, Any]) -> bool:
    """Whether a sequence-classification config is a regression head (as transformers trains it)."""
    problem = config.get("problem_type")
    if problem == "regression":
        return True
    return problem not in _CLASSIFICATION_PROBLEMS and _num_labels(config) == 1


def _num_labels(config: dict[str, Any]) -> int | None:
    id2label = config.get("id2label")
    if isinstance(id2label, (dict, list)):
        return len(id2label)
    value = config.get("num_labels")
    return value if isinstance(value, int) else None


def _text_input(payload: Any, task: str) -> str | dict[str, str]:
    """`text`, or `{"text", "text_pair"}` for sentence-pair classifiers (NLI, paraphrase...)."""
    payload = require_mapping(payload, task)
    text = require_text(payload, "text", task)
    if payload.get("text_pair") is None:
        return text
    return {"text": text, "text_pair": require_text(payload, "text_pair", task)}


class TextClassificationPredictor(Predictor):
    """Text (or text pair) -> `{"label", "score", "scores": {label: score}}`, every class scored."""

    task = "text-classification"
    pipeline_task = "text-classification"
    input_columns = ("text",)

    def call_options(self) -> dict[str, Any]:
        """Every class gets a score, as in the demo."""
        return {"top_k": None}

    def preprocess(self, payload: Any) -> Any:
        """`{"text": str, "text_pair"?: str}` -> the pipeline's input."""
        return _text_input(payload, self.task)

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"label", "score", "scores"}`."""
        return [scores_result(items) for items in outputs]


class TextRegressionPredictor(Predictor):
    """Text (or text pair) -> `{"value": float}`, the raw output of a one-output regression head."""

    task = "text-regression"
    pipeline_task = "text-classification"
    input_columns = ("text",)

    def load(self, path: Path, device: str = "cpu") -> None:
        """Load the model; refuse heads with several outputs."""
        super().load(path, device)
        count = self.pipe.model.config.num_labels
        if count != 1:
            raise InvalidInputError(f"Only one-output regression heads are supported; this one has {count} outputs.")

    @property
    def labels(self) -> list[str]:
        """A regression head has no classes."""
        return []

    def call_options(self) -> dict[str, Any]:
        """The raw logit: no sigmoid, which the pipeline would apply to a one-label head otherwise."""
        return {"top_k": None, "function_to_apply": "none"}

    def preprocess(self, payload: Any) -> Any:
        """`{"text": str, "text_pair"?: str}` -> the pipeline's input."""
        return _text_input(payload, self.task)

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"value": float}`."""
        return [{"value": float(items[0]["score"])} for items in outputs]


def parse_candidate_labels(value: Any) -> tuple[str, ...]:
    """Candidate labels from a list or a comma-separated string, stripped; InvalidInputError when none or repeated."""
    if isinstance(value, str):
        labels = [label.strip() for label in value.split(",") if label.strip()]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        labels = [label.strip() for label in value]
    else:
        raise InvalidInputError("candidate_labels must be a list of strings or a comma-separated string.")
    if not labels or not all(labels):
        raise InvalidInputError("candidate_labels must hold at least one non-empty label.")
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"candidate_labels repeat a label: {labels}.")
    return tuple(labels)


class ZeroShotClassificationPredictor(Predictor):
    """Text + candidate labels -> `{"label", "score", "scores"}` over the candidates (an NLI model's entailment).

    The candidate labels are a predictor argument (`load_predictor(..., candidate_labels=[...])`); a
    payload may bring its own `candidate_labels` instead.
    """

    task = "zero-shot-classification"
    pipeline_task = "zero-shot-classification"
    input_columns = ("text",)

    def __init__(
        self,
        candidate_labels: Sequence[str] | str | None = None,
        *,
        multi_label: bool = False,
        hypothesis_template: str | None = None,
    ) -> None:
        super().__init__()
        self.candidate_labels = () if candidate_labels is None else parse_candidate_labels(candidate_labels)
        self.multi_label = bool(multi_label)
        self.hypothesis_template = hypothesis_template

    @property
    def labels(self) -> list[str]:
        """The candidate labels given to the predictor (the model's own are entailment/contradiction)."""
        return list(self.candidate_labels)

    def call_options(self) -> dict[str, Any]:
        """`multi_label` and, when given, the hypothesis template."""
        options: dict[str, Any] = {"multi_label": self.multi_label}
        if self.hypothesis_template is not None:
            options["hypothesis_template"] = self.hypothesis_template
        return options

    def preprocess(self, payload: Any) -> Any:
        """`{"text": str, "candidate_labels"?: list | str}` -> (text, candidate labels)."""
        payload = require_mapping(payload, self.task)
        text = require_text(payload, "text", self.task)
        given = payload.get("candidate_labels")
        labels = self.candidate_labels if given is None else parse_candidate_labels(given)
        if not labels:
            raise InvalidInputError(
                "zero-shot-classification needs candidate labels: load the predictor with candidate_labels=[...] "
                "or send 'candidate_labels' with the input."
            )
        return text, labels

    def predict(self, batch: list[Any]) -> list[Any]:
        """One pipeline call per set of candidate labels (they are one argument per call)."""
        pipe = self.require_loaded()

        def call(items: list[Any]) -> list[Any]:
            texts = [text for text, _ in items]
            result = pipe(texts, candidate_labels=list(items[0][1]), batch_size=len(texts), **self.call_options())
            return [result] if isinstance(result, dict) else list(result)

        return grouped_calls(batch, lambda item: item[1], call)

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"label", "score", "scores"}` over the candidate labels."""
        return [
            scores_result([{"label": label, "score": score} for label, score in zip(out["labels"], out["scores"])])
            for out in outputs
        ]
