"""The noise floor states what a rerun of the baseline, with as many answers, would show against it.

Known cases: the variance law of the unbiased MMD² (``f(m, n)``), the 1-against-2 split of a question with 3
answers, the centroid's factor 1/2 with two answers a question, NaN with a reason where a per-question floor cannot
be measured, and a seeded simulation in which the floor's MMD² has the spread of a rerun's (before the rescaling its
standard deviation was sqrt(36/7) = 2.3 times larger).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from univar_eval.stats import designs
from univar_eval.stats import distance as D


def test_variance_factor_of_the_unbiased_mmd2():
    assert D.noise_variance_factor(2, 2) == pytest.approx(1 / 2 + 1 / 2 + 2 / 4)
    assert D.noise_variance_factor(4, 4) == pytest.approx(1 / 12 + 1 / 12 + 2 / 16)
    assert D.noise_variance_factor(2, 3) == pytest.approx(1 / 2 + 1 / 6 + 2 / 6)


def test_variance_law_holds_for_one_question_by_brute_force():
    """Var of the unbiased MMD² of m against n draws from one distribution is 2 tau f(m, n): the ratio of the
    2-vs-2 to the 4-vs-4 variance is f(2, 2) / f(4, 4) = 36/7, whatever the distribution."""
    rng = np.random.default_rng(5)
    centre = np.array([1.0, 0.3, 0.0, 0.0])

    def draws(n):
        return centre + 0.5 * rng.normal(size=(n, 4))

    v22 = np.var([D.mmd2_unbiased(draws(2), draws(2)) for _ in range(6000)])
    v44 = np.var([D.mmd2_unbiased(draws(4), draws(4)) for _ in range(6000)])
    # relative SE of a variance from 6000 draws of a heavy-ish tailed statistic: about 0.05 each, so 0.07 the ratio
    assert v22 / v44 == pytest.approx(36 / 7, rel=0.2)


def test_centroid_floor_halves_the_halves_distance_with_two_answers_a_question():
    rng = np.random.default_rng(8)
    g = [q for q in range(15) for _ in range(2)]
    x = rng.normal(size=(30, 5)) + np.repeat(rng.normal(size=(15, 5)), 2, axis=0)
    r = D.within_noise(x, g, "centroid", seed=1)
    a, b = designs.split_repeats(g, 1)
    halves = D.compare_sets(
        x[a],
        x[b],
        "centroid",
        groups_x=[g[i] for i in a],
        groups_y=[g[i] for i in b],
        n_permutations=0,
        n_bootstrap=200,
        seed=1,
    )
    # each mean averages 15 answers in a half, 30 in a rerun: the covariance of the difference halves
    assert r.details["rerun_scale"] == pytest.approx(0.5)
    assert r.distance == pytest.approx(0.5 * halves.distance) and r.upper == pytest.approx(0.5 * halves.upper)


def test_mmd_floor_with_two_answers_a_question_is_nan_with_a_reason():
    rng = np.random.default_rng(2)
    g = [q for q in range(20) for _ in range(2)]
    r = D.within_noise(rng.normal(size=(40, 6)), g)
    assert math.isnan(r.distance) and math.isnan(r.upper) and "3 answers a question" in r.problem
    g = [q for q in range(20) for _ in range(2)] + [q for q in range(20, 40) for _ in range(3)]  # half with 3: enough
    r = D.within_noise(rng.normal(size=(len(g), 6)), g)
    assert r.problem is None and r.n_questions == 20 and r.details["rerun_questions"] == 40
    g = [q for q in range(20) for _ in range(5)]  # 5 answers: halves of 2 and 3, the plain per-question form
    r = D.within_noise(rng.normal(size=(len(g), 6)), g)
    assert r.problem is None and r.details["n_split_one_answer"] == 0 and math.isfinite(r.upper)


def test_three_answers_split_one_against_two_by_hand():
    """A question of 3 answers gives k(y1, y2) - (k(s, y1) + k(s, y2)) / 2 (variance 1.5 tau), rescaled to a rerun's
    2 tau f(3, 3) = 10/9 tau: by sqrt(20/27)."""
    rng = np.random.default_rng(4)
    g = [q for q in range(6) for _ in range(3)]
    x = D.normalise(rng.normal(size=(18, 5)))
    r = D.within_noise(x, g, seed=2, n_bootstrap=0)
    a, b = designs.split_repeats(g, 2)
    k = lambda u, v: math.exp(float(x[u] @ x[v]) - 1)  # noqa: E731
    values = []
    for q in range(6):
        (s,), (y1, y2) = [i for i in a if g[i] == q], [i for i in b if g[i] == q]
        values.append(k(y1, y2) - (k(s, y1) + k(s, y2)) / 2)
    assert r.details["n_split_one_answer"] == 6
    assert r.statistic == pytest.approx(math.sqrt(20 / 27) * np.mean(values), rel=1e-9)
    assert r.distance == pytest.approx(math.sqrt(max(r.statistic, 0.0)))


def test_the_floor_has_the_spread_of_a_rerun():
    """Seeded simulation, 4 answers to each of 20 questions, question effects: the floor's MMD² and a rerun's both
    centre on 0, and their variances agree (ratio 1 within its SE, about 0.12 from 300 draws a side)."""
    floor, rerun = [], []
    g = [q for q in range(20) for _ in range(4)]
    for s in range(300):
        rng = np.random.default_rng([17, s])
        centres = rng.normal(size=(20, 8))

        def sample():
            return centres[g] + 0.6 * rng.normal(size=(80, 8))

        base = sample()
        floor.append(D.within_noise(base, g, seed=s, n_bootstrap=0).statistic)
        rerun.append(D.compare_sets(base, sample(), groups_x=g, groups_y=g, n_permutations=0, n_bootstrap=0).statistic)
    floor, rerun = np.array(floor), np.array(rerun)
    se = np.sqrt(np.mean(rerun**2) / len(rerun))
    assert abs(floor.mean()) < 3 * se and abs(rerun.mean()) < 3 * se
    ratio = np.mean(floor**2) / np.mean(rerun**2)
    assert ratio == pytest.approx(1.0, abs=0.36)  # 3 SE; unscaled halves give 36/7 = 5.1


def test_centroid_halves_weight_every_question_alike():
    """2 and 3 answers mixed: the 3-answer questions split 1 + 2, so the second half would over-weight them; the
    extra answer is dropped (both halves hold one answer of every question). 3 answers everywhere: kept (1 + 2)."""
    rng = np.random.default_rng(3)
    g = [q for q in range(10) for _ in range(2)] + [q for q in range(10, 20) for _ in range(3)]
    r = D.within_noise(rng.normal(size=(len(g), 5)), g, "centroid")
    assert r.n_x == r.n_y == 20
    g = [q for q in range(10) for _ in range(3)]
    r = D.within_noise(rng.normal(size=(30, 5)), g, "centroid")
    assert (r.n_x, r.n_y) == (10, 20)
