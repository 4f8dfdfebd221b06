"""Validation of everything a client names: repo ids, repo types, file paths, branch and tag names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidInputError

REPO_TYPES = ("model", "dataset", "space")
SPACE_SDKS = ("gradio", "streamlit", "docker", "static")
# Same rule as huggingface_hub's validate_repo_id, so a name the client accepts is one we accept.
_NAME_RE = re.compile(r"^(?!-)(?!.*--)(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REF_RE = re.compile(r"^(?![./])(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]{1,255}(?<![./])$")
# Names that would shadow the hub's own URL space.
RESERVED_NAMESPACES = {"api", "datasets", "spaces", "models", "static", "settings", "login", "console", "health"}
# The hub's own service account (it loads private models for live demos); nobody else may take the name.
BOT_USER = "vitrine-bot"


@dataclass(frozen=True)
class RepoRef:
    """Identity of a repo: its type and `namespace/name`."""

    type: str
    namespace: str
    name: str

    @property
    def repo_id(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.type}s/{self.repo_id}"


def check_repo_type(repo_type: str | None) -> str:
    """Normalise a repo type (`models` and None accepted), or raise InvalidInputError."""
    repo_type = (repo_type or "model").removesuffix("s")
    if repo_type not in REPO_TYPES:
        raise InvalidInputError(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}.")
    return repo_type


def check_name(part: str, *, what: str = "name") -> str:
    """Validate one component (namespace or repo name)."""
    if not isinstance(part, str) or not _NAME_RE.match(part) or part.endswith(".git"):
        raise InvalidInputError(
            f"Invalid {what} {part!r}: use letters, digits, '-', '_' and '.', at most 96 characters, "
            "not starting with '-' and without '--' or '..'."
        )
    return part


def parse_repo_id(repo_id: str, repo_type: str | None = "model") -> RepoRef:
    """Parse `namespace/name` into a RepoRef, refusing anything malformed."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise InvalidInputError(f"Invalid repo id {repo_id!r}: expected 'namespace/name'.")
    namespace, name = repo_id.split("/")
    return RepoRef(check_repo_type(repo_type), check_name(namespace, what="namespace"), check_name(name))


def check_path(path: str) -> str:
    """Validate a file path inside a repo: relative, normalised, no `..`, no `.git/`."""
    if not isinstance(path, str) or not path:
        raise InvalidInputError("Invalid path: empty.")
    if "\x00" in path or "\\" in path:
        raise InvalidInputError(f"Invalid path {path!r}: NUL bytes and backslashes are not allowed.")
    if path.startswith("/"):
        raise InvalidInputError(f"Invalid path {path!r}: absolute paths are not allowed.")
    if len(path.encode()) > 1024:
        raise InvalidInputError(f"Invalid path {path[:40]!r}...: longer than 1024 bytes.")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(f"Invalid path {path!r}: empty, '.' or '..' components are not allowed.")
    if parts[0] == ".git" or ".git" in parts:
        raise InvalidInputError(f"Invalid path {path!r}: '.git' paths are reserved.")
    return path


def check_folder(path: str) -> str:
    """Validate a folder path (trailing slash allowed, empty means the root)."""
    path = path.strip("/")
    return check_path(path) if path else ""


def check_ref_name(name: str, *, what: str = "branch") -> str:
    """Validate a branch or tag name (git's rules, simplified)."""
    if not isinstance(name, str) or not _REF_RE.match(name) or name.endswith(".lock"):
        raise InvalidInputError(f"Invalid {what} name {name!r}.")
    if re.fullmatch(r"[0-9a-f]{40}", name):
        raise InvalidInputError(f"Invalid {what} name {name!r}: it would be read as a commit id.")
    return name
