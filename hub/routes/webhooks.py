"""Webhooks: register, list and remove them, read a webhook's delivery log, replay a delivery.

The delivery worker runs in this process (a thread started with the app, see `registry.webhooks.work`);
deliveries live in the metadata DB, so any replica may send them and a restart resumes them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of
from registry import events, webhooks
from registry.errors import InvalidInputError, UnauthorizedError


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    reg = app.state.registry
    await run_in_threadpool(webhooks.ensure_tables, reg)
    stop = threading.Event()
    worker = threading.Thread(target=webhooks.work, args=(reg, stop), name="vitrine-webhooks", daemon=True)
    worker.start()
    yield
    stop.set()
    await run_in_threadpool(worker.join, 30)


router = APIRouter(prefix="/api/vitrine/webhooks", lifespan=_lifespan)

_WEBHOOK_BODY = json_body_doc({
    "url": {"type": "string", "description": "Where to POST the events (http or https)."},
    "secret": {"type": "string", "description": "Signs every body: X-Webhook-Signature is sha256=HMAC(secret, body)."},
    "events": {"type": "array", "items": {"type": "string", "enum": list(events.KINDS)}},
    "repo": {"type": "string", "description": "owner/name of the one repo to watch"},
    "repoType": {"type": "string", "enum": ["model", "dataset", "space"], "default": "model"},
    "namespace": {"type": "string", "description": "watch every repo of this user or organisation instead"},
    "owner": {"type": "string", "description": "an organisation you administer (default: yourself)"},
}, required=("url", "secret", "events"))


@router.post("", openapi_extra=_WEBHOOK_BODY, status_code=201)
async def create_webhook(request: Request) -> dict[str, Any]:
    """Register a webhook on a repo or a namespace, owned by you or an organisation you administer."""
    principal = await principal_of(request)
    if principal is None:  # before reading any body
        raise UnauthorizedError("Registering a webhook needs a write token (HF_TOKEN).")
    body = await json_object(request, what="webhook body")
    repo, namespace = webhooks.parse_target(body)
    owner = body.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise InvalidInputError("Field 'owner' must be a string.")
    made = await run_in_threadpool(lambda: webhooks.create_webhook(
        registry_of(request), principal, url=body.get("url"), secret=body.get("secret"), kinds=body.get("events"),
        repo=repo, namespace=namespace, owner=owner))
    return made.to_json()


@router.get("")
async def list_webhooks(request: Request) -> list[dict[str, Any]]:
    """Your webhooks and those of the organisations you administer (never their secrets)."""
    found = await run_in_threadpool(webhooks.list_webhooks, registry_of(request), await principal_of(request))
    return [w.to_json() for w in found]


@router.delete("/{webhook_id}")
async def delete_webhook(request: Request, webhook_id: int) -> dict[str, Any]:
    """Remove one of your webhooks with its delivery log."""
    await run_in_threadpool(webhooks.delete_webhook, registry_of(request), await principal_of(request), webhook_id)
    return {"deleted": webhook_id}


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(request: Request, webhook_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log of one of your webhooks, newest first: status, attempts, last HTTP code and error."""
    if not 1 <= limit <= 1000:
        raise InvalidInputError("limit must be between 1 and 1000.")
    principal = await principal_of(request)
    found = await run_in_threadpool(lambda: webhooks.list_deliveries(registry_of(request), principal, webhook_id,
                                                                     limit=limit))
    return [d.to_json() for d in found]


@router.post("/{webhook_id}/deliveries/{delivery_id}/replay", status_code=202)
async def replay_delivery(request: Request, webhook_id: int, delivery_id: int) -> dict[str, Any]:
    """Send an earlier delivery's payload again, as a new pending delivery."""
    principal = await principal_of(request)
    made = await run_in_threadpool(webhooks.replay_delivery, registry_of(request), principal, webhook_id,
                                   delivery_id)
    return made.to_json()
