"""Live demos: each model version's Gradio app, built on first visit and kept in an LRU under a memory budget.

A demo is keyed by the commit(s) it shows, so when a branch moves the next visit builds the new
commit's demo and the old one ages out of the LRU. Builds run one at a time off the event loop
(Gradio's Blocks context is process-global); the model loads from the blob store (hub/spaces/loader.py).
Every request re-checks the rules of registry/demos.py against the repos as they are now, so a
visibility change reaches a loaded demo on the very next request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import sys
import time
from collections import Counter, OrderedDict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.spaces.bundle import Bundle, check_loadable, render_model_bundle
from hub.spaces.loader import load_live_demo
from registry import auth
from registry.core import Registry
from registry.demos import rows_still_allowed, sync_space
from registry.errors import DemoFailedError, RegistryError, RepoNotFoundError
from registry.names import RepoRef
from registry.repos import RepoRecord, open_repo, resolve_commit
from registry.settings import Settings
from registry.snapshots import snapshot_dir

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger("vitrine.spaces")

MiB = 1024 * 1024
# What a demo adds to the hub's RSS beyond its weights (Gradio app, tokenizer, Python objects): about
# 4 MiB measured on the tiny test models, doubled. Importing torch/gradio once (~450 MiB) is not counted.
DEMO_OVERHEAD_BYTES = 8 * MiB
# A failed build is not retried for this long, so a page's asset requests do not each rebuild it.
FAILURE_TTL_S = 30.0
# An evicted demo still answering a request (an open event stream) is closed after this at the latest.
RETIRE_GRACE_S = 120.0


@dataclass(frozen=True)
class DemoKey:
    """What a live demo shows: a model and one commit, or two side by side."""

    repo_id: str
    sha: str
    compare_sha: str | None = None

    @property
    def label(self) -> str:
        """`owner/name@abc1234[..def5678]`, for logs and errors."""
        return f"{self.repo_id}@{self.sha[:7]}" + (f"..{self.compare_sha[:7]}" if self.compare_sha else "")


@dataclass
class LiveDemo:
    """A built demo and its bookkeeping in the LRU."""

    key: DemoKey
    demo: gr.Blocks
    app: ASGIApp
    bundle: Bundle
    estimated_bytes: int
    module: str
    built_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    requests: int = 0
    active: int = 0
    retired: bool = False
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {"repo_id": self.key.repo_id, "sha": self.key.sha, "compare_sha": self.key.compare_sha,
                "task": self.bundle.task, "estimated_bytes": self.estimated_bytes, "built_at": self.built_at,
                "last_used": self.last_used, "requests": self.requests}


class SpaceHost:
    """The live demos of one hub process: build, LRU by estimated memory, dispatch, close."""

    def __init__(self, reg: Registry, settings: Settings) -> None:
        self.reg = reg
        self.budget_bytes = settings.demo_memory_budget_mb * MiB
        # Gradio's own process settings: no usage analytics from a self-hosted hub, files under its home.
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.home / "gradio"))
        self._live: OrderedDict[DemoKey, LiveDemo] = OrderedDict()
        self._building: dict[DemoKey, asyncio.Task[LiveDemo]] = {}
        self._failures: dict[DemoKey, tuple[float, str]] = {}
        self._synced: dict[str, str] = {}
        self._build_lock: asyncio.Lock | None = None
        self.stats: Counter[str] = Counter()

    def resolve(self, repo: RepoRecord, revision: str, compare: str | None) -> DemoKey:
        """The key of the demo showing `repo` at `revision` (and `compare`): revisions become commits."""
        sha = resolve_commit(self.reg, repo, revision).oid
        other = resolve_commit(self.reg, repo, compare).oid if compare is not None else None
        return DemoKey(repo.ref.repo_id, sha, other)

    async def serve(self, repo: RepoRecord, key: DemoKey, scope: Scope, receive: Receive, send: Send, *,
                    prefix: str, sync_space: bool = False) -> None:
        """Answer a request with the demo for `key` (built now if not loaded), mounted at `prefix`.

        With `sync_space`, the Space repo named like the model is brought up to date first.

        Raises:
            DemoFailedError: the build failed (now or within the last FAILURE_TTL_S seconds).
            UnsafeFileError: the model holds unsafe pickles.
        """
        live = self._live.get(key)
        if live is not None and not await run_in_threadpool(rows_still_allowed, self.reg, repo, live.bundle.example_source):
            # Built with a dataset's rows that this model's readers may no longer all see: rebuild without them.
            await self._drop(key)
            live = None
        live = live or await self._obtain(repo, key)
        # Counted as in use from here, so an eviction while we wait below does not close it under us.
        live.active += 1
        try:
            if key in self._live:
                self._live.move_to_end(key)
            live.last_used = time.time()
            live.requests += 1
            if sync_space and self._synced.get(key.repo_id) != key.sha:
                await run_in_threadpool(self._sync_space, repo, live)
            await live.app(_child_scope(scope, prefix), receive, send)
        finally:
            live.active -= 1
            if live.retired and live.active == 0:
                await self._close(live)

    async def _obtain(self, repo: RepoRecord, key: DemoKey) -> LiveDemo:
        failed = self._failures.get(key)
        if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL_S:
            raise DemoFailedError(failed[1])
        task = self._building.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._build(repo, key))
            self._building[key] = task
            task.add_done_callback(functools.partial(self._built, key))
        # Shielded: a visitor who gives up must not cancel the build others wait for.
        return await asyncio.shield(task)

    def _built(self, key: DemoKey, task: asyncio.Task[LiveDemo]) -> None:
        self._building.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a build nobody waits for any more logs no asyncio warning

    def snapshot(self, viewer: auth.Principal | None) -> dict[str, Any]:
        """Loaded demos the viewer may read now (least recently used first), the budget, and what they use.

        Totals count only those demos; the process-wide counters, which count every demo, are for admins.
        Visibility is read from the database here, not from the demo, so a change shows at once.
        """
        visible = [live for live in list(self._live.values()) if _may_read(self.reg, viewer, live.key.repo_id)]
        out: dict[str, Any] = {"budget_bytes": self.budget_bytes,
                               "used_bytes": sum(live.estimated_bytes for live in visible),
                               "demos": [live.to_json() for live in visible]}
        if viewer is not None and viewer.is_admin:
            out.update(builds=self.stats["builds"], evictions=self.stats["evictions"],
                       failures=self.stats["failures"], all_used_bytes=sum(x.estimated_bytes for x in self._live.values()))
        return out

    async def close(self) -> None:
        """Close every loaded demo (hub shutdown)."""
        while self._live:
            _, live = self._live.popitem(last=False)
            await self._close(live)

    async def _build(self, repo: RepoRecord, key: DemoKey) -> LiveDemo:
        if self._build_lock is None:
            self._build_lock = asyncio.Lock()
        async with self._build_lock:
            started = time.monotonic()
            try:
                bundle = await run_in_threadpool(render_model_bundle, self.reg, repo, key.sha, compare=key.compare_sha)
                check_loadable(bundle)
                dirs = {v.commit.oid: await run_in_threadpool(snapshot_dir, self.reg, v.commit.oid, v.tree)
                        for v in bundle.versions}
                demo, app = await run_in_threadpool(load_live_demo, bundle.files["app.py"], _module_name(key), dirs)
            except RegistryError:
                raise
            except Exception as exc:
                self.stats["failures"] += 1
                message = f"The demo of {key.label} failed to start: {type(exc).__name__}: {exc}"[:1000]
                log.exception("building the demo of %s failed", key.label)
                self._failures[key] = (time.monotonic(), message)
                raise DemoFailedError(message) from None
        live = LiveDemo(key=key, demo=demo, app=app, bundle=bundle, module=_module_name(key),
                        estimated_bytes=bundle.weight_bytes + DEMO_OVERHEAD_BYTES)
        await live.stack.enter_async_context(app.router.lifespan_context(app))  # type: ignore[attr-defined]
        self._failures.pop(key, None)
        for other in [k for k in self._live if k.repo_id == key.repo_id]:
            # A new version usually means the older ones stop being visited: they go first.
            self._live.move_to_end(other, last=False)
        self._live[key] = live
        self.stats["builds"] += 1
        log.info("built the demo of %s in %.1fs (~%d MiB)", key.label, time.monotonic() - started,
                 live.estimated_bytes // MiB)
        await self._evict(keep=key)
        return live

    async def _evict(self, *, keep: DemoKey) -> None:
        # The demo just built stays even when it alone is over budget: it is the one being asked for.
        used = sum(live.estimated_bytes for live in self._live.values())
        for key in list(self._live):
            if used <= self.budget_bytes:
                break
            if key == keep:
                continue
            live = self._live.pop(key)
            used -= live.estimated_bytes
            self.stats["evictions"] += 1
            log.info("evicting the demo of %s (memory budget %d MiB)", key.label, self.budget_bytes // MiB)
            live.retired = True
            if live.active == 0:
                await self._close(live)
            else:
                asyncio.get_running_loop().call_later(RETIRE_GRACE_S, _spawn_close, self, live)

    async def _drop(self, key: DemoKey) -> None:
        live = self._live.pop(key, None)
        if live is None:
            return
        live.retired = True
        if live.active == 0:
            await self._close(live)

    async def _close(self, live: LiveDemo) -> None:
        if live.demo is None:  # already closed
            return
        demo, live.demo = live.demo, None  # type: ignore[assignment]
        try:
            await live.stack.aclose()
            demo.close(verbose=False)
        except Exception:  # a demo that fails to close must not take the request or the hub down
            log.exception("closing the demo of %s failed", live.key.label)
        module = sys.modules.pop(live.module, None)
        if module is not None:
            # FastAPI caches facts about Gradio's route functions in process-wide LRUs, and those keep
            # the Blocks alive for a while; emptying the app's module frees the model regardless.
            module.__dict__.clear()

    def _sync_space(self, repo: RepoRecord, live: LiveDemo) -> None:
        # The Space repo is a copy kept for people; failing to update it must not fail the visit.
        try:
            commit = sync_space(self.reg, repo, live.bundle.space_files, sha=live.key.sha, task=live.bundle.task)
        except Exception:
            log.exception("committing the bundle of %s to its Space repo failed", live.key.label)
            return
        if commit is not None:
            log.info("committed the bundle of %s to spaces/%s: %s", live.key.label, repo.ref.repo_id, commit.oid)
        self._synced[live.key.repo_id] = live.key.sha


def _child_scope(scope: Scope, prefix: str) -> Scope:
    # The demo's code has no business with the caller's hub token.
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"authorization", b"x-hf-authorization")]
    return dict(scope, root_path=scope.get("root_path", "") + prefix, headers=headers)


def _may_read(reg: Registry, viewer: auth.Principal | None, repo_id: str) -> bool:
    namespace, _, name = repo_id.partition("/")
    try:
        open_repo(reg, RepoRef("model", namespace, name), viewer)
    except RepoNotFoundError:
        return False
    return True


def _spawn_close(host: SpaceHost, live: LiveDemo) -> None:
    asyncio.get_running_loop().create_task(host._close(live))


def _module_name(key: DemoKey) -> str:
    name = re.sub(r"\W", "_", key.repo_id)
    return f"vitrine_space_{name}_{key.sha[:12]}" + (f"_{key.compare_sha[:12]}" if key.compare_sha else "")


def host_of(app: Any) -> SpaceHost:
    """The app's SpaceHost, created on first use."""
    host = getattr(app.state, "spaces", None)
    if host is None:
        host = app.state.spaces = SpaceHost(app.state.registry, app.state.settings)
    return host  # type: ignore[no-any-return]
