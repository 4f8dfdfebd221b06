"""The peers `bench.bench_endpoint` measures Vitrine's inference endpoint against, each run as its own process.

    python -m bench.endpoint_peers fastapi MODEL_DIR PORT            # (a) FastAPI + sync route + pipeline
    python -m bench.endpoint_peers litserve MODEL_DIR PORT MAX_BATCH # (b) LitServe with batching
    python -m bench.endpoint_peers limit MODEL_DIR SECONDS MAX_BATCH TEXTS_JSON  # (c) bare batched pipeline

(a) and (b) answer `POST` with body `{"inputs": "<text>"}` like the endpoint does, as `[[{"label", "score"}]]`.
(c) prints one JSON line: {"inputs_per_s": ..., "batches": ..., "torch_threads": ...}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import litserve as ls  # at module level: its worker process unpickles ClassifierAPI


def serve_fastapi(model_dir: str, port: int) -> None:
    """What users write: FastAPI, a sync `def` route, the pipeline called once per request; run by uvicorn."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import pipeline

    clf = pipeline("text-classification", model=model_dir, device=-1)
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/")
    def infer(body: dict) -> list:  # type: ignore[type-arg]
        return [clf(body["inputs"])]

    print(f"fastapi peer: torch threads {torch.get_num_threads()}", file=sys.stderr, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class ClassifierAPI(ls.LitAPI):
    """LitServe's side of peer (b): decode `{"inputs": text}`, run the pipeline on each batch, Hub-shaped answers."""

    def __init__(self, model_dir: str, **kwargs: object) -> None:
        """Remember the model folder; `kwargs` go to `LitAPI` (max_batch_size, batch_timeout, api_path)."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model_dir = model_dir

    def setup(self, device: str) -> None:
        """Load the pipeline on the CPU."""
        import torch
        from transformers import pipeline

        self.clf = pipeline("text-classification", model=self.model_dir, device=-1)
        print(f"litserve peer: torch threads {torch.get_num_threads()}", file=sys.stderr, flush=True)

    def decode_request(self, request: dict) -> str:  # type: ignore[override, type-arg]
        """The text of one request."""
        return str(request["inputs"])

    def predict(self, batch: list[str]) -> list:  # type: ignore[override, type-arg]
        """One pipeline call over the whole batch."""
        return self.clf(batch, batch_size=len(batch))

    def encode_response(self, output: dict) -> list:  # type: ignore[override, type-arg]
        """The Hub inference shape, `[[{"label", "score"}]]`."""
        return [[output]]


def serve_litserve(model_dir: str, port: int, max_batch: int) -> None:
    """LitServe with dynamic batching up to `max_batch`, one CPU worker, the pipeline called on each batch."""
    api = ClassifierAPI(model_dir, max_batch_size=max_batch, batch_timeout=0.005, api_path="/predict")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=60)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


def run_limit(model_dir: str, seconds: float, max_batch: int, texts: list[str]) -> dict[str, float]:
    """The limit: the pipeline called in-process on batches of `max_batch` texts for `seconds`; inputs/s."""
    import torch
    from transformers import pipeline

    clf = pipeline("text-classification", model=model_dir, device=-1)
    batches = [[texts[(b * max_batch + i) % len(texts)] for i in range(max_batch)] for b in range(len(texts))]
    for batch in batches[:2]:  # warm-up
        clf(batch, batch_size=max_batch)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = clf(batches[done % len(batches)], batch_size=max_batch)
        assert len(out) == max_batch
        done += 1
    elapsed = time.perf_counter() - start
    return {"inputs_per_s": done * max_batch / elapsed, "batches": done, "torch_threads": torch.get_num_threads()}


def main() -> None:
    """Dispatch on the first argument: fastapi, litserve or limit."""
    kind, model_dir, *rest = sys.argv[1:]
    if kind == "fastapi":
        serve_fastapi(model_dir, int(rest[0]))
    elif kind == "litserve":
        serve_litserve(model_dir, int(rest[0]), int(rest[1]))
    elif kind == "limit":
        with open(rest[2], encoding="utf-8") as f:
            texts = json.load(f)
        print(json.dumps(run_limit(model_dir, float(rest[0]), int(rest[1]), texts)), flush=True)
    else:
        raise SystemExit(f"unknown peer {kind!r}")


if __name__ == "__main__":
    main()
