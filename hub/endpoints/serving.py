"""A live endpoint: the version an alias points at, loaded once, batched, and hot-swapped when the alias moves.

`Endpoint` watches its alias. When it moves, the new version is loaded beside the old one from its
commit's snapshot (safetensors, once per version), warmed up with one prediction, and then takes
traffic in one reference swap; requests already queued or running finish on the old version, whose
batcher then drains and whose model is freed. If the new version fails to load or warm up, the old
one keeps serving and the failure shows in `/ready`, the metrics and the log.

Inference is the evaluation's `Predictor` for the task (registry/predictors), so an endpoint and an
evaluation of one commit give the same prediction for the same input.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.endpoints.batching import Batcher, BatchLimits, BatchStats
from registry import aliases, jobs, traffic
from registry.predictionlog import PredictionLog
from registry.auth import Principal, check_can_read
from registry.core import Registry
from registry.errors import RegistryError
from registry.names import RepoRef
from registry.predictors import Predictor, load_predictor, resolve_task
from registry.predictors.base import token_counter
from registry.predictors.language import MASK_PLACEHOLDER
from registry.repos import RepoRecord, get_repo, load_version
from registry.settings import Settings
from registry.snapshots import snapshot_dir
from registry.versions import read_version

log = logging.getLogger("vitrine.endpoint")

# Geometric latency buckets from 1 ms to ~30 s, in the spirit of TEI's.
_LATENCY_BUCKETS = tuple(0.001 * 1.5**i for i in range(26))
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Seconds before a version that failed to load is tried again (unless the alias moves elsewhere first).
RETRY_FAILED_S = 60.0
_WARMUP_TEXT = "Vitrine warm-up request."


class EndpointMetrics:
    """The Prometheus metrics of one endpoint, in a registry of its own (served at its `/metrics`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vitrine_endpoint_requests", "Requests answered, by HTTP status.", ["status"],
                                registry=r)
        self.errors = Counter("vitrine_endpoint_errors", "Requests answered with an error, by kind.", ["kind"],
                              registry=r)
        self.latency = Histogram("vitrine_endpoint_request_duration_seconds", "Time from request to answer.",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("vitrine_endpoint_inference_duration_seconds", "Time of one batch's forward pass.",
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("vitrine_endpoint_batch_size", "Inputs per forward pass.", buckets=_BATCH_BUCKETS,
                                    registry=r)
        self.batch_wait = Histogram("vitrine_endpoint_batch_wait_seconds",
                                    "Time a batch waited, after a forward pass, for the callers it answered to come "
                                    "back (VITRINE_ENDPOINT_BATCH_WAIT_MS).", buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_tokens = Histogram("vitrine_endpoint_batch_tokens", "Padded tokens per forward pass.",
                                      buckets=tuple(2**i for i in range(4, 16)), registry=r)
        self.queue_depth = Gauge("vitrine_endpoint_queue_depth", "Inputs waiting for a batch.", registry=r)
        self.dropped = Counter("vitrine_endpoint_dropped", "Requests dropped before inference.", ["reason"], registry=r)
        self.model = Gauge("vitrine_endpoint_model_info", "1 for the commit being served.",
                           ["repo", "alias", "commit", "task"], registry=r)
        self.swaps = Counter("vitrine_endpoint_swaps", "Version changes, by outcome.", ["outcome"], registry=r)
        self.mirrors = Counter("vitrine_endpoint_mirrors", "Requests mirrored to the canary or shadow pair, by outcome.",
                               ["outcome"], registry=r)
        self.served = Counter("vitrine_endpoint_served", "Answers by the alias that produced them.", ["alias"],
                              registry=r)
        self.log_rows = Gauge("vitrine_endpoint_log_rows", "Prediction-log rows, written or dropped.", ["outcome"],
                              registry=r)
        self.log_healthy = Gauge("vitrine_endpoint_log_healthy", "1 while the prediction log is writing.", registry=r)

    def batch_stats(self) -> BatchStats:
        """Hooks for the batcher."""
        def on_batch(size: int, tokens: int, seconds: float) -> None:
            self.batch_size.observe(size)
            self.batch_tokens.observe(tokens)
            self.inference.observe(seconds)

        return BatchStats(on_batch=on_batch, on_drop=lambda reason: self.dropped.labels(reason).inc(),
                          on_queue=self.queue_depth.set, on_wait=self.batch_wait.observe)


@dataclass
class Slot:
    """One loaded version: its commit, its predictor and the batcher feeding it."""

    commit: str
    task: str
    predictor: Predictor
    batcher: Batcher
    loaded_at: float
    counter: Callable[[list[str]], list[int]] | None = None
    """Counts texts' tokens as the version's tokenizer does (None: the task reads no text)."""

    def count_tokens(self, payload: Any) -> int:
        """Tokens of one preprocessed input as its tokenizer counts them (1 for inputs that are not text)."""
        text = payload if isinstance(payload, str) else payload[0] if isinstance(payload, tuple) and payload and \
            isinstance(payload[0], str) else payload.get("text") if isinstance(payload, dict) else None
        if self.counter is not None and isinstance(text, str):
            return self.counter([text])[0]
        return 1


def warmup_payload(predictor: Predictor) -> dict[str, Any] | None:
    """A harmless input to run once through a freshly loaded version (None: the task has no text input)."""
    task = predictor.task
    if task == "fill-mask":
        return {"text": f"Vitrine is a {MASK_PLACEHOLDER} hub."}
    if task == "zero-shot-classification":
        return {"text": _WARMUP_TEXT, "candidate_labels": ["news", "sports"]}
    if task == "sentence-similarity":
        return {"sentence1": _WARMUP_TEXT, "sentence2": _WARMUP_TEXT}
    if set(predictor.input_columns) <= {"text", "tokens"}:
        return {"text": _WARMUP_TEXT}
    return None


class Endpoint:
    """The endpoint of one model repo's alias: serves its current target, follows its moves."""

    def __init__(self, reg: Registry, ref: RepoRef, alias: str, *, settings: Settings | None = None,
                 partner_of: Callable[[str], Endpoint] | None = None) -> None:
        self.reg = reg
        self.ref = ref
        self.alias = alias
        self.settings = settings or reg.settings
        self.limits = BatchLimits(self.settings.endpoint_max_batch, self.settings.endpoint_max_batch_tokens,
                                  self.settings.endpoint_max_queue, self.settings.endpoint_batch_wait_ms / 1000)
        self.metrics = EndpointMetrics()
        self.slot: Slot | None = None
        self.target: str | None = None
        self.last_error: dict[str, Any] | None = None
        self.state = "starting"
        self.started_at = time.time()
        self._failed: tuple[str, float] | None = None
        self.traffic = traffic.Traffic(alias, "off", "", 0.0)
        self.partner: Endpoint | None = None
        self._partners: dict[str, Endpoint] = {}
        self._partner_of = partner_of or self._own_partner
        self.log: PredictionLog | None = None
        # The repo as last read and when (monotonic): the public fast path trusts it for a bounded time only.
        self._seen: tuple[RepoRecord, float] | None = None
        self._loaded = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name=f"vitrine-endpoint-{ref.repo_id}@{alias}",
                                         daemon=True)
        self._watcher.start()

    # --- access -----------------------------------------------------------------------------------------------

    def repo(self) -> RepoRecord:
        """The repo as it is now (RepoNotFoundError once it is gone)."""
        return get_repo(self.reg, self.ref)

    def public(self) -> bool:
        """Whether the repo was public at a look at most 2 x `endpoint_poll_ms` ago (and since `forget_repo`).

        The bound is what replicas rely on: a visibility change made through another hub process reaches this
        endpoint within it, even while a load or a drift check holds up the watcher's next look.
        """
        seen = self._seen
        if seen is None:
            return False
        repo, at = seen
        return not repo.private and time.monotonic() - at <= 2 * self.settings.endpoint_poll_ms / 1000

    def forget_repo(self) -> None:
        """Drop the remembered repo record (its visibility changed): every request checks the database until the
        next refresh."""
        self._seen = None

    def check_access(self, principal: Principal | None) -> RepoRecord:
        """The repo if the caller may read it now, else RepoNotFoundError (as for a download)."""
        repo = self.repo()
        check_can_read(principal, repo.ref, private=repo.private)
        return repo

    def wait_loaded(self, timeout_s: float) -> Slot | None:
        """The serving slot, waiting up to `timeout_s` for the first version to load."""
        self._loaded.wait(timeout_s)
        return self.slot

    # --- following the alias ------------------------------------------------------------------------------------

    def _watch(self) -> None:
        last_drift_check = time.monotonic()
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # the watcher must outlive any one failure (a DB blip, a bad version)
                log.exception("endpoint %s@%s: refresh failed", self.ref.repo_id, self.alias)
            every = self.settings.drift_check_s
            if every > 0 and time.monotonic() - last_drift_check >= every:
                last_drift_check = time.monotonic()
                # One replica per period checks (and emits `drift.detected`): the log it reads is shared.
                if self._drift_turn(every):
                    self.check_drift(window_s=float(every))
            self._stop.wait(self.settings.endpoint_poll_ms / 1000)

    def _drift_turn(self, every: float) -> bool:
        try:
            return jobs.claim_period(self.reg, f"drift:{self.ref.type}:{self.ref.repo_id}@{self.alias}", every)
        except Exception:  # a DB blip: skip this period rather than end the watcher
            log.exception("endpoint %s@%s: drift turn failed", self.ref.repo_id, self.alias)
            return False

    def check_drift(self, *, window_s: float) -> dict[str, Any] | None:
        """Compute the drift report of the last window (a drifted one emits `drift.detected`); None when it cannot."""
        from registry.monitoring import drift_report

        if self.log is not None:
            self.log.flush()
        try:
            report = drift_report(self.reg, self.repo(), self.alias, window_s=window_s)
        except (RegistryError, LookupError) as exc:  # no baseline evaluation yet, or the alias is gone
            log.info("endpoint %s@%s: no drift check: %s", self.ref.repo_id, self.alias, exc)
            return None
        if report["status"] == "drifted":
            log.warning("endpoint %s@%s: drift in %s", self.ref.repo_id, self.alias, ", ".join(report["drifted"]))
        return report

    def _own_partner(self, alias: str) -> Endpoint:
        """A canary or shadow endpoint of this one's own (standalone serving has no host to share them)."""
        if alias not in self._partners:
            self._partners[alias] = Endpoint(self.reg, self.ref, alias, settings=self.settings)
        return self._partners[alias]

    def refresh(self) -> None:
        """Look at the alias once; load and swap in its target when it moved; follow the canary or shadow rule."""
        with self._lock:
            try:
                repo = self.repo()
                self._seen = (repo, time.monotonic())
                found = aliases.get_alias(self.reg, repo, self.alias)
                rule = traffic.get_traffic(self.reg, repo, self.alias)
            except RegistryError:
                self._seen = None
                found, rule = None, traffic.Traffic(self.alias, "off", "", 0.0)
            else:
                if self.log is None:
                    self.log = PredictionLog(self.reg, repo.pk, self.alias,
                                             roll_s=float(self.settings.prediction_log_roll_s))
            self.partner = self._partner_of(rule.target) if rule.mode != "off" else None
            self.traffic = rule
            target = found.commit_oid if found else None
            self.target = target
            current = self.slot.commit if self.slot else None
            if target == current:
                return
            if target is None:
                self._unload(f"alias {self.alias!r} of {self.ref.repo_id} does not exist (any more)")
                return
            if self._failed and self._failed[0] == target and time.monotonic() - self._failed[1] < RETRY_FAILED_S:
                return
            self._swap_to(target)

    def _swap_to(self, commit: str) -> None:
        self.state = "swapping" if self.slot else "loading"
        started = time.perf_counter()
        try:
            new = self._load(commit)
        except Exception as exc:
            self._failed = (commit, time.monotonic())
            self.last_error = {"commit": commit, "error": f"{type(exc).__name__}: {exc}"[:2000], "at": time.time()}
            self.metrics.swaps.labels("failed").inc()
            self.state = "ready" if self.slot else "failed"
            log.exception("endpoint %s@%s: version %s failed to load; %s", self.ref.repo_id, self.alias, commit[:12],
                          f"still serving {self.slot.commit[:12]}" if self.slot else "nothing to serve")
            self._loaded.set()
            return
        old, self.slot = self.slot, new  # one reference swap: new requests go to the new version from here on
        self._failed, self.last_error, self.state = None, None, "ready"
        self.metrics.swaps.labels("succeeded").inc()
        self.metrics.model.clear()
        self.metrics.model.labels(self.ref.repo_id, self.alias, new.commit, new.task).set(1)
        self._loaded.set()
        log.info("endpoint %s@%s: serving %s (%s) after %.1f s", self.ref.repo_id, self.alias, commit[:12], new.task,
                 time.perf_counter() - started)
        if old is not None:
            self._retire(old)

    def _load(self, commit: str) -> Slot:
        repo = self.repo()
        record, tree = load_version(self.reg, repo, commit)
        version = read_version(self.reg, repo, commit)
        path = snapshot_dir(self.reg, record.oid, tree)
        task = version.meta.pipeline_tag
        if task is None:
            raise RegistryError(f"{self.ref.repo_id}@{commit[:12]} names no task (pipeline_tag) to serve.")
        predictor = load_predictor(resolve_task(task, path), path, device=self.settings.endpoint_device)
        sample = warmup_payload(predictor)
        if sample is not None:
            predictor.run([sample])
        batcher = Batcher(lambda inputs: predictor.postprocess(predictor.predict(inputs)), self.limits,
                          stats=self.metrics.batch_stats(), name=f"vitrine-batch-{commit[:8]}")
        tokenizer = getattr(predictor.pipe, "tokenizer", None)
        counter = token_counter(tokenizer) if tokenizer is not None else None
        return Slot(record.oid, predictor.task, predictor, batcher, time.time(), counter)

    def _retire(self, old: Slot) -> None:
        """Let the old version finish what it holds, then free it."""
        old.batcher.close()
        old.predictor.pipe = None
        del old
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - the ML extras are installed wherever endpoints run
            pass

    def _unload(self, why: str) -> None:
        old, self.slot = self.slot, None
        self.state, self.last_error = "stopped", {"commit": None, "error": why, "at": time.time()}
        self.metrics.model.clear()
        self._loaded.set()
        if old is not None:
            self._retire(old)

    def close(self) -> None:
        """Stop watching, write the prediction log's last rows, and unload."""
        self._stop.set()
        self._watcher.join(10)
        for partner in self._partners.values():
            partner.close()
        if self.log is not None:
            self.log.close()
        with self._lock:
            if self.slot is not None:
                self._retire(self.slot)
                self.slot = None

    def status(self) -> dict[str, Any]:
        """What `/ready` and the console show: state, the commit served, the alias's target, the last failure."""
        slot = self.slot
        return {
            "repo": self.ref.repo_id, "alias": self.alias, "state": self.state, "ready": slot is not None,
            "commit": slot.commit if slot else None, "task": slot.task if slot else None,
            "target": self.target, "loadedAt": slot.loaded_at if slot else None,
            "queueDepth": slot.batcher.depth if slot else 0, "lastError": self.last_error,
            "traffic": self.traffic.to_json(), "log": self.log.health() if self.log else None,
            "limits": {"maxBatch": self.limits.max_batch, "maxBatchTokens": self.limits.max_batch_tokens,
                       "maxQueue": self.limits.max_queue, "maxInputs": self.settings.endpoint_max_inputs,
                       "timeoutMs": self.settings.endpoint_timeout_ms},
        }


class EndpointHost:
    """The endpoints one process serves, started on first use and kept until it stops."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._lock = threading.Lock()

    def get(self, ref: RepoRef, alias: str) -> Endpoint:
        """The endpoint of `ref`'s `alias`, started if this is its first request."""
        key = (ref.repo_id, alias)
        with self._lock:
            endpoint = self._endpoints.get(key)
            if endpoint is None:
                endpoint = self._endpoints[key] = Endpoint(self.reg, ref, alias,
                                                           partner_of=lambda other: self.get(ref, other))
            return endpoint

    def forget_repo(self, ref: RepoRef) -> None:
        """A repo's visibility changed: its endpoints check access in the database again at once."""
        for endpoint in self.running():
            if endpoint.ref == ref:
                endpoint.forget_repo()

    def running(self) -> list[Endpoint]:
        """Every endpoint started so far."""
        with self._lock:
            return list(self._endpoints.values())

    def close(self) -> None:
        """Stop them all."""
        for endpoint in self.running():
            endpoint.close()
