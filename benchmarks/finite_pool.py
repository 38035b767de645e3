"""The finite-pool generator of ``validate_gate_stats.py --finite-pool``: every true distance is exact.

Each question has a pool of ``POOL`` unit vectors (answers it can get): a component shared by all
questions, the question's own component, a direction of the question's own subspace per answer, and a
"value stance" (+1 or -1 per answer) along a global stance axis and its value's axis. A model is a
weighting of each pool (the probability of each answer); a sample draws answers with replacement, so
two models' answers coincide verbatim as often as their weights say. The kernel mean of a question is
``w' Phi``, so ``delta_q = (w_x - w_y)' Phi_q`` and ``theta_S``, ``theta_Q`` are exact finite sums.

Shifts (an alternative weighting ``A``; a candidate is the mixture ``(1 - lam) w_y + lam A``, whose
distance is ``lam`` times A's, so ``lam`` sets the true distance to any target):

* ``stance``: every question's weights tilted towards the +stance answers (shared across questions);
* ``value``: the same tilt on one value's questions only (a tenth of the questions);
* ``cancel``: each question tilted along its own random direction (changes that cancel in d_S: d_Q).
"""

from __future__ import annotations

import math

import numpy as np

DIM = 48
POOL = 8
N_VALUES = 10
TILT = 2.0


def world(rng, n_questions: int):
    """Pools (Q, POOL, DIM), stance signs (Q, POOL), value of each question, the baseline's weights (Q, POOL)."""
    shared = rng.normal(size=DIM)
    shared /= np.linalg.norm(shared)
    stance_axis = rng.normal(size=DIM)
    stance_axis /= np.linalg.norm(stance_axis)
    value_axes = rng.normal(size=(N_VALUES, DIM)) / math.sqrt(DIM)
    values = np.arange(n_questions) % N_VALUES
    q_comp = rng.normal(size=(n_questions, 1, DIM)) / math.sqrt(DIM)
    own = rng.normal(size=(n_questions, POOL, DIM)) / math.sqrt(DIM)
    stance = np.where(rng.random((n_questions, POOL)) < 0.5, 1.0, -1.0)
    v = (
        0.6 * shared
        + 1.0 * q_comp
        + 0.8 * own
        + stance[:, :, None] * (0.35 * stance_axis + 0.35 * value_axes[values][:, None, :])
    )
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    w = rng.dirichlet(np.full(POOL, 1.5), size=n_questions)
    return v, stance, values, w


def alternative(rng, kind: str, stance, values, w):
    if kind == "stance":
        tilt = TILT * stance
    elif kind == "value":
        tilt = TILT * stance * (values == 0)[:, None]
    elif kind == "cancel":
        tilt = TILT * rng.normal(size=stance.shape)
    else:
        raise ValueError(kind)
    a = w * np.exp(tilt)
    return a / a.sum(1, keepdims=True)


def thetas(v, wx, wy) -> tuple[float, float]:
    """Exact theta_S and theta_Q of weightings wx against wy on pools v (k = exp(cos - 1))."""
    q = len(v)
    flat = v.reshape(-1, v.shape[2])
    k = np.exp(flat @ flat.T - 1.0)
    diff = (wx - wy).reshape(-1)
    blocks = np.zeros((q, q * POOL))
    for i in range(q):
        blocks[i, i * POOL : (i + 1) * POOL] = diff[i * POOL : (i + 1) * POOL]
    h = blocks @ k @ blocks.T
    theta_q = float(np.trace(h) / q)
    theta_s = float((h.sum() - np.trace(h)) / (q * (q - 1)))
    return theta_s, theta_q


def sample(rng, v, w, per_question: int):
    """``per_question`` answers a question drawn from the pools with weights w: (embeddings, question ids)."""
    q = len(v)
    picks = np.array([rng.choice(POOL, per_question, p=w[i]) for i in range(q)])
    ids = np.repeat(np.arange(q), per_question)
    return v[ids, picks.reshape(-1)], list(ids)
