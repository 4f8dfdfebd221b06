"""Token classification: entity spans, and IOB tags per word when the input comes as words."""

from __future__ import annotations

from typing import Any

from registry.errors import InvalidInputError
from registry.predictors.base import Predictor, require_mapping, require_text


class TokenClassificationPredictor(Predictor):
    """Text or words -> `{"entities": [{"entity", "score", "word", "start", "end"}], "tags"?: [IOB tag per word]}`.

    A dataset row `{"tokens": [...]}` is joined with spaces, as the text a user would type; each
    word then gets the tag of the entity that covers it (B- on an entity's first word, I- after).
    """

    task = "token-classification"
    pipeline_task = "token-classification"
    input_columns = ("tokens",)

    def call_options(self) -> dict[str, Any]:
        """The demo's grouping: word pieces grouped into spans when the tokenizer gives character offsets."""
        fast = getattr(self.require_loaded().tokenizer, "is_fast", False)
        return {"aggregation_strategy": "simple" if fast else "none"}

    def preprocess(self, payload: Any) -> Any:
        """`{"tokens": [str, ...]}` or `{"text": str}` -> (text, word spans or None)."""
        payload = require_mapping(payload, self.task)
        if payload.get("tokens") is None:
            return require_text(payload, "text", self.task), None
        words = payload["tokens"]
        if isinstance(words, str) or not isinstance(words, (list, tuple)) or not words:
            raise InvalidInputError("'tokens' of a token-classification input must be a non-empty list of words.")
        if not all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in words):
            raise InvalidInputError("Each of 'tokens' must be a non-empty string without spaces.")
        spans, position = [], 0
        for word in words:
            spans.append((position, position + len(word)))
            position += len(word) + 1
        return " ".join(words), spans

    def predict(self, batch: list[Any]) -> list[Any]:
        """One pipeline call on the texts; each output keeps its word spans for `postprocess`."""
        if not batch:
            return []
        pipe = self.require_loaded()
        texts = [text for text, _ in batch]
        results = pipe(texts, batch_size=len(texts), **self.call_options())
        return [(entities, spans) for entities, (_, spans) in zip(results, batch, strict=True)]

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> its entities, plus one IOB tag per word for word input."""
        results = []
        for raw, spans in outputs:
            entities = [
                {
                    "entity": str(e.get("entity_group") or e.get("entity")),
                    "score": float(e["score"]),
                    "word": str(e.get("word", "")),
                    "start": e.get("start"),
                    "end": e.get("end"),
                }
                for e in raw
            ]
            result: dict[str, Any] = {"entities": entities}
            if spans is not None and all(e["start"] is not None for e in entities):
                result["tags"] = word_tags(entities, spans)
            results.append(result)
        return results


def word_tags(entities: list[dict[str, Any]], spans: list[tuple[int, int]]) -> list[str]:
    """One IOB tag per word span: the first entity overlapping the word, B- where that entity starts."""
    tags, previous = [], None
    for start, end in spans:
        entity = next((e for e in entities if e["start"] < end and e["end"] > start), None)
        if entity is None:
            tags.append("O")
        else:
            kind = _entity_type(entity["entity"])
            tags.append(("I-" if entity is previous else "B-") + kind if kind else "O")
        previous = entity
    return tags


def _entity_type(label: str) -> str:
    """`B-PER`/`I-PER`/`PER` -> `PER`; "O" (outside) -> ""."""
    if label == "O":
        return ""
    return label[2:] if label[:2] in ("B-", "I-", "E-", "S-") else label
