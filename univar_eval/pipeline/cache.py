"""Persistent caches (SQLite) for translations and embeddings, so nothing is computed twice.

One database file per kind under the cache folder: ``$UNIVAR_EVAL_CACHE``, else
``$XDG_CACHE_HOME/univar-eval``, else ``~/.cache/univar-eval``. Keys are a namespace
(the translation model and source language, or the encoder's fingerprint id) and the
sha256 of the text; values are text (translations) or raw little-endian float32 bytes
(embeddings; never pickle).

**Entries are authenticated.** Each value is stored with an HMAC-SHA256 of (namespace, key, value) under a
secret key of this user (:func:`secret_key`): 32 random bytes in ``$XDG_CONFIG_HOME/univar-eval/cache.key``
(``~/.config/univar-eval/cache.key``), created with mode 0600, never inside the cache folder (which CI systems
cache and restore). A value whose tag does not verify (rewritten by someone without the key, restored from
another machine, bit rot) is dropped and recomputed, never used; a plain hash would not do, since whoever
rewrites a value can recompute its hash. A key file that others can read or write, or that sits inside the
cache folder, is refused: the cache is then skipped with a warning.
``UNIVAR_EVAL_CACHE=off`` disables caching.
A cache that cannot be opened (read-only disk, corrupt file) is skipped with a warning:
caching only ever saves time, it never stops a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from univar_eval.resources import cache_dir

log = logging.getLogger("univar_eval")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


KEY_FILE = "cache.key"


class KeyProblem(Exception):
    """The cache key cannot be trusted or made (the cache is then skipped)."""


def key_path() -> Path:
    """Where this user's cache key lives: ``$XDG_CONFIG_HOME/univar-eval/cache.key``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "univar-eval" / KEY_FILE


def secret_key(path: Path | None = None, cache_folder: Path | None = None) -> bytes:
    """This user's secret cache key (created on first use, mode 0600); :class:`KeyProblem` when it cannot be
    trusted: inside the cache folder, a symlink, owned by another user, or readable or writable by others."""
    path = path or key_path()
    if cache_folder is not None and path.resolve().is_relative_to(Path(cache_folder).resolve()):
        raise KeyProblem(f"the key {path} is inside the cache folder {cache_folder}, which CI may restore")
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another process made it at the same moment: read theirs
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise KeyProblem(f"the key {path} cannot be read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise KeyProblem(
                f"the key {path} is not a private file of this user (mode {stat.S_IMODE(info.st_mode):o}); "
                f"remove it (a new one is made) or chmod 600 it"
            )
        key = fh.read()
    if len(key) < 32:
        raise KeyProblem(f"the key {path} is too short ({len(key)} bytes); remove it and a new one is made")
    return key


def value_tag(secret: bytes, namespace: str, key: str, value: bytes) -> str:
    """The tag stored beside each value: an HMAC binding the value to its namespace and key under ``secret``."""
    h = hmac.new(secret, digestmod=hashlib.sha256)
    for part in (namespace.encode("utf-8"), key.encode("utf-8"), value):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


#: Rows of older releases (table "kv": no checksum; "kv_checked": a plain sha256 anyone can recompute) are
#: never read.
TABLE = "kv_hmac"


class KeyValueCache:
    """A (namespace, text-hash) -> bytes store in one SQLite file; safe across threads and processes."""

    def __init__(self, path: str | Path | None, secret: bytes | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path is None:
            return
        try:
            self._secret = secret if secret is not None else secret_key(cache_folder=self.path.parent)
        except (KeyProblem, OSError) as e:
            log.warning("univar-eval: cache %s not used: %s", self.path, e)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # tables "kv" and "kv_checked" of older releases had no key: their values are never read
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (ns TEXT NOT NULL, key TEXT NOT NULL, "
                "value BLOB NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (ns, key))"
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
                        f"SELECT key, value, tag FROM {TABLE} WHERE ns = ? AND key IN ({marks})", [namespace, *chunk]
                    )
                    found.update(
                        {
                            k: bytes(v)
                            for k, v, digest in rows
                            if isinstance(v, bytes)
                            and isinstance(digest, str)
                            and hmac.compare_digest(digest, value_tag(self._secret, namespace, k, bytes(v)))
                        }
                    )
            except sqlite3.Error as e:
                log.warning("univar-eval: cache read failed (%s); recomputing", e)
                return {}
        bad = len(unique) - len(found) - self._absent(namespace, [k for k in unique if k not in found])
        if bad:
            log.warning("univar-eval: %d cached value(s) in %s failed authentication; recomputing them", bad, self.path)
        return found

    def _absent(self, namespace: str, keys: list[str]) -> int:
        """How many of ``keys`` have no row at all (the rest of the missing ones failed authentication)."""
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
                    f"INSERT OR REPLACE INTO {TABLE} (ns, key, value, tag) VALUES (?, ?, ?, ?)",
                    [(namespace, k, v, value_tag(self._secret, namespace, k, v)) for k, v in items],
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
