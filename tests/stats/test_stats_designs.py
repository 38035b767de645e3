"""Comparison designs: the per-question statistic, the paired bootstrap and the permutation p-values
against hand computations and brute-force enumeration; NaN always comes with a reason; one-sided
questions raise no false alarms; the noise floor; paired subsampling; the byte-bounded cache."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from univar_eval.stats import designs, resampling
from univar_eval.stats import distance as D
from univar_eval.stats.frechet import PooledFrechet

E = np.eye(6)


def unbiased_mmd2(a, b):
    """Reference: the textbook unbiased MMD² with k(x, y) = exp(cos - 1), by explicit loops."""
    a, b = D.normalise(a), D.normalise(b)
    k = lambda u, v: math.exp(float(u @ v) - 1)  # noqa: E731
    xx = [k(a[i], a[j]) for i in range(len(a)) for j in range(len(a)) if i != j]
    yy = [k(b[i], b[j]) for i in range(len(b)) for j in range(len(b)) if i != j]
    xy = [k(u, v) for u in a for v in b]
    return sum(xx) / len(xx) + sum(yy) / len(yy) - 2 * sum(xy) / len(xy)


def per_question_reference(x, y, gx, gy):
    gx, gy = np.asarray(gx), np.asarray(gy)
    return float(np.mean([unbiased_mmd2(x[gx == q], y[gy == q]) for q in sorted(set(gx) & set(gy))]))


# -- the per-question statistic -----------------------------------------------------------------------------
HAND_X = np.array([E[0], E[0], E[2], E[3]])
HAND_Y = np.array([E[1], E[1], E[2], E[3]])
HAND_Q = ["q1", "q1", "q2", "q2"]
T1 = 2 - 2 / math.e  # q1: x = {e1, e1}, y = {e2, e2}: within 1 + 1, across exp(-1)
T2 = 1 / math.e - 1  # q2: x = y = {e3, e4}: within 2 exp(-1), across (2 + 2 exp(-1)) / 4 averaged twice


def test_per_question_statistic_by_hand():
    r = D.compare_sets(HAND_X, HAND_Y, n_permutations=0, n_bootstrap=0, groups_x=HAND_Q, groups_y=HAND_Q)
    assert r.design == "per_question" and r.n_questions == 2 and r.note is None
    assert r.statistic == pytest.approx((T1 + T2) / 2, abs=1e-12)
    assert r.distance == pytest.approx(math.sqrt((1 - 1 / math.e) / 2), abs=1e-12)
    assert r.p_value is None and r.upper is None and r.problem is None


def test_per_question_permutation_p_value_by_hand():
    # q1 relabellings: 2 of 6 give T1 (observed or mirrored), 4 give T2; q2: 4 of 6 give T2, 2 give T1.
    # T >= observed (T1 + T2)/2 when q1 is extreme (1/3), or q1 mixed and q2 extreme (2/3 * 1/3): p = 5/9
    r = D.compare_sets(HAND_X, HAND_Y, n_permutations=20000, n_bootstrap=0, seed=1, groups_x=HAND_Q, groups_y=HAND_Q)
    assert r.p_value == pytest.approx(5 / 9, abs=0.012)


def test_paired_bootstrap_of_the_per_question_statistic_by_hand():
    # resampling the 2 question ids: {q1, q1} -> T1 (1/4), {q2, q2} -> T2 (1/4), mixed -> (T1 + T2)/2 (1/2)
    draws = D._per_question_mmd(
        HAND_X, HAND_Y, designs.choose_design(HAND_Q, HAND_Q, 4, 4), 1.0, 0, 4000, 0, np.random.default_rng(3)
    ).boot
    values, counts = np.unique(np.round(draws, 9), return_counts=True)
    assert values == pytest.approx(sorted([T2, (T1 + T2) / 2, T1]), abs=1e-9)
    assert counts / 4000 == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    # studentised: the one-question resamples have no spread (no pivot), the mixed ones a pivot of 0, so the
    # bound is the Student-t one: mean + t(0.95; 1 df) * sd / sqrt(2), sd = |T1 - T2| / sqrt(2), t = 6.3138
    r = D.compare_sets(
        HAND_X, HAND_Y, n_permutations=0, n_bootstrap=4000, seed=3, groups_x=HAND_Q, groups_y=HAND_Q, alpha=0.05
    )
    mean, se = (T1 + T2) / 2, abs(T1 - T2) / 2
    assert r.upper == pytest.approx(math.sqrt(mean + 6.313752 * se), abs=1e-6)
    assert r.ci_high == pytest.approx(math.sqrt(mean + 12.706205 * se), abs=1e-6)  # t(0.975; 1 df)
    assert r.ci_low == 0.0


def test_studentised_paired_bootstrap_matches_a_direct_loop():
    rng = np.random.default_rng(23)
    q = [k for k in range(25) for _ in range(3)]
    x, y = rng.normal(size=(75, 6)), rng.normal(size=(75, 6)) + 0.15
    dz = designs.choose_design(q, q, 75, 75)
    engine = D._per_question_mmd(D.normalise(x), D.normalise(y), dz, 1.0, 0, 300, 0, np.random.default_rng(5))
    t = engine.details["per_question"]
    counts = resampling.question_counts(np.random.default_rng(5), 25, 300)
    pivots = []
    for c in counts:  # each resample: its questions' values, repeated as drawn
        sample = np.repeat(t, c.astype(int))
        pivots.append((sample.mean() - t.mean()) / (sample.std(ddof=1) / 5))
    from scipy.stats import t as t_dist

    se = t.std(ddof=1) / 5
    expected_upper = t.mean() + max(-np.quantile(pivots, 0.05), t_dist.ppf(0.95, 24)) * se
    assert engine.bounds(0.95, 0.05)[2] == pytest.approx(expected_upper, rel=1e-9)
    r = D.compare_sets(x, y, n_permutations=0, n_bootstrap=300, seed=5, groups_x=q, groups_y=q)
    assert r.upper == pytest.approx(math.sqrt(max(expected_upper, 0)), rel=1e-9)


def test_per_question_statistic_matches_the_reference_with_unequal_repeats_and_left_out_questions():
    rng = np.random.default_rng(8)
    gx = ["a"] * 3 + ["b"] * 2 + ["c"] * 4 + ["d"] * 2 + ["x-only"] * 2
    gy = ["a"] * 2 + ["b"] * 3 + ["c"] * 2 + ["d"] * 1 + ["y-only"]
    x, y = rng.normal(size=(len(gx), 5)), rng.normal(size=(len(gy), 5)) + 0.2
    r = D.compare_sets(x, y, n_permutations=0, n_bootstrap=0, groups_x=gx, groups_y=gy)
    # d has one answer in y: left out of the per-question design (3 of 4 shared questions have repeats)
    assert (r.design, r.n_questions, r.n_left_out_x, r.n_left_out_y) == ("per_question", 3, 2, 1)
    assert r.details["n_few_repeats"] == 1
    keep_x, keep_y = [g in "abc" for g in gx], [g in "abc" for g in gy]
    expected = per_question_reference(x[keep_x], y[keep_y], np.array(gx)[keep_x], np.array(gy)[keep_y])
    assert r.statistic == pytest.approx(expected, abs=1e-10)


def enumerate_within_question(x, y, gx, gy, statistic):
    """Every relabelling that keeps each question's number of answers in each set: the exact null."""
    gx, gy = np.asarray(gx), np.asarray(gy)
    questions = sorted(set(gx))
    per_q = []
    for q in questions:
        pooled = np.vstack([x[gx == q], y[gy == q]])
        cx = int((gx == q).sum())
        per_q.append(
            [
                (pooled[list(c)], pooled[[i for i in range(len(pooled)) if i not in c]])
                for c in itertools.combinations(range(len(pooled)), cx)
            ]
        )
    values = []
    for choice in itertools.product(*per_q):
        xs = np.vstack([a for a, _ in choice])
        ys = np.vstack([b for _, b in choice])
        qx = np.concatenate([[q] * len(a) for q, (a, _) in zip(questions, choice)])
        qy = np.concatenate([[q] * len(b) for q, (_, b) in zip(questions, choice)])
        values.append(statistic(xs, ys, qx, qy))
    return np.array(values)


@pytest.mark.parametrize("counts", [(2, 2), (1, 1), (2, 1)])
def test_permutation_p_values_match_brute_force_enumeration(counts):
    # per_question (2 + 2 a question), shared_shift with sign flips (1 + 1) and with the dense path (2 + 1)
    rng = np.random.default_rng(sum(counts))
    n_q = {(2, 2): 3, (1, 1): 7, (2, 1): 4}[counts]
    gx = [q for q in range(n_q) for _ in range(counts[0])]
    gy = [q for q in range(n_q) for _ in range(counts[1])]
    centres = rng.normal(size=(n_q, 5)) * 2
    x = centres[gx] + rng.normal(size=(len(gx), 5))
    y = centres[gy] + rng.normal(size=(len(gy), 5)) + 0.25
    r = D.compare_sets(x, y, n_permutations=20000, n_bootstrap=0, seed=5, groups_x=gx, groups_y=gy)
    assert r.design == ("per_question" if counts == (2, 2) else "shared_shift")
    if r.design == "per_question":
        stat = lambda a, b, qa, qb: per_question_reference(a, b, qa, qb)  # noqa: E731
    else:
        from test_distance import naive_grouped_mmd2

        stat = lambda a, b, qa, qb: naive_grouped_mmd2(a, b, list(qa), list(qb))  # noqa: E731
    null = enumerate_within_question(x, y, gx, gy, stat)
    assert r.statistic == pytest.approx(stat(x, y, np.array(gx), np.array(gy)), abs=1e-9)
    exact = float(np.mean(null >= r.statistic - 1e-9))
    assert r.p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4)


def test_sign_flip_path_equals_the_dense_masked_statistic_and_bootstrap():
    rng = np.random.default_rng(9)
    q = list(range(30))
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 0.1
    dz = designs.choose_design(q, q, 30, 30)
    assert dz.one_to_one
    xs, ys = D.normalise(x), D.normalise(y)
    fast = D._sign_flip_mmd(xs, ys, dz, 1.0, 300, 300, 4, np.random.default_rng(1))
    dense = D._dense("mmd", xs, ys, dz, 1.0, 0, 300, 4, np.random.default_rng(1))
    assert fast.observed == pytest.approx(dense.observed, abs=1e-12)
    assert fast.boot == pytest.approx(dense.boot, abs=1e-5)  # the same resamples of question ids


def test_paired_bootstrap_of_the_shared_shift_statistic_by_brute_force():
    # every bootstrap value is the masked MMD² of some resample of question ids, duplicates of one question
    # never paired with each other (they share a question id)
    from test_distance import naive_grouped_mmd2

    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    q = [0, 1, 2]
    possible = set()
    for draw in itertools.product(range(3), repeat=3):
        if len(set(draw)) > 1:
            d = list(draw)
            possible.add(round(naive_grouped_mmd2(x[d], y[d], d, d), 6))
    dz = designs.choose_design(q, q, 3, 3)
    boot = D._sign_flip_mmd(D.normalise(x), D.normalise(y), dz, 1.0, 0, 500, 0, np.random.default_rng(2)).boot
    finite = boot[np.isfinite(boot)]
    assert {round(v, 6) for v in finite} <= possible
    assert np.isnan(boot).mean() == pytest.approx(3 / 27, abs=0.04)  # one question drawn three times: no pair


def test_per_question_changes_that_cancel_are_seen_only_with_repeats():
    # the example: half the questions flip "yes" -> "no", the other half "no" -> "yes"
    rng = np.random.default_rng(11)
    n_q, d = 40, 16
    yes, no = rng.normal(size=(n_q, d)), rng.normal(size=(n_q, d))
    base = np.where(np.arange(n_q)[:, None] % 2 == 0, yes, no)
    cand = np.where(np.arange(n_q)[:, None] % 2 == 0, no, yes)
    noise = lambda k: 0.3 * rng.normal(size=(n_q * k, d))  # noqa: E731
    q1 = list(range(n_q))
    shared = D.compare_sets(
        base + noise(1), cand + noise(1), n_permutations=500, n_bootstrap=0, groups_x=q1, groups_y=q1
    )
    assert shared.design == "shared_shift" and shared.p_value > 0.05
    q3 = [q for q in range(n_q) for _ in range(3)]
    per_q = D.compare_sets(
        np.repeat(base, 3, 0) + noise(3),
        np.repeat(cand, 3, 0) + noise(3),
        n_permutations=500,
        n_bootstrap=200,
        groups_x=q3,
        groups_y=q3,
    )
    assert per_q.design == "per_question" and per_q.p_value == pytest.approx(1 / 501)
    assert per_q.upper >= per_q.distance > 0.5


# -- NaN always comes with its reason -------------------------------------------------------------------
def test_one_question_id_gives_nan_with_a_reason():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    r = D.compare_sets(x, y, n_permutations=100, n_bootstrap=100, groups_x=["q"] * 5, groups_y=["q"] * 5)
    assert r.design == "per_question"  # with repeats one question is a valid per-question comparison...
    assert math.isfinite(r.distance) and math.isfinite(r.p_value)
    assert r.upper != r.upper and "too few for a paired bootstrap" in r.problem  # ...but has no bootstrap bound
    single = D.compare_sets(
        x, y[:1].repeat(5, 0), n_permutations=100, n_bootstrap=100, groups_x=["q"] * 5, groups_y=["q"] + ["other"] * 4
    )
    assert single.design == "shared_shift" and math.isnan(single.distance)
    assert math.isnan(single.p_value) and math.isnan(single.upper)
    assert "all answers share one question id" in single.problem


def test_no_shared_question_and_non_finite_embeddings_give_reasons():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    r = D.compare_sets(x, y, n_permutations=10, n_bootstrap=10, groups_x=list("abcd"), groups_y=list("efgh"))
    assert math.isnan(r.distance) and "no question is answered on both sides" in r.problem
    assert (r.n_left_out_x, r.n_left_out_y) == (4, 4)
    unpaired = D.compare_sets(
        x, y, n_permutations=10, n_bootstrap=10, groups_x=list("abcd"), groups_y=list("efgh"), paired=False
    )
    assert unpaired.design == "unpaired" and unpaired.problem is None and unpaired.note == D.UNPAIRED_NOTE
    x[1, 2] = np.nan
    bad = D.compare_sets(x, y, n_permutations=0, n_bootstrap=0)
    assert math.isnan(bad.distance) and "non-finite embeddings" in bad.problem


@pytest.mark.parametrize("metric", D.METRICS)
@pytest.mark.parametrize("layout", ["one-id", "disjoint", "pairs", "repeats", "none"])
def test_every_nan_comes_with_a_problem(metric, layout):
    rng = np.random.default_rng(14)
    n = {"one-id": 3, "disjoint": 3, "pairs": 3, "repeats": 6, "none": 3}[layout]
    gx = {
        "one-id": ["q"] * n,
        "disjoint": ["a", "b", "c"],
        "pairs": [0, 1, 2],
        "repeats": [0, 0, 1, 1, 2, 2],
        "none": None,
    }[layout]
    gy = {"one-id": ["q", "r", "s"], "disjoint": ["d", "e", "f"], "pairs": [0, 1, 2], "repeats": gx, "none": None}[
        layout
    ]
    r = D.compare_sets(
        rng.normal(size=(n, 8)),
        rng.normal(size=(3 if gy is not None and layout != "repeats" else n, 8)),
        metric,
        n_permutations=20,
        n_bootstrap=20,
        groups_x=gx,
        groups_y=gy,
    )
    values = [r.distance, r.statistic, r.p_value, r.upper, r.ci_low, r.ci_high]
    if not all(math.isfinite(v) for v in values):
        assert r.problem, f"NaN without a reason: {r}"
    else:
        assert r.problem is None


# -- one-sided questions ---------------------------------------------------------------------------------
def test_one_sided_questions_with_repeats_raise_no_false_alarms():
    # identical models, 3 answers per question, 20 questions answered by one side only (issue 13 item 5:
    # flagged in every run before); now they are left out and the test holds its size
    rng = np.random.default_rng(15)
    n_q, extra, d = 30, 20, 16
    rejections = 0
    runs = 60
    for run in range(runs):
        centres = rng.normal(size=(n_q + extra, d)) * 0.8
        gx = [q for q in range(n_q + extra) for _ in range(3)]
        gy = [q for q in range(n_q) for _ in range(3)]
        x = centres[gx] + 0.5 * rng.normal(size=(len(gx), d))
        y = centres[gy] + 0.5 * rng.normal(size=(len(gy), d))
        r = D.compare_sets(x, y, n_permutations=99, n_bootstrap=0, seed=run, groups_x=gx, groups_y=gy)
        assert (r.design, r.n_questions, r.n_left_out_x, r.n_left_out_y) == ("per_question", n_q, 3 * extra, 0)
        rejections += r.p_value <= 0.05
    assert rejections / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


# -- Fréchet from the pooled Gram matrix -----------------------------------------------------------------
def test_pooled_frechet_equals_the_direct_fit_for_permutations_and_resamples():
    rng = np.random.default_rng(16)
    pooled = D.normalise(rng.normal(size=(40, 64)) + np.r_[np.zeros((20, 64)), 0.3 * np.ones((20, 64))])
    ix = np.stack([rng.permutation(40)[:22] for _ in range(5)] + [rng.integers(0, 40, 22)])  # last: duplicates
    iy = np.stack([np.setdiff1d(np.arange(40), row)[:18] for row in ix[:5]] + [rng.integers(0, 40, 18)])
    fast = PooledFrechet(pooled)(ix, iy)
    direct = [D.frechet_distance(pooled[a], pooled[b]) for a, b in zip(ix, iy)]
    assert fast == pytest.approx(direct, rel=1e-8, abs=1e-10)
    assert PooledFrechet(pooled)(ix, iy, np.float32) == pytest.approx(direct, rel=1e-4)  # the permutations' precision


def test_frechet_and_centroid_use_the_paired_design_without_a_per_question_form():
    rng = np.random.default_rng(17)
    q3 = [q for q in range(10) for _ in range(3)]
    x, y = rng.normal(size=(30, 12)), rng.normal(size=(30, 12))
    for metric in ("frechet", "centroid"):
        r = D.compare_sets(x, y, metric, n_permutations=30, n_bootstrap=30, groups_x=q3, groups_y=q3)
        assert r.design == "shared_shift" and r.note == D.pooled_note(metric) and r.problem is None
        assert r.ci_low <= r.distance + 1e-12 and r.upper <= r.ci_high + 1e-12


def test_ledoit_wolf_matches_scikit_learn():
    sk = pytest.importorskip("sklearn.covariance")
    rng = np.random.default_rng(18)
    for shape in ((30, 8), (12, 40)):
        x = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))
        xc, s, mu = D.ledoit_wolf(x)
        cov = (1 - s) * xc.T @ xc / shape[0] + s * mu * np.eye(shape[1])
        expected_cov, expected_s = sk.ledoit_wolf(x)
        assert s == pytest.approx(expected_s, rel=1e-9)
        assert cov == pytest.approx(expected_cov, rel=1e-8, abs=1e-10)


# -- the lm-eval metric path computes only the distance -------------------------------------------------
def test_no_permutation_or_bootstrap_is_drawn_for_a_bare_distance(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("drawn without being asked")

    for name in (
        "permutation_indicators",
        "sign_flips",
        "within_question_splits",
        "question_counts",
        "independent_weights",
    ):
        monkeypatch.setattr(resampling, name, forbidden)
    rng = np.random.default_rng(19)
    q1, q3 = list(range(8)), [q for q in range(8) for _ in range(3)]
    for gx, n in ((q1, 8), (q3, 24), (None, 8)):
        for metric in D.METRICS:
            r = D.compare_sets(
                rng.normal(size=(n, 6)),
                rng.normal(size=(n, 6)),
                metric,
                n_permutations=0,
                n_bootstrap=0,
                groups_x=gx,
                groups_y=gx,
            )
            assert r.p_value is None and r.upper is None and math.isfinite(r.distance)


# -- the noise floor -----------------------------------------------------------------------------------------
def test_within_noise_compares_two_halves_of_the_repeats():
    rng = np.random.default_rng(20)
    g = [q for q in range(12) for _ in range(4)] + ["single"]
    x = rng.normal(size=(len(g), 6))
    r = D.within_noise(x, g, seed=3)
    a, b = designs.split_repeats(g, 3)
    assert len(a) == len(b) == 24 and not set(a) & set(b)  # 2 + 2 a question; the single answer in neither half
    assert all(g[i] != "single" for i in np.r_[a, b])
    halves = D.compare_sets(
        x[a], x[b], groups_x=[g[i] for i in a], groups_y=[g[i] for i in b], n_permutations=0, n_bootstrap=200, seed=3
    )
    assert r.design == "per_question"
    # rescaled to a rerun of 4 answers a question: MMD² by sqrt(f(4, 4) / f(2, 2)) = sqrt(7/36) (the single
    # answer's question, in the rerun's per-question design neither, changes nothing); the distance by its root
    scale = (7 / 36) ** 0.25
    assert r.details["halves_distance"] == pytest.approx(halves.distance, abs=1e-12)
    assert r.distance == pytest.approx(scale * halves.distance, rel=1e-9)
    assert r.upper == pytest.approx(scale * halves.upper, rel=1e-9)  # the studentised bound is scale-equivariant
    assert r.details["noise_floor"] is True
    none = D.within_noise(x[:12], list(range(12)))
    assert math.isnan(none.distance) and "no repeats" in none.problem
    assert "no question ids" in D.within_noise(x, None).problem


# -- paired subsampling ----------------------------------------------------------------------------------------
def test_paired_subsample_keeps_whole_shared_questions_on_both_sides():
    gx = [q for q in range(50) for _ in range(2)] + ["x-only"] * 5
    gy = [q for q in range(50)] + ["y-only"] * 3
    ix, iy = designs.paired_subsample(gx, gy, 30, seed=1)
    qx, qy = {gx[i] for i in ix}, {gy[i] for i in iy}
    assert qx == qy and len(ix) == 30 and len(iy) == 15  # x has two answers a question: 15 questions fit
    assert all(sum(1 for i in ix if gx[i] == q) == 2 for q in qx)
    again = designs.paired_subsample(gx, gy, 30, seed=1)
    assert np.array_equal(ix, again[0]) and np.array_equal(iy, again[1])
    other = designs.paired_subsample(gx, gy, 30, seed=2)[1]
    assert not np.array_equal(iy, other)
    all_x, all_y = designs.paired_subsample(gx, gy, 1000, seed=1)
    assert len(all_x) == 100 and len(all_y) == 50  # one-sided answers are never taken
    free_x, free_y = designs.paired_subsample(None, None, 10, seed=1, n_x=40, n_y=5)
    assert len(free_x) == 10 and list(free_y) == [0, 1, 2, 3, 4]


# -- the byte-bounded permutation cache --------------------------------------------------------------------
def test_permutation_cache_is_bounded_in_bytes():
    cache = resampling.ByteBoundedCache(1000)
    a, b, c = (np.zeros(100, np.float32) for _ in range(3))  # 400 bytes each
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)  # 1200 > 1000: the least recently used (b) goes
    assert cache.get("b") is None and cache.get("a") is a and cache.get("c") is c and cache.nbytes == 800
    cache.put("huge", np.zeros(1000, np.float32))  # larger than the bound: never kept
    assert cache.get("huge") is None and cache.nbytes == 800
    assert resampling.CACHE.max_bytes == resampling.CACHE_BYTES <= 512 * 2**20


# -- the call sites that pair by question id: cross-language spread and the map's heatmap ------------------
def _dist(emb, ids, lang):
    from univar_eval.storage.distribution import ValueDistribution

    manifest = {
        "task": f"univar_pvq_{lang}",
        "questionnaire": "pvq",
        "lang": lang,
        "encoder": {"name": "enc", "revision": None, "fingerprint": [0.5] * 4, "fingerprint_id": "f"},
    }
    return ValueDistribution(np.asarray(emb, np.float32), [{"id": i} for i in ids], manifest)


def test_cross_language_spread_is_paired_by_question_id():
    from univar_eval.reports.compare import cross_language

    rng = np.random.default_rng(21)
    centres = rng.normal(size=(30, 8)) * 2
    ids = [f"q{i}" for i in range(30)]
    eng = centres + rng.normal(size=(30, 8))
    deu = np.vstack([centres + rng.normal(size=(30, 8)) + 1.5 * np.eye(8)[0], rng.normal(size=(5, 8))])  # 5 extra
    fra = rng.normal(size=(12, 8))
    out = cross_language(
        [
            _dist(eng, ids, "eng"),
            _dist(deu, ids + [f"extra{i}" for i in range(5)], "deu"),
            _dist(fra, [f"other{i}" for i in range(12)], "fra"),
        ]
    )["pvq"]
    expected = D.compare_sets(eng, deu[:30], n_permutations=0, n_bootstrap=0, groups_x=ids, groups_y=ids).distance
    # fra shares no question id: compared unpaired (and said so), as compare does for any such pair
    unpaired = D.compare_sets(eng, fra, n_permutations=0, n_bootstrap=0).distance
    assert out["pairs"]["deu-eng"] == pytest.approx(expected, abs=1e-6)
    assert out["pairs"]["eng-fra"] == pytest.approx(unpaired, abs=1e-6)
    assert out["design"] == "shared_shift, unpaired" and out["skipped"] == {}
    assert expected > 0.05 and abs(expected - D.distance(eng, deu)) > 0.01  # unpaired would differ


def test_heatmap_distances_are_paired_and_subsampled_by_question_id():
    from univar_eval.reports import plot

    rng = np.random.default_rng(22)
    centres = rng.normal(size=(40, 8)) * 2
    ga = [q for q in range(40) for _ in range(2)]
    gb = list(range(40)) + ["b-only"] * 10
    a = centres[ga] + rng.normal(size=(80, 8))
    b = np.vstack([centres + rng.normal(size=(40, 8)), rng.normal(size=(10, 8))])
    m = plot.distance_matrix([a, b], "mmd", max_points=30, seed=4, groups=[ga, gb])
    ix, iy = designs.paired_subsample(ga, gb, 30, 4)
    assert len(ix) == 30 and len(iy) == 15 and {ga[i] for i in ix} == {gb[i] for i in iy}
    expected = D.compare_sets(
        a[ix], b[iy], n_permutations=0, n_bootstrap=0, groups_x=[ga[i] for i in ix], groups_y=[gb[i] for i in iy]
    )
    assert expected.design == "shared_shift" and m[0, 1] == pytest.approx(expected.distance, abs=1e-9)
    assert m[1, 0] == m[0, 1] and m[0, 0] == 0


def test_heatmap_question_ids_are_shared_across_languages_and_models():
    from univar_eval.reports import plot
    from univar_eval.stats.identify import LabelledSet

    def lset(model, lang, questions):
        return LabelledSet(
            model=model,
            lang=lang,
            task=f"univar_pvq_{lang}",
            questionnaire="pvq",
            embeddings=np.ones((2, 3), np.float32),
            encoder={},
            origin="t",
            questions=questions,
        )

    sets = [lset("a", "eng", ["q1", "q2"]), lset("b", "deu", ["q2", "q1"]), lset("c", "fra", None)]
    keys, _ = plot.grouped(sets)
    ids = plot.grouped_question_ids(sets, keys)
    by_key = dict(zip(keys, ids))
    assert by_key[("a", "eng")] == ["pvq:q1", "pvq:q2"] and by_key[("b", "deu")] == ["pvq:q2", "pvq:q1"]
    assert by_key[("c", "fra")] is None
