"""Distances between value distributions: hand-computed values, properties, and the permutation test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from univar_eval.stats import distance as D
from univar_eval.stats import resampling

E = np.eye(4)


def test_mmd2_of_two_point_masses_by_hand():
    # k(e1, e1) = 1, k(e1, e2) = exp(cos - 1) = exp(-1): within sums 1 + 1, cross 2/e
    x, y = np.array([E[0], E[0]]), np.array([E[1], E[1]])
    assert D.mmd2_unbiased(x, y) == pytest.approx(2 - 2 / math.e, abs=1e-12)


def test_mmd2_small_case_by_hand():
    # x = {e1, e2}, y = {e1, e3}: within-x pair e1.e2 -> exp(-1); within-y exp(-1);
    # cross: (e1,e1)=1, (e1,e3)=e^-1, (e2,e1)=e^-1, (e2,e3)=e^-1 -> mean (1 + 3/e)/4
    x, y = np.array([E[0], E[1]]), np.array([E[0], E[2]])
    expected = math.exp(-1) + math.exp(-1) - 2 * (1 + 3 * math.exp(-1)) / 4
    assert D.mmd2_unbiased(x, y) == pytest.approx(expected, abs=1e-12)
    result = D.compare_sets(x, y, n_permutations=0, n_bootstrap=0)
    assert result.statistic == pytest.approx(expected, abs=1e-6)
    assert result.distance == pytest.approx(math.sqrt(max(expected, 0)), abs=1e-6)


def test_mmd_bandwidth_changes_kernel_as_documented():
    x, y = np.array([E[0], E[0]]), np.array([E[1], E[1]])
    # sigma = 2: k(e1, e2) = exp(-2 / 8)
    assert D.mmd2_unbiased(x, y, bandwidth=2.0) == pytest.approx(2 - 2 * math.exp(-0.25), abs=1e-12)
    pooled = np.vstack([x, y])
    # pairwise distances: 0 (x2), sqrt(2) (x4) -> median sqrt(2)
    assert D.median_bandwidth(pooled) == pytest.approx(math.sqrt(2))


def test_centroid_distance_by_hand():
    x = np.array([E[0]])
    y = np.array([(E[0] + E[1]) / math.sqrt(2)])
    assert D.centroid_distance(x, y) == pytest.approx(1 - math.cos(math.pi / 4), abs=1e-12)


def test_frechet_without_shrinkage_matches_the_fid_formula():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(1)
    a = D.normalise(rng.normal(size=(40, 5)))
    b = D.normalise(rng.normal(size=(50, 5)) + 0.7)
    sa, sb = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa + sb - 2 * sqrtm(sa @ sb).real)
    assert D.frechet_distance(a, b, shrinkage=0) == pytest.approx(expected, rel=1e-8)


def test_frechet_with_fewer_answers_than_dimensions_is_finite_and_exact_in_the_complement():
    # With full shrinkage both covariances are mu I: the trace term is d (sqrt(mu_x) - sqrt(mu_y))^2
    rng = np.random.default_rng(2)
    a, b = D.normalise(rng.normal(size=(10, 64))), D.normalise(rng.normal(size=(12, 64)))
    _, _, mua = D.ledoit_wolf(a)
    _, _, mub = D.ledoit_wolf(b)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + 64 * (math.sqrt(mua) - math.sqrt(mub)) ** 2
    assert D.frechet_distance(a, b, shrinkage=1.0) == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(D.frechet_distance(a, b))


def test_ledoit_wolf_shrinkage_matches_the_reference_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8))
    xc, s, mu = D.ledoit_wolf(x)
    n, d = x.shape
    cov = xc.T @ xc / n
    m = np.trace(cov) / d
    delta = ((cov - m * np.eye(d)) ** 2).sum() / d
    beta = sum(((np.outer(r, r) - cov) ** 2).sum() for r in xc) / n**2 / d
    assert mu == pytest.approx(m)
    assert s == pytest.approx(min(beta, delta) / delta)


unit_sets = arrays(
    np.float64, st.tuples(st.integers(3, 8), st.just(6)), elements=st.floats(-1, 1, allow_nan=False)
).filter(lambda a: (np.linalg.norm(a, axis=1) > 0.1).all())


@settings(max_examples=40, deadline=None)
@given(unit_sets, unit_sets)
def test_distances_are_symmetric_and_ignore_order(x, y):
    for metric in D.METRICS:
        d_xy = D.distance(x, y, metric)
        assert d_xy == pytest.approx(D.distance(y, x, metric), rel=1e-6, abs=1e-7)
        assert d_xy == pytest.approx(D.distance(x[::-1], y[::-1], metric), rel=1e-6, abs=1e-7)
        assert d_xy >= 0


@settings(max_examples=25, deadline=None)
@given(unit_sets)
def test_identical_sets_are_at_distance_zero(x):
    assert D.centroid_distance(x, x) == pytest.approx(0, abs=1e-9)
    assert D.frechet_distance(x, x) == pytest.approx(0, abs=1e-7)
    # unbiased MMD² of a set with itself is -(mean off-diagonal k - ...) <= 0, reported distance 0
    assert D.distance(x, x, "mmd") == 0.0


@settings(max_examples=15, deadline=None)
@given(unit_sets, unit_sets)
def test_vectorised_permutation_statistic_equals_direct_computation(x, y):
    r = D.compare_sets(x, y, "mmd", n_permutations=0, n_bootstrap=0)
    assert r.statistic == pytest.approx(D.mmd2_unbiased(x, y), abs=1e-5)
    c = D.compare_sets(x, y, "centroid", n_permutations=0, n_bootstrap=0)
    assert c.statistic == pytest.approx(D.centroid_distance(x, y), abs=1e-5)


def naive_grouped_mmd2(x, y, gx, gy):
    """Reference: mean kernel over pairs whose questions differ, within and across the sets."""
    x, y = D.normalise(x), D.normalise(y)
    k = lambda a, b: math.exp(float(a @ b) - 1)  # noqa: E731

    def mean(a, ga, b, gb, same_set):
        vals = [
            k(a[i], b[j]) for i in range(len(a)) for j in range(len(b)) if ga[i] != gb[j] and not (same_set and i == j)
        ]
        return sum(vals) / len(vals)

    return mean(x, gx, x, gx, True) + mean(y, gy, y, gy, True) - 2 * mean(x, gx, y, gy, False)


def test_question_form_is_the_unbiased_mmd2_of_every_labelling_and_drift_uses_it():
    """The one per-question MMD² form (distance.question_form) that compare's per-question design and the
    per-value drift both use: every split of a question's 5 answers into 3 + 2 gives mmd2_unbiased of the split."""
    import itertools

    from univar_eval.stats import drift

    rng = np.random.default_rng(4)
    pooled = D.normalise(rng.normal(size=(5, 6)))
    k = D.kernel_from_gram(pooled @ pooled.T)
    kept = k.copy()
    picks = list(itertools.combinations(range(5), 3))
    w = np.zeros((len(picks), 1, 5))
    for row, pick in enumerate(picks):
        w[row, 0, list(pick)] = 1.0
    got = D.question_mmd2(w, D.question_form(k[None], 3, 2))[:, 0]
    want = [D.mmd2_unbiased(pooled[list(p)], pooled[[i for i in range(5) if i not in p]]) for p in picks]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(k, kept)  # the caller's kernel keeps its diagonal
    q = drift._Question("q", "v", "g", k, 3, 2, [0, 1, 2], [0, 1])
    assert drift._observed(q) == pytest.approx(want[0], abs=1e-12)  # picks[0] = (0, 1, 2): the candidate's own


def test_paired_mmd_by_hand():
    # x = {e1 (q1), e2 (q2)}, y = {e1 (q1), e3 (q2)}: every pair across different questions is at cos 0,
    # so within x, within y and across all average exp(-1): MMD² = 0 (unpaired it is 1/(2e) - 1/2)
    x, y = np.array([E[0], E[1]]), np.array([E[0], E[2]])
    paired = D.compare_sets(x, y, n_permutations=0, n_bootstrap=0, groups_x=["q1", "q2"], groups_y=["q1", "q2"])
    assert paired.statistic == pytest.approx(0.0, abs=1e-6)
    unpaired = D.compare_sets(x, y, n_permutations=0, n_bootstrap=0)
    assert unpaired.statistic == pytest.approx(0.5 / math.e - 0.5, abs=1e-6)


def test_shared_shift_leaves_one_sided_answers_out_and_permutes_within_questions():
    rng = np.random.default_rng(4)
    gx = [f"q{i % 5}" for i in range(10)] + ["only-x"]
    gy = [f"q{i % 5}" for i in range(5)] + ["only-y1", "only-y2"]
    x, y = rng.normal(size=(11, 6)), rng.normal(size=(7, 6)) + 0.3
    res = D.compare_sets(x, y, n_permutations=50, n_bootstrap=0, seed=2, groups_x=gx, groups_y=gy)
    assert (res.design, res.n_questions, res.n_left_out_x, res.n_left_out_y) == ("shared_shift", 5, 1, 2)
    assert res.note == D.SHARED_SHIFT_NOTE
    assert res.statistic == pytest.approx(naive_grouped_mmd2(x[:10], y[:5], gx[:10], gy[:5]), abs=1e-9)
    # the permutations keep each question's answers in each set and exclude the one-sided answers
    strata = tuple(int(g[1]) for g in gx[:10] + gy[:5])
    rows = resampling.permutation_indicators(15, 10, 50, 2, strata)
    pooled, groups = np.vstack([x[:10], y[:5]]), np.array(gx[:10] + gy[:5])
    perm = []
    for row in rows:
        sel = row.astype(bool)
        for q in set(gy[:5]):
            assert sel[groups == q].sum() == 2
        perm.append(naive_grouped_mmd2(pooled[sel], pooled[~sel], list(groups[sel]), list(groups[~sel])))
    expected_p = (1 + sum(v >= res.statistic - 1e-6 for v in perm)) / 51
    assert res.p_value == pytest.approx(expected_p)


def test_pairing_finds_a_shift_that_question_effects_hide():
    # 40 questions with strong question effects; model y answers each shifted a little in one direction
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(40, 32)) * 3
    x = centers + rng.normal(size=(40, 32))
    y = centers + rng.normal(size=(40, 32))
    y[:, 0] += 1.5
    q = [f"q{i}" for i in range(40)]
    unpaired = D.compare_sets(x, y, n_permutations=500, n_bootstrap=0)
    paired = D.compare_sets(x, y, n_permutations=500, n_bootstrap=0, groups_x=q, groups_y=q)
    assert unpaired.p_value > 0.5  # same-question pairs make the two models look alike
    assert paired.p_value < 0.01
    same = D.compare_sets(
        x, centers + rng.normal(size=(40, 32)), n_permutations=500, n_bootstrap=0, groups_x=q, groups_y=q
    )
    assert same.p_value > 0.05


def test_permutation_test_same_vs_shifted_distribution():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 16)), rng.normal(size=(60, 16))
    same = D.compare_sets(x, y, "mmd", n_permutations=500, n_bootstrap=100, seed=1)
    shifted = D.compare_sets(x, y + 0.8, "mmd", n_permutations=500, n_bootstrap=100, seed=1)
    assert same.p_value > 0.05
    assert shifted.p_value == pytest.approx(1 / 501)
    assert shifted.ci_low <= shifted.distance <= shifted.ci_high
    assert shifted.ci_low > same.distance
    for metric in ("centroid", "frechet"):
        n_perm = 500 if metric == "centroid" else 60
        assert D.compare_sets(x, y + 0.8, metric, n_permutations=n_perm, n_bootstrap=0).p_value < 0.05
        assert D.compare_sets(x, y, metric, n_permutations=n_perm, n_bootstrap=0).p_value > 0.05


def test_results_are_seeded_and_independent_of_order():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(25, 8)) + 0.2
    a = D.compare_sets(x, y, seed=3)
    b = D.compare_sets(x, y, seed=3)
    assert a == b
    c = D.compare_sets(x[::-1], y[rng.permutation(25)], seed=3, n_bootstrap=0)
    assert c.statistic == pytest.approx(a.statistic, abs=1e-6)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="at least 2"):
        D.compare_sets(np.ones((1, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="different dimensions"):
        D.compare_sets(np.ones((3, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="unknown metric"):
        D.compare_sets(np.ones((3, 3)), np.ones((3, 3)), "cosine")
