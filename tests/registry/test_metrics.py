"""Every metric equals its library function called directly on the same hand-made data; bad references are refused."""

from __future__ import annotations

import math
from typing import Any

import jiwer
import numpy as np
import pytest
import sacrebleu
import seqeval.metrics as seqeval
from scipy.stats import pearsonr, spearmanr
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from registry.errors import InvalidInputError
from registry.metrics import (
    METRIC_DEFINITIONS,
    METRICS,
    check_labels,
    compute_metrics,
    library_versions,
    metric_definitions,
)

LABELS = ["negative", "neutral", "positive"]
Y_TRUE = ["positive", "negative", "neutral", "positive", "negative", "neutral", "positive", "positive"]
# Softmax-like scores per example, in LABELS order; the predicted label is the best one.
SCORES = np.array([
    [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4],
    [0.3, 0.3, 0.4], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.05, 0.65, 0.3],
])  # fmt: skip


def _predictions(scores: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    out = []
    for row in scores:
        best = int(np.argmax(row))
        out.append({"label": labels[best], "score": float(row[best]), "scores": dict(zip(labels, map(float, row)))})
    return out


def test_classification_metrics_equal_sklearn() -> None:
    preds = _predictions(SCORES, LABELS)
    y_pred = [p["label"] for p in preds]
    result = compute_metrics("text-classification", Y_TRUE, preds, labels=LABELS)
    assert list(result) == METRICS["text-classification"]
    assert result["num_examples"] == len(Y_TRUE)
    assert result["accuracy"] == skm.accuracy_score(Y_TRUE, y_pred)
    for average in ("macro", "weighted"):
        assert result[f"f1_{average}"] == pytest.approx(skm.f1_score(Y_TRUE, y_pred, average=average))
        assert result[f"precision_{average}"] == pytest.approx(
            skm.precision_score(Y_TRUE, y_pred, average=average, zero_division=0)
        )
        assert result[f"recall_{average}"] == pytest.approx(skm.recall_score(Y_TRUE, y_pred, average=average))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_TRUE, SCORES, multi_class="ovr", labels=LABELS))
    assert result["confusion_matrix"] == {
        "labels": LABELS, "matrix": skm.confusion_matrix(Y_TRUE, y_pred, labels=LABELS).tolist()
    }  # fmt: skip


@pytest.mark.parametrize("task", ["image-classification", "audio-classification", "zero-shot-classification"])
def test_every_classification_task_uses_the_same_metrics(task: str) -> None:
    preds = _predictions(SCORES, LABELS)
    assert compute_metrics(task, Y_TRUE, preds, labels=LABELS) == compute_metrics(
        "text-classification", Y_TRUE, preds, labels=LABELS
    )


def test_binary_roc_auc_uses_the_positive_class_score() -> None:
    labels = ["ham", "spam"]
    y_true = ["spam", "ham", "spam", "ham", "ham"]
    spam = np.array([0.9, 0.2, 0.4, 0.6, 0.1])
    preds = _predictions(np.stack([1 - spam, spam], axis=1), labels)
    result = compute_metrics("text-classification", y_true, preds, labels=labels)
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score([y == "spam" for y in y_true], spam))


def test_multi_label_scores_still_give_one_vs_rest_auc() -> None:
    # Independent sigmoid scores do not sum to 1; the AUC is still the mean of per-class binary AUCs.
    scores = np.clip(SCORES * 1.7, 0, 1)
    result = compute_metrics("zero-shot-classification", Y_TRUE, _predictions(scores, LABELS), labels=LABELS)
    indicators = label_binarize(Y_TRUE, classes=LABELS)
    expected = np.mean([skm.roc_auc_score(indicators[:, i], scores[:, i]) for i in range(3)])
    assert result["roc_auc"] == pytest.approx(expected)


def test_roc_auc_is_null_unless_every_class_is_present() -> None:
    y_true = ["positive", "negative", "positive", "negative"]
    preds = _predictions(SCORES[:4], LABELS)
    result = compute_metrics("text-classification", y_true, preds, labels=LABELS)
    assert result["roc_auc"] is None
    # Without scores it cannot be computed either.
    bare = [{"label": p["label"]} for p in _predictions(SCORES, LABELS)]
    assert compute_metrics("text-classification", Y_TRUE, bare, labels=LABELS)["roc_auc"] is None


def test_without_model_labels_the_order_comes_from_the_data() -> None:
    preds = _predictions(SCORES, LABELS)
    result = compute_metrics("text-classification", Y_TRUE, preds)
    assert result["confusion_matrix"]["labels"] == sorted(set(Y_TRUE) | {p["label"] for p in preds})


def test_check_labels_refuses_unknown_names_ids_and_nameless_models() -> None:
    check_labels(Y_TRUE, LABELS)
    check_labels([["B-PER", "O"], ["O"]], ["O", "B-PER", "I-PER"])
    with pytest.raises(InvalidInputError, match="does not know: 'mixed', 'very positive'"):
        check_labels(["positive", "mixed", "very positive"], LABELS)
    with pytest.raises(InvalidInputError, match="'B-MISC'"):
        check_labels([["B-PER", "O"], ["B-MISC"]], ["O", "B-PER", "I-PER"])
    with pytest.raises(InvalidInputError, match="class names"):
        check_labels([0, 2, 1], LABELS)
    with pytest.raises(InvalidInputError, match="names no classes"):
        check_labels(Y_TRUE, [])
    # compute_metrics runs the same check.
    with pytest.raises(InvalidInputError, match="mixed"):
        compute_metrics("text-classification", ["mixed"], [{"label": "positive"}], labels=LABELS)


def test_bad_calls_are_refused() -> None:
    preds = _predictions(SCORES, LABELS)
    with pytest.raises(InvalidInputError, match="supported tasks"):
        compute_metrics("object-detection", Y_TRUE, preds)
    with pytest.raises(InvalidInputError, match="8 references but 7 predictions"):
        compute_metrics("text-classification", Y_TRUE, preds[:7])
    with pytest.raises(InvalidInputError, match="No examples"):
        compute_metrics("text-classification", [], [])
    with pytest.raises(InvalidInputError, match="'label'"):
        compute_metrics("text-classification", ["positive"], [{"value": 1.0}])


TAGS_TRUE = [
    ["B-PER", "I-PER", "O", "O", "B-LOC"],
    ["O", "B-ORG", "I-ORG", "O", "B-PER"],
    ["B-LOC", "O", "O"],
]
TAGS_PRED = [
    ["B-PER", "I-PER", "O", "O", "B-ORG"],
    ["O", "B-ORG", "O", "O", "B-PER"],
    ["B-LOC", "O", "B-PER"],
]


def test_token_classification_metrics_equal_seqeval() -> None:
    preds = [{"entities": [], "tags": tags} for tags in TAGS_PRED]
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    result = compute_metrics("token-classification", TAGS_TRUE, preds, labels=labels)
    assert list(result) == METRICS["token-classification"]
    assert result["precision"] == pytest.approx(seqeval.precision_score(TAGS_TRUE, TAGS_PRED))
    assert result["recall"] == pytest.approx(seqeval.recall_score(TAGS_TRUE, TAGS_PRED))
    assert result["f1"] == pytest.approx(seqeval.f1_score(TAGS_TRUE, TAGS_PRED))
    assert result["accuracy"] == pytest.approx(seqeval.accuracy_score(TAGS_TRUE, TAGS_PRED))
    report = seqeval.classification_report(TAGS_TRUE, TAGS_PRED, output_dict=True, zero_division=0)
    assert set(result["per_entity"]) == {"PER", "LOC", "ORG"}
    for kind, scores in result["per_entity"].items():
        assert scores["f1"] == pytest.approx(report[kind]["f1-score"])
        assert scores["support"] == report[kind]["support"]


def test_token_classification_refusals() -> None:
    preds = [{"entities": [], "tags": tags} for tags in TAGS_PRED]
    with pytest.raises(InvalidInputError, match="'B-MISC'"):
        compute_metrics("token-classification", [["B-MISC", "O", "O", "O", "O"], *TAGS_TRUE[1:]], preds,
                        labels=["O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG"])  # fmt: skip
    with pytest.raises(InvalidInputError, match="5 reference tags but 4"):
        compute_metrics("token-classification", TAGS_TRUE, [{"tags": TAGS_PRED[0][:4]}, *preds[1:]])
    with pytest.raises(InvalidInputError, match="IOB"):
        compute_metrics("token-classification", [["PER", "O"]], [{"tags": ["O", "O"]}])
    with pytest.raises(InvalidInputError, match="'tags'"):
        compute_metrics("token-classification", [["O"]], [{"entities": []}])
    with pytest.raises(InvalidInputError, match="list of IOB tags"):
        compute_metrics("token-classification", ["B-PER O"], [{"tags": ["O"]}])


def _fill(tokens: list[tuple[str, float]]) -> dict[str, Any]:
    listed = [{"token": t, "token_id": i, "score": s, "sequence": ""} for i, (t, s) in enumerate(tokens)]
    return {"token": tokens[0][0], "score": tokens[0][1], "tokens": listed}


def test_fill_mask_top_k_accuracy_equals_sklearn() -> None:
    refs = ["capital", "city", "heart", "capital"]
    preds = [
        _fill([("capital", 0.5), ("city", 0.2), ("heart", 0.1)]),
        _fill([(" capital", 0.4), ("city", 0.3), ("town", 0.1)]),  # spaces are stripped, as RoBERTa's tokens have
        _fill([("city", 0.5), ("town", 0.3), ("capital", 0.1)]),
        _fill([("town", 0.6), ("capital", 0.2), ("city", 0.1)]),
    ]
    result = compute_metrics("fill-mask", refs, preds)
    assert list(result) == METRICS["fill-mask"] and result["k"] == 3
    assert result["top1_accuracy"] == skm.accuracy_score(refs, ["capital", "capital", "city", "town"])
    classes = ["capital", "city", "heart", "town"]
    full = np.array([[0.5, 0.2, 0.1, 0], [0.4, 0.3, 0, 0.1], [0.1, 0.5, 0, 0.3], [0.2, 0.1, 0, 0.6]])
    assert result["topk_accuracy"] == skm.top_k_accuracy_score(refs, full, k=3, labels=classes)
    # k cannot exceed what every prediction lists.
    short = compute_metrics("fill-mask", refs, [*preds[:3], _fill([("capital", 0.9)])])
    assert short["k"] == 1 and short["topk_accuracy"] == short["top1_accuracy"]


def test_generation_metrics_equal_sacrebleu_and_exact_match() -> None:
    refs = ["the cat sat on the mat", "hello world", "a quick brown fox"]
    hyps = ["the cat sat on a mat", "hello world", "the slow fox"]
    result = compute_metrics("text-generation", refs, [{"text": h} for h in hyps])
    assert list(result) == METRICS["text-generation"]
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert result["exact_match"] == skm.accuracy_score(refs, hyps)


def test_speech_metrics_equal_jiwer() -> None:
    refs = ["the cat sat on the mat", "hello world"]
    hyps = ["the cat sat on mat", "hello word"]
    result = compute_metrics("automatic-speech-recognition", refs, [{"text": h} for h in hyps])
    assert result == {"num_examples": 2, "wer": jiwer.wer(refs, hyps), "cer": jiwer.cer(refs, hyps)}
    with pytest.raises(InvalidInputError, match="texts"):
        compute_metrics("automatic-speech-recognition", [3], [{"text": "x"}])


def test_similarity_metrics_equal_scipy() -> None:
    gold = [5.0, 3.2, 0.5, 4.1, 1.0]
    scores = [0.91, 0.55, 0.12, 0.70, 0.33]
    result = compute_metrics("sentence-similarity", gold, [{"score": s} for s in scores])
    assert list(result) == METRICS["sentence-similarity"]
    assert result["spearman"] == pytest.approx(spearmanr(gold, scores).statistic)
    assert result["pearson"] == pytest.approx(pearsonr(gold, scores).statistic)
    constant = compute_metrics("sentence-similarity", gold, [{"score": 0.5}] * 5)
    assert constant["spearman"] is None and constant["pearson"] is None
    with pytest.raises(InvalidInputError, match="finite numbers"):
        compute_metrics("sentence-similarity", ["high"], [{"score": 0.5}])


def test_regression_metrics_equal_sklearn() -> None:
    gold = [1.0, 2.5, 3.0, 4.5]
    values = [1.2, 2.0, 3.3, 4.0]
    result = compute_metrics("text-regression", gold, [{"value": v} for v in values])
    assert result["mae"] == pytest.approx(skm.mean_absolute_error(gold, values))
    assert result["rmse"] == pytest.approx(skm.root_mean_squared_error(gold, values))
    assert result["r2"] == pytest.approx(skm.r2_score(gold, values))
    assert compute_metrics("text-regression", [1.0], [{"value": 2.0}])["r2"] is None
    with pytest.raises(InvalidInputError, match="finite numbers"):
        compute_metrics("text-regression", [math.nan], [{"value": 2.0}])


def test_every_metric_has_a_definition_and_versions_are_recorded() -> None:
    for task, names in METRICS.items():
        assert names[0] == "num_examples"
        definitions = metric_definitions(task)
        assert list(definitions) == names
        assert all(isinstance(d, str) and d and "\n" not in d for d in definitions.values())
    assert set(METRIC_DEFINITIONS) == {name for names in METRICS.values() for name in names}
    versions = library_versions()
    assert {"scikit-learn", "seqeval", "jiwer", "sacrebleu", "scipy", "transformers", "torch"} <= set(versions)
    assert all(v and v != "not installed" for k, v in versions.items() if k != "sentence-transformers")
