"""Image classification."""

from __future__ import annotations

from typing import Any

from registry.predictors.base import Predictor, require_field, require_mapping
from registry.predictors.classification import scores_result
from registry.predictors.media import load_image


class ImageClassificationPredictor(Predictor):
    """Image -> `{"label", "score", "scores": {label: score}}`, every class scored.

    The image may be a PIL image, an array, bytes, base64 text, a `datasets` `{"bytes", "path"}`
    dict, or (with `allow_paths=True`) a local path.
    """

    task = "image-classification"
    pipeline_task = "image-classification"
    input_columns = ("image",)

    def __init__(self, *, allow_paths: bool = False) -> None:
        super().__init__()
        self.allow_paths = allow_paths

    def call_options(self) -> dict[str, Any]:
        """Every class scored; the demo shows the first five of the same list."""
        return {"top_k": None}

    def preprocess(self, payload: Any) -> Any:
        """`{"image": ...}` -> an RGB PIL image, as the demo hands the pipeline."""
        payload = require_mapping(payload, self.task)
        return load_image(require_field(payload, "image", self.task), allow_paths=self.allow_paths)

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"label", "score", "scores"}`."""
        return [scores_result(items) for items in outputs]
