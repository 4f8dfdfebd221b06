"""The Hugging Face inference convention: `{"inputs": ..., "parameters": ...}` in, the task's Hub shape out.

`huggingface_hub.InferenceClient(model=<endpoint URL>)` posts exactly this body and parses exactly
these answers, so the stock client works against an endpoint for each task below.
"""

from __future__ import annotations

from typing import Any

from registry.errors import InvalidInputError

# Hub parameters a predictor payload takes as fields (zero-shot's candidate labels ride with each input).
_PAYLOAD_PARAMETERS = {"zero-shot-classification": ("candidate_labels",)}
_CLASS_TASKS = ("text-classification", "image-classification", "audio-classification")


def payloads_from_inputs(task: str, input_columns: tuple[str, ...], body: Any, *, max_inputs: int) -> tuple[
        list[dict[str, Any]], bool]:
    """The predictor payloads of a Hub-convention body, and whether it held one input (not a list).

    Raises:
        InvalidInputError: no `inputs`, inputs of the wrong type, `parameters` that is not an object.
    """
    if not isinstance(body, dict) or "inputs" not in body:
        raise InvalidInputError('The body must be a JSON object with "inputs" (and optionally "parameters").')
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInputError('"parameters" must be a JSON object.')
    inputs = body["inputs"]
    single = not isinstance(inputs, list)
    items = [inputs] if single else inputs
    if task == "sentence-similarity" and isinstance(inputs, dict):
        return _similarity(inputs, max_inputs), False
    if not items:
        raise InvalidInputError('"inputs" is an empty list.')
    if len(items) > max_inputs:
        raise InvalidInputError(f'"inputs" holds {len(items)} inputs; at most {max_inputs} per request.')
    first = input_columns[0]
    extra = {k: parameters[k] for k in _PAYLOAD_PARAMETERS.get(task, ()) if k in parameters}
    payloads = []
    for item in items:
        if isinstance(item, str):
            payloads.append({first: item, **extra})
        elif isinstance(item, dict):
            payloads.append({**extra, **item})
        else:
            raise InvalidInputError(f'Each of "inputs" must be a string or an object for {task}, '
                                    f"got {type(item).__name__}.")
    return payloads, single


def _similarity(inputs: dict[str, Any], max_inputs: int) -> list[dict[str, Any]]:
    source, sentences = inputs.get("source_sentence"), inputs.get("sentences")
    if not isinstance(source, str) or not isinstance(sentences, list) or not sentences \
            or not all(isinstance(s, str) for s in sentences):
        raise InvalidInputError('sentence-similarity "inputs" need "source_sentence" (a string) and '
                                '"sentences" (a non-empty list of strings).')
    if len(sentences) > max_inputs:
        raise InvalidInputError(f'"sentences" holds {len(sentences)} sentences; at most {max_inputs} per request.')
    return [{"sentence1": source, "sentence2": s} for s in sentences]


def _ranked(result: dict[str, Any]) -> list[dict[str, Any]]:
    scores = result.get("scores") or {result["label"]: result["score"]}
    return [{"label": label, "score": score} for label, score in sorted(scores.items(), key=lambda kv: -kv[1])]


def hub_output(task: str, results: list[dict[str, Any]], *, single: bool) -> Any:
    """The Hub's answer shape for `task` from the predictor's results (one per payload)."""
    if task == "text-classification":
        return [_ranked(r) for r in results]  # one ranked list per input, also for one input
    if task == "text-regression":
        return [[{"label": "value", "score": r["value"]}] for r in results]
    if task in _CLASS_TASKS or task == "zero-shot-classification":
        ranked = [_ranked(r) for r in results]
        return ranked[0] if single else ranked
    if task == "sentence-similarity":
        return [r["score"] for r in results]
    if task == "text-generation":
        out = [{"generated_text": r["text"]} for r in results]
        return out if single else [[o] for o in out]
    if task == "automatic-speech-recognition":
        return results[0] if single else results
    if task == "fill-mask":
        tokens = [r["tokens"] for r in results]
        return tokens[0] if single else tokens
    if task == "token-classification":
        entities = [[{"entity_group": e["entity"], **{k: v for k, v in e.items() if k != "entity"}}
                     for e in r.get("entities", [])] for r in results]
        return entities[0] if single else entities
    return results[0] if single else results
