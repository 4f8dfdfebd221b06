"""Shared bits of the CLI commands that talk to a hub over HTTP (as any user could script them)."""

from __future__ import annotations

import argparse
import os


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


def headers_of(args: argparse.Namespace) -> dict[str, str]:
    """Authorization header for raw httpx calls."""
    token = token_of(args)
    return {"authorization": f"Bearer {token}"} if token else {}
