"""Validation of everything a client names: repo ids, repo types, file paths, branch and tag names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidInputError

REPO_TYPES = ("model", "dataset", "space")
SPACE_SDKS = ("gradio", "streamlit", "docker", "static")
# Same rule as huggingface_hub's validate_repo_id, so a name the client accepts is one we accept.
_NAME_RE = re.compile(r"^(?!-)(?!.*--)(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# Branch and tag names: a subset of what `git check-ref-format --branch` allows (no '@', '{', '~', '^', ':'...).
_REF_CHARS_RE = re.compile(r"[A-Za-z0-9._/-]{1,255}")
# A name that could be read as a (short) commit id would shadow that commit.
_HEX_RE = re.compile(r"[0-9a-fA-F]{7,40}")
# Names git reserves for its own pointers.
_RESERVED_REFS = {"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD"}
# C0 and C1 controls, DEL, and the Unicode bidirectional marks, embeddings, overrides and isolates, which make a
# name display as something else (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069).
_UNSAFE_PATH_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
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
    if repo_type is not None and not isinstance(repo_type, str):
        raise InvalidInputError(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}.")
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
    """Validate a file path inside a repo: relative, normalised, no `..`, no `.git/`, nothing invisible.

    Raises:
        InvalidInputError: the path is empty, absolute, too long, not normalised, under `.git`, or holds a
            control character or a Unicode bidirectional control.
    """
    if not isinstance(path, str) or not path:
        raise InvalidInputError("Invalid path: empty.")
    if "\\" in path:
        raise InvalidInputError(f"Invalid path {path!r}: backslashes are not allowed.")
    bad = _UNSAFE_PATH_CHARS_RE.search(path)
    if bad is not None:
        raise InvalidInputError(
            f"Invalid path {path!r}: control character or bidirectional mark U+{ord(bad.group()):04X} is not allowed."
        )
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


def check_folder(path: str, *, root_ok: bool = False) -> str:
    """Validate a folder path (trailing slash allowed); the root (`""` or `/`) only with `root_ok` (listings).

    Raises:
        InvalidInputError: the path is invalid, or names the root where an operation (a delete) may not.
    """
    if not isinstance(path, str):
        raise InvalidInputError(f"Invalid folder {path!r}: expected a string.")
    stripped = path.strip("/")
    if stripped:
        return check_path(stripped)
    if root_ok:
        return ""
    raise InvalidInputError(f"Invalid path {path!r}: the repo's root folder cannot be the target of an operation.")


def check_ref_name(name: str, *, what: str = "branch") -> str:
    """Validate a branch or tag name: what `git check-ref-format --branch` accepts, minus look-alikes of commits.

    Raises:
        InvalidInputError: naming the rule the name breaks.
    """
    problem = _ref_name_problem(name)
    if problem is not None:
        raise InvalidInputError(f"Invalid {what} name {name!r}: {problem}.")
    return name


def _ref_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not _REF_CHARS_RE.fullmatch(name):
        return "use 1 to 255 letters, digits, '.', '_', '-' and '/'"
    if _HEX_RE.fullmatch(name):
        return "it would be read as a commit id"
    if name in _RESERVED_REFS:
        return "the name is reserved by git"
    if name.startswith("-"):
        return "it must not start with '-'"
    if name.startswith("refs/"):
        return "give the short name, without 'refs/'"
    if ".." in name:
        return "it must not contain '..'"
    if name.endswith("."):
        return "it must not end with '.'"
    parts = name.split("/")
    if "" in parts:
        return "it must not start or end with '/' or contain '//'"
    if any(p.startswith(".") for p in parts):
        return "no part of it may start with '.'"
    if any(p.endswith(".lock") for p in parts):
        return "no part of it may end with '.lock'"
    return None


# The `expand` values huggingface_hub sends, per repo type (its ExpandModelProperty_T and siblings).
EXPAND_PROPERTIES = {
    "model": frozenset((
        "author baseModels cardData childrenModelCount config createdAt disabled downloads downloadsAllTime "
        "evalResults gated gguf inference inferenceProviderMapping lastModified library_name likes mask_token "
        "model-index pipeline_tag private resourceGroup safetensors sha siblings spaces tags transformersInfo "
        "trendingScore usedStorage widgetData").split()),
    "dataset": frozenset((
        "author cardData citation createdAt description disabled downloads downloadsAllTime gated lastModified "
        "likes mainSize paperswithcode_id private resourceGroup sha siblings tags trendingScore usedStorage").split()),
    "space": frozenset((
        "author cardData createdAt datasets disabled lastModified likes models private region resourceGroup runtime "
        "sdk sha siblings subdomain tags trendingScore usedStorage").split()),
}
# Vitrine's own property, for every repo type: the `vitrine` block of repo info (card error, task facts,
# weights, unsafe files, file count), which the console asks for instead of `siblings`.
VITRINE_EXPAND = "vitrine"


def check_expand(repo_type: str, values: list[str]) -> list[str]:
    """Validate the `expand` properties asked of a repo info or listing, as the Hub does.

    Raises:
        InvalidInputError: a property the Hub does not know for `repo_type`.
    """
    known = EXPAND_PROPERTIES[check_repo_type(repo_type)] | {VITRINE_EXPAND}
    for value in values:
        if value not in known:
            raise InvalidInputError(
                f"Invalid expand {value!r} for {repo_type}s: expected one of {', '.join(sorted(known))}.")
    return values
