"""Shared bits of the CLI commands that talk to a hub over HTTP (as any user could script them)."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

import httpx


def add_client_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--endpoint` and `--token`, defaulting to HF_ENDPOINT / HF_TOKEN like the hf CLI."""
    p.add_argument("--endpoint", default=None, help="hub URL (default: $HF_ENDPOINT or http://127.0.0.1:8000)")
    p.add_argument("--token", default=None, help="access token (default: $HF_TOKEN)")
    return p


def endpoint_of(args: argparse.Namespace) -> str:
    """The hub URL to talk to."""
    return (args.endpoint or os.environ.get("HF_ENDPOINT") or "http://127.0.0.1:8000").rstrip("/")


def token_of(args: argparse.Namespace) -> str | None:
    """The token to send, if any."""
    return args.token or os.environ.get("HF_TOKEN") or None


class CliError(Exception):
    """A failure the CLI explains in one line, with the next step; `body` is the hub's error body, if any."""

    def __init__(self, message: str, *, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


def list_tags_command(endpoint: str, repo_id: str) -> str:
    """The `hf` command that lists a repo's tags on this hub (the hf CLI has no command listing branches)."""
    return f"HF_ENDPOINT={endpoint} hf repos tag list {repo_id}"


def get_json(endpoint: str, token: str | None, path: str, *, params: dict[str, str], timeout: float = 600,
             repo_id: str | None = None, progress: str | None = None) -> Any:
    """GET a hub API path, turning the hub's error shape into a CliError that says what to do next.

    Args:
        repo_id: the repo the path is about, named in the hints.
        progress: a spinner message shown on a terminal while the hub works (diffs and renders take a while).
    """
    return send_json(endpoint, token, "GET", path, params=params, timeout=timeout, repo_id=repo_id,
                     progress=progress)


def send_json(endpoint: str, token: str | None, method: str, path: str, *, params: dict[str, str] | None = None,
              body: Any = None, timeout: float = 600, repo_id: str | None = None, progress: str | None = None) -> Any:
    """Call a hub API path with an optional JSON body; the hub's errors become a CliError with the next step."""
    from rich.console import Console

    headers = {"authorization": f"Bearer {token}"} if token else {}
    spinner = Console(stderr=True).status(progress) if progress else contextlib.nullcontext()
    try:
        with spinner:
            r = httpx.request(method, f"{endpoint}{path}", params=params, headers=headers, json=body,
                              timeout=timeout)
    except httpx.HTTPError as exc:
        raise CliError(f"Cannot reach the hub at {endpoint} ({exc}). Is `vitrine serve` running?") from None
    code, message = r.headers.get("x-error-code"), r.headers.get("x-error-message")
    if code == "RepoNotFound":
        raise CliError(f"{message} Check the name, or pass --token if it is private.")
    if code == "RevisionNotFound":
        tags = f"`{list_tags_command(endpoint, repo_id)}`" if repo_id else "`hf repos tag list <repo>`"
        raise CliError(f"{message} List its tags with {tags}; a branch name or a commit id works too.")
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = None
        raise CliError(message or r.text, body=body)
    return r.json()
