"""The Fréchet trace term from Gram blocks alone, against the d-dimensional matrix square root."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from univar_eval.stats.frechet import _trace_sqrt


@pytest.mark.parametrize("m,n,d", [(5, 7, 20), (9, 6, 10), (4, 4, 3)])  # m + n below, above, far above d
def test_trace_sqrt_from_gram_blocks_equals_the_full_square_root(m, n, d):
    rng = np.random.default_rng(m * 100 + n)
    cx, cy = rng.normal(size=(m, d)), rng.normal(size=(n, d))
    ax, ay = 0.3, 1.7
    sx, sy = ax * np.eye(d) + cx.T @ cx, ay * np.eye(d) + cy.T @ cy
    root = sqrtm(sx)
    expected = np.trace(sqrtm(root @ sy @ root)).real
    got = _trace_sqrt((cx @ cx.T)[None], (cy @ cy.T)[None], (cx @ cy.T)[None], np.array([ax]), np.array([ay]), d)[0]
    assert got == pytest.approx(expected, rel=1e-9)


def test_single_precision_permutations_stay_within_the_tie_tolerance_of_double_precision():
    # compare_sets counts a permuted statistic within 1e-5 (relative) of the observed one as a tie, so the
    # single-precision kernel the permutations use must agree with double precision well inside that
    from univar_eval.stats.frechet import PooledFrechet

    rng = np.random.default_rng(5)
    pooled = rng.normal(size=(100, 128)) + np.r_[np.zeros((50, 128)), 0.2 * np.ones((50, 128))]
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    order = np.stack([rng.permutation(100) for _ in range(20)])
    fit = PooledFrechet(pooled)
    single, double = fit(order[:, :50], order[:, 50:], np.float32), fit(order[:, :50], order[:, 50:])
    assert single == pytest.approx(double, rel=2e-6)
