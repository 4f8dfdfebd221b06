"""Store maintenance: `fsck` verifies everything reachable, `gc` removes what nothing references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from tqdm import tqdm

from registry import db
from registry.core import Registry
from registry.snapshots import drop_snapshot_dir
from registry.trees import decode_tree
from registry.xet.maintenance import forget_removed, fsck_xet, live_xorb_oids


@dataclass
class FsckReport:
    """What fsck looked at and what was wrong."""

    blobs: int = 0
    commits: int = 0
    refs: int = 0
    xet_objects: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def fsck(reg: Registry, *, progress: bool = False) -> FsckReport:
    """Re-hash every blob; check every commit's tree and parents, every tree's blobs, every ref's commit, every
    xorb and Xet reconstruction."""
    report = FsckReport()
    oids = list(reg.blobs.iter_oids())
    for oid in tqdm(oids, desc="blobs", unit="blob", disable=not progress):
        report.blobs += 1
        if not reg.blobs.verify(oid):
            report.problems.append(f"blob {oid}: content does not hash to its name")
    with reg.engine.connect() as conn:
        commit_rows = conn.execute(sa.select(db.commits.c.oid, db.commits.c.tree_oid, db.commits.c.parents)).all()
        known_commits = {r.oid for r in commit_rows}
        trees = {r.oid: r.data for r in conn.execute(sa.select(db.trees))}
        for row in commit_rows:
            report.commits += 1
            if row.tree_oid not in trees:
                report.problems.append(f"commit {row.oid}: tree {row.tree_oid} missing")
            for parent in json.loads(row.parents):
                if parent not in known_commits:
                    report.problems.append(f"commit {row.oid}: parent {parent} missing")
        live_trees = {r.tree_oid for r in commit_rows}
        # LFS objects deleted with `permanently_delete_lfs_files` stay named by the trees that had them.
        purged = set(conn.execute(sa.select(db.blob_meta.c.oid).where(db.blob_meta.c.kind.startswith("purged:")))
                     .scalars())
        for tree_oid, text in trees.items():
            if tree_oid not in live_trees:
                continue  # left by a deleted repo; its blobs may be collected
            for entry in decode_tree(text).values():
                if not reg.blobs.exists(entry.oid):
                    if entry.oid in purged:
                        continue
                    report.problems.append(f"tree {tree_oid}: blob {entry.oid} of {entry.path} missing")
                elif reg.blobs.size(entry.oid) != entry.size:
                    report.problems.append(f"tree {tree_oid}: blob {entry.oid} of {entry.path} has the wrong size")
        for ref in conn.execute(sa.select(db.refs)):
            report.refs += 1
            if ref.commit_oid not in known_commits:
                report.problems.append(f"{ref.kind} {ref.name} of repo {ref.repo_id}: commit {ref.commit_oid} missing")
    report.xet_objects, xet_problems = fsck_xet(reg)
    report.problems += xet_problems
    return report


@dataclass
class GcReport:
    """What gc removed and kept."""

    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept: int = 0
    temp_files: int = 0
    snapshots: int = 0


def referenced_oids(reg: Registry) -> set[str]:
    """Every blob oid named by a tree of a commit that still exists."""
    with reg.engine.connect() as conn:
        live = sa.select(db.commits.c.tree_oid).distinct()
        rows = conn.execute(sa.select(db.trees.c.data).where(db.trees.c.oid.in_(live))).scalars()
        return {e.oid for text in rows for e in decode_tree(text).values()}


def gc(reg: Registry, *, grace_seconds: float, dry_run: bool = False, progress: bool = False) -> GcReport:
    """Remove blobs nothing references and that are older than `grace_seconds` (an upload may still need them)."""
    report = GcReport()
    keep = referenced_oids(reg)
    # Xorbs are blobs too: those a live file (or an upload in flight) needs stay.
    keep |= live_xorb_oids(reg, keep, grace_seconds)
    for oid in tqdm(list(reg.blobs.iter_oids()), desc="blobs", unit="blob", disable=not progress):
        if oid in keep:
            report.kept += 1
            continue
        if reg.blobs.age_seconds(oid) < grace_seconds:
            continue
        report.removed.append(oid)
        report.freed_bytes += reg.blobs.size(oid)
        if not dry_run:
            reg.blobs.delete(oid)
    if not dry_run:
        forget_removed(reg)
    for tmp in reg.blobs.stale_temp_files(grace_seconds):
        report.temp_files += 1
        if not dry_run:
            tmp.unlink(missing_ok=True)
    # Snapshot folders (links for demos and evaluations) of commits that no longer exist point at nothing.
    snapshots = reg.settings.home / "snapshots"
    if snapshots.is_dir():
        with reg.engine.connect() as conn:
            commits = set(conn.execute(sa.select(db.commits.c.oid)).scalars())
        for folder in snapshots.iterdir():
            if folder.name not in commits and not folder.name.startswith("."):
                report.snapshots += 1
                if not dry_run:
                    drop_snapshot_dir(reg, folder.name)
    # Trees are left alone: they are small, and deleting one could race a commit that is about to reuse it.
    return report
