"""One small hierarchy of domain errors; hub/ maps each to an HTTP status and `X-Error-Code`."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the registry raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(RegistryError, ValueError):
    """The caller sent something malformed (bad path, bad id, hash mismatch, bad NDJSON...)."""


class RepoNotFoundError(RegistryError, LookupError):
    """The repo does not exist, or the caller may not see it (answered the same, as on the Hub)."""

    def __init__(self, repo_id: str, repo_type: str = "model") -> None:
        super().__init__(f"Repository {repo_type}s/{repo_id} not found.")
        self.repo_id = repo_id
        self.repo_type = repo_type


class RevisionNotFoundError(RegistryError, LookupError):
    """A branch, tag or commit does not exist in the repo."""

    def __init__(self, repo_id: str, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision} (repo {repo_id}).")
        self.repo_id = repo_id
        self.revision = revision


class EntryNotFoundError(RegistryError, LookupError):
    """A path does not exist at the given revision."""

    def __init__(self, repo_id: str, path: str, revision: str) -> None:
        super().__init__(f"Entry not found: {path} at revision {revision} of {repo_id}.")
        self.repo_id = repo_id
        self.path = path
        self.revision = revision


class ConflictError(RegistryError):
    """The write would clobber existing state (repo exists, branch moved, ref exists...)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class PreconditionFailedError(ConflictError):
    """`parent_commit` no longer matches the branch head."""


class UnauthorizedError(RegistryError):
    """No valid credentials were given for an operation that needs them."""


class ForbiddenError(RegistryError):
    """The caller is known but may not do this."""


class UnsafeFileError(RegistryError):
    """A file failed a safety check (pickle imports, malformed weights...)."""

    def __init__(self, message: str, *, path: str = "", details: list[str] | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.details = details or []


class PayloadTooLargeError(RegistryError):
    """An upload is larger than the configured limit."""


class StorageError(RegistryError):
    """The blob store could not take a write; what was already stored is untouched."""


class StorageFullError(StorageError):
    """The blob store is out of space or quota (ENOSPC, EDQUOT)."""


class StorageUnavailableError(StorageError):
    """The blob store refuses writes: mounted read-only or not writable by the hub (EROFS, EACCES)."""


class DemoFailedError(RegistryError):
    """A model version's demo could not be built (its model failed to load, say)."""


class DatasetQueryError(InvalidInputError):
    """A query on a dataset was refused or failed: not one read-only SELECT, outside the sandbox, too slow or too big.

    `reason` says which: `statement`, `permission`, `timeout`, `memory`, `syntax` or `sql`.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotFoundError(RegistryError, LookupError):
    """Something Vitrine itself keeps (a job, an evaluation) does not exist, or the caller may not see it."""


class JobNotFoundError(NotFoundError):
    """No job with that id (or the caller may not see it: answered the same)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} not found.")
        self.job_id = job_id


class DiscussionNotFoundError(NotFoundError):
    """No discussion or pull request with that number in the repo."""

    def __init__(self, repo_id: str, num: int) -> None:
        super().__init__(f"Discussion #{num} not found in {repo_id}.")
        self.repo_id = repo_id
        self.num = num


class GateRefusedError(ConflictError):
    """A promotion the repo's policy refused; `gate` holds the checks and their numbers."""

    def __init__(self, message: str, *, gate: dict[str, object]) -> None:
        super().__init__(message)
        self.gate = gate
