"""The gate's quantities d_S and d_Q, their bounds and the test of excess, with known answers.

Hand-computed: the U-statistic and its standard error on a 3-question case, the Student-t p-value of excess and the
lower bound it inverts; identical inputs (distance 0, p = 1, bound 0); the ceiling 2 (1 - e^-2); one meaning of d_S
with and without repeats (the same exact quantity); copies never turning a non-pass into a pass; the noise floor at
the gate's alpha and bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as t_dist

from univar_eval.stats import equivalence as E


def one_hot(i, d=4):
    v = np.zeros(d)
    v[i] = 1.0
    return v


def test_u_statistic_and_its_standard_error_by_hand():
    h = np.array([[0.0, 0.3, 0.1], [0.3, 0.0, 0.2], [0.1, 0.2, 0.0]])
    u, se = E.u_statistic(h)
    # U = (2 * (0.3 + 0.1 + 0.2)) / (3 * 2) = 0.2; row sums 0.4, 0.5, 0.3 (mean 0.4, squares 0 + 0.01 + 0.01)
    # jackknife: 4 * 0.02 / (3 * 2 * 1) = 0.013333; pair term: 2 * 2 * (0.09 + 0.01 + 0.04) / 36 = 0.015556
    assert u == pytest.approx(0.2)
    assert se == pytest.approx(math.sqrt(4 * 0.02 / 6 + 2 * 0.28 / 36))


def test_p_of_excess_and_the_lower_bound_it_inverts():
    # theta 0.0081 (d 0.09), se 0.001, D 0.05: t = 5.6 on 19 df
    p = E.p_excess(0.0081, 0.001, 19, 0.05)
    assert p == pytest.approx(t_dist.sf(5.6, 19))
    low = E.lower_bound(0.0081, 0.001, 19, 1 - p)  # at the level 1 - p the lower bound is exactly D
    assert low == pytest.approx(0.05)
    assert E.p_excess(0.0081, 0.001, 19, 0.05, enough=False) == 1.0  # too few questions: never a fail
    assert E.lower_bound(0.0081, 0.001, 19, 0.95, enough=False) == 0.0


def pooled(rng, n_questions, per_question, dim=8, shift=0.0):
    centres = rng.normal(size=(n_questions, dim))
    ids = [q for q in range(n_questions) for _ in range(per_question)]
    x = centres[ids] + 0.7 * rng.normal(size=(len(ids), dim))
    x[:, 0] += shift
    return x, ids


def test_identical_inputs_give_distance_zero_and_p_one():
    rng = np.random.default_rng(0)
    for per_question in (1, 3):
        x, ids = pooled(rng, 30, per_question)
        ev = E.evaluate(x, x.copy(), ids, list(ids), n_bootstrap=200, n_permutations=999, seed=4)
        assert ev.identical and ev.n_copies == 0
        for b in ev.bounds:
            assert (b.distance, b.statistic, b.se, b.upper, b.p_difference) == (0.0, 0.0, 0.0, 0.0, 1.0)
            assert b.p_excess(0.01) == 1.0 and b.lower(0.99) == 0.0
        assert len(ev.bounds) == (2 if per_question >= 2 else 1)


def test_the_bound_never_exceeds_the_ceiling():
    """One changed question among 30 whose answers are identical: the bound is at most the ceiling (it was 3.9e6)."""
    rng = np.random.default_rng(1)
    x, ids = pooled(rng, 30, 3)
    y = x.copy()
    y[ids.index(5) : ids.index(5) + 3] = rng.normal(size=(3, 8))
    ev = E.evaluate(x, y, ids, ids, n_bootstrap=200, seed=0)
    assert E.MMD2_CEILING == pytest.approx(2 * (1 - math.exp(-2)))
    for b in ev.bounds:
        assert 0.0 <= b.upper <= math.sqrt(E.MMD2_CEILING)
    # the ceiling itself: two opposite unit vectors on every question (k = e^-2 across, 1 within)
    a = np.array([one_hot(0)] * 2 * 10)
    ids2 = [q for q in range(10) for _ in range(2)]
    ev = E.evaluate(a, -a, ids2, ids2, n_bootstrap=50, seed=0)
    assert ev.get("d_Q").statistic == pytest.approx(E.MMD2_CEILING)
    assert ev.get("d_S").statistic == pytest.approx(E.MMD2_CEILING)


def test_d_s_is_one_quantity_with_and_without_repeats():
    """The exact theta_S of a finite-pool shift is estimated without bias by 1 v 1 and by 3 v 3 answers."""
    rng = np.random.default_rng(2)
    q, pool_size, dim = 12, 3, 6
    pools = rng.normal(size=(q, pool_size, dim))
    pools /= np.linalg.norm(pools, axis=2, keepdims=True)
    wy = np.full((q, pool_size), 1 / 3)
    wx = np.tile([0.6, 0.3, 0.1], (q, 1))
    flat = pools.reshape(-1, dim)
    k = np.exp(flat @ flat.T - 1)
    blocks = np.zeros((q, q * pool_size))
    for i in range(q):
        blocks[i, i * pool_size : (i + 1) * pool_size] = (wx - wy)[i]
    h = blocks @ k @ blocks.T
    theta_s = (h.sum() - np.trace(h)) / (q * (q - 1))
    means = {}
    for per_q in (1, 3):
        est = []
        for s in range(1500):
            r = np.random.default_rng([s, per_q])
            px = np.array([r.choice(pool_size, per_q, p=wx[i]) for i in range(q)]).ravel()
            py = np.array([r.choice(pool_size, per_q, p=wy[i]) for i in range(q)]).ravel()
            ids = np.repeat(np.arange(q), per_q)
            lay = E.layout(pools[ids, px], pools[ids, py], list(ids), list(ids), copies=False)
            est.append(E.u_statistic(E.shared_matrix(lay))[0])
        means[per_q] = (np.mean(est), np.std(est) / math.sqrt(len(est)))
    for per_q, (mean, err) in means.items():
        assert abs(mean - theta_s) < 4 * err, (per_q, mean, theta_s, err)
    assert means[3][1] < means[1][1]  # repeats make the estimate of the same quantity more precise


def test_copies_never_help():
    """A candidate that does not pass with fresh answers does not pass with half of them replaced by verbatim
    copies of the baseline's answers to the same question; a fully identical rerun passes."""
    rng = np.random.default_rng(3)
    x, ids = pooled(rng, 40, 4)
    y = x + 0.6 * rng.normal(size=x.shape)  # the baseline: other answers to the same questions
    cand = x.copy()
    cand[:, 1] += 1.2  # a candidate shifted far from the baseline
    fresh = E.evaluate(cand, y, ids, ids, n_bootstrap=200, seed=0).get("d_S")
    mixed = cand.copy()
    mixed[::2] = y[::2]  # half its answers: the baseline's own, verbatim
    ev = E.evaluate(mixed, y, ids, ids, n_bootstrap=200, seed=0)
    assert ev.copies_in_excess and ev.n_copies == 80
    assert ev.get("d_S").upper >= fresh.upper
    for tol in np.linspace(0.01, 1.0, 40):
        assert not (ev.get("d_S").upper < tol <= fresh.upper)
    same = E.evaluate(y, y.copy(), ids, ids, n_bootstrap=200, seed=0)
    assert same.identical and same.get("d_S").upper == 0.0 < 0.01


def test_natural_coincidences_in_small_pools_are_not_copies():
    """Two draws of one model from pools of 3 answers coincide often; that is not copying."""
    rng = np.random.default_rng(4)
    pools = rng.normal(size=(30, 3, 8))
    ids = [q for q in range(30) for _ in range(3)]
    x = pools[ids, rng.integers(0, 3, len(ids))]
    y = pools[ids, rng.integers(0, 3, len(ids))]
    ev = E.evaluate(x, y, ids, ids, n_bootstrap=50, seed=0)
    assert ev.n_copies > 50 and not ev.copies_in_excess


def test_noise_floor_uses_the_alpha_and_bootstrap_it_is_given():
    rng = np.random.default_rng(5)
    x, ids = pooled(rng, 40, 4)
    loose = E.noise_floor(x, ids, alpha=0.2, n_bootstrap=300, seed=1)
    tight = E.noise_floor(x, ids, alpha=0.01, n_bootstrap=300, seed=1)
    assert loose.distance == tight.distance and loose.upper < tight.upper
    assert (loose.n_bootstrap, loose.alpha) == (300, 0.2)
    assert E.noise_floor(x[::4], ids[::4]) is None  # no repeats: no floor


def test_too_few_questions_never_pass():
    rng = np.random.default_rng(6)
    x, ids = pooled(rng, E.MIN_QUESTIONS - 1, 3)
    ev = E.evaluate(x, x + 1e-3, ids, ids, n_bootstrap=100, seed=0)
    for b in ev.bounds:
        assert not b.enough and b.upper == pytest.approx(math.sqrt(E.MMD2_CEILING)) and b.p_excess(0.0) == 1.0


def test_score_upper_by_hand():
    """The score bound: the smallest theta0 with theta0 - U = t sqrt(pair + lin (v + theta0 - U) / v)."""
    u, lin, pair, v, t = 0.002, 4e-6, 1e-6, 0.004, 1.7
    upper = E.score_upper(u, lin, pair, v, t)
    # x = theta0 - U solves x² - (t² lin / v) x - t² (pair + lin) = 0
    # b = 2.89 * 1e-3 = 0.00289, c = 1.445e-5: x = 0.0055117
    b, c = t * t * lin / v, t * t * (pair + lin)
    x = (b + math.sqrt(b * b + 4 * c)) / 2
    assert upper == pytest.approx(u + x) and x == pytest.approx(0.0055117, rel=1e-4)
    assert (upper - u) == pytest.approx(t * math.sqrt(pair + lin * (v + upper - u) / v))
    assert upper > u + t * math.sqrt(lin + pair)  # never below the Wald bound
    assert E.score_upper(u, 0.0, pair, v, t) == pytest.approx(u + t * math.sqrt(pair))  # no linear term: Wald


def test_one_answer_a_question_needs_enough_questions_to_pass():
    """With one answer a question on a side, a d_S pass needs MIN_QUESTIONS_ONE_ANSWER questions: below it the
    bound is the ceiling (inconclusive, never pass) while a fail stays possible; at it, a near-identical candidate
    passes; with repeats on both sides 10 questions suffice; bit-identical sides pass at any size."""
    rng = np.random.default_rng(7)
    few = E.MIN_QUESTIONS_ONE_ANSWER - 1
    x, ids = pooled(rng, few, 1)
    near = E.evaluate(x + 1e-3 * rng.normal(size=x.shape), x, ids, ids, n_bootstrap=100, seed=0).get("d_S")
    assert near.enough and not near.enough_to_pass and near.min_questions_pass == E.MIN_QUESTIONS_ONE_ANSWER
    assert near.upper == pytest.approx(math.sqrt(E.MMD2_CEILING)) and near.to_dict()["enough_to_pass"] is False
    far = E.evaluate(x + 2.0 * one_hot(0, x.shape[1]), x, ids, ids, n_bootstrap=100, seed=0).get("d_S")
    assert far.p_excess(0.1) < 1e-6  # a fail needs no more questions than MIN_QUESTIONS
    x2, ids2 = pooled(rng, E.MIN_QUESTIONS_ONE_ANSWER, 1)
    ok = E.evaluate(x2 + 1e-3 * rng.normal(size=x2.shape), x2, ids2, ids2, n_bootstrap=100, seed=0).get("d_S")
    assert ok.enough_to_pass and ok.upper < 0.05
    x3, ids3 = pooled(rng, 12, 3)
    rep = E.evaluate(x3 + 1e-3 * rng.normal(size=x3.shape), x3, ids3, ids3, n_bootstrap=100, seed=0).get("d_S")
    assert rep.enough_to_pass and rep.upper < 0.05
    same = E.evaluate(x, x.copy(), ids, ids, n_bootstrap=100, seed=0).get("d_S")
    assert same.upper == 0.0


def test_a_question_with_identical_answer_sets_keeps_its_unbiased_d_q_value_and_is_relabelled():
    """Among other questions, one whose two answer sets are the same multiset {e0, e1, e2}: its unbiased MMD² is
    2 e^-1 - 2 (3 + 6 e^-1) / 9 = (2/3)(e^-1 - 1) (k = 1 on the diagonal, e^-1 between orthogonal unit vectors),
    not 0 (0 biased d_Q upwards: size 0.089 at 120 questions); the permutation test relabels it like any other
    question (the split that keeps the sides reproduces the observed value, the others differ)."""
    e = [one_hot(i, 8) for i in range(8)]
    x = np.array([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[3]])
    y = np.array([e[0], e[1], e[2], e[4], e[4], e[6], e[5], e[5], e[7]])
    ids = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    lay = E.layout(x, y, ids, ids)
    assert list(lay.identical) == [True, False, False] and not lay.all_identical
    values = E.question_values(lay, [0, 1, 2])
    assert values[0] == pytest.approx(2 / 3 * (math.exp(-1) - 1))
    perm = E._permuted_questions(lay, [0], 500, seed=0)  # question 0 alone (divided by 1 row)
    assert np.isclose(perm, values[0]).any() and perm.max() > values[0] + 0.1
    # all sides identical: every value 0, every permuted mean 0, so p = 1 (a deterministic rerun passes)
    same = E.layout(x, x.copy(), ids, ids)
    assert same.all_identical and not E.question_values(same, [0, 1, 2]).any()
    assert not E._permuted_questions(same, [0, 1, 2], 50, seed=0).any()
