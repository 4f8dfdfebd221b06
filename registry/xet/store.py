"""The CAS over the blob store: xorbs kept as blobs, shards verified and their files materialised as blobs.

A xorb is stored as a blob (named by the sha256 of its bytes) once it verified, and `xet_xorbs` maps its Xet
hash to that blob with its chunk table. A shard's files are checked against the stored xorbs (ranges, sizes,
verification hashes, the file hash) and each is rebuilt into an ordinary blob under the sha256 the shard states,
which must match, before any row says the file exists: commits, resolve, snapshots and DuckDB then read it like
any LFS file, and `xet_files` keeps its reconstruction for Xet downloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.auth import Principal
from registry.core import Registry
from registry.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from registry.lfs import link_blobs
from registry.xet.hashes import file_hash, hash_to_str, str_to_hash, verification_hash
from registry.xet.shards import DedupeXorb, Shard, ShardFile, build_dedupe_shard, parse_shard
from registry.xet.tokens import XetGrant, principal_of
from registry.xet.xorbs import ChunkInfo, XorbInfo, iter_chunks

# How many xorbs one dedupe answer lists at most (~2 GiB of data, ~1.5 MiB of shard), from how many files, and how
# long the client may rely on it.
DEDUPE_XORBS = 32
DEDUPE_FILES = 4
DEDUPE_VALID_S = 7 * 24 * 3600


class XetNotFoundError(NotFoundError):
    """A xorb, file or chunk the caller may not see or that does not exist."""


def _encode_chunks(info: XorbInfo) -> str:
    return json.dumps([[c.hash.hex(), c.offset, c.size] for c in info.chunks], separators=(",", ":"))


def decode_xorb(xorb_hash: str, length: int, chunks: str) -> XorbInfo:
    """A stored xorb's info from its `xet_xorbs` row."""
    rows = json.loads(chunks)
    return XorbInfo(str_to_hash(xorb_hash), tuple(ChunkInfo(bytes.fromhex(h), o, s) for h, o, s in rows), length)


def _readable_repos(principal: Principal | None, repo_pk: int) -> sa.ColumnElement[bool]:
    """Condition on `db.repos`: the grant's own repo, a public one, or a private one the user may read now."""
    cond = sa.or_(db.repos.c.id == repo_pk, db.repos.c.private.is_(False))
    if principal is not None:
        if principal.is_admin:
            return sa.true()
        namespaces = [principal.user, *principal.orgs]
        cond = sa.or_(cond, db.repos.c.namespace.in_(namespaces))
    return cond


def readable_xorbs(reg: Registry, grant: XetGrant, hashes: Iterable[str]) -> dict[str, XorbInfo]:
    """The stored xorbs among `hashes` that the grant may read (linked to a repo its user may read)."""
    wanted = sorted(set(hashes))
    principal = principal_of(reg, grant)
    out: dict[str, XorbInfo] = {}
    with reg.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            readable = (sa.select(db.xet_xorb_repos.c.xorb_hash)
                        .join(db.repos, db.repos.c.id == db.xet_xorb_repos.c.repo_id)
                        .where(db.xet_xorb_repos.c.xorb_hash.in_(part), _readable_repos(principal, grant.repo_pk)))
            rows = conn.execute(sa.select(db.xet_xorbs).where(db.xet_xorbs.c.hash.in_(readable))).all()
            out.update({r.hash: decode_xorb(r.hash, r.length, r.chunks) for r in rows})
    return out


def whole_xorb_blobs(reg: Registry, grant: XetGrant, hashes: Iterable[str]) -> dict[str, str]:
    """Blob oid of each xorb among `hashes` the grant may read whole, as `readable_xorbs` rules.

    A link straight to storage serves all of a xorb, not one range: only these may get one. A xorb that a readable
    file merely cites part of, from a repo the caller may not read, stays behind the hub's range-signed link.
    """
    wanted = sorted(set(hashes))
    principal = principal_of(reg, grant)
    out: dict[str, str] = {}
    with reg.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            readable = (sa.select(db.xet_xorb_repos.c.xorb_hash)
                        .join(db.repos, db.repos.c.id == db.xet_xorb_repos.c.repo_id)
                        .where(db.xet_xorb_repos.c.xorb_hash.in_(wanted[i:i + 500]),
                               _readable_repos(principal, grant.repo_pk)))
            rows = conn.execute(sa.select(db.xet_xorbs.c.hash, db.xet_xorbs.c.oid).where(db.xet_xorbs.c.hash.in_(readable)))
            out.update((r.hash, r.oid) for r in rows)
    return out


def xorb_blob(reg: Registry, xorb_hash: str) -> tuple[str, int] | None:
    """(blob oid, length) of a stored xorb, or None."""
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.xet_xorbs.c.oid, db.xet_xorbs.c.length)
                           .where(db.xet_xorbs.c.hash == xorb_hash)).first()
    return (row.oid, row.length) if row is not None else None


def record_xorb(reg: Registry, grant: XetGrant, info: XorbInfo, oid: str) -> bool:
    """Record a verified xorb stored as blob `oid` and link it to the grant's repo; True if it was new."""
    key = hash_to_str(info.hash)
    inserted = False
    try:
        with reg.write().begin() as conn:
            if conn.execute(sa.select(db.xet_xorbs.c.hash).where(db.xet_xorbs.c.hash == key)).first() is None:
                conn.execute(sa.insert(db.xet_xorbs).values(hash=key, oid=oid, length=info.length,
                                                            chunks=_encode_chunks(info), created_at=db.now()))
                chunk_keys = sorted({hash_to_str(c.hash) for c in info.chunks})
                conn.execute(sa.insert(db.xet_chunks), [{"chunk_hash": c, "xorb_hash": key} for c in chunk_keys])
                inserted = True
            _link_xorbs(conn, grant.repo_pk, [key])
    except IntegrityError:
        # The same xorb arrived twice at once: the other upload recorded it; link ours.
        with reg.write().begin() as conn:
            _link_xorbs(conn, grant.repo_pk, [key])
    return inserted


def _link_xorbs(conn: Connection, repo_pk: int, keys: Iterable[str]) -> None:
    wanted = set(keys)
    have = set(conn.execute(sa.select(db.xet_xorb_repos.c.xorb_hash).where(
        db.xet_xorb_repos.c.repo_id == repo_pk, db.xet_xorb_repos.c.xorb_hash.in_(wanted))).scalars())
    for key in sorted(wanted - have):
        conn.execute(sa.insert(db.xet_xorb_repos).values(xorb_hash=key, repo_id=repo_pk))


@dataclass(frozen=True)
class _Checked:
    file: ShardFile
    key: str
    sha256: str
    terms: list[tuple[str, int, int, int]]


def _check_file(f: ShardFile, xorbs: dict[str, XorbInfo]) -> _Checked:
    key = hash_to_str(f.hash)
    if f.sha256 is None:
        raise InvalidInputError(f"Invalid shard: file {key} has no sha256 (metadata extension); a git-based repo "
                                "needs it to cite the file in a commit.")
    chunks: list[tuple[bytes, int]] = []
    terms = []
    assert f.verification is not None  # parse_shard refuses files without
    for n, (term, proof) in enumerate(zip(f.terms, f.verification)):
        xkey = hash_to_str(term.xorb)
        info = xorbs.get(xkey)
        if info is None:
            raise InvalidInputError(f"Invalid shard: file {key} cites xorb {xkey}, which is not stored or not "
                                    "readable with this token; upload it first.")
        if term.end > len(info.chunks):
            raise InvalidInputError(f"Invalid shard: file {key} term {n} asks chunks [{term.start}, {term.end}) of "
                                    f"xorb {xkey}, which has {len(info.chunks)}.")
        selected = info.chunks[term.start:term.end]
        if sum(c.size for c in selected) != term.size:
            raise InvalidInputError(f"Invalid shard: file {key} term {n} announces {term.size} bytes, its chunks "
                                    f"hold {sum(c.size for c in selected)}.")
        if verification_hash([c.hash for c in selected]) != proof:
            raise InvalidInputError(f"Invalid shard: file {key} term {n} has a wrong verification hash.")
        chunks += [(c.hash, c.size) for c in selected]
        terms.append((xkey, term.start, term.end, term.size))
    if file_hash(chunks) != f.hash:
        raise InvalidInputError(f"Invalid shard: file {key} does not hash to the file hash of its chunks.")
    # Stored like every hash of the format (u64 words), so its usual hex is the hash-string form.
    return _Checked(f, key, hash_to_str(f.sha256), terms)


def file_bytes(reg: Registry, xorbs: dict[str, XorbInfo], terms: list[tuple[str, int, int, int]]) -> Iterator[bytes]:
    """A file's bytes rebuilt from its terms, one chunk at a time."""
    oids = {}
    for xkey, start, end, _size in terms:
        if xkey not in oids:
            blob = xorb_blob(reg, xkey)
            if blob is None:
                raise InvalidInputError(f"xorb {xkey} disappeared during the upload; upload it again.")
            oids[xkey] = blob[0]
        chunks = xorbs[xkey].chunks
        last = chunks[end].offset - 1 if end < len(chunks) else None  # a bounded read where the next chunk starts
        with reg.blobs.open_range(oids[xkey], chunks[start].offset, last) as fh:
            yield from iter_chunks(fh, xorbs[xkey], start, end)


def register_shard(reg: Registry, grant: XetGrant, data: bytes) -> int:
    """Verify an uploaded shard and make its files blobs of the grant's repo; 1 if anything was new, else 0.

    Raises:
        InvalidInputError: the shard is malformed, cites a xorb that is missing or not the caller's to read, a
            term or file hash does not verify, or a file's bytes do not hash to the sha256 it states. Nothing is
            recorded then.
        PayloadTooLargeError: a file is larger than the `max_upload_bytes` setting.
    """
    shard: Shard = parse_shard(data)
    cited = {hash_to_str(t.xorb) for f in shard.files for t in f.terms} | {hash_to_str(x.hash) for x in shard.xorbs}
    xorbs = readable_xorbs(reg, grant, cited)
    for x in shard.xorbs:
        key = hash_to_str(x.hash)
        if key not in xorbs:
            raise InvalidInputError(f"Invalid shard: it lists xorb {key}, which is not stored or not readable with "
                                    "this token; upload it first.")
        stored = xorbs[key].chunks
        if len(x.chunks) != len(stored) or any(h != c.hash or s != c.size for (h, _o, s), c in zip(x.chunks, stored)):
            raise InvalidInputError(f"Invalid shard: its listing of xorb {key} differs from the stored xorb.")
    checked = [_check_file(f, xorbs) for f in shard.files]
    limit = reg.settings.max_upload_bytes
    for c in checked:
        if c.file.size > limit:
            raise PayloadTooLargeError(f"File {c.key} has {c.file.size} bytes; the upload limit is {limit} bytes.")
    with reg.engine.connect() as conn:
        known = {r.file_hash: r.sha256 for r in conn.execute(sa.select(db.xet_files.c.file_hash, db.xet_files.c.sha256)
                                                              .where(db.xet_files.c.file_hash.in_([c.key for c in checked])))}
    new = []
    for c in checked:
        if known.get(c.key) == c.sha256 and reg.blobs.exists(c.sha256):
            continue
        # Rebuilt chunk by chunk into a pending blob; it appears only if its sha256 is the one the shard states.
        try:
            reg.blobs.put_chunks(file_bytes(reg, xorbs, c.terms), expected_oid=c.sha256, expected_size=c.file.size)
        except InvalidInputError:
            # Never say what the bytes do hash to: that would hand out the sha256 of chunks one may cite but not read.
            raise InvalidInputError(f"Invalid shard: file {c.key}: sha256 mismatch, its reconstruction does not hash "
                                    f"to the sha256 {c.sha256} the shard states.") from None
        new.append(c)
    with reg.write().begin() as conn:
        for c in new:
            if c.key not in known:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(db.xet_files).values(
                            file_hash=c.key, sha256=c.sha256, size=c.file.size,
                            terms=json.dumps(c.terms, separators=(",", ":")), created_at=db.now()))
                        conn.execute(sa.insert(db.xet_file_xorbs), [{"file_hash": c.key, "xorb_hash": x}
                                                                    for x in sorted({t[0] for t in c.terms})])
                except IntegrityError:
                    pass  # the same file registered at once by another upload
        # Only the file is linked to the repo: a xorb stays readable (for dedupe, for citing) where it was uploaded,
        # or a file citing part of a private repo's xorb would open all of that xorb to this repo's readers.
        link_blobs(conn, grant.repo_pk, [c.sha256 for c in checked])
    for c in checked:
        reg.blobs.touch(c.sha256)  # a commit is about to cite it: keep gc's grace from an older copy's mtime
    return 1 if new or shard.xorbs else 0


@dataclass(frozen=True)
class XetFile:
    """A file known to the CAS: its Xet hash, sha256, size and terms (xorb, chunk start, chunk end, size)."""

    file_hash: str
    sha256: str
    size: int
    terms: list[tuple[str, int, int, int]]


def file_by_sha256(reg: Registry, sha256: str) -> XetFile | None:
    """The Xet file whose bytes are blob `sha256`, if one was uploaded through Xet."""
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(db.xet_files).where(db.xet_files.c.sha256 == sha256)
                           .order_by(db.xet_files.c.created_at).limit(1)).first()
    return XetFile(row.file_hash, row.sha256, row.size, [tuple(t) for t in json.loads(row.terms)]) if row else None


def file_hashes(reg: Registry, sha256s: Iterable[str]) -> dict[str, str]:
    """The Xet hash of each blob among `sha256s` that was uploaded through Xet (what tree entries call `xetHash`)."""
    wanted = sorted(set(sha256s))
    found: dict[str, str] = {}
    with reg.engine.connect() as conn:
        for i in range(0, len(wanted), 500):  # SQLite caps a statement's parameters
            rows = conn.execute(sa.select(db.xet_files.c.sha256, db.xet_files.c.file_hash)
                                .where(db.xet_files.c.sha256.in_(wanted[i:i + 500]))
                                .order_by(db.xet_files.c.created_at))
            for sha, key in rows:
                found.setdefault(sha, key)  # the oldest, as file_by_sha256 answers
    return found


def readable_file(reg: Registry, grant: XetGrant, key: str) -> XetFile:
    """The Xet file `key` if the grant's repo holds its blob (XetNotFoundError otherwise, never saying why)."""
    str_to_hash(key)
    with reg.engine.connect() as conn:
        row = conn.execute(
            sa.select(db.xet_files).join(db.repo_blobs, db.repo_blobs.c.oid == db.xet_files.c.sha256)
            .where(db.xet_files.c.file_hash == key, db.repo_blobs.c.repo_id == grant.repo_pk)).first()
    if row is None:
        raise XetNotFoundError(f"File {key} not found.")
    return XetFile(row.file_hash, row.sha256, row.size, [tuple(t) for t in json.loads(row.terms)])


@dataclass(frozen=True)
class FetchRange:
    """Chunks [start, end) of a xorb, stored at bytes [first, last] (inclusive) of its blob."""

    xorb: str
    start: int
    end: int
    first: int
    last: int


def reconstruction(reg: Registry, f: XetFile, first: int, last: int) -> tuple[int, list[dict[str, object]],
                                                                               list[FetchRange]]:
    """The terms covering file bytes [first, last] (inclusive, last < size): (offset into the first term, terms,
    the xorb ranges to fetch)."""
    infos: dict[str, XorbInfo] = {}
    terms: list[dict[str, object]] = []
    fetches: list[FetchRange] = []
    offset_into_first = 0
    pos = 0
    for xkey, start, end, size in f.terms:
        t_start, t_end = pos, pos + size
        pos = t_end
        if t_end <= first:
            continue
        if t_start > last:
            break
        if xkey not in infos:
            with reg.engine.connect() as conn:
                row = conn.execute(sa.select(db.xet_xorbs).where(db.xet_xorbs.c.hash == xkey)).one()
            infos[xkey] = decode_xorb(row.hash, row.length, row.chunks)
        info = infos[xkey]
        c_pos, c_first, c_last = t_start, start, end
        chunk_starts = []
        for i in range(start, end):
            chunk_starts.append(c_pos)
            c_pos += info.chunks[i].size
        # Trim to the chunks holding [first, last]: whole chunks, the client skips into the first one.
        for i in range(start, end):
            if chunk_starts[i - start] + info.chunks[i].size <= first:
                c_first = i + 1
        for i in range(end - 1, start - 1, -1):
            if chunk_starts[i - start] > last:
                c_last = i
        if not terms:
            offset_into_first = first - chunk_starts[c_first - start]
        terms.append({"hash": xkey, "unpacked_length": sum(c.size for c in info.chunks[c_first:c_last]),
                      "range": {"start": c_first, "end": c_last}})
        fetch = FetchRange(xkey, c_first, c_last, info.chunks[c_first].offset, info.chunk_end(c_last - 1) - 1)
        if fetch not in fetches:
            fetches.append(fetch)
    return offset_into_first, terms, fetches


def _unpacked_listing(info: XorbInfo) -> list[tuple[bytes, int, int]]:
    """(chunk hash, offset among the unpacked bytes, size) per chunk, as a shard's xorb listing has them."""
    out, pos = [], 0
    for c in info.chunks:
        out.append((c.hash, pos, c.size))
        pos += c.size
    return out


def dedupe_shard(reg: Registry, grant: XetGrant, chunk_key: str) -> bytes:
    """A shard listing stored xorbs holding chunk `chunk_key` that the grant may read (XetNotFoundError if none)."""
    str_to_hash(chunk_key)
    with reg.engine.connect() as conn:
        holders = list(conn.execute(sa.select(db.xet_chunks.c.xorb_hash)
                                    .where(db.xet_chunks.c.chunk_hash == chunk_key)).scalars())
    found = readable_xorbs(reg, grant, holders)
    if not found:
        raise XetNotFoundError(f"Chunk {chunk_key} is not known.")
    # The client asks for one chunk in about a thousand: offer what follows it in the files it belongs to, as the
    # Hub answers with the shard the chunk was uploaded in.
    wanted = list(found)
    with reg.engine.connect() as conn:
        files = conn.execute(sa.select(db.xet_files.c.terms).join(
            db.xet_file_xorbs, db.xet_file_xorbs.c.file_hash == db.xet_files.c.file_hash)
            .where(db.xet_file_xorbs.c.xorb_hash.in_(wanted)).limit(DEDUPE_FILES)).scalars().all()
    for terms in files:
        keys = [t[0] for t in json.loads(terms)]
        start = min((i for i, k in enumerate(keys) if k in found), default=0)
        for k in keys[start:]:
            if len(wanted) >= DEDUPE_XORBS:
                break
            if k not in wanted:
                wanted.append(k)
    found = {**readable_xorbs(reg, grant, wanted[len(found):]), **found}
    for info in found.values():
        blob = xorb_blob(reg, hash_to_str(info.hash))
        if blob is not None:
            reg.blobs.touch(blob[0])  # the client may cite it in a shard soon: keep gc's grace off it
    listed = [DedupeXorb(info.hash, _unpacked_listing(info), info.length) for _, info in sorted(found.items())]
    return build_dedupe_shard(listed, valid_for_s=DEDUPE_VALID_S)
