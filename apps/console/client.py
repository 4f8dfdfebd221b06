"""A small client for Vitrine's own routes (huggingface_hub covers the Hub's), used by every console page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

# What the model page shows of a version; never `siblings` (one entry per file): the file count is the
# `vitrine` block's `fileCount`, and the Files tab pages through the tree.
MODEL_HEADER = ("sha", "private", "pipeline_tag", "library_name", "safetensors", "cardData", "vitrine")


class HubError(Exception):
    """An error answer of the hub, with its message (`X-Error-Message` or the JSON `error`) and HTTP status."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class GateRefusedError(HubError):
    """The promotion gate refused the candidate (409 `GateRefused`): the message has the numbers, `gate` the verdict."""

    @property
    def gate(self) -> dict[str, Any] | None:
        """The gate's verdict the hub answered with the refusal."""
        return self.body.get("gate") if isinstance(self.body, dict) else None


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
            message, body = r.headers.get("x-error-message"), None
            try:
                body = r.json()
                message = (body.get("error") if isinstance(body, dict) else None) or message
            except ValueError:
                pass
            code = r.headers.get("x-error-code")
            kind = GateRefusedError if code == "GateRefused" else HubError
            raise kind(message or f"HTTP {r.status_code}", r.status_code, code, body)
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query `params`."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON `body` to `path`."""
        return self.call("POST", path, body=body)

    def discussions(self, repo_id: str, *, repo_type: str = "model", status: str = "open") -> list[dict[str, Any]]:
        """The repo's discussions and pull requests with `status` (open, closed, merged, all), every page."""
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self.get(f"/api/{repo_type}s/{repo_id}/discussions", status=status, p=page)
            out += body["discussions"]
            if not body["discussions"] or len(out) >= body["count"]:
                return out
            page += 1

    def discussion(self, repo_id: str, num: int, *, repo_type: str = "model") -> dict[str, Any]:
        """A discussion or PR with its events; a PR with its target, conflicting files and diff."""
        return dict(self.get(f"/api/{repo_type}s/{repo_id}/discussions/{num}", diff=1))

    def merge_pr(self, repo_id: str, num: int, *, repo_type: str = "model", comment: str = "") -> dict[str, Any]:
        """Squash-merge pull request `num` into its target branch (writers only)."""
        return dict(self.post(f"/api/{repo_type}s/{repo_id}/discussions/{num}/merge", {"comment": comment}))

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

    def whoami(self) -> dict[str, Any] | None:
        """Who the token is (None: anonymous)."""
        if not self.token:
            return None
        return dict(self.get("/api/whoami-v2"))

    def commits(self, repo_id: str, *, repo_type: str = "model", revision: str = "main", page: int = 0,
                limit: int = 50) -> tuple[list[dict[str, Any]], bool]:
        """One page of history from `revision`, newest first, and whether a next page exists."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.get(f"{self.endpoint}/api/{repo_type}s/{repo_id}/commits/{revision}",
                      params={"p": page, "limit": limit}, headers=headers, timeout=self.timeout)
        if r.status_code >= 400:
            raise HubError(r.headers.get("x-error-message") or f"HTTP {r.status_code}", r.status_code)
        return list(r.json()), 'rel="next"' in r.headers.get("link", "")

    def tree_page(self, repo_id: str, *, repo_type: str = "model", revision: str = "main", path: str = "",
                  recursive: bool = True, cursor: str | None = None, limit: int = 50) -> tuple[list[dict[str, Any]],
                                                                                           str | None]:
        """One page of a revision's files and folders in path order, and the cursor of the next page (None: last)."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        params: dict[str, Any] = {"recursive": "true" if recursive else "false", "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        where = f"/{quote(path, safe='')}" if path else ""
        r = httpx.get(f"{self.endpoint}/api/{repo_type}s/{repo_id}/tree/{quote(revision, safe='')}{where}",
                      params=params, headers=headers, timeout=self.timeout)
        if r.status_code >= 400:
            raise HubError(_message(r), r.status_code, r.headers.get("x-error-code"))
        following = r.links.get("next", {}).get("url")
        return list(r.json()), (httpx.URL(following).params.get("cursor") if following else None)

    def model_raw(self, repo_id: str, revision: str, *,
                  expand: tuple[str, ...] | None = MODEL_HEADER) -> dict[str, Any]:
        """The hub's raw model info for a revision: only the `expand` properties (None: all, `siblings` too)."""
        return dict(self.get(f"/api/models/{repo_id}/revision/{quote(revision, safe='')}",
                             expand=list(expand) if expand else None))

    def demo_link(self, repo_id: str, revision: str) -> dict[str, Any]:
        """A signed link (`url`, `expiresAt`) to the model's live demo that a browser opens without the token."""
        return dict(self.call("POST", f"/api/vitrine/spaces/{repo_id}/link", params={"revision": revision}))

    def weights(self, repo_id: str, revision: str) -> dict[str, Any]:
        """Every tensor of a version's safetensors and parameter counts by dtype."""
        return dict(self.get(f"/api/vitrine/models/{repo_id}/weights", revision=revision))

    def weight_diff(self, repo_id: str, old: str, new: str) -> dict[str, Any]:
        """The weight diff between two revisions, per tensor and per layer."""
        return dict(self.get(f"/api/vitrine/models/{repo_id}/diff", old=old, new=new))

    def card(self, repo_id: str, revision: str) -> dict[str, Any]:
        """The version's card (its README.md or the one the hub renders)."""
        return dict(self.get(f"/api/vitrine/models/{repo_id}/card", revision=revision))

    def predictions(self, job_id: str, *, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """A page of an evaluation's per-example predictions."""
        return dict(self.get(f"/api/vitrine/evals/{job_id}/predictions", offset=offset, limit=limit))

    def preview(self, dataset: str, *, revision: str, split: str, offset: int, limit: int) -> dict[str, Any]:
        """A page of rows of a dataset split."""
        return dict(self.get(f"/api/vitrine/datasets/{dataset}/preview", revision=revision, split=split,
                             offset=offset, limit=limit))

    def stats(self, dataset: str, *, revision: str, split: str) -> dict[str, Any]:
        """Per-column statistics of a dataset split."""
        return dict(self.get(f"/api/vitrine/datasets/{dataset}/stats", revision=revision, split=split))

    def sql(self, dataset: str, sql: str, *, revision: str, limit: int = 1000) -> dict[str, Any]:
        """Run one read-only SELECT over the revision's splits."""
        body = {"sql": sql, "revision": revision, "limit": limit}
        return dict(self.post(f"/api/vitrine/datasets/{dataset}/sql", body))

    def file_text(self, repo_id: str, path: str, *, revision: str, repo_type: str = "model") -> str | None:
        """A small file of a revision as text (None when the revision has no such file)."""
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.get(f"{self.endpoint}/{prefix}{repo_id}/resolve/{revision}/{path}", headers=headers,
                      timeout=self.timeout, follow_redirects=True)
        if r.status_code == 404 and r.headers.get("x-error-code") == "EntryNotFound":
            return None
        if r.status_code >= 400:
            raise HubError(r.headers.get("x-error-message") or f"HTTP {r.status_code}", r.status_code)
        return r.text

    def aliases(self, repo_id: str, *, history: bool = True) -> dict[str, Any]:
        """A model's aliases (name, commit, protected) and, with `history`, their audit log newest first."""
        return dict(self.get(f"/api/models/{repo_id}/aliases", history="1" if history else None))

    def promote(self, repo_id: str, revision: str, *, alias: str = "production", reason: str = "",
                force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Promote `revision` to `alias` through the gate (`status` promoted, pending, or with `dry_run` the verdict).

        Raises GateRefusedError (with the verdict) when the gate refuses, HubError otherwise.
        """
        body = {"revision": revision, "alias": alias, "reason": reason, "force": force, "dryRun": dry_run}
        return dict(self.post(f"/api/models/{repo_id}/promote", body))

    def rollback(self, repo_id: str, *, alias: str = "production", reason: str = "") -> dict[str, Any]:
        """Return `alias` to its previous target; the audit event."""
        return dict(self.post(f"/api/models/{repo_id}/rollback", {"alias": alias, "reason": reason}))

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint this hub serves that the token may see, with its state and the commit served."""
        return list(self.get("/api/vitrine/endpoints")["endpoints"])

    def endpoint_url(self, repo_id: str, alias: str = "production") -> str:
        """The relative URL of a model's endpoint for `alias` (`/endpoints/ns/name[@alias]`)."""
        return f"/endpoints/{repo_id}" + ("" if alias == "production" else f"@{alias}")

    def endpoint_ready(self, url: str) -> dict[str, Any]:
        """The status of the endpoint at relative `url` from its `/ready` (starts it on first call; 503 is not ready)."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.get(f"{self.endpoint}{url}/ready", headers=headers, timeout=self.timeout)
        if r.status_code in (200, 503) and r.headers.get("content-type", "").startswith("application/json"):
            return dict(r.json())
        raise HubError(_message(r), r.status_code, r.headers.get("x-error-code"))

    def endpoint_metrics(self, url: str) -> str:
        """The Prometheus text of the endpoint at relative `url`."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.get(f"{self.endpoint}{url}/metrics", headers=headers, timeout=self.timeout)
        if r.status_code >= 400:
            raise HubError(_message(r), r.status_code, r.headers.get("x-error-code"))
        return r.text

    def traffic(self, repo_id: str, alias: str) -> dict[str, Any]:
        """The canary or shadow rule of `alias`'s endpoint (`mode` off, canary or shadow; `target`, `share`)."""
        return dict(self.get(f"/api/models/{repo_id}/endpoints/{alias}/traffic"))

    def set_traffic(self, repo_id: str, alias: str, *, mode: str, target: str = "", share: float = 0.0,
                    reason: str = "") -> dict[str, Any]:
        """Set `alias`'s traffic rule (off, canary with `share` to `target`, or shadow to `target`); the rule set."""
        body = {"mode": mode, "target": target, "share": share, "reason": reason}
        return dict(self.call("PUT", f"/api/models/{repo_id}/endpoints/{alias}/traffic", body=body))

    def comparison(self, repo_id: str, alias: str, *, window: float = 3600) -> dict[str, Any]:
        """Agreement and confusion of `alias` with its canary or shadow on the same inputs over `window` seconds."""
        return dict(self.get(f"/api/models/{repo_id}/endpoints/{alias}/comparison", window=_num(window)))

    def timeseries(self, repo_id: str, alias: str, *, window: float = 3600, bucket: float = 60) -> dict[str, Any]:
        """Requests, errors and latency percentiles of `alias`'s endpoint per `bucket` seconds over `window`."""
        return dict(self.get(f"/api/models/{repo_id}/endpoints/{alias}/timeseries", window=_num(window),
                             bucket=_num(bucket)))

    def drift(self, repo_id: str, alias: str, *, window: float = 3600, eval_id: str | None = None) -> dict[str, Any]:
        """The drift report of `alias`'s live traffic against an evaluation of the commit it serves."""
        return dict(self.get(f"/api/models/{repo_id}/endpoints/{alias}/drift", window=_num(window),
                             eval=eval_id or None))

    def live_accuracy(self, repo_id: str, alias: str, *, window: float = 3600) -> dict[str, Any]:
        """Metrics per commit over `alias`'s answers in `window` that have ground truth posted."""
        return dict(self.get(f"/api/models/{repo_id}/endpoints/{alias}/accuracy", window=_num(window)))


def _message(r: httpx.Response) -> str:
    message = r.headers.get("x-error-message")
    try:
        body = r.json()
        message = (body.get("error") if isinstance(body, dict) else None) or message
    except ValueError:
        pass
    return message or f"HTTP {r.status_code}"


def _num(value: float) -> str:
    return f"{value:g}"
