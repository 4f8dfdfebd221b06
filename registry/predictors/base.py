"""The `Predictor` contract every task implements, and the payload checks the tasks share.

A predictor loads one model folder once with `transformers.pipeline`, the same call the task's demo
makes, so an evaluation, a live endpoint and the demo turn the same input into the same answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from registry.errors import InvalidInputError
from registry.modelmeta import config_labels


# transformers resolves its modules lazily on first use, and that is not thread-safe: an evaluation worker and
# an endpoint loading at the same moment saw "cannot import name 'pipeline'". Loads hold this lock.
LOAD_LOCK = threading.RLock()
"""Held while a model is loaded (evaluations, endpoints and demos load in threads of one process)."""


def transformers_name(name: str) -> Any:
    """`transformers.<name>` (pipeline, AutoTokenizer, ...), resolved under the process-wide load lock."""
    with LOAD_LOCK:
        import transformers

        return getattr(transformers, name)


class Predictor:
    """One task's inference: `load` once, then `preprocess` each payload, `predict` a batch, `postprocess` it.

    Subclasses set `task`, `pipeline_task` and `input_columns`, and implement `preprocess` and
    `postprocess`; `call_options` holds the keyword arguments the task's demo passes to the pipeline.
    """

    task: ClassVar[str] = ""
    """The task this predictor serves (the key in `PREDICTORS`)."""
    pipeline_task: ClassVar[str] = ""
    """The `transformers.pipeline` task it loads."""
    input_columns: ClassVar[tuple[str, ...]] = ("text",)
    """Payload keys (and default dataset column names) of its inputs, in order."""

    def __init__(self) -> None:
        self.pipe: Any = None
        self.path: Path | None = None
        self.device = "cpu"
        self.config: dict[str, Any] = {}

    def load(self, path: Path, device: str = "cpu") -> None:
        """Load the model folder `path` (a commit's snapshot) onto `device`, once."""
        self.path, self.device = Path(path), device
        self.config = read_config(self.path)
        build: Any = transformers_name("pipeline")  # its overloads want a literal task name
        with LOAD_LOCK:
            self.pipe = build(self.pipeline_task, model=str(self.path), device=device)

    @property
    def labels(self) -> list[str]:
        """The model's class names, from config.json's `id2label`; [] when it names none."""
        return config_labels(self.config)

    def call_options(self) -> dict[str, Any]:
        """Keyword arguments for every pipeline call (the ones the task's demo passes)."""
        return {}

    def preprocess(self, payload: Any) -> Any:
        """Turn one example (a dataset row or an API payload, as a dict) into the pipeline's input.

        Raises:
            InvalidInputError: the payload lacks an input or holds one of the wrong kind.
        """
        raise NotImplementedError

    def predict(self, batch: list[Any]) -> list[Any]:
        """Run the pipeline once on preprocessed inputs, `batch_size=len(batch)`; one raw output per input."""
        if not batch:
            return []
        pipe = self.require_loaded()
        return list(pipe(list(batch), batch_size=len(batch), **self.call_options()))

    def postprocess(self, outputs: list[Any]) -> list[dict[str, Any]]:
        """Turn raw pipeline outputs into plain JSON, one dict per input."""
        raise NotImplementedError

    def run(self, payloads: Sequence[Any]) -> list[dict[str, Any]]:
        """Preprocess, predict and postprocess `payloads` as one batch."""
        return self.postprocess(self.predict([self.preprocess(p) for p in payloads]))

    def require_loaded(self) -> Any:
        """The loaded pipeline (or model), or a clear error when `load` was not called."""
        if self.pipe is None:
            raise RuntimeError(f"{type(self).__name__}.load(path) must be called before predicting")
        return self.pipe


def read_config(path: Path) -> dict[str, Any]:
    """The folder's config.json as a dict; {} when it has none or it is not a JSON object."""
    try:
        data = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def require_mapping(payload: Any, task: str) -> dict[str, Any]:
    """The payload as a dict, or InvalidInputError saying what a payload for `task` looks like."""
    if not isinstance(payload, dict):
        raise InvalidInputError(f"A {task} input must be an object (a dict), got {type(payload).__name__}.")
    return payload


def require_field(payload: dict[str, Any], key: str, task: str) -> Any:
    """`payload[key]`, or InvalidInputError naming the missing key and the keys given."""
    if key not in payload or payload[key] is None:
        raise InvalidInputError(f"A {task} input needs {key!r}; got keys {sorted(map(str, payload))}.")
    return payload[key]


def require_text(payload: dict[str, Any], key: str, task: str) -> str:
    """`payload[key]` as a non-blank string, or InvalidInputError."""
    value = require_field(payload, key, task)
    if not isinstance(value, str):
        raise InvalidInputError(f"{key!r} of a {task} input must be a string, got {type(value).__name__}.")
    if not value.strip():
        raise InvalidInputError(f"{key!r} of a {task} input is empty.")
    return value


def grouped_calls(
    batch: list[Any], key: Callable[[Any], Hashable], call: Callable[[list[Any]], list[Any]]
) -> list[Any]:
    """Run `call` once per group of inputs sharing `key`, and give the outputs back in input order.

    For the tasks whose pipeline call cannot mix inputs (zero-shot candidate labels are one argument
    per call; padded audio changes what wav2vec2-style models hear).
    """
    groups: dict[Hashable, list[int]] = {}
    for index, item in enumerate(batch):
        groups.setdefault(key(item), []).append(index)
    outputs: list[Any] = [None] * len(batch)
    for indices in groups.values():
        for index, output in zip(indices, call([batch[i] for i in indices]), strict=True):
            outputs[index] = output
    return outputs


def bounded_int(value: Any, name: str, *, low: int, high: int) -> int:
    """`value` as an int in [low, high], or InvalidInputError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}, got {value!r}.")
    return value


def token_counter(tokenizer: Any) -> Callable[[list[str]], list[int]]:
    """A function counting the tokens of texts as `tokenizer` does (special tokens in, no truncation).

    With a fast tokenizer it counts on a private copy of the Rust tokenizer: about ten times cheaper than the
    Python call, and untouched by the truncation settings a pipeline call leaves on the shared one.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        clone = Tokenizer.from_str(backend.to_str())
        clone.no_truncation()
        clone.no_padding()
        return lambda texts: [len(e.ids) for e in clone.encode_batch(list(texts), add_special_tokens=True)]
    return lambda texts: [len(ids) for ids in tokenizer(list(texts), truncation=False,
                                                         add_special_tokens=True)["input_ids"]]


def count_tokens(path: Path, texts: list[str]) -> list[int]:
    """Tokens per text as the model folder's tokenizer counts them (special tokens included, no truncation)."""
    with LOAD_LOCK:
        tokenizer = transformers_name("AutoTokenizer").from_pretrained(str(path))
    return token_counter(tokenizer)(texts)
