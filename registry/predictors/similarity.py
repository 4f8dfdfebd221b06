"""Sentence similarity: the cosine of two sentences' mean-pooled embeddings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from registry.predictors.base import LOAD_LOCK, Predictor, read_config, require_mapping, require_text


class SentenceSimilarityPredictor(Predictor):
    """Two sentences -> `{"score": cosine similarity}` of their embeddings.

    A sentence-transformers folder (it has modules.json) is run by sentence-transformers, with the
    pooling and normalisation it declares; any other encoder by the transformers feature-extraction
    pipeline with mean pooling over the tokens, as the demo embeds sentences.
    """

    task = "sentence-similarity"
    pipeline_task = "feature-extraction"
    input_columns = ("sentence1", "sentence2")

    def __init__(self) -> None:
        super().__init__()
        self.sentence_transformer = False

    def load(self, path: Path, device: str = "cpu") -> None:
        """Load with sentence-transformers when the folder is one and it is installed, else the pipeline."""
        path = Path(path)
        if (path / "modules.json").is_file() and importlib.util.find_spec("sentence_transformers") is not None:
            with LOAD_LOCK:
                from sentence_transformers import SentenceTransformer

                self.path, self.device, self.config = path, device, read_config(path)
                self.pipe = SentenceTransformer(str(path), device=device)
            self.sentence_transformer = True
            return
        super().load(path, device)

    @property
    def labels(self) -> list[str]:
        """An encoder has no classes (a stray id2label in its config says nothing)."""
        return []

    def preprocess(self, payload: Any) -> Any:
        """`{"sentence1": str, "sentence2": str}` -> the pair."""
        payload = require_mapping(payload, self.task)
        first, second = self.input_columns
        return require_text(payload, first, self.task), require_text(payload, second, self.task)

    def predict(self, batch: list[Any]) -> list[Any]:
        """Embed every sentence of the batch in one call; one (embedding, embedding) pair per input."""
        if not batch:
            return []
        sentences = [sentence for pair in batch for sentence in pair]
        embeddings = self._embed(sentences)
        return [(embeddings[2 * i], embeddings[2 * i + 1]) for i in range(len(batch))]

    def _embed(self, sentences: list[str]) -> list[np.ndarray]:
        model = self.require_loaded()
        if self.sentence_transformer:
            vectors = model.encode(sentences, batch_size=len(sentences), convert_to_numpy=True, show_progress_bar=False)
            return [np.asarray(v, dtype=np.float64) for v in vectors]
        outputs = model(sentences, batch_size=len(sentences))
        # A batched call pads every sentence to the longest; the mean covers the sentence's own tokens only.
        lengths = [len(model.tokenizer(s)["input_ids"]) for s in sentences]
        left = getattr(model.tokenizer, "padding_side", "right") == "left"
        vectors = []
        for output, length in zip(outputs, lengths, strict=True):
            tokens = np.asarray(output, dtype=np.float64)[0]
            tokens = tokens[-length:] if left else tokens[:length]
            vectors.append(tokens.mean(axis=0))
        return vectors

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each pair -> `{"score": cosine}` (the demo's formula)."""
        return [{"score": cosine(a, b)} for a, b in outputs]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors, as the demo computes it."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
