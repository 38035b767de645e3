"""Persistent caches (SQLite) for translations and embeddings, so nothing is computed twice.

One database file per kind under the cache folder: ``$UNIVAR_EVAL_CACHE``, else
``$XDG_CACHE_HOME/univar-eval``, else ``~/.cache/univar-eval``. Keys are a namespace
(the translation model and source language, or the encoder's fingerprint id) and the
sha256 of the text; values are text (translations) or raw little-endian float32 bytes
(embeddings; never pickle), each stored with the sha256 of (namespace, key, value): a value
that does not match its checksum (overwritten, bit rot) is dropped and recomputed, never used.
``UNIVAR_EVAL_CACHE=off`` disables caching.
A cache that cannot be opened (read-only disk, corrupt file) is skipped with a warning:
caching only ever saves time, it never stops a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from univar_eval.resources import cache_dir

log = logging.getLogger("univar_eval")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def value_checksum(namespace: str, key: str, value: bytes) -> str:
    """The checksum stored beside each value: binds the value to its namespace and key."""
    h = hashlib.sha256()
    for part in (namespace.encode("utf-8"), key.encode("utf-8"), value):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


TABLE = "kv_checked"


class KeyValueCache:
    """A (namespace, text-hash) -> bytes store in one SQLite file; safe across threads and processes."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # table "kv" of older releases had no checksums: its values are never read
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (ns TEXT NOT NULL, key TEXT NOT NULL, "
                "value BLOB NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (ns, key))"
            )
            conn.commit()
            self._conn = conn
        except (sqlite3.Error, OSError) as e:
            log.warning("univar-eval: cache %s unusable (%s); continuing without it", self.path, e)
            self._conn = None

    @property
    def enabled(self) -> bool:
        return self._conn is not None

    def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        if not self._conn or not keys:
            return {}
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            try:
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(
                        f"SELECT key, value, sha256 FROM {TABLE} WHERE ns = ? AND key IN ({marks})", [namespace, *chunk]
                    )
                    found.update(
                        {
                            k: bytes(v)
                            for k, v, digest in rows
                            if isinstance(v, bytes) and digest == value_checksum(namespace, k, bytes(v))
                        }
                    )
            except sqlite3.Error as e:
                log.warning("univar-eval: cache read failed (%s); recomputing", e)
                return {}
        bad = len(unique) - len(found) - self._absent(namespace, [k for k in unique if k not in found])
        if bad:
            log.warning("univar-eval: %d cached value(s) in %s failed their checksum; recomputing them", bad, self.path)
        return found

    def _absent(self, namespace: str, keys: list[str]) -> int:
        """How many of ``keys`` have no row at all (the rest of the missing ones failed their checksum)."""
        if not keys or not self._conn:
            return len(keys)
        present = 0
        with self._lock, contextlib.suppress(sqlite3.Error):
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                present += self._conn.execute(
                    f"SELECT COUNT(*) FROM {TABLE} WHERE ns = ? AND key IN ({marks})", [namespace, *chunk]
                ).fetchone()[0]
        return len(keys) - present

    def put_many(self, namespace: str, items: Iterable[tuple[str, bytes]]) -> None:
        if not self._conn:
            return
        with self._lock:
            try:
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO {TABLE} (ns, key, value, sha256) VALUES (?, ?, ?, ?)",
                    [(namespace, k, v, value_checksum(namespace, k, v)) for k, v in items],
                )
                self._conn.commit()
            except sqlite3.Error as e:
                log.warning("univar-eval: cache write failed (%s); results are not cached", e)

    def count(self, namespace: str | None = None) -> int:
        if not self._conn:
            return 0
        with self._lock:
            if namespace is None:
                return int(self._conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE ns = ?", [namespace]).fetchone()[0])


_OPEN: dict[str, KeyValueCache] = {}


def open_cache(kind: str) -> KeyValueCache:
    """The cache of one kind (``embeddings`` or ``translations``), opened once per process and folder."""
    folder = cache_dir()
    path = folder / f"{kind}.sqlite" if folder else None
    key = str(path)
    if key not in _OPEN:
        _OPEN[key] = KeyValueCache(path)
    return _OPEN[key]


def cached_encode(encoder, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
    """``encoder.encode(texts)`` through the embedding cache (keyed by the encoder's fingerprint id)."""
    cache = open_cache("embeddings")
    if not cache.enabled or not texts:
        return encoder.encode(list(texts), batch_size=batch_size, progress=progress)
    namespace = f"{encoder.name}:{encoder.describe()['fingerprint_id']}"
    keys = [text_key(t) for t in texts]
    found = cache.get_many(namespace, keys)
    dim = encoder.dimension
    found = {k: v for k, v in found.items() if len(v) == 4 * dim and np.isfinite(np.frombuffer(v, dtype="<f4")).all()}
    missing = [i for i, k in enumerate(keys) if k not in found]
    out = np.empty((len(texts), dim), dtype=np.float32)
    if missing:
        todo = list(dict.fromkeys(texts[i] for i in missing))
        fresh = np.asarray(encoder.encode(todo, batch_size=batch_size, progress=progress), dtype=np.float32)
        new = {text_key(t): row for t, row in zip(todo, fresh)}
        cache.put_many(namespace, [(k, row.astype("<f4").tobytes()) for k, row in new.items()])
        found.update({k: row.astype("<f4").tobytes() for k, row in new.items()})
    for i, k in enumerate(keys):
        out[i] = np.frombuffer(found[k], dtype="<f4")
    return out
