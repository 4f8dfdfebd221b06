"""The one configuration object, read from `VITRINE_*` environment variables; CLI flags override it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.egress import EgressPolicy


def _setting(default: Any, env: str, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    """Everything a Vitrine process needs to know about its environment."""

    # No fixed default: a relative one would follow whatever folder a command runs in (see `default_home`).
    home: Path = field(
        default_factory=lambda: default_home(os.environ),
        metadata={"env": "VITRINE_HOME", "help": "Directory holding the database, blobs and caches.",
                  "shown": "$XDG_DATA_HOME/vitrine (~/.local/share/vitrine)"},
    )
    database_url: str = _setting(
        "", "VITRINE_DATABASE_URL", "SQLAlchemy URL of the metadata DB; default sqlite:///$VITRINE_HOME/vitrine.db."
    )
    storage_url: str = _setting(
        "", "VITRINE_STORAGE_URL",
        "Where blobs live: file:///dir or s3://bucket/prefix (endpoint, region, keys from AWS_*); default "
        "file://$VITRINE_HOME/blobs."
    )
    blob_cache_mb: int = _setting(
        20480, "VITRINE_BLOB_CACHE_MB",
        "With S3 storage: local cache (in $VITRINE_HOME/blob-cache) of blobs that need a file (models; parquet is read "
        "in place), in MiB; "
        "least recently used evicted."
    )
    s3_part_mb: int = _setting(
        8, "VITRINE_S3_PART_MB", "With S3 storage: size of one multipart upload part, in MiB (5 to 5120)."
    )
    s3_create_bucket: bool = _setting(
        False, "VITRINE_S3_CREATE_BUCKET", "With S3 storage: create the bucket at start if it is missing."
    )
    s3_presign: str = _setting(
        "off", "VITRINE_S3_PRESIGN",
        "With S3 storage: let LFS bytes (and Xet downloads) go straight between clients and the bucket through presigned "
        "URLs: off (all through the hub), download (resolve redirects, xorb links), upload (LFS batch links), or all."
    )
    s3_presign_ttl_s: int = _setting(
        600, "VITRINE_S3_PRESIGN_TTL_S",
        "Seconds a presigned download URL (a resolve redirect) stays valid; upload URLs last VITRINE_UPLOAD_URL_TTL, "
        "xorb URLs VITRINE_XET_TOKEN_TTL_S."
    )
    s3_presign_part_mb: int = _setting(
        128, "VITRINE_S3_PRESIGN_PART_MB",
        "With presigned uploads: size of one part a client PUTs straight to the bucket, in MiB (5 to 5120). Clients "
        "send parts one after another, so larger parts cost fewer round trips; a file no larger is one PUT."
    )
    s3_presign_endpoint: str = _setting(
        "", "VITRINE_S3_PRESIGN_ENDPOINT",
        "With presigned transfers: the S3 endpoint URL clients reach, signed into the URLs; default AWS_ENDPOINT_URL "
        "(the one the hub uses)."
    )
    host: str = _setting("127.0.0.1", "VITRINE_HOST", "Interface `vitrine serve` binds to.")
    port: int = _setting(8000, "VITRINE_PORT", "Port `vitrine serve` listens on.")
    public_url: str = _setting(
        "", "VITRINE_PUBLIC_URL", "Base URL clients reach the hub at (for upload links); default: the request's own."
    )
    admin_token: str = _setting("", "VITRINE_ADMIN_TOKEN", "If set, seeded at start as a write token of user `admin`.")
    max_upload_bytes: int = _setting(
        50 * 1024**3, "VITRINE_MAX_UPLOAD_BYTES", "Largest single file accepted by an upload, in bytes."
    )
    max_inline_bytes: int = _setting(
        10 * 1024**2, "VITRINE_MAX_INLINE_BYTES", "Largest file accepted inline in a commit (base64), in bytes."
    )
    max_json_bytes: int = _setting(
        16 * 1024**2, "VITRINE_MAX_JSON_BYTES", "Largest JSON or form request body (repo create, LFS batch...), in bytes."
    )
    allow_unsafe_pickles: bool = _setting(
        False, "VITRINE_ALLOW_UNSAFE_PICKLES", "Accept pickles that import unsafe globals (marked unsafe)."
    )
    upload_url_ttl: int = _setting(3600, "VITRINE_UPLOAD_URL_TTL", "Seconds a signed LFS upload link stays valid.")
    gc_grace_seconds: int = _setting(
        3600, "VITRINE_GC_GRACE_SECONDS", "`vitrine gc` keeps unreferenced blobs younger than this (uploads in flight)."
    )
    eval_warmup: bool = _setting(
        True, "VITRINE_EVAL_WARMUP", "Import the inference stack when the evaluation worker starts, not at the first job."
    )
    job_stale_s: float = _setting(
        60.0, "VITRINE_JOB_STALE_S",
        "Seconds without a heartbeat after which a running background job (an evaluation) counts as orphaned and "
        "another replica takes it over."
    )
    console_hub_url: str = _setting(
        "", "VITRINE_ENDPOINT", "Hub URL the console talks to; default $HF_ENDPOINT, else http://$VITRINE_HOST:$VITRINE_PORT."
    )
    console_token: str = _setting(
        "", "VITRINE_TOKEN", "Token the console signs in with for a local setup; default $HF_TOKEN, else anonymous."
    )
    demo_memory_budget_mb: int = _setting(
        2048, "VITRINE_DEMO_MEMORY_MB", "Memory budget for live Gradio demos kept loaded (LRU), in MiB."
    )
    demo_link_ttl: int = _setting(
        3600, "VITRINE_DEMO_LINK_TTL",
        "Seconds a signed link to a model's live demo (for browsers: iframes, shared links), and its cookie, stays valid."
    )
    sql_row_limit: int = _setting(
        10000, "VITRINE_SQL_ROW_LIMIT", "Most rows a dataset SQL query or preview returns (more are cut, flagged truncated)."
    )
    sql_timeout_s: int = _setting(
        30, "VITRINE_SQL_TIMEOUT_S", "Seconds a dataset SQL query, preview or statistics may run before it is interrupted."
    )
    console_url: str = _setting(
        "http://127.0.0.1:8501", "VITRINE_CONSOLE_URL", "Console URL the hub sends browsers to from its human URLs."
    )
    console_max_upload_mb: int = _setting(
        512, "VITRINE_CONSOLE_MAX_UPLOAD_MB",
        "Largest file the console's dataset import takes (Streamlit holds it in memory; also its server.maxUploadSize), "
        "in MB; larger ones: `vitrine dataset import`."
    )

    endpoint_max_batch: int = _setting(
        32, "VITRINE_ENDPOINT_MAX_BATCH", "Most inputs an inference endpoint packs into one forward pass."
    )
    endpoint_max_batch_tokens: int = _setting(
        16384, "VITRINE_ENDPOINT_MAX_BATCH_TOKENS",
        "Token budget of one endpoint batch (longest input x inputs, as padding makes it); a longer input is refused."
    )
    endpoint_max_queue: int = _setting(
        512, "VITRINE_ENDPOINT_MAX_QUEUE", "Inputs an endpoint queues at most; beyond, it answers 503 with Retry-After."
    )
    endpoint_batch_wait_ms: int = _setting(
        20, "VITRINE_ENDPOINT_BATCH_WAIT_MS",
        "Right after a forward pass, how long an endpoint's next batch waits for as many inputs as that pass held "
        "(the callers it answered coming back), in ms; 0: it never waits. An idle endpoint never waits."
    )
    endpoint_max_inputs: int = _setting(
        32, "VITRINE_ENDPOINT_MAX_INPUTS", "Most inputs one endpoint request may carry."
    )
    endpoint_max_body_bytes: int = _setting(
        8 * 1024**2, "VITRINE_ENDPOINT_MAX_BODY_BYTES", "Largest endpoint request body, in bytes."
    )
    endpoint_timeout_ms: int = _setting(
        30000, "VITRINE_ENDPOINT_TIMEOUT_MS", "Milliseconds an endpoint request may wait and run before a 504."
    )
    endpoint_poll_ms: int = _setting(
        500, "VITRINE_ENDPOINT_POLL_MS", "How often an endpoint looks for a move of its alias (then hot-swaps), in ms."
    )
    endpoint_device: str = _setting("cpu", "VITRINE_ENDPOINT_DEVICE", "Device endpoints load models onto (cpu, cuda).")

    prediction_log_sample: float = _setting(
        1.0, "VITRINE_PREDICTION_LOG_SAMPLE", "Share of endpoint requests written to the prediction log (0 to 1)."
    )
    prediction_log_inputs: str = _setting(
        "full", "VITRINE_PREDICTION_LOG_INPUTS", "What the prediction log keeps of inputs: full, or hash (sha256 only)."
    )
    prediction_log_roll_s: int = _setting(
        60, "VITRINE_PREDICTION_LOG_ROLL_S", "Seconds before buffered prediction-log rows are rolled into a segment."
    )

    drift_check_s: int = _setting(
        3600, "VITRINE_DRIFT_CHECK_S",
        "Seconds between an endpoint's own drift checks over that window (0: only when asked); drift emits an event."
    )
    webhook_max_attempts: int = _setting(
        5, "VITRINE_WEBHOOK_MAX_ATTEMPTS", "Tries of one webhook delivery before it is marked failed."
    )
    webhook_allowed_networks: str = _setting(
        "external", "VITRINE_WEBHOOK_ALLOWED_NETWORKS",
        "Networks webhook deliveries may reach, comma-separated: external (global addresses), private (RFC 1918, "
        "IPv6 ULA), loopback, * (anything), or CIDR blocks; checked on the address connected to."
    )
    webhook_backoff_ms: int = _setting(
        1000, "VITRINE_WEBHOOK_BACKOFF_MS", "Wait before a webhook delivery's first retry, in ms; doubled each retry."
    )
    xet_token_ttl_s: int = _setting(
        3600, "VITRINE_XET_TOKEN_TTL_S", "Seconds a Xet access token (and a xorb download link) stays valid; at least 120."
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.prediction_log_sample <= 1.0:
            raise ValueError(f"VITRINE_PREDICTION_LOG_SAMPLE={self.prediction_log_sample} must be between 0 and 1")
        if self.console_max_upload_mb < 1:
            raise ValueError(f"VITRINE_CONSOLE_MAX_UPLOAD_MB={self.console_max_upload_mb} must be at least 1")
        if self.demo_link_ttl < 1:
            raise ValueError(f"VITRINE_DEMO_LINK_TTL={self.demo_link_ttl} must be at least 1 second")
        if self.webhook_max_attempts < 1 or self.webhook_backoff_ms < 0:
            raise ValueError("VITRINE_WEBHOOK_MAX_ATTEMPTS must be at least 1 and VITRINE_WEBHOOK_BACKOFF_MS at least 0")
        EgressPolicy.parse(self.webhook_allowed_networks)  # ValueError naming the bad entry
        if self.xet_token_ttl_s < 120:
            # huggingface_hub treats a token expiring within 60 s as expired already.
            raise ValueError(f"VITRINE_XET_TOKEN_TTL_S={self.xet_token_ttl_s} must be at least 120 seconds")
        if not 5 <= self.s3_part_mb <= 5120:
            # S3's own bounds: every part but the last is at least 5 MiB, none above 5 GiB.
            raise ValueError(f"VITRINE_S3_PART_MB={self.s3_part_mb} must be between 5 and 5120")
        if not 5 <= self.s3_presign_part_mb <= 5120:
            raise ValueError(f"VITRINE_S3_PRESIGN_PART_MB={self.s3_presign_part_mb} must be between 5 and 5120")
        if self.s3_presign not in ("off", "download", "upload", "all"):
            raise ValueError(f"VITRINE_S3_PRESIGN={self.s3_presign!r} must be off, download, upload or all")
        if self.s3_presign != "off" and not self.storage_url.startswith("s3://"):
            # Presigned URLs are the bucket's: with blobs on a file system every byte goes through the hub.
            raise ValueError(f"VITRINE_S3_PRESIGN={self.s3_presign} needs S3 storage (VITRINE_STORAGE_URL=s3://bucket/"
                             "prefix); with file storage every transfer goes through the hub: unset it or set it to off")
        if not 1 <= self.s3_presign_ttl_s <= 7 * 24 * 3600:
            raise ValueError(f"VITRINE_S3_PRESIGN_TTL_S={self.s3_presign_ttl_s} must be between 1 and 604800 (7 days, "
                             "S3's limit)")
        if self.job_stale_s <= 0:
            raise ValueError(f"VITRINE_JOB_STALE_S={self.job_stale_s} must be above 0")
        if self.prediction_log_inputs not in ("full", "hash"):
            raise ValueError(f"VITRINE_PREDICTION_LOG_INPUTS={self.prediction_log_inputs!r} must be full or hash")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `VITRINE_*` variables, then apply explicit (CLI) overrides that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.type, raw, f.metadata["env"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("home", default_home(environ))
        settings = cls(**values)
        return dataclasses.replace(settings, home=Path(settings.home).expanduser().resolve())

    @property
    def webhook_egress(self) -> EgressPolicy:
        """The networks webhook deliveries may reach."""
        return EgressPolicy.parse(self.webhook_allowed_networks)

    @property
    def effective_database_url(self) -> str:
        """The metadata DB URL, defaulting to SQLite inside home."""
        return self.database_url or f"sqlite:///{self.home / 'vitrine.db'}"

    @property
    def blobs_dir(self) -> Path:
        """Directory of the local blob store."""
        if self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.home / "blobs"

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(env var, default, help) for every setting; the README lists them all."""
        return [(f.metadata["env"], f.metadata.get("shown", str(f.default)), f.metadata["help"])
                for f in dataclasses.fields(cls)]


def default_home(environ: Mapping[str, str]) -> Path:
    """The per-user data directory (XDG): `$XDG_DATA_HOME/vitrine`, else `~/.local/share/vitrine`."""
    xdg = environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if Path(xdg).is_absolute() else Path(environ.get("HOME") or Path.home()) / ".local" / "share"
    return base / "vitrine"


def _coerce(type_name: Any, raw: str, env: str) -> Any:
    name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if name == "int":
            return int(raw)
        if name == "float":
            return float(raw)
        if name == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if name == "Path":
            return Path(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a valid {name}") from None
    return raw
