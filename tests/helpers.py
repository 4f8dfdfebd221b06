"""Assertions shared by tests."""

from __future__ import annotations

from typing import Any


def assert_hub_error(resp: Any, status: int, code: str | None = None, *, contains: str | None = None) -> None:
    """Assert an error response has the hub's one shape (status, X-Error-Code, X-Request-Id, JSON error)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("x-request-id")
    if code is not None:
        assert resp.headers.get("x-error-code") == code, resp.headers
    if resp.request.method != "HEAD":
        body = resp.json()
        assert set(body) >= {"error"} and "detail" not in body, body
        if contains is not None:
            assert contains in body["error"], body
