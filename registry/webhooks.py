"""Webhooks: who wants which repo events at which URL, and the worker that delivers the outbox to them.

A webhook belongs to a user or an organisation (`owner`) and watches one repo or a whole namespace. The worker
reads new events of the outbox (registry/events.py), fans each out to the active webhooks that want it, and POSTs
a Hub-shaped JSON payload signed with the webhook's secret (`X-Webhook-Signature: sha256=<HMAC of the body>`),
retrying with exponential backoff. The rule that matters most: a webhook never receives an event of a repo its
owner cannot read, checked with the owner's current rights when the event is fanned out and again before every
delivery attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from registry import db, egress, events
from registry.auth import Principal, check_can_read
from registry.core import Registry
from registry.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RepoNotFoundError,
    UnauthorizedError,
)
from registry.names import RepoRef, check_name, check_repo_type, parse_repo_id
from registry.repos import RepoRecord, _record, get_repo

log = logging.getLogger("vitrine.webhooks")


POLL_S = 0.2
TIMEOUT_S = 10.0
LEASE_S = 60.0  # a claimed attempt may take this long before another worker may try again
# How long a hole in the outbox's ids is waited for. On PostgreSQL ids are drawn when a row is inserted, so a
# transaction still open (a commit on another replica) may hold an id below one already visible; a hole older
# than this is an id whose transaction rolled back (or a deleted repo's event), and is passed over.
GAP_WAIT_S = 5.0
PARALLEL = 4
PAYLOAD_VERSION = 3
MAX_URL = 2000
MAX_SECRET = 256
MAX_ID = 2**62  # ids beyond any the DB holds (and beyond what SQLite's integers take) are simply not found
STATES = ("pending", "succeeded", "failed", "skipped")
CURSOR_KEY = "webhooks.cursor"

webhooks = sa.Table(
    "webhooks",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(96), nullable=False, index=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("namespace", sa.String(96), nullable=True, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_by", sa.String(96), nullable=False),
    # Only events written after the webhook was registered reach it.
    sa.Column("after_event", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("repo_id", sa.Integer, nullable=False),
    sa.Column("replay_of", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", sa.Float, nullable=True, index=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
)

# Hub-shaped `event` of each kind: (scope, action, key carrying the event's own data).
_SHAPES: dict[str, tuple[str, str, str | None]] = {
    "repo.content": ("repo.content", "update", None),
    "repo.refs": ("repo", "update", None),
    "alias.moved": ("vitrine.alias", "update", "alias"),
    "promotion.refused": ("vitrine.promotion", "refused", "promotion"),
    "evaluation.finished": ("vitrine.evaluation", "finished", "evaluation"),
    "drift.detected": ("vitrine.drift", "detected", "drift"),
}
_WEB_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class WebhookNotFoundError(NotFoundError):
    """No webhook with that id, or the caller does not own it (answered the same)."""

    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"Webhook {webhook_id} not found.")


class DeliveryNotFoundError(NotFoundError):
    """No delivery with that id for the webhook."""

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"Delivery {delivery_id} not found.")


@dataclass(frozen=True)
class Webhook:
    """A registered webhook (its secret stays in the DB: it is never answered)."""

    id: int
    owner: str
    repo: RepoRef | None
    namespace: str | None
    url: str
    events: tuple[str, ...]
    active: bool
    created_by: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """The API shape."""
        target: dict[str, Any] = ({"type": "repo", "repo": self.repo.repo_id, "repoType": self.repo.type}
                                  if self.repo else {"type": "namespace", "namespace": self.namespace})
        return {"id": self.id, "owner": self.owner, "target": target, "url": self.url, "events": list(self.events),
                "active": self.active, "createdBy": self.created_by, "createdAt": self.created_at}


@dataclass(frozen=True)
class Delivery:
    """One delivery of one event to one webhook, with where its attempts stand."""

    id: int
    webhook_id: int
    event_id: int
    kind: str
    replay_of: int | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: float | None
    payload: dict[str, Any] | None
    created_at: float
    finished_at: float | None

    def to_json(self) -> dict[str, Any]:
        """The API shape."""
        return {"id": self.id, "webhookId": self.webhook_id, "eventId": self.event_id, "event": self.kind,
                "replayOf": self.replay_of, "status": self.status, "attempts": self.attempts,
                "lastStatusCode": self.last_status_code, "lastError": self.last_error,
                "nextAttemptAt": self.next_attempt_at, "payload": self.payload, "createdAt": self.created_at,
                "finishedAt": self.finished_at}


def ensure_tables(reg: Registry) -> None:
    """Create the webhook tables when missing (a DB made before this module existed lacks them)."""
    db.metadata.create_all(reg.engine, tables=[webhooks, webhook_deliveries])


# --- who may receive what ---------------------------------------------------------------------------------------


def owner_principal(conn: Connection, owner: str) -> Principal | None:
    """The owner's current rights as a read-only Principal: a user with their organisations, or an organisation.

    An organisation reads its own namespace (and public repos); None when the account no longer exists.
    """
    row = conn.execute(sa.select(db.users.c.id, db.users.c.is_org, db.users.c.is_admin)
                       .where(db.users.c.name == owner)).first()
    if row is None:
        return None
    if row.is_org:
        return Principal(owner, "read", token_name="webhook")
    orgs = conn.execute(
        sa.select(db.users.c.name, db.memberships.c.role)
        .join(db.memberships, db.memberships.c.org_id == db.users.c.id)
        .where(db.memberships.c.user_id == row.id)
    ).all()
    return Principal(owner, "read", bool(row.is_admin), {o.name: o.role for o in orgs}, "webhook")


def _may_read(principal: Principal | None, repo: RepoRecord) -> bool:
    try:
        check_can_read(principal, repo.ref, private=repo.private)
    except RepoNotFoundError:
        return False
    return True


def _find_repo_pk(conn: Connection, repo_pk: int) -> RepoRecord | None:
    row = conn.execute(sa.select(db.repos).where(db.repos.c.id == repo_pk)).first()
    return None if row is None else _record(row)


def _may_receive(conn: Connection, principal: Principal | None, repo: RepoRecord | None, data: dict[str, Any]) -> bool:
    """Whether the owner may read the event's repo (and, for an evaluation, its dataset too)."""
    if repo is None or not _may_read(principal, repo):
        return False
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("dataset"), str):
        try:
            ref = parse_repo_id(evaluation["dataset"], "dataset")
            row = conn.execute(sa.select(db.repos).where(
                db.repos.c.type == ref.type, db.repos.c.namespace == ref.namespace,
                db.repos.c.name == ref.name)).first()
        except InvalidInputError:
            return False
        if row is None or not _may_read(principal, _record(row)):
            return False
    return True


# --- registration -----------------------------------------------------------------------------------------------


def _webhook(row: Any, repo: RepoRef | None) -> Webhook:
    return Webhook(int(row.id), row.owner, repo, row.namespace, row.url, tuple(json.loads(row.events)),
                   bool(row.active), row.created_by, float(row.created_at))


def _signed_in(principal: Principal | None) -> Principal:
    if principal is None:
        raise UnauthorizedError("Webhooks need a token (HF_TOKEN).")
    return principal


def _writer(principal: Principal | None) -> Principal:
    principal = _signed_in(principal)
    if principal.role != "write":
        raise ForbiddenError(f"Token '{principal.token_name}' has the read role and cannot change webhooks.")
    return principal


def _owners(principal: Principal) -> set[str]:
    """The accounts whose webhooks `principal` manages: themself and the organisations they administer."""
    return {principal.user} | {org for org, role in principal.orgs.items() if role == "admin"}


def check_url(url: object) -> str:
    """The webhook URL if it is an absolute http(s) URL with a host, else InvalidInputError."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidInputError(f"Field 'url' must be an http(s) URL of at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError:
        raise InvalidInputError(f"Invalid webhook URL {url!r}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInputError(f"Invalid webhook URL {url!r}: expected http:// or https:// and a host.")
    return url


def check_events(kinds: object) -> tuple[str, ...]:
    """The event kinds, deduplicated in order, if they are a non-empty list of known kinds."""
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise InvalidInputError(f"Field 'events' must be a non-empty list of: {', '.join(events.KINDS)}.")
    unknown = [k for k in kinds if k not in events.KINDS]
    if unknown:
        raise InvalidInputError(f"Unknown event kind {unknown[0]!r}: expected some of {', '.join(events.KINDS)}.")
    return tuple(dict.fromkeys(kinds))


def create_webhook(reg: Registry, principal: Principal | None, *, url: object, secret: object, kinds: object,
                   repo: RepoRef | None = None, namespace: str | None = None, owner: str | None = None) -> Webhook:
    """Register a webhook on `repo` or on every repo of `namespace`, owned by the caller or an org they administer.

    Raises:
        UnauthorizedError, ForbiddenError: no token, a read token, or an `owner` the caller does not administer.
        InvalidInputError: a bad URL, secret, event kind, or not exactly one of `repo` and `namespace`.
        RepoNotFoundError: the repo does not exist, or the caller (or the owner) may not read it.
        NotFoundError: the namespace does not exist.
    """
    principal = _writer(principal)
    url = check_url(url)
    egress.check_reachable(reg.settings.webhook_egress, url)
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET:
        raise InvalidInputError(f"Field 'secret' must be a non-empty string of at most {MAX_SECRET} characters.")
    chosen = check_events(kinds)
    owner = owner or principal.user
    if not isinstance(owner, str):
        raise InvalidInputError("Field 'owner' must be a string.")
    if owner not in _owners(principal):
        raise ForbiddenError(f"User {principal.user!r} may not register webhooks for {owner!r}: "
                             "only for yourself or an organisation you administer.")
    if (repo is None) == (namespace is None):
        raise InvalidInputError("Give exactly one of 'repo' (with 'repoType') and 'namespace'.")
    repo_pk = None
    with reg.engine.connect() as conn:
        owner_rights = owner_principal(conn, owner)
        if owner_rights is None:
            raise NotFoundError(f"Account {owner!r} not found.")
        if repo is not None:
            record = get_repo(reg, repo)
            check_can_read(principal, repo, private=record.private)
            check_can_read(owner_rights, repo, private=record.private)
            repo_pk = record.pk
        else:
            assert namespace is not None
            check_name(namespace, what="namespace")
            if conn.execute(sa.select(db.users.c.id).where(db.users.c.name == namespace)).first() is None:
                raise NotFoundError(f"Namespace {namespace!r} not found.")
    with reg.write().begin() as conn:
        after = conn.execute(sa.select(sa.func.max(db.events.c.id))).scalar() or 0
        now = db.now()
        res = conn.execute(sa.insert(webhooks).values(
            owner=owner, repo_id=repo_pk, namespace=namespace, url=url, secret=secret, events=json.dumps(chosen),
            active=True, created_by=principal.user, after_event=int(after), created_at=now))
        key = res.inserted_primary_key
        assert key is not None
    return Webhook(int(key[0]), owner, repo, namespace, url, chosen, True, principal.user, now)


def _rows_with_repos(conn: Connection, where: Any) -> list[Webhook]:
    rows = conn.execute(
        sa.select(webhooks, db.repos.c.type.label("r_type"), db.repos.c.namespace.label("r_ns"),
                  db.repos.c.name.label("r_name"))
        .select_from(webhooks.outerjoin(db.repos, db.repos.c.id == webhooks.c.repo_id))
        .where(where).order_by(webhooks.c.id)
    ).all()
    return [_webhook(r, RepoRef(r.r_type, r.r_ns, r.r_name) if r.repo_id is not None else None) for r in rows]


def list_webhooks(reg: Registry, principal: Principal | None) -> list[Webhook]:
    """The caller's webhooks and those of the organisations they administer, oldest first."""
    principal = _signed_in(principal)
    with reg.engine.connect() as conn:
        return _rows_with_repos(conn, webhooks.c.owner.in_(sorted(_owners(principal))))


def get_webhook(reg: Registry, principal: Principal | None, webhook_id: int) -> Webhook:
    """One webhook the caller owns (or administers the owning organisation of), else WebhookNotFoundError."""
    principal = _signed_in(principal)
    if not 0 < webhook_id < MAX_ID:
        raise WebhookNotFoundError(webhook_id)
    with reg.engine.connect() as conn:
        found = _rows_with_repos(conn, webhooks.c.id == webhook_id)
    if not found or found[0].owner not in _owners(principal):
        raise WebhookNotFoundError(webhook_id)
    return found[0]


def delete_webhook(reg: Registry, principal: Principal | None, webhook_id: int) -> None:
    """Remove a webhook the caller owns, with its delivery log."""
    get_webhook(reg, principal, webhook_id)
    _writer(principal)
    with reg.write().begin() as conn:
        conn.execute(sa.delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
        conn.execute(sa.delete(webhooks).where(webhooks.c.id == webhook_id))


def _delivery(row: Any) -> Delivery:
    return Delivery(int(row.id), int(row.webhook_id), int(row.event_id), row.kind, row.replay_of, row.status,
                    int(row.attempts), row.last_status_code, row.last_error, row.next_attempt_at,
                    json.loads(row.payload) if row.payload else None, float(row.created_at), row.finished_at)


def list_deliveries(reg: Registry, principal: Principal | None, webhook_id: int, *, limit: int = 100,
                    ) -> list[Delivery]:
    """The delivery log of a webhook the caller owns, newest first."""
    get_webhook(reg, principal, webhook_id)
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
                            .order_by(webhook_deliveries.c.id.desc()).limit(limit)).all()
    return [_delivery(r) for r in rows]


def replay_delivery(reg: Registry, principal: Principal | None, webhook_id: int, delivery_id: int) -> Delivery:
    """Queue the payload of an earlier delivery again, as a new pending delivery (checked again before sending)."""
    get_webhook(reg, principal, webhook_id)
    _writer(principal)
    if not 0 < delivery_id < MAX_ID:
        raise DeliveryNotFoundError(delivery_id)
    with reg.write().begin() as conn:
        row = conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id,
                                                               webhook_deliveries.c.webhook_id == webhook_id)).first()
        if row is None:
            raise DeliveryNotFoundError(delivery_id)
        if not row.payload:
            raise InvalidInputError(f"Delivery {delivery_id} was skipped (the owner could not read the repo); "
                                    "it has nothing to replay.")
        now = db.now()
        res = conn.execute(sa.insert(webhook_deliveries).values(
            webhook_id=webhook_id, event_id=row.event_id, kind=row.kind, repo_id=row.repo_id,
            replay_of=row.replay_of or row.id, status="pending", attempts=0, next_attempt_at=now,
            payload=row.payload, created_at=now))
        key = res.inserted_primary_key
        assert key is not None
        made = conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.id == int(key[0]))).one()
    return _delivery(made)


# --- fan-out ----------------------------------------------------------------------------------------------------


def _base_url(reg: Registry) -> str:
    return (reg.settings.public_url or f"http://{reg.settings.host}:{reg.settings.port}").rstrip("/")


def payload_of(reg: Registry, event: events.Event, repo: RepoRecord, webhook_id: int) -> dict[str, Any]:
    """The Hub-shaped body delivered for `event` of `repo` to webhook `webhook_id`."""
    scope, action, key = _SHAPES[event.kind]
    base, ref = _base_url(reg), repo.ref
    body: dict[str, Any] = {
        "event": {"action": action, "scope": scope},
        "repo": {"type": ref.type, "name": ref.repo_id, "id": str(repo.pk), "private": repo.private,
                 "url": {"web": f"{base}/{_WEB_PREFIX[ref.type]}{ref.repo_id}",
                         "api": f"{base}/api/{ref.type}s/{ref.repo_id}"}},
        "webhook": {"id": str(webhook_id), "version": PAYLOAD_VERSION},
        "vitrine": {"eventId": event.id, "kind": event.kind, "actor": event.actor, "createdAt": event.created_at},
    }
    refs = event.data.get("updatedRefs")
    if refs is not None:
        body["updatedRefs"] = refs
    if event.kind == "repo.content":
        if refs:
            body["repo"]["headSha"] = refs[0].get("newSha")
        if "commit" in event.data:
            body["commit"] = event.data["commit"]
    if key is not None:
        body[key] = event.data.get(key, event.data)
    return body


def _cursor(conn: Connection) -> int | None:
    value = conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == CURSOR_KEY)).scalar_one_or_none()
    return None if value is None else int(value)


def _settled(batch: list[events.Event], start: int) -> list[events.Event]:
    """The events of `batch` up to the first hole in the ids that may still fill (see GAP_WAIT_S)."""
    out, expected, now = [], start + 1, db.now()
    for event in batch:
        if event.id != expected and now - event.created_at < GAP_WAIT_S:
            break  # moving the cursor past the hole would lose the event a pending transaction is about to commit
        out.append(event)
        expected = event.id + 1
    return out


def fan_out(reg: Registry, *, limit: int = 500) -> int:
    """Turn outbox events past the cursor into pending deliveries of the webhooks that want them; how many events.

    An event reaches a webhook only when the webhook wants its kind, watches its repo or namespace, was
    registered before it happened, and its owner may read the repo now; nothing is recorded otherwise.
    The cursor moves in the same transaction (compare-and-set, so two workers never fan out one event twice).
    """
    with reg.engine.connect() as conn:
        start = _cursor(conn)
    if start is None:
        with reg.write().begin() as conn:
            if _cursor(conn) is None:
                conn.execute(sa.insert(db.kv).values(key=CURSOR_KEY, value="0"))
        return 0
    batch = _settled(events.events_after(reg, start, limit=limit), start)
    if not batch:
        return 0
    with reg.write().begin() as conn:
        moved = conn.execute(sa.update(db.kv).where(db.kv.c.key == CURSOR_KEY, db.kv.c.value == str(start))
                             .values(value=str(batch[-1].id)))
        if moved.rowcount != 1:
            return 0  # another worker took this batch
        hooks = conn.execute(sa.select(webhooks).where(webhooks.c.active.is_(True),
                                                       webhooks.c.after_event < batch[-1].id)).all()
        rights: dict[str, Principal | None] = {}
        repos: dict[int, RepoRecord | None] = {}
        now = db.now()
        for event in batch:
            if event.repo_pk not in repos:
                repos[event.repo_pk] = _find_repo_pk(conn, event.repo_pk)
            repo = repos[event.repo_pk]
            if repo is None:
                continue
            for hook in hooks:
                if event.id <= hook.after_event or event.kind not in json.loads(hook.events):
                    continue
                if hook.repo_id is not None and hook.repo_id != repo.pk:
                    continue
                if hook.repo_id is None and hook.namespace != repo.ref.namespace:
                    continue
                if hook.owner not in rights:
                    rights[hook.owner] = owner_principal(conn, hook.owner)
                if not _may_receive(conn, rights[hook.owner], repo, event.data):
                    continue
                body = payload_of(reg, event, repo, int(hook.id))
                conn.execute(sa.insert(webhook_deliveries).values(
                    webhook_id=hook.id, event_id=event.id, kind=event.kind, repo_id=repo.pk, status="pending",
                    attempts=0, next_attempt_at=now, payload=json.dumps(body, sort_keys=True, default=str),
                    created_at=now))
    return len(batch)


# --- delivery ---------------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The `X-Webhook-Signature` value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_s(reg: Registry, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (VITRINE_WEBHOOK_BACKOFF_MS, doubled each retry)."""
    return reg.settings.webhook_backoff_ms * 2 ** max(0, attempts - 1) / 1000


def _claim_due(reg: Registry, *, limit: int) -> list[Any]:
    """Due pending deliveries, each leased to this worker (its next attempt pushed LEASE_S ahead)."""
    now = db.now()
    with reg.engine.connect() as conn:
        due = conn.execute(sa.select(webhook_deliveries.c.id, webhook_deliveries.c.next_attempt_at)
                           .where(webhook_deliveries.c.status == "pending",
                                  webhook_deliveries.c.next_attempt_at <= now)
                           .order_by(webhook_deliveries.c.id).limit(limit)).all()
    claimed = []
    for row in due:
        with reg.write().begin() as conn:
            res = conn.execute(sa.update(webhook_deliveries).where(
                webhook_deliveries.c.id == row.id, webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_at == row.next_attempt_at).values(next_attempt_at=now + LEASE_S))
            if res.rowcount == 1:
                claimed.append(row.id)
    return claimed


def _finish(reg: Registry, delivery_id: int, **values: Any) -> None:
    with reg.write().begin() as conn:
        conn.execute(sa.update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(**values))


def attempt(reg: Registry, delivery_id: int, *, client: httpx.Client | None = None) -> str:
    """Make one attempt at a delivery (checking first that the owner may still read the repo); its new status."""
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(webhook_deliveries, webhooks.c.url, webhooks.c.secret, webhooks.c.owner,
                                     webhooks.c.active)
                           .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                           .where(webhook_deliveries.c.id == delivery_id)).first()
        if row is None:
            return "gone"
        payload = json.loads(row.payload) if row.payload else {}
        data = {"evaluation": payload["evaluation"]} if isinstance(payload.get("evaluation"), dict) else {}
        allowed = _may_receive(conn, owner_principal(conn, row.owner), _find_repo_pk(conn, row.repo_id), data)
    now = db.now()
    if not allowed:
        # Nothing of the event stays readable in the log of an owner who may no longer read the repo.
        _finish(reg, delivery_id, status="skipped", payload="", finished_at=now, next_attempt_at=None,
                last_error="Skipped: the webhook's owner may no longer read this repo.")
        return "skipped"
    if not row.active:
        _finish(reg, delivery_id, status="failed", finished_at=now, next_attempt_at=None,
                last_error="The webhook is inactive.")
        return "failed"
    body = row.payload.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Vitrine-Webhooks/1",
               "X-Webhook-Signature": sign(row.secret, body), "X-Webhook-Event": row.kind,
               "X-Webhook-Delivery": str(delivery_id), "X-Webhook-Id": str(row.webhook_id)}
    code: int | None = None
    error: str | None = None
    try:
        # To the address checked, not to whatever the name resolves to next (registry/egress.py); no proxy from the
        # environment, which would connect on its own terms.
        url, host, extensions = egress.pinned(reg.settings.webhook_egress, row.url)
        own = client or httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False,
                                     verify=_tls_context())
        try:
            # Streamed, so a receiver answering a huge body costs at most the few bytes the log keeps of it.
            with own.stream("POST", url, content=body, headers={**headers, **host},
                            extensions=extensions) as response:
                code = response.status_code
                if not 200 <= code < 300:
                    snippet = b""
                    for chunk in response.iter_bytes():
                        snippet += chunk
                        if len(snippet) >= 200:
                            break
                    error = f"HTTP {code}: {snippet[:200].decode('utf-8', 'replace')}"
        finally:
            if client is None:
                own.close()
    except egress.BlockedAddressError as exc:
        error = f"Blocked: {exc}"[:500]
    except (httpx.HTTPError, OSError) as exc:  # OSError: the name does not resolve
        error = f"{type(exc).__name__}: {exc}"[:500]
    attempts = int(row.attempts) + 1
    done = db.now()
    if error is None:
        _finish(reg, delivery_id, status="succeeded", attempts=attempts, last_status_code=code, last_error=None,
                next_attempt_at=None, finished_at=done)
        return "succeeded"
    if attempts >= reg.settings.webhook_max_attempts:
        _finish(reg, delivery_id, status="failed", attempts=attempts, last_status_code=code, last_error=error,
                next_attempt_at=None, finished_at=done)
        return "failed"
    _finish(reg, delivery_id, status="pending", attempts=attempts, last_status_code=code, last_error=error,
            next_attempt_at=done + backoff_s(reg, attempts))
    return "pending"


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Certificates as httpx trusts them by default, `SSL_CERT_FILE` / `SSL_CERT_DIR` included (an internal CA),
    though deliveries ignore the environment's proxies."""
    return httpx.create_ssl_context(trust_env=True)


def deliver_due(reg: Registry, *, pool: ThreadPoolExecutor | None = None, limit: int = 50) -> int:
    """Attempt every due delivery (in `pool` when given); how many were attempted."""
    claimed = _claim_due(reg, limit=limit)
    if pool is None:
        for delivery_id in claimed:
            attempt(reg, delivery_id)
    else:
        for _ in pool.map(lambda d: attempt(reg, d), claimed):
            pass
    return len(claimed)


def work(reg: Registry, stop: Any, *, poll_s: float = POLL_S) -> None:
    """The delivery worker loop: fan out new outbox events, attempt due deliveries, until `stop` is set."""
    ensure_tables(reg)
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="vitrine-webhook") as pool:
        while not stop.is_set():
            busy = 0
            try:
                busy = fan_out(reg) + deliver_due(reg, pool=pool)
            except Exception:  # a DB hiccup must not end the worker; the next round retries
                log.exception("webhook worker round failed")
                time.sleep(poll_s)
            if not busy:
                stop.wait(poll_s)


def parse_target(body: dict[str, Any]) -> tuple[RepoRef | None, str | None]:
    """The `repo` (+ `repoType`) or `namespace` of a registration body."""
    repo, namespace = body.get("repo"), body.get("namespace")
    if repo is not None and namespace is not None:
        raise InvalidInputError("Give exactly one of 'repo' (with 'repoType') and 'namespace'.")
    if repo is not None:
        if not isinstance(repo, str):
            raise InvalidInputError("Field 'repo' must be a string like owner/name.")
        repo_type = body.get("repoType", "model")
        if not isinstance(repo_type, str):
            raise InvalidInputError("Field 'repoType' must be model, dataset or space.")
        return parse_repo_id(repo, check_repo_type(repo_type)), None
    if namespace is not None:
        if not isinstance(namespace, str):
            raise InvalidInputError("Field 'namespace' must be a string.")
        return None, namespace
    raise InvalidInputError("Give exactly one of 'repo' (with 'repoType') and 'namespace'.")
