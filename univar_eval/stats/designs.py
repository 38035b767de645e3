"""Step: comparison designs. Which answers a comparison uses and how they are matched by question.

This module implements the rule stated in :mod:`univar_eval.stats.distance` ("Which distance
is reported"): from the question id of every answer it picks the design (``per_question``,
``shared_shift`` or ``unpaired``), the answers it uses, and the answers it leaves out. It also
draws the seeded subsamples that keep the pairing (:func:`paired_subsample`) and the split of
one model's repeats into two halves for its noise floor (:func:`split_repeats`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

PER_QUESTION, SHARED_SHIFT, UNPAIRED = "per_question", "shared_shift", "unpaired"
DESIGNS = (PER_QUESTION, SHARED_SHIFT, UNPAIRED)
#: Answers per question needed on each side for the per-question design.
MIN_REPEATS = 2


@dataclass(frozen=True)
class Design:
    """The answers a comparison uses: rows of x and y, and the question number (0..Q-1) of each."""

    name: str
    x_index: np.ndarray
    y_index: np.ndarray
    qx: np.ndarray | None
    qy: np.ndarray | None
    n_questions: int
    n_left_out_x: int  # answers to questions the other side did not answer
    n_left_out_y: int
    n_few_repeats: int = 0  # per_question: shared questions left out for fewer than MIN_REPEATS answers on a side
    problem: str | None = None
    n_repeated: int = 0  # shared questions with MIN_REPEATS answers or more on both sides

    @property
    def one_to_one(self) -> bool:
        """Exactly one answer per question on each side (the sign-flip fast path)."""
        return (
            self.qx is not None
            and len(self.qx) == self.n_questions == len(self.qy)
            and len(np.unique(self.qx)) == self.n_questions
            and len(np.unique(self.qy)) == self.n_questions
        )


def _ids(groups, size: int, side: str) -> list:
    ids = list(groups)
    if len(ids) != size:
        raise ValueError(f"one question id per embedding is needed ({side}: {len(ids)} ids for {size} embeddings)")
    return ids


def choose_design(groups_x, groups_y, m: int, n: int, *, paired: bool = True, per_question: bool = True) -> Design:
    """The design for ``m`` answers of x and ``n`` of y (see distance.py's rule).

    ``per_question=False`` (metrics without a per-question form) keeps repeats in the shared-shift design.
    """
    if not paired or groups_x is None or groups_y is None:
        return Design(UNPAIRED, np.arange(m), np.arange(n), None, None, 0, 0, 0)
    gx, gy = _ids(groups_x, m, "x"), _ids(groups_y, n, "y")
    cx, cy = Counter(g for g in gx if g is not None), Counter(g for g in gy if g is not None)
    shared = sorted(set(cx) & set(cy), key=str)
    left_x = sum(1 for g in gx if g not in cy or g is None)
    left_y = sum(1 for g in gy if g not in cx or g is None)
    if not shared:
        return Design(
            SHARED_SHIFT,
            np.arange(0),
            np.arange(0),
            None,
            None,
            0,
            left_x,
            left_y,
            problem="no question is answered on both sides, so there is nothing to pair; compare "
            "unpaired (paired=False, --allow-other-questions) if the sets ask different questions",
        )
    repeated = [g for g in shared if cx[g] >= MIN_REPEATS and cy[g] >= MIN_REPEATS]
    name = PER_QUESTION if per_question and repeated and 2 * len(repeated) >= len(shared) else SHARED_SHIFT
    used = repeated if name == PER_QUESTION else shared
    number = {g: i for i, g in enumerate(used)}
    x_index = np.array([i for i, g in enumerate(gx) if g in number], dtype=np.int64)
    y_index = np.array([i for i, g in enumerate(gy) if g in number], dtype=np.int64)
    qx = np.array([number[gx[i]] for i in x_index], dtype=np.int64)
    qy = np.array([number[gy[i]] for i in y_index], dtype=np.int64)
    problem = None
    if name == SHARED_SHIFT and len(used) < 2:
        problem = (
            "all answers share one question id: the shared-shift comparison leaves out pairs of answers to "
            "the same question, so it needs two shared questions or more"
        )
    return Design(
        name,
        x_index,
        y_index,
        qx,
        qy,
        len(used),
        left_x,
        left_y,
        n_few_repeats=len(shared) - len(used),
        problem=problem,
        n_repeated=len(repeated),
    )


def paired_subsample(
    groups_x, groups_y, max_n: int, seed: int = 0, *, n_x: int | None = None, n_y: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of x and y to keep at most ``max_n`` answers a side, subsampling by shared question id.

    With question ids on both sides, a seeded random subset of the shared questions is kept whole on
    both sides (every answer of x and of y to those questions), so the subsample stays paired; answers
    to questions the other side did not answer are not kept (a paired comparison leaves them out).
    Without ids (give ``n_x`` / ``n_y``) each side is subsampled on its own. Indices are sorted.
    """
    rng = np.random.default_rng([seed, 7])
    if groups_x is None or groups_y is None:
        m = len(groups_x) if groups_x is not None else n_x
        n = len(groups_y) if groups_y is not None else n_y
        if m is None or n is None:
            raise ValueError("give n_x and n_y when a side has no question ids")

        def pick(size):
            return np.sort(rng.choice(size, max_n, replace=False)) if size > max_n else np.arange(size)

        return pick(m), pick(n)
    gx, gy = list(groups_x), list(groups_y)
    cx, cy = Counter(gx), Counter(gy)
    shared = sorted((set(cx) & set(cy)) - {None}, key=str)
    keep, used_x, used_y = set(), 0, 0
    for i in rng.permutation(len(shared)):
        g = shared[i]
        if used_x + cx[g] <= max_n and used_y + cy[g] <= max_n:
            keep.add(g)
            used_x, used_y = used_x + cx[g], used_y + cy[g]
    return (
        np.array([i for i, g in enumerate(gx) if g in keep], dtype=np.int64),
        np.array([i for i, g in enumerate(gy) if g in keep], dtype=np.int64),
    )


def split_repeats(groups, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of one model's answers: each question's repeats, shuffled (seeded), split in two.

    A question with ``c >= 2`` answers gives ``c // 2`` to the first half and the rest to the second;
    questions with one answer are in neither half.
    """
    rng = np.random.default_rng([seed, 11])
    by_q: dict = {}
    for i, g in enumerate(groups):
        if g is not None:
            by_q.setdefault(g, []).append(i)
    a, b = [], []
    for g in sorted(by_q, key=str):
        rows = by_q[g]
        if len(rows) < 2:
            continue
        rows = list(np.asarray(rows)[rng.permutation(len(rows))])
        a += rows[: len(rows) // 2]
        b += rows[len(rows) // 2 :]
    return np.sort(np.array(a, dtype=np.int64)), np.sort(np.array(b, dtype=np.int64))
