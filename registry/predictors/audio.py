"""Audio classification and speech recognition."""

from __future__ import annotations

from typing import Any

from registry.predictors.base import Predictor, grouped_calls, require_field, require_mapping
from registry.predictors.classification import scores_result
from registry.predictors.media import load_audio


class AudioPredictor(Predictor):
    """Shared by the audio tasks: `{"audio": ...}` -> mono float32 at the model's sampling rate.

    The audio may be `{"array", "sampling_rate"}`, an encoded file as bytes, base64 text or
    `{"bytes": ...}`, a torchcodec decoder, or (with `allow_paths=True`) a local path.
    """

    input_columns = ("audio",)

    def __init__(self, *, allow_paths: bool = False) -> None:
        super().__init__()
        self.allow_paths = allow_paths

    @property
    def sampling_rate(self) -> int:
        """The sampling rate the model's feature extractor expects."""
        return int(self.require_loaded().feature_extractor.sampling_rate)

    def preprocess(self, payload: Any) -> Any:
        """`{"audio": ...}` -> samples resampled as the demo does."""
        payload = require_mapping(payload, self.task)
        return load_audio(require_field(payload, "audio", self.task), self.sampling_rate, allow_paths=self.allow_paths)

    def predict(self, batch: list[Any]) -> list[Any]:
        """One pipeline call per clip length: padding a clip changes what wav2vec2-style models hear."""
        pipe = self.require_loaded()
        return grouped_calls(
            batch, len, lambda clips: list(pipe(clips, batch_size=len(clips), **self.call_options()))
        )


class AudioClassificationPredictor(AudioPredictor):
    """Audio -> `{"label", "score", "scores": {label: score}}`, every class scored."""

    task = "audio-classification"
    pipeline_task = "audio-classification"

    def call_options(self) -> dict[str, Any]:
        """Every class scored; the demo shows the first five of the same list."""
        return {"top_k": None}

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"label", "score", "scores"}`."""
        return [scores_result(items) for items in outputs]


class SpeechRecognitionPredictor(AudioPredictor):
    """Audio -> `{"text": transcription}`."""

    task = "automatic-speech-recognition"
    pipeline_task = "automatic-speech-recognition"

    @property
    def labels(self) -> list[str]:
        """A transcriber has no classes."""
        return []

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"text": str}`."""
        return [{"text": str(output["text"])} for output in outputs]
