"""Checks run on files before a commit that adds them may land: safetensors headers and pickle imports.

Results are kept per blob (content-addressed), so a file is inspected once however many commits cite it.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.core import Registry
from registry.errors import UnsafeFileError
from registry.pickles import is_pickle_path, scan_pickle_file
from registry.trees import TreeEntry
from registry.weights import blob_safetensors_header


def blob_facts(reg: Registry, oid: str, kind: str) -> dict[str, Any] | None:
    """What an earlier inspection recorded about blob `oid` (`kind`: "pickle" or "safetensors")."""
    with reg.engine.connect() as conn:
        text = conn.execute(
            sa.select(db.blob_meta.c.data).where(db.blob_meta.c.oid == oid, db.blob_meta.c.kind == kind)
        ).scalar_one_or_none()
    return json.loads(text) if text is not None else None


def _remember(reg: Registry, oid: str, kind: str, data: dict[str, Any]) -> None:
    try:
        with reg.write().begin() as conn:
            conn.execute(sa.insert(db.blob_meta).values(oid=oid, kind=kind, data=json.dumps(data)))
    except IntegrityError:
        pass  # a concurrent commit of the same content recorded the same facts


def scan_pickle(reg: Registry, entry: TreeEntry) -> dict[str, Any]:
    """The pickle scan of a file (cached per blob)."""
    facts = blob_facts(reg, entry.oid, "pickle")
    if facts is None:
        facts = scan_pickle_file(reg.blobs.path(entry.oid), name=entry.path).to_json()
        _remember(reg, entry.oid, "pickle", facts)
    return facts


def inspect_additions(reg: Registry, entries: list[TreeEntry]) -> None:
    """Refuse a commit whose new files are malformed safetensors (InvalidInputError) or unsafe pickles.

    Pickles importing anything outside the allow-list are refused with the offending globals named,
    unless the operator set `allow_unsafe_pickles`; then they land and are flagged in repo info.
    """
    for entry in entries:
        if entry.path.endswith(".safetensors") and blob_facts(reg, entry.oid, "safetensors") is None:
            header = blob_safetensors_header(reg.blobs, entry.oid, entry.size, name=entry.path)
            _remember(reg, entry.oid, "safetensors", {"tensors": len(header.tensors)})
        elif is_pickle_path(entry.path):
            facts = scan_pickle(reg, entry)
            if facts["unsafe"] and not reg.settings.allow_unsafe_pickles:
                offending = ", ".join(facts["unsafe"])
                raise UnsafeFileError(
                    f"{entry.path}: refused, this pickle imports globals outside the safe allow-list: {offending}. "
                    "Save weights as safetensors, or ask the operator to allow unsafe pickles.",
                    path=entry.path, details=list(facts["unsafe"]),
                )


def security_status(reg: Registry, entry: TreeEntry) -> dict[str, Any]:
    """The Hub's `securityFileStatus` for a file: pickle imports and whether they are safe."""
    if not is_pickle_path(entry.path):
        return {"status": "safe", "avScan": {"virusFound": False}, "pickleImportScan": None}
    facts = scan_pickle(reg, entry)
    imports = [
        {"module": g.rsplit(".", 1)[0], "name": g.rsplit(".", 1)[-1], "safety": "dangerous" if g in facts["unsafe"] else "innocuous"}
        for g in facts["globals"]
    ]
    status = "unsafe" if facts["unsafe"] else ("unknown" if facts["error"] else "safe")
    return {"status": status, "avScan": {"virusFound": False},
            "pickleImportScan": {"highestSafetyLevel": "dangerous" if facts["unsafe"] else "innocuous",
                                 "imports": imports}}
