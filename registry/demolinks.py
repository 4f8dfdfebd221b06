"""Signed links to a model's live demo, for browsers that carry no token (an iframe, a link someone clicks).

As the Hub does for private Spaces: a caller who may read a model gets a short-lived link
`/spaces/{owner}/{name}/?__sign=<token>`; the hub turns the token into a cookie scoped to that demo.
The token names the repo (its pk), the viewer (the id of the hub token it was minted with) and an
expiry, and is an HMAC of those and of that hub token's hash under the registry's secret. It grants
nothing by itself: every request re-reads the viewer (revoked token, membership) and the repo
(visibility) as they are now, and it opens only the one repo it was signed for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from registry import auth
from registry.auth import Principal
from registry.core import Registry
from registry.errors import RepoNotFoundError, UnauthorizedError
from registry.names import RepoRef
from registry.repos import RepoRecord, open_repo

# Part of every signed message, so no other signature the hub makes (LFS links) ever reads as one of these.
PURPOSE = "demo-link:v1"
_TOKEN = re.compile(r"(?P<repo>[0-9]{1,18})\.(?P<token>[0-9]{1,18})\.(?P<expires>[0-9]{1,12})\.(?P<sig>[0-9a-f]{64})")


@dataclass(frozen=True)
class DemoLink:
    """A signed demo token: the repo it opens, the hub token it stands for, its expiry (UNIX seconds)."""

    token: str
    repo_pk: int
    token_id: int
    expires: int


def _sign(reg: Registry, repo_pk: int, token_id: int, expires: int, token_hash: str) -> str:
    message = f"{PURPOSE}:{repo_pk}:{token_id}:{expires}:{token_hash}"
    return hmac.new(reg.secret, message.encode(), hashlib.sha256).hexdigest()


def sign_demo_link(reg: Registry, repo: RepoRecord, bearer: str, *, ttl: int, now: float | None = None) -> DemoLink:
    """A token opening `repo`'s live demo as the holder of hub token `bearer` for `ttl` seconds.

    The caller has already opened `repo` with `bearer`'s principal: this only signs.

    Raises:
        UnauthorizedError: `bearer` is not a known token.
    """
    identity = auth.token_identity(reg, bearer)
    if identity is None:
        raise UnauthorizedError("Invalid credentials in Authorization header")
    token_id, token_hash = identity
    expires = int(time.time() if now is None else now) + ttl
    sig = _sign(reg, repo.pk, token_id, expires, token_hash)
    return DemoLink(f"{repo.pk}.{token_id}.{expires}.{sig}", repo.pk, token_id, expires)


def open_demo_link(reg: Registry, token: str, ref: RepoRef, *,
                   now: float | None = None) -> tuple[Principal, RepoRecord, DemoLink]:
    """The viewer a demo token stands for and the repo `ref` it opens, both checked as they are now.

    Raises:
        RepoNotFoundError: for anything wrong, told apart to nobody: a malformed, tampered or expired token,
            one signed for another repo, a revoked hub token, or a viewer who may no longer read `ref`.
    """
    refused = RepoNotFoundError(ref.repo_id, ref.type)
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise refused
    repo_pk, token_id, expires = int(match["repo"]), int(match["token"]), int(match["expires"])
    if expires <= (time.time() if now is None else now):
        raise refused
    found = auth.principal_by_token_id(reg, token_id)
    if found is None:
        raise refused
    principal, token_hash = found
    if not hmac.compare_digest(_sign(reg, repo_pk, token_id, expires, token_hash), match["sig"]):
        raise refused
    repo = open_repo(reg, ref, principal)  # RepoNotFoundError when the viewer may not read it (any more)
    if repo.pk != repo_pk:
        raise refused
    return principal, repo, DemoLink(token, repo_pk, token_id, expires)
