"""Evaluation metrics per task, computed by the libraries that define them, never re-implemented here.

scikit-learn (classification, regression, top-k), seqeval (entities), jiwer (WER/CER), sacrebleu
(chrF), scipy (rank correlation). `compute_metrics` takes references as a dataset holds them and
predictions as the predictors in `registry.predictors` give them; `check_labels` refuses, before
any inference runs, references naming classes the model does not have.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Callable, Sequence
from typing import Any

from registry.errors import InvalidInputError

_CLASSIFICATION = [
    "num_examples", "accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro",
    "precision_weighted", "recall_weighted", "roc_auc", "confusion_matrix",
]  # fmt: skip

METRICS: dict[str, list[str]] = {
    "text-classification": list(_CLASSIFICATION),
    "image-classification": list(_CLASSIFICATION),
    "audio-classification": list(_CLASSIFICATION),
    "zero-shot-classification": list(_CLASSIFICATION),
    "token-classification": ["num_examples", "precision", "recall", "f1", "accuracy", "per_entity"],
    "fill-mask": ["num_examples", "top1_accuracy", "topk_accuracy", "k"],
    "text-generation": ["num_examples", "chrf", "exact_match"],
    "automatic-speech-recognition": ["num_examples", "wer", "cer"],
    "sentence-similarity": ["num_examples", "spearman", "pearson"],
    "text-regression": ["num_examples", "mae", "rmse", "r2"],
}
"""Task -> the names of the metrics `compute_metrics` returns for it (definitions in `METRIC_DEFINITIONS`)."""

METRIC_DEFINITIONS: dict[str, str] = {
    "num_examples": "Number of (reference, prediction) pairs scored.",
    "accuracy": "Share of examples (tokens, for tags) predicted as the reference (sklearn/seqeval accuracy_score).",
    "f1_macro": "Unweighted mean over classes of per-class F1 (sklearn, average='macro', 0 where undefined).",
    "f1_weighted": "Mean over classes of per-class F1 weighted by reference support (sklearn, average='weighted').",
    "precision_macro": "Unweighted mean over classes of per-class precision (sklearn, average='macro').",
    "recall_macro": "Unweighted mean over classes of per-class recall (sklearn, average='macro').",
    "precision_weighted": "Support-weighted mean over classes of per-class precision (sklearn, average='weighted').",
    "recall_weighted": "Support-weighted mean over classes of per-class recall (sklearn, average='weighted').",
    "roc_auc": "Area under the ROC curve from the predicted scores: binary, or one-vs-rest macro mean for "
    "multiclass (sklearn roc_auc_score); null unless every class occurs in the references.",
    "confusion_matrix": "{'labels': order, 'matrix': rows = reference label, columns = predicted label} "
    "(sklearn confusion_matrix).",
    "precision": "Entity-level precision: predicted entity spans that exactly match a reference span (seqeval).",
    "recall": "Entity-level recall: reference entity spans found exactly (seqeval).",
    "f1": "Entity-level (micro) F1 of exact entity-span matches (seqeval, CoNLL-style IOB decoding).",
    "per_entity": "Per entity type: precision, recall, f1 and support (seqeval classification_report).",
    "top1_accuracy": "Share of examples whose most likely token equals the reference word, spaces stripped "
    "(sklearn accuracy_score).",
    "topk_accuracy": "Share of examples whose reference word is among the k most likely tokens "
    "(sklearn top_k_accuracy_score).",
    "k": "The k of topk_accuracy: the fewest distinct tokens any prediction listed.",
    "chrf": "Corpus chrF, character n-gram F-score from 0 to 100 (sacrebleu corpus_chrf, default settings).",
    "exact_match": "Share of generated texts equal to the reference, character for character (sklearn accuracy_score).",
    "wer": "Word error rate: (substitutions + deletions + insertions) / reference words, over the corpus (jiwer).",
    "cer": "Character error rate: the same edit rate over characters (jiwer).",
    "spearman": "Spearman rank correlation of predicted similarity and reference score (scipy spearmanr); "
    "null when either side is constant.",
    "pearson": "Pearson linear correlation of predicted similarity and reference score (scipy pearsonr); "
    "null when either side is constant.",
    "mae": "Mean absolute error (sklearn mean_absolute_error).",
    "rmse": "Root mean squared error (sklearn root_mean_squared_error).",
    "r2": "Coefficient of determination (sklearn r2_score); null with fewer than two examples.",
}
"""Metric name -> a one-line definition, to record with a result."""

_LIBRARIES = (
    "scikit-learn", "seqeval", "jiwer", "sacrebleu", "scipy", "transformers", "torch", "sentence-transformers",
)  # fmt: skip


def metric_definitions(task: str) -> dict[str, str]:
    """The one-line definition of each metric `compute_metrics` returns for `task`."""
    return {name: METRIC_DEFINITIONS[name] for name in _metric_names(task)}


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that compute metrics and run models, for reproducibility records."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_labels(references: Sequence[Any], labels: Sequence[str]) -> None:
    """Refuse references naming a class outside `labels` (the model's); run it before inference.

    References are class names, or for token classification one sequence of IOB tags per example.

    Raises:
        InvalidInputError: the model names no classes, a reference is not a name, or names are unknown.
    """
    if not labels:
        raise InvalidInputError(
            "The model names no classes (its config.json has no id2label names), so references cannot be matched."
        )
    nested = any(isinstance(r, (list, tuple)) for r in references)
    flat = [tag for ref in references for tag in ref] if nested else list(references)
    not_names = [r for r in flat if not isinstance(r, str)]
    if not_names:
        raise InvalidInputError(
            f"References must be class names (strings), got {type(not_names[0]).__name__} values such as "
            f"{not_names[0]!r}; turn dataset class ids into names first (ClassLabel.int2str)."
        )
    unknown = sorted(set(flat) - set(labels))
    if unknown:
        shown = ", ".join(map(repr, unknown[:20])) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        raise InvalidInputError(
            f"References use labels the model does not know: {shown}. Model labels: {', '.join(map(repr, labels))}."
        )


def compute_metrics(
    task: str, references: list[Any], predictions: list[dict[str, Any]], *, labels: list[str] | None = None
) -> dict[str, Any]:
    """Score predictions against references for `task`; the keys are `METRICS[task]`.

    Args:
        task: a key of `METRICS` (a predictor's `task`).
        references: one per example: a class name, a list of IOB tags, a word, a text, or a number.
        predictions: the predictor's `postprocess` output, one dict per example.
        labels: the model's class names (`Predictor.labels`); references are checked against them, and
            they fix the label order of the confusion matrix and the scores.

    Raises:
        InvalidInputError: unknown task, mismatched lengths, or references/predictions of the wrong shape.
    """
    compute = _TASK_METRICS.get(_metric_task(task))
    if compute is None:
        raise InvalidInputError(f"No metrics for task {task!r}; supported tasks: {', '.join(sorted(METRICS))}.")
    if len(references) != len(predictions):
        raise InvalidInputError(f"{len(references)} references but {len(predictions)} predictions.")
    if not references:
        raise InvalidInputError("No examples to score.")
    for prediction in predictions:
        if not isinstance(prediction, dict):
            raise InvalidInputError(f"Each prediction must be a dict, got {type(prediction).__name__}.")
    result = {"num_examples": len(references), **compute(list(references), list(predictions), labels)}
    return {name: result[name] for name in METRICS[_metric_task(task)]}


def _metric_task(task: str) -> str:
    return "sentence-similarity" if task == "feature-extraction" else task


def _metric_names(task: str) -> list[str]:
    names = METRICS.get(_metric_task(task))
    if names is None:
        raise InvalidInputError(f"No metrics for task {task!r}; supported tasks: {', '.join(sorted(METRICS))}.")
    return names


def _field(prediction: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = prediction.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInputError(f"Each prediction needs {key!r}; got keys {sorted(prediction)}.")
    return value


def _names(references: list[Any], labels: list[str] | None) -> list[str]:
    if labels:
        check_labels(references, labels)
    bad = next((r for r in references if not isinstance(r, str)), None)
    if bad is not None:
        raise InvalidInputError(f"References must be class names (strings), got {bad!r}.")
    return references


def _numbers(values: list[Any], what: str) -> list[float]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"{what} must be finite numbers, got {value!r}.")
    return [float(v) for v in values]


def _classification(
    references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = _names(references, labels)
    y_pred = [str(_field(p, "label", str)) for p in predictions]
    order = list(labels) if labels else sorted(set(y_true) | set(y_pred))
    order += sorted(set(y_pred) - set(order))
    result: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        result[f"f1_{average}"] = float(f1)
        result[f"precision_{average}"] = float(precision)
        result[f"recall_{average}"] = float(recall)
    result["roc_auc"] = _roc_auc(y_true, predictions, order)
    result["confusion_matrix"] = {"labels": order, "matrix": confusion_matrix(y_true, y_pred, labels=order).tolist()}
    return result


def _roc_auc(y_true: list[str], predictions: list[dict[str, Any]], order: list[str]) -> float | None:
    """Binary or one-vs-rest AUC from every class's score; None when a class is absent or scores are missing."""
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import label_binarize

    if len(order) < 2 or set(y_true) != set(order):
        return None
    rows = []
    for prediction in predictions:
        scores = prediction.get("scores")
        if not isinstance(scores, dict) or any(label not in scores for label in order):
            return None
        rows.append([float(scores[label]) for label in order])
    matrix = np.asarray(rows)
    if len(order) == 2:
        return float(roc_auc_score([label == order[1] for label in y_true], matrix[:, 1]))
    # One indicator column per class: each column's binary AUC, averaged — one-vs-rest, without
    # sklearn's multiclass demand that scores sum to 1 (multi-label zero-shot scores do not).
    return float(roc_auc_score(label_binarize(y_true, classes=order), matrix, average="macro"))


def _tokens(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    if not all(isinstance(ref, (list, tuple)) for ref in references):
        raise InvalidInputError("token-classification references must be one list of IOB tags per example.")
    y_true = [list(ref) for ref in references]
    if labels:
        check_labels(y_true, labels)
    y_pred = []
    for index, (ref, prediction) in enumerate(zip(y_true, predictions)):
        if "tags" not in prediction:
            raise InvalidInputError(
                "token-classification predictions need per-word 'tags': predict on {'tokens': [...]} inputs "
                "with a tokenizer that gives character offsets."
            )
        tags = list(_field(prediction, "tags", list))
        if len(tags) != len(ref):
            raise InvalidInputError(f"Example {index}: {len(ref)} reference tags but {len(tags)} predicted tags.")
        y_pred.append(tags)
    for tag in (t for seq in [*y_true, *y_pred] for t in seq):
        # seqeval only warns on other tags, and then scores them as entities of a bogus type.
        if not isinstance(tag, str) or not (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
            raise InvalidInputError(f"Tags must be IOB tags ('O', 'B-TYPE', 'I-TYPE'), got {tag!r}.")
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_entity = {
        kind: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
               "support": int(v["support"])}
        for kind, v in report.items() if not kind.endswith(" avg")
    }  # fmt: skip
    return {
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_entity": per_entity,
    }


def _fill_mask(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import accuracy_score, top_k_accuracy_score

    words = [r.strip() for r in _names(references, None)]
    listed: list[dict[str, float]] = []
    for prediction in predictions:
        scores: dict[str, float] = {}
        for token in _field(prediction, "tokens", list):
            if not isinstance(token, dict):
                raise InvalidInputError(f"Each fill-mask token must be a dict, got {type(token).__name__}.")
            word = str(_field(token, "token", str)).strip()
            scores[word] = max(scores.get(word, -math.inf), float(_field(token, "score", (int, float))))
        if not scores:
            raise InvalidInputError("Each fill-mask prediction needs at least one token.")
        listed.append(scores)
    top1 = [max(scores, key=scores.__getitem__) for scores in listed]
    k = min(len(scores) for scores in listed)
    classes = sorted(set(words).union(*listed))
    if k >= len(classes):
        # Every prediction lists every word that occurs at all, so each reference is in its top k.
        topk = 1.0
    else:
        # Listed tokens score their probability (>= 0); unlisted ones score below all of them.
        matrix = np.array([[scores.get(word, -1.0) for word in classes] for scores in listed])
        y_score = matrix[:, 1] if len(classes) == 2 else matrix
        topk = float(top_k_accuracy_score(words, y_score, k=k, labels=classes))
    return {"top1_accuracy": float(accuracy_score(words, top1)), "topk_accuracy": topk, "k": k}


def _texts(references: list[Any], predictions: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    bad = next((r for r in references if not isinstance(r, str)), None)
    if bad is not None:
        raise InvalidInputError(f"References must be texts (strings), got {bad!r}.")
    return references, [str(_field(p, "text", str)) for p in predictions]


def _generation(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    import sacrebleu
    from sklearn.metrics import accuracy_score

    refs, hyps = _texts(references, predictions)
    return {
        "chrf": float(sacrebleu.corpus_chrf(hyps, [refs]).score),
        "exact_match": float(accuracy_score(refs, hyps)),
    }


def _speech(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    import jiwer

    refs, hyps = _texts(references, predictions)
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def _similarity(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    from scipy.stats import pearsonr, spearmanr

    gold = _numbers(references, "sentence-similarity references")
    scores = _numbers([_field(p, "score", (int, float)) for p in predictions], "Predicted scores")
    # A constant side has no ranks to correlate (scipy warns and answers nan).
    if len(set(gold)) < 2 or len(set(scores)) < 2:
        return {"spearman": None, "pearson": None}
    return {"spearman": float(spearmanr(gold, scores).statistic), "pearson": float(pearsonr(gold, scores).statistic)}


def _regression(references: list[Any], predictions: list[dict[str, Any]], labels: list[str] | None) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    gold = _numbers(references, "text-regression references")
    values = _numbers([_field(p, "value", (int, float)) for p in predictions], "Predicted values")
    return {
        "mae": float(mean_absolute_error(gold, values)),
        "rmse": float(root_mean_squared_error(gold, values)),
        "r2": float(r2_score(gold, values)) if len(gold) >= 2 else None,
    }


_Compute = Callable[[list[Any], list[dict[str, Any]], list[str] | None], dict[str, Any]]
_TASK_METRICS: dict[str, _Compute] = {
    "text-classification": _classification,
    "image-classification": _classification,
    "audio-classification": _classification,
    "zero-shot-classification": _classification,
    "token-classification": _tokens,
    "fill-mask": _fill_mask,
    "text-generation": _generation,
    "automatic-speech-recognition": _speech,
    "sentence-similarity": _similarity,
    "text-regression": _regression,
}
