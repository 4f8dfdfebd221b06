"""Assertions shared by tests."""

from __future__ import annotations

import socket
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def safetensors_bytes(n_bytes: int, *, seed: int = 0) -> bytes:
    """A valid safetensors file holding one random float32 tensor of about `n_bytes`."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    return save({"weight": rng.standard_normal(max(1, n_bytes // 4), dtype=np.float32)})


def opaque_bytes(n: int) -> bytes:
    """`n` random bytes that never parse as a pickle (so a `.bin` holding them is not refused as unsafe).

    About 2% of plain random buffers walk into a STACK_GLOBAL opcode before the pickle scanner gives up,
    and the hub then rightly refuses them; a leading NUL is no pickle opcode, so the scan stops at once.
    """
    import os

    return b"\x00" + os.urandom(n - 1) if n > 0 else b""


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header for `token` (none for an anonymous caller)."""
    return {"authorization": f"Bearer {token}"} if token else {}


def org_callers(hub: Any, org: str, prefix: str) -> dict[str, str | None]:
    """A token per kind of caller of `org`'s private repos: anonymous, an outsider, read and write members, an admin
    of the organisation (users named `<prefix>-outsider`, `-reader`, `-writer`, `-admin`)."""
    return {
        "anonymous": None,
        "outsider": hub.token(f"{prefix}-outsider", "write"),
        "read": hub.token(f"{prefix}-reader", "read", org=org, org_role="read"),
        "write": hub.token(f"{prefix}-writer", "write", org=org),
        "admin": hub.token(f"{prefix}-admin", "write", org=org, org_role="admin"),
    }
