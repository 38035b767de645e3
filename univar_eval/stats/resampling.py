"""Step: resampling. Seeded permutations and paired bootstrap draws for the distance tests, cached by bytes.

* :func:`permutation_indicators`: random splits of pooled items into the two sets, free or
  within strata (answers to one question swap sets, so each set keeps its questions);
* :func:`sign_flips`: the same within-question swap when every question has one answer a side;
* :func:`within_question_splits`: per question, which of its answers play the first set;
* :func:`question_counts`: the paired bootstrap (question ids drawn with replacement).

Every draw is a pure function of its arguments and the seed. Permutation draws are kept in a
least-recently-used cache bounded in bytes (:data:`CACHE_BYTES`), so that checks of one gate
with the same sizes reuse them without holding gigabytes.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

#: Upper bound on the memory held by cached permutation draws.
CACHE_BYTES = 256 * 2**20


class ByteBoundedCache:
    """A least-recently-used map of read-only arrays whose total size stays under ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self.nbytes = 0

    def get(self, key):
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key, value):
        size = sum(v.nbytes for v in value) if isinstance(value, tuple) else value.nbytes
        if size > self.max_bytes:
            return value  # too big to keep: computed again next time
        if key in self._items:
            self.nbytes -= self._size(self._items.pop(key))
        while self._items and self.nbytes + size > self.max_bytes:
            self.nbytes -= self._size(self._items.popitem(last=False)[1])
        self._items[key] = value
        self.nbytes += size
        return value

    @staticmethod
    def _size(value) -> int:
        return sum(v.nbytes for v in value) if isinstance(value, tuple) else value.nbytes

    def clear(self):
        self._items.clear()
        self.nbytes = 0


CACHE = ByteBoundedCache(CACHE_BYTES)


def _cached(key, make):
    value = CACHE.get(key)
    if value is None:
        value = make()
        for v in value if isinstance(value, tuple) else (value,):
            v.setflags(write=False)
        CACHE.put(key, value)
    return value


def permutation_indicators(n_total: int, m: int, b: int, seed: int, strata: tuple | None = None) -> np.ndarray:
    """``b`` seeded random splits of ``n_total`` items into ``m`` and the rest, as 0/1 float32 rows.

    With ``strata`` (one label per item, the first ``m`` items being the first set), labels are
    exchanged only within a stratum: each stratum keeps its number of items in each set.
    """

    def make():
        rng = np.random.default_rng([seed, n_total, m])
        if strata is None:
            idx = np.argsort(rng.random((b, n_total)), axis=1)[:, :m]
            wx = np.zeros((b, n_total), dtype=np.float32)
            np.put_along_axis(wx, idx, 1.0, axis=1)
            return wx
        st = np.asarray(strata, dtype=np.int64)
        in_x = np.zeros(n_total, dtype=bool)
        in_x[:m] = True
        n_x_of = np.bincount(st, weights=in_x, minlength=st.max() + 1).astype(np.int64)
        order = np.argsort(st[None, :] + rng.random((b, n_total)), axis=1)  # grouped by stratum, shuffled within
        sorted_st = np.sort(st)
        start = np.searchsorted(sorted_st, sorted_st, side="left")
        template = ((np.arange(n_total) - start) < n_x_of[sorted_st]).astype(np.float32)
        wx = np.zeros((b, n_total), dtype=np.float32)
        np.put_along_axis(wx, order, np.broadcast_to(template, (b, n_total)), axis=1)
        return wx

    return _cached(("indicators", n_total, m, b, seed, strata), make)


def sign_flips(n_questions: int, b: int, seed: int) -> np.ndarray:
    """``b`` rows of ``n_questions`` random signs (float32): -1 swaps a question's two answers."""
    return _cached(
        ("signs", n_questions, b, seed),
        lambda: (
            1.0 - 2.0 * np.random.default_rng([seed, n_questions, 1]).integers(0, 2, size=(b, n_questions))
        ).astype(np.float32),
    )


def within_question_splits(cx: int, cy: int, g: int, b: int, seed: int, tag: int) -> np.ndarray:
    """For ``g`` questions with ``cx`` answers of x then ``cy`` of y each: ``b`` random relabellings
    that keep ``cx`` answers in x per question, as booleans (b, g, cx + cy), True for x."""

    def make():
        rng = np.random.default_rng([seed, cx, cy, g, tag])
        ranks = np.argsort(np.argsort(rng.random((b, g, cx + cy)), axis=2), axis=2)
        return ranks < cx

    return _cached(("splits", cx, cy, g, b, seed, tag), make)


def question_counts(rng: np.random.Generator, n_questions: int, b: int) -> np.ndarray:
    """The paired bootstrap: how often each of ``n_questions`` is drawn in ``b`` resamples (b, Q)."""
    draws = rng.integers(0, n_questions, size=(b, n_questions)) + n_questions * np.arange(b)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n_questions).reshape(b, n_questions).astype(np.float64)


def independent_weights(rng: np.random.Generator, m: int, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The unpaired bootstrap: each set resampled on its own, as count rows over the pooled items."""
    wx = np.zeros((b, m + n), dtype=np.float32)
    wy = np.zeros((b, m + n), dtype=np.float32)
    rows = np.arange(b)[:, None]
    np.add.at(wx, (rows, rng.integers(0, m, size=(b, m))), 1.0)
    np.add.at(wy, (rows, m + rng.integers(0, n, size=(b, n))), 1.0)
    return wx, wy
