"""Console calls for webhooks, on the console's `VitrineClient` (kept out of client.py, which other pages share)."""

from __future__ import annotations

from typing import Any

from apps.console.client import VitrineClient

BASE = "/api/vitrine/webhooks"


def webhooks(client: VitrineClient) -> list[dict[str, Any]]:
    """The token's webhooks and those of the organisations it administers."""
    return list(client.get(BASE))


def add_webhook(client: VitrineClient, *, url: str, secret: str, events: list[str], repo: str | None = None,
                repo_type: str = "model", namespace: str | None = None, owner: str | None = None) -> dict[str, Any]:
    """Register a webhook on `repo` (of `repo_type`) or on every repo of `namespace`."""
    body: dict[str, Any] = {"url": url, "secret": secret, "events": events}
    if repo:
        body.update(repo=repo, repoType=repo_type)
    if namespace:
        body["namespace"] = namespace
    if owner:
        body["owner"] = owner
    return dict(client.post(BASE, body))


def remove_webhook(client: VitrineClient, webhook_id: int) -> dict[str, Any]:
    """Remove a webhook with its delivery log."""
    return dict(client.call("DELETE", f"{BASE}/{webhook_id}"))


def deliveries(client: VitrineClient, webhook_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
    """A webhook's delivery log, newest first."""
    return list(client.get(f"{BASE}/{webhook_id}/deliveries", limit=limit))


def replay(client: VitrineClient, webhook_id: int, delivery_id: int) -> dict[str, Any]:
    """Queue an earlier delivery's payload again; the new delivery."""
    return dict(client.post(f"{BASE}/{webhook_id}/deliveries/{delivery_id}/replay", None))
