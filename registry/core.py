"""The `Registry`: one handle on the metadata DB and the blob store, passed to every domain function."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from threading import Lock

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from registry import db
from registry.settings import Settings
from registry.storage import BlobStore, open_blob_store
from registry.trees import TreeEntry, decode_tree


class Registry:
    """Everything stateful a Vitrine process holds; all of it lives in the DB and the blob store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The store first: a bucket that cannot be reached stops the start before the database is touched.
        self.blobs: BlobStore = open_blob_store(settings)
        self.engine: Engine = db.connect(settings.effective_database_url)
        self._trees: OrderedDict[str, dict[str, TreeEntry]] = OrderedDict()
        self._trees_lock = Lock()
        self.secret = self._load_secret()

    def write(self) -> Engine:
        """Engine for write transactions (`with reg.write().begin() as conn`)."""
        return db.writer(self.engine)

    def tree(self, conn: Connection, tree_oid: str) -> dict[str, TreeEntry]:
        """The entries of tree `tree_oid`; trees are immutable, so a small LRU keeps hot ones parsed."""
        with self._trees_lock:
            cached = self._trees.get(tree_oid)
            if cached is not None:
                self._trees.move_to_end(tree_oid)
                return cached
        text = conn.execute(sa.select(db.trees.c.data).where(db.trees.c.oid == tree_oid)).scalar_one()
        entries = decode_tree(text)
        with self._trees_lock:
            self._trees[tree_oid] = entries
            while len(self._trees) > 256:
                self._trees.popitem(last=False)
        return entries

    def _load_secret(self) -> bytes:
        # Shared through the DB so every replica signs and checks upload links alike.
        try:
            with self.write().begin() as conn:
                conn.execute(sa.insert(db.kv).values(key="secret", value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another process (or an earlier start) created it first
        with self.engine.connect() as conn:
            return bytes.fromhex(conn.execute(sa.select(db.kv.c.value).where(db.kv.c.key == "secret")).scalar_one())

    def close(self) -> None:
        """Release DB connections."""
        self.engine.dispose()
