"""Xet's part of `fsck` and `gc`: xorbs and reconstructions verified; xorbs no live file needs collected."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from registry import db
from registry.core import Registry
from registry.errors import InvalidInputError
from registry.xet.hashes import file_hash, str_to_hash
from registry.xet.store import decode_xorb, file_bytes
from registry.xet.xorbs import XorbInfo, XorbParser

_READ = 1024 * 1024


def _verify_xorb(reg: Registry, oid: str, info: XorbInfo) -> str | None:
    parser = XorbParser(info.hash)
    try:
        with reg.blobs.open(oid) as fh:
            while piece := fh.read(_READ):
                parser.feed(piece)
        found = parser.finish()
    except InvalidInputError as exc:
        return str(exc)
    if found.chunks != info.chunks:
        return "its chunks differ from the recorded chunk table"
    return None


def fsck_xet(reg: Registry) -> tuple[int, list[str]]:
    """Re-verify every xorb (chunks decompress, hash to its name) and every Xet file (its terms, its file hash,
    and its rebuilt bytes against its sha256); (objects checked, problems)."""
    problems: list[str] = []
    with reg.engine.connect() as conn:
        xorb_rows = conn.execute(sa.select(db.xet_xorbs)).all()
        file_rows = conn.execute(sa.select(db.xet_files)).all()
    infos: dict[str, XorbInfo] = {}
    for row in xorb_rows:
        info = decode_xorb(row.hash, row.length, row.chunks)
        infos[row.hash] = info
        if not reg.blobs.exists(row.oid):
            problems.append(f"xorb {row.hash}: blob {row.oid} missing")
            continue
        reason = _verify_xorb(reg, row.oid, info)
        if reason is not None:
            problems.append(f"xorb {row.hash}: {reason}")
    for row in file_rows:
        terms = [tuple(t) for t in json.loads(row.terms)]
        missing = sorted({t[0] for t in terms if t[0] not in infos})
        if missing:
            problems.append(f"xet file {row.file_hash}: xorb {missing[0]} missing")
            continue
        chunks = [(c.hash, c.size) for x, s, e, _ in terms for c in infos[x].chunks[s:e]]
        if file_hash(chunks) != str_to_hash(row.file_hash) or sum(size for _, size in chunks) != row.size:
            problems.append(f"xet file {row.file_hash}: its terms do not make the recorded file")
            continue
        sha = hashlib.sha256()
        try:
            for piece in file_bytes(reg, infos, terms):  # type: ignore[arg-type]
                sha.update(piece)
        except (InvalidInputError, OSError) as exc:
            problems.append(f"xet file {row.file_hash}: cannot be rebuilt ({exc})")
            continue
        if sha.hexdigest() != row.sha256:
            problems.append(f"xet file {row.file_hash}: rebuilds to sha256 {sha.hexdigest()}, not {row.sha256}")
    return len(xorb_rows) + len(file_rows), problems


def live_xorb_oids(reg: Registry, referenced: set[str], grace_seconds: float) -> set[str]:
    """Blobs of the xorbs gc must keep: those of a file some commit cites or an upload registered within the grace
    period, and any xorb itself younger than that (its shard may still be on its way)."""
    with reg.engine.connect() as conn:
        files = conn.execute(sa.select(db.xet_files.c.sha256, db.xet_files.c.terms)).all()
        xorbs = {r.hash: r.oid for r in conn.execute(sa.select(db.xet_xorbs.c.hash, db.xet_xorbs.c.oid))}
    keep: set[str] = set()
    for f in files:
        live = f.sha256 in referenced or (reg.blobs.exists(f.sha256) and reg.blobs.age_seconds(f.sha256) < grace_seconds)
        if live:
            keep |= {xorbs[t[0]] for t in json.loads(f.terms) if t[0] in xorbs}
    for oid in xorbs.values():
        if oid not in keep and reg.blobs.exists(oid) and reg.blobs.age_seconds(oid) < grace_seconds:
            keep.add(oid)
    return keep


def forget_removed(reg: Registry) -> int:
    """Drop the rows of xorbs and Xet files whose blobs gc removed; the number of xorbs forgotten."""
    with reg.engine.connect() as conn:
        xorbs = conn.execute(sa.select(db.xet_xorbs.c.hash, db.xet_xorbs.c.oid)).all()
        files = conn.execute(sa.select(db.xet_files.c.file_hash, db.xet_files.c.sha256, db.xet_files.c.terms)).all()
    gone = [x.hash for x in xorbs if not reg.blobs.exists(x.oid)]
    gone_set = set(gone)
    dead_files = [f.file_hash for f in files
                  if not reg.blobs.exists(f.sha256) or any(t[0] in gone_set for t in json.loads(f.terms))]
    with reg.write().begin() as conn:
        for i in range(0, len(gone), 500):
            part = gone[i:i + 500]
            conn.execute(sa.delete(db.xet_chunks).where(db.xet_chunks.c.xorb_hash.in_(part)))
            conn.execute(sa.delete(db.xet_xorb_repos).where(db.xet_xorb_repos.c.xorb_hash.in_(part)))
            conn.execute(sa.delete(db.xet_xorbs).where(db.xet_xorbs.c.hash.in_(part)))
        for i in range(0, len(dead_files), 500):
            part = dead_files[i:i + 500]
            conn.execute(sa.delete(db.xet_file_xorbs).where(db.xet_file_xorbs.c.file_hash.in_(part)))
            conn.execute(sa.delete(db.xet_files).where(db.xet_files.c.file_hash.in_(part)))
    return len(gone)
