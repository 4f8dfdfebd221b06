"""The HTTP face of an endpoint: the Hub inference route, a typed predict route, health, readiness, metrics.

Every route lives under the endpoint's own URL: `/endpoints/{owner}/{name}` (alias `production`) or
`/endpoints/{owner}/{name}@{alias}` on the hub, and `/` for `vitrine endpoint serve`. A private
repo's endpoint answers only callers who may read the repo, like a download; every answer carries the
commit that produced it in `X-Model-Commit`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.bodies import parse_json, read_body
from hub.deps import token_of
from hub.endpoints.batching import BatcherClosedError, QueueFullError
from hub.endpoints.convention import hub_output, payloads_from_inputs
from hub.endpoints.serving import Endpoint, EndpointHost
from hub.errors import error_response, install_error_handlers, status_of
from registry import auth
from registry.errors import InvalidInputError, PayloadTooLargeError, RegistryError
from registry.names import RepoRef, parse_repo_id
from registry.predictionlog import output_json

RETRY_AFTER_S = "1"
_INFERENCE_PATHS = ("/", "/predict")


class _Unavailable(Exception):
    """No version is loaded (yet, or any more): 503 with the endpoint's status."""


class _Answer(Exception):
    """Stop with this response (timeouts, a full queue, a client that left)."""

    def __init__(self, response: Response) -> None:
        self.response = response


# Typed instances of the predict route, per task: the fields each task's predictor reads.
_TEXT = {"text": (str, Field(description="The input text."))}
_INSTANCE_FIELDS: dict[str, dict[str, Any]] = {
    "text-classification": {**_TEXT, "text_pair": (str | None, Field(None, description="Second text of a pair."))},
    "text-regression": _TEXT,
    "fill-mask": {"text": (str, Field(description="Text with one [MASK] where the missing word goes."))},
    "text-generation": {"text": (str, Field(description="The prompt."))},
    "zero-shot-classification": {**_TEXT, "candidate_labels": (list[str], Field(description="Labels to choose from."))},
    "token-classification": {"text": (str | None, Field(None, description="Raw text.")),
                             "tokens": (list[str] | None, Field(None, description="Words, for word-level tags."))},
    "sentence-similarity": {"sentence1": (str, Field()), "sentence2": (str, Field())},
    "image-classification": {"image": (str, Field(description="The image, base64 or a data URL."))},
    "audio-classification": {"audio": (str, Field(description="The audio file, base64."))},
    "automatic-speech-recognition": {"audio": (str, Field(description="The audio file, base64."))},
}


class PredictResponse(BaseModel):
    """What the typed predict route answers."""

    predictions: list[dict[str, Any]]
    commit: str = Field(description="The model commit that produced the predictions.")


def _principal_dependency(endpoint: Endpoint) -> Any:
    async def principal(request: Request) -> auth.Principal | None:
        token = token_of(request)
        if token is None and endpoint.public():
            return None  # anyone may read a public repo: no database round trip on the hot path
        found = await run_in_threadpool(auth.authenticate, endpoint.reg, token)
        await run_in_threadpool(endpoint.check_access, found)
        return found

    return principal


async def _client_gone(request: Request) -> None:
    """Return when the client disconnects (the body is read already, so the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


@dataclass
class Served:
    """What one version answered for one request's inputs."""

    results: list[Any]
    commit: str
    task: str
    alias: str
    tokens: list[int]
    batch_size: int
    latency_ms: float


async def _run_on(endpoint: Endpoint, request: Request, payloads: list[dict[str, Any]], deadline: float, *,
                  watch_client: bool = True) -> Served:
    """Run payloads through `endpoint`'s current version, following a swap that happens meanwhile."""
    started = time.perf_counter()
    while True:
        slot = endpoint.slot or await run_in_threadpool(endpoint.wait_loaded, max(0.0, deadline - time.monotonic()))
        if slot is None:
            raise _Unavailable
        inputs = [slot.predictor.preprocess(p) for p in payloads]
        tokens = [slot.count_tokens(x) for x in inputs]
        if max(tokens) > endpoint.limits.max_batch_tokens:
            raise PayloadTooLargeError(f"An input of {max(tokens)} tokens is longer than the batch token budget "
                                       f"({endpoint.limits.max_batch_tokens}); shorten it.")
        try:
            work = slot.batcher.submit(inputs, tokens, timeout_s=max(0.0, deadline - time.monotonic()))
        except BatcherClosedError:
            continue  # the version was swapped out between our look and our submit: go to the new one
        except QueueFullError:
            endpoint.metrics.dropped.labels("queue_full").inc()
            raise _Answer(error_response(request, 503, "Overloaded", "The endpoint's queue is full; retry shortly.",
                                         headers={"Retry-After": RETRY_AFTER_S})) from None
        watcher = asyncio.ensure_future(_client_gone(request) if watch_client else asyncio.Event().wait())
        try:
            waiting: set[asyncio.Future[Any]] = {work.future, watcher}
            done, _ = await asyncio.wait(waiting, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if work.future in done:
            try:
                results = work.future.result()
            except TimeoutError:  # its deadline passed while it waited in the queue
                endpoint.metrics.dropped.labels("timeout").inc()
                raise _Answer(error_response(request, 504, "Timeout", "The request timed out in the queue.")) from None
            return Served(results, slot.commit, slot.task, endpoint.alias, tokens, work.batch_size,
                          (time.perf_counter() - started) * 1000)
        work.dropped = True
        if watcher in done:
            endpoint.metrics.dropped.labels("client_gone").inc()
            raise _Answer(Response(status_code=499))
        endpoint.metrics.dropped.labels("timeout").inc()
        raise _Answer(error_response(request, 504, "Timeout",
                                     f"No answer within {endpoint.settings.endpoint_timeout_ms} ms; retry later."))


def _log_rows(endpoint: Endpoint, request_id: str, payloads: list[dict[str, Any]], served: Served | None, *,
              role: str, alias: str, error: str | None = None) -> None:
    """Queue one prediction-log row per input (never raises into the request)."""
    log = endpoint.log
    if log is None:
        return
    keep_inputs = endpoint.settings.prediction_log_inputs == "full"
    now = datetime.now(timezone.utc)
    rows = []
    for i, payload in enumerate(payloads):
        raw = output_json(payload)
        result = served.results[i] if served is not None and i < len(served.results) else None
        label = result.get("label") if isinstance(result, dict) else None
        score = result.get("score") if isinstance(result, dict) else None
        text = payload.get("text") if isinstance(payload, dict) else None
        rows.append({
            "request_id": request_id, "time": now, "repo": endpoint.ref.repo_id, "input_index": i,
            "alias": endpoint.alias, "role": role, "served_alias": alias,
            "commit": served.commit if served else None, "task": served.task if served else None,
            "input": raw if keep_inputs else "", "input_hash": hashlib.sha256(raw.encode()).hexdigest(),
            "output": output_json(result) if result is not None else None,
            "label": None if label is None else str(label),
            "score": float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            "latency_ms": served.latency_ms if served else None, "batch_size": served.batch_size if served else None,
            "error": error, "text_length": len(text) if isinstance(text, str) else None,
            "token_count": served.tokens[i] if served is not None else None,
        })
    log.record(rows)


_BACKGROUND: set[asyncio.Task[None]] = set()
MIRROR_POLL_S = 0.005
# A mirror starts only once the primary has been idle this long: under a steady load there is no such gap, so
# mirrors wait (and, once their queue is full, are dropped) instead of taking the CPU from the primary's next batch.
MIRROR_QUIET_S = 0.02


@dataclass
class _MirrorJob:
    other: Endpoint
    request: Request
    payloads: list[dict[str, Any]]
    request_id: str
    sampled: bool
    deadline: float


class Mirrors:
    """The mirrors of one endpoint, run only while both versions are idle: a shadow never takes the primary's turn.

    Mirror jobs wait in a bounded queue; once the primary has had nothing queued or running for `MIRROR_QUIET_S`
    and the other version is free, every waiting job is submitted at once (so they batch together). Under a load
    that keeps the primary busy the queue fills and further mirrors are dropped, counted as `dropped`.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.queue: asyncio.Queue[_MirrorJob] = asyncio.Queue(maxsize=endpoint.settings.endpoint_max_queue)
        self.task: asyncio.Task[None] | None = None

    def offer(self, job: _MirrorJob) -> None:
        """Queue a mirror, or count it dropped when the queue is full."""
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._dispatch())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.endpoint.metrics.mirrors.labels("dropped").inc()

    def _busy(self, other: Endpoint) -> bool:
        """Whether either version is at work, or the primary was a moment ago (more requests are likely coming)."""
        primary = self.endpoint.slot
        if primary is not None and primary.batcher.idle_for() < MIRROR_QUIET_S:
            return True
        return other.slot is not None and other.slot.batcher.busy

    async def _dispatch(self) -> None:
        while True:
            job = await self.queue.get()
            while self._busy(job.other) and time.monotonic() < job.deadline:
                await asyncio.sleep(MIRROR_POLL_S)
            jobs = [job]
            while not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            for item in jobs:
                if time.monotonic() >= item.deadline:
                    self.endpoint.metrics.mirrors.labels("timeout").inc()
                    continue
                task = asyncio.ensure_future(_mirror(self.endpoint, item))
                _BACKGROUND.add(task)
                task.add_done_callback(_BACKGROUND.discard)


async def _mirror(endpoint: Endpoint, job: _MirrorJob) -> None:
    """Run the same inputs on the other version of a canary or shadow pair; its answer is only logged."""
    other, payloads = job.other, job.payloads
    try:
        served = await _run_on(other, job.request, payloads, job.deadline, watch_client=False)
    except _Answer as answer:
        endpoint.metrics.mirrors.labels("dropped" if answer.response.status_code == 503 else "timeout").inc()
        return
    except Exception as exc:  # a failing shadow must never reach the caller, nor stop the next mirror
        endpoint.metrics.mirrors.labels("failed").inc()
        if job.sampled:
            _log_rows(endpoint, job.request_id, payloads, None, role="mirror", alias=other.alias,
                      error=f"{type(exc).__name__}: {exc}"[:500])
        return
    endpoint.metrics.mirrors.labels("ok").inc()
    if job.sampled:
        _log_rows(endpoint, job.request_id, payloads, served, role="mirror", alias=other.alias)


_MIRRORS: dict[int, Mirrors] = {}


def _mirrors_of(endpoint: Endpoint) -> Mirrors:
    """The endpoint's mirror queue (made on first use, on the running event loop)."""
    found = _MIRRORS.get(id(endpoint))
    if found is None or found.endpoint is not endpoint:
        found = _MIRRORS[id(endpoint)] = Mirrors(endpoint)
    return found


async def infer(endpoint: Endpoint, request: Request, payloads: list[dict[str, Any]]) -> Served:
    """Answer payloads from the endpoint's version (or its canary's), mirror them as its traffic rule says, log them."""
    settings = endpoint.settings
    deadline = time.monotonic() + settings.endpoint_timeout_ms / 1000
    if len(payloads) > settings.endpoint_max_inputs:
        raise PayloadTooLargeError(f"{len(payloads)} inputs in one request; at most {settings.endpoint_max_inputs}.")
    rule, partner = endpoint.traffic, endpoint.partner
    answering, other = endpoint, None
    if partner is not None and partner.slot is not None:
        if rule.mode == "shadow":
            other = partner
        elif rule.mode == "canary" and random.random() < rule.share:
            answering, other = partner, endpoint
    request_id = str(getattr(request.state, "request_id", "") or "")
    sampled = settings.prediction_log_sample > 0 and random.random() < settings.prediction_log_sample
    try:
        served = await _run_on(answering, request, payloads, deadline)
    except Exception as exc:  # logged as a failed answer, then answered as usual
        if sampled:
            why = f"HTTP {exc.response.status_code}" if isinstance(exc, _Answer) else \
                "not ready" if isinstance(exc, _Unavailable) else f"{type(exc).__name__}: {exc}"[:500]
            _log_rows(endpoint, request_id, payloads, None, role="answer", alias=answering.alias, error=why)
        raise
    endpoint.metrics.served.labels(served.alias).inc()
    if sampled:
        _log_rows(endpoint, request_id, payloads, served, role="answer", alias=served.alias)
    if other is not None:
        _mirrors_of(endpoint).offer(_MirrorJob(other, request, payloads, request_id, sampled,
                                               time.monotonic() + settings.endpoint_timeout_ms / 1000))
    return served


def _headers(served: Served) -> dict[str, str]:
    return {"X-Model-Commit": served.commit, "X-Served-Alias": served.alias}


def _unavailable(request: Request, endpoint: Endpoint) -> Response:
    status = endpoint.status()
    why = (status["lastError"] or {}).get("error") or f"loading {endpoint.ref.repo_id}@{endpoint.alias}"
    return error_response(request, 503, "NotReady", f"The endpoint is not ready: {why}.",
                          headers={"Retry-After": RETRY_AFTER_S}, extra={"status": status})


async def hub_inference_response(endpoint: Endpoint, request: Request, principal: Any) -> Response:
    """Answer one Hub-convention inference request (the route, and the hot path that skips the router, share it)."""
    await principal(request)
    body = parse_json(await read_body(request, what="inference body", limit=endpoint.settings.endpoint_max_body_bytes),
                      what="inference body")
    slot = endpoint.slot or await run_in_threadpool(endpoint.wait_loaded, endpoint.settings.endpoint_timeout_ms / 1000)
    if slot is None:
        return _unavailable(request, endpoint)
    payloads, single = payloads_from_inputs(slot.task, slot.predictor.input_columns, body,
                                            max_inputs=endpoint.settings.endpoint_max_inputs)
    try:
        outcome = await infer(endpoint, request, payloads)
    except _Unavailable:
        return _unavailable(request, endpoint)
    except _Answer as answer:
        return answer.response
    return JSONResponse(hub_output(outcome.task, outcome.results, single=single), headers=_headers(outcome))


def build_app(endpoint: Endpoint, task: str | None) -> FastAPI:
    """The endpoint's app for the version's task (`None` before the first version has loaded)."""
    title = f"{endpoint.ref.repo_id}@{endpoint.alias}"
    app = FastAPI(title=f"Vitrine endpoint {title}", version="0.1.0", docs_url="/docs", openapi_url="/openapi.json")
    install_error_handlers(app)
    principal = _principal_dependency(endpoint)
    max_body = endpoint.settings.endpoint_max_body_bytes

    async def run(request: Request, payloads: list[dict[str, Any]]) -> Served | Response:
        try:
            return await infer(endpoint, request, payloads)
        except _Unavailable:
            return _unavailable(request, endpoint)
        except _Answer as answer:
            return answer.response

    @app.post("/", openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["inputs"],
        "properties": {"inputs": {}, "parameters": {"type": "object"}}}}}}})
    async def hub_inference(request: Request) -> Response:
        """The Hub inference convention: `{"inputs": ..., "parameters": ...}`, answered in the task's Hub shape."""
        return await hub_inference_response(endpoint, request, principal)

    fields = _INSTANCE_FIELDS.get(task or "")
    if fields is not None:
        instance = create_model(f"Instance_{task}".replace("-", "_"), **fields)
        request_model = create_model(
            f"PredictRequest_{task}".replace("-", "_"),
            instances=(list[instance], Field(min_length=1, max_length=endpoint.settings.endpoint_max_inputs)),  # type: ignore[valid-type]
        )

        async def predict(request: Request, body: Any) -> Response:
            """Typed prediction for this endpoint's task: `{"instances": [...]}` -> `{"predictions", "commit"}`."""
            await principal(request)
            payloads = [i.model_dump(exclude_none=True) for i in body.instances]
            outcome = await run(request, payloads)
            if isinstance(outcome, Response):
                return outcome
            return JSONResponse({"predictions": outcome.results, "commit": outcome.commit}, headers=_headers(outcome))

        predict.__annotations__["body"] = request_model  # a real class, not the string `from __future__` leaves
        app.post("/predict", response_model=PredictResponse)(predict)
    else:
        @app.post("/predict", response_model=PredictResponse)
        async def predict_any(request: Request) -> Response:
            """Prediction before the task is known: `{"instances": [{...}, ...]}`."""
            await principal(request)
            body = parse_json(await read_body(request, what="predict body", limit=max_body), what="predict body")
            if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
                raise InvalidInputError('The body must be {"instances": [ {...}, ... ]}.')
            outcome = await run(request, body["instances"])
            if isinstance(outcome, Response):
                return outcome
            return JSONResponse({"predictions": outcome.results, "commit": outcome.commit}, headers=_headers(outcome))

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Liveness: the process answers (whether or not a version is loaded)."""
        await principal(request)
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request) -> Response:
        """Readiness: 200 with the commit served once a version is loaded, else 503; the last load failure too."""
        await principal(request)
        status = endpoint.status()
        headers = {"X-Model-Commit": status["commit"]} if status["commit"] else {}
        return JSONResponse(status, status_code=200 if status["ready"] else 503, headers=headers)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: latency, requests, errors, batch sizes, queue depth, the commit served, mirrors, log."""
        await principal(request)
        if endpoint.log is not None:
            health = endpoint.log.health()
            endpoint.metrics.log_rows.labels("written").set(health["written"])
            endpoint.metrics.log_rows.labels("dropped").set(health["dropped"])
            endpoint.metrics.log_healthy.set(1 if health["healthy"] else 0)
        return PlainTextResponse(generate_latest(endpoint.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class EndpointApp:
    """ASGI app of one endpoint: picks the app of the version's task, and counts every inference answer."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._apps: dict[str | None, FastAPI] = {}
        self._principal = _principal_dependency(endpoint)

    async def _hot_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /` without the router and its middleware: the same handler, errors in the same shape."""
        request = Request(scope, receive)
        try:
            response = await hub_inference_response(self.endpoint, request, self._principal)
        except ClientDisconnect:
            return  # nobody is left to answer
        except RegistryError as exc:
            status, code = status_of(exc)
            response = error_response(request, status, code, exc.message)
        await response(scope, receive, send)

    def app_for(self, task: str | None) -> FastAPI:
        """The app for `task`, built once."""
        if task not in self._apps:
            self._apps[task] = build_app(self.endpoint, task)
        return self._apps[task]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, observing latency and status for the inference routes."""
        slot = self.endpoint.slot
        app = self.app_for(slot.task if slot else None)
        root = scope.get("root_path", "")
        path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
        if scope["type"] != "http" or path not in _INFERENCE_PATHS:
            await app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if path == "/" and scope["method"] == "POST":
                await self._hot_path(scope, receive, watch)
            else:
                await app(scope, receive, watch)
        finally:
            m = self.endpoint.metrics
            m.requests.labels(str(status[0])).inc()
            m.latency.observe(time.perf_counter() - started)
            if status[0] >= 400:
                m.errors.labels("client" if status[0] < 500 else "server").inc()


class EndpointDispatch:
    """Hub middleware: `/endpoints/{owner}/{name}[@alias]/...` goes to that endpoint, started on first use."""

    PREFIX = "/endpoints/"

    def __init__(self, app: ASGIApp, host: EndpointHost) -> None:
        self.app = app
        self.host = host
        self._apps: dict[int, EndpointApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch endpoint paths; pass everything else to the hub."""
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.PREFIX):
            await self.app(scope, receive, send)
            return
        parts = path[len(self.PREFIX):].split("/", 2)
        if len(parts) < 2 or not parts[1]:
            await self.app(scope, receive, send)
            return
        owner, name_alias = parts[0], parts[1]
        name, _, alias = name_alias.partition("@")
        rest = "/" + (parts[2] if len(parts) > 2 else "")
        try:
            ref = parse_repo_id(f"{owner}/{name}", "model")
            endpoint = await self._endpoint(scope, ref, alias or "production")
        except RegistryError as exc:
            from hub.errors import status_of

            code, kind = status_of(exc)
            response = error_response(_request(scope, receive), code, kind, exc.message)
            await response(scope, receive, send)
            return
        prefix = f"{self.PREFIX}{owner}/{name_alias}"
        app = self._apps.setdefault(id(endpoint), EndpointApp(endpoint))
        await app({**scope, "root_path": scope.get("root_path", "") + prefix, "path": prefix + rest}, receive, send)

    async def _endpoint(self, scope: Scope, ref: Any, alias: str) -> Endpoint:
        """The endpoint, after checking the caller may read the repo and the alias exists (no model loads else)."""
        from registry import aliases
        from registry.aliases import check_alias_name

        check_alias_name(alias)
        token = token_of(_request(scope, None))
        reg = self.host.reg

        def lookup() -> RepoRef:
            from registry.repos import open_repo

            principal = auth.authenticate(reg, token)
            repo = open_repo(reg, ref, principal)
            if aliases.get_alias(reg, repo, alias) is None and not any(
                    e.ref == ref and e.alias == alias for e in self.host.running()):
                from registry.errors import NotFoundError

                raise NotFoundError(f"{ref.repo_id} has no alias {alias!r} to serve; promote a version first "
                                    f"(vitrine promote {ref.repo_id} REVISION --to {alias}).")
            return repo.ref  # the id as created: `ACME/Sentiment` and `acme/sentiment` share one endpoint

        return self.host.get(await run_in_threadpool(lookup), alias)


def _request(scope: Scope, receive: Receive | None) -> Request:
    return Request(scope, receive) if receive is not None else Request(scope)


__all__ = ["EndpointApp", "EndpointDispatch", "build_app", "infer"]
