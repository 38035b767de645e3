"""Single-precision symmetric eigenvalues from scipy's LAPACK, against numpy's double precision."""

from __future__ import annotations

import numpy as np
import pytest

from univar_eval.stats import lapack


def test_eigenvalues_of_the_lower_triangle_match_numpy_in_double():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 30, 30))
    a = a @ a.transpose(0, 2, 1) + np.eye(30)
    expected = np.linalg.eigvalsh(a)
    garbled = np.tril(a).astype(np.float32) + np.triu(np.full((30, 30), 7.0, np.float32), 1)  # upper: never read
    kept = garbled.copy()
    got = lapack.eigvalsh_lower(garbled)
    assert lapack.available()
    assert got.dtype == np.float64 and got.shape == (3, 30)
    assert got == pytest.approx(expected, rel=2e-5, abs=2e-5 * expected.max())
    assert np.array_equal(garbled, kept)  # the input is left as it was


def test_known_eigenvalues_of_a_diagonal_matrix():
    a = np.diag(np.array([3.0, 1.0, 2.0], np.float32))[None].copy()
    assert lapack.eigvalsh_lower(a)[0].tolist() == [1.0, 2.0, 3.0]


def test_other_input_is_refused():
    with pytest.raises(ValueError, match="float32"):
        lapack.eigvalsh_lower(np.eye(3)[None])
