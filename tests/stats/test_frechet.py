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
