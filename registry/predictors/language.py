"""Language-model heads: fill-mask and text generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.errors import InvalidInputError
from registry.predictors.base import Predictor, bounded_int, require_mapping, require_text

# Examples and users may always write [MASK]; it becomes the model's own mask token, as in the demo.
MASK_PLACEHOLDER = "[MASK]"
# The demo's slider stops here; an evaluation or a request cannot ask for more.
MAX_NEW_TOKENS_LIMIT = 512


class FillMaskPredictor(Predictor):
    """Text with one `[MASK]` -> `{"token", "score", "tokens": [{"token", "token_id", "score", "sequence"}]}`."""

    task = "fill-mask"
    pipeline_task = "fill-mask"
    input_columns = ("text",)

    def __init__(self, top_k: int = 5) -> None:
        super().__init__()
        self.top_k = bounded_int(top_k, "top_k", low=1, high=100)

    @property
    def labels(self) -> list[str]:
        """A fill-mask head answers with vocabulary tokens, not classes."""
        return []

    def call_options(self) -> dict[str, Any]:
        """The `top_k` most likely tokens (5, as the demo, unless told otherwise)."""
        return {"top_k": self.top_k}

    def preprocess(self, payload: Any) -> Any:
        """`{"text": str}` with exactly one `[MASK]` (or the model's mask token) -> the pipeline's text."""
        payload = require_mapping(payload, self.task)
        mask = self.require_loaded().tokenizer.mask_token
        text = require_text(payload, "text", self.task).replace(MASK_PLACEHOLDER, mask)
        count = text.count(mask)
        if count != 1:
            raise InvalidInputError(
                f"A fill-mask input needs exactly one {MASK_PLACEHOLDER} (or {mask}) where the missing word goes; "
                f"found {count}."
            )
        return text

    def predict(self, batch: list[Any]) -> list[Any]:
        """One batched call; one top-k list per text."""
        outputs = super().predict(batch)
        # The fill-mask pipeline unwraps a one-text list: its answer is then that text's top-k list.
        return [outputs] if len(batch) == 1 else outputs

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> the best token and the top-k list."""
        results = []
        for predictions in outputs:
            tokens = [
                {
                    "token": str(p["token_str"]),
                    "token_id": int(p["token"]),
                    "score": float(p["score"]),
                    "sequence": str(p["sequence"]),
                }
                for p in predictions
            ]
            results.append({"token": tokens[0]["token"], "score": tokens[0]["score"], "tokens": tokens})
        return results


class TextGenerationPredictor(Predictor):
    """Prompt -> `{"text": str}`: greedy, deterministic decoding of at most `max_new_tokens` tokens.

    `text` is the continuation only (what an evaluation compares with a reference); with
    `return_full_text=True` it is prompt + continuation, as the demo shows it.
    """

    task = "text-generation"
    pipeline_task = "text-generation"
    input_columns = ("text",)

    def __init__(self, max_new_tokens: int = 50, *, return_full_text: bool = False) -> None:
        super().__init__()
        self.max_new_tokens = bounded_int(max_new_tokens, "max_new_tokens", low=1, high=MAX_NEW_TOKENS_LIMIT)
        self.return_full_text = bool(return_full_text)

    def load(self, path: Path, device: str = "cpu") -> None:
        """Load the model; pad batches on the left with the end-of-text token when the tokenizer has no pad."""
        super().load(path, device)
        tokenizer = self.pipe.tokenizer
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        # A decoder-only model continues from the last position, so padding must come first.
        tokenizer.padding_side = "left"

    @property
    def labels(self) -> list[str]:
        """A generator has no classes."""
        return []

    def call_options(self) -> dict[str, Any]:
        """Greedy decoding whatever the model's generation config says, bounded length."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "return_full_text": self.return_full_text,
        }

    def preprocess(self, payload: Any) -> Any:
        """`{"text": str}` -> the prompt."""
        return require_text(require_mapping(payload, self.task), "text", self.task)

    def predict(self, batch: list[Any]) -> list[Any]:
        """One batched call; one prompt at a time when the tokenizer cannot pad at all."""
        pipe = self.require_loaded()
        if pipe.tokenizer.pad_token is None:
            return [pipe(prompt, **self.call_options()) for prompt in batch]
        return super().predict(batch)

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Each output -> `{"text": str}`."""
        return [{"text": str(output[0]["generated_text"])} for output in outputs]
