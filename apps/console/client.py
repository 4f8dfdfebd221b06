"""A small client for Vitrine's own routes (huggingface_hub covers the Hub's), used by every console page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class HubError(Exception):
    """An error answer of the hub, with its message (`X-Error-Message` or the JSON `error`)."""


@dataclass(frozen=True)
class VitrineClient:
    """Vitrine's API at `endpoint`, called with `token` (None: anonymous)."""

    endpoint: str
    token: str | None = None
    timeout: float = 60.0

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """Call `path` and return its JSON, raising HubError with the hub's message on an error answer."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.request(method, f"{self.endpoint}{path}", params=params, json=body, headers=headers,
                          timeout=self.timeout)
        if r.status_code >= 400:
            message = r.headers.get("x-error-message")
            try:
                message = r.json().get("error") or message
            except ValueError:
                pass
            raise HubError(message or f"HTTP {r.status_code}")
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query `params`."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON `body` to `path`."""
        return self.call("POST", path, body=body)

    def splits(self, dataset: str, revision: str) -> list[dict[str, Any]]:
        """The splits of a dataset revision, with their row counts and columns."""
        data = self.get(f"/api/vitrine/datasets/{dataset}/splits", revision=revision)
        return list(data["splits"] if isinstance(data, dict) else data)

    def evaluations(self, *, model: str | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
        """Evaluation history the token may see, newest first."""
        return list(self.get("/api/vitrine/evals", model=model, dataset=dataset))

    def evaluation(self, job_id: str) -> dict[str, Any]:
        """One evaluation job."""
        return dict(self.get(f"/api/vitrine/evals/{job_id}"))

    def start_evaluation(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start (or reuse) an evaluation."""
        return dict(self.post("/api/vitrine/evals", body))
