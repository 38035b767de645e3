"""Step: equivalence. The two quantities a gate tests against its tolerances, with bounds that hold their level.

Kernel and notation: the Gaussian kernel of :mod:`univar_eval.stats.distance` (sigma = 1 on unit
vectors, ``k = exp(cos - 1)``) and its feature map ``phi``. For question ``q``, ``mu_q`` is the
mean of ``phi`` over a model's answers to it (the model's answer distribution on that question),
and ``delta_q = mu_q(candidate) - mu_q(baseline)``. Over the Q questions both sides answered:

``d_S``  ``theta_S = mean over pairs of *different* questions q != r of <delta_q, delta_r>``,
         ``d_S = sqrt(max(theta_S, 0))``. It is what ``--max-distance`` bounds, in every design:
         with one answer a question or with repeats, with any counts on either side, it is the
         same population quantity (the spread of the shift shared across questions), so the
         tolerance means the same whether or not repeats were collected. Estimate: the U-statistic
         ``sum_{q != r} <h_q, h_r> / (Q (Q - 1))`` with ``h_q`` the difference of the two sides'
         empirical means of ``phi`` on question q; unbiased because answers to different questions
         are independent. More answers a question make ``h_q`` less noisy, so repeats add power.
``d_Q``  ``theta_Q = mean over questions of |delta_q|²``, ``d_Q = sqrt(max(theta_Q, 0))``: it also sees
         per-question changes that cancel across questions (``theta_S <= theta_Q``). Estimating
         ``|delta_q|²`` needs two answers a question on both sides (the unbiased MMD² of the question);
         tested against ``--max-question-distance`` where both sides have them.

Inference (the question is the unit: questions are resampled, answers stay with their question):

* standard error: for ``d_S`` the jackknife over questions of the U-statistic, for ``d_Q`` the
  standard deviation of the per-question values over ``sqrt(Q)``; ``df = Q - 1``;
* upper bound (pass when below D): for ``d_S`` the larger of a score bound (:func:`score_upper`: the variance
  taken at the boundary it tests, since a low estimate comes with a small first-order variance term) and the
  studentised bootstrap (bootstrap-t); for ``d_Q`` bootstrap-t; never below the Student-t bound, capped at the
  :data:`MMD2_CEILING` (the largest value of the statistic for unit vectors and this kernel). With one answer
  to some question on a side, a ``d_S`` pass needs :data:`MIN_QUESTIONS_ONE_ANSWER` questions (measured:
  the bound is liberal below it), unless both sides are bit-identical;
* test of excess ``H0: distance <= D`` (fail when its corrected p is below alpha): the Student-t
  tail of ``(theta_hat - D²) / se``. An analytic tail resolves any corrected level (a bootstrap
  p-value of 200 draws cannot go below 1/201). Right skew makes this tail conservative: a large
  estimate comes with a large standard error. ``lower(level)``: the bound that test inverts;
* difference test ``H0: distance = 0`` (the gate without D): a permutation p-value; answers are
  relabelled within questions (sign flips of whole questions where both sides have equal counts).

Identical inputs: a question whose two answer sets are bit-identical has ``h_q = 0`` exactly (its d_S terms
are 0); its d_Q value stays the unbiased MMD² of the question (at most 0 for identical sets; its expectation is
the true ``|delta_q|²``, and the permutation test relabels it like any other question: holding such questions at
0 made d_Q biased upwards and the difference test liberal where answers repeat verbatim, size 0.089 at 120
questions). A candidate identical to the baseline as a whole has distance 0, standard error 0, upper bound 0,
p = 1, in both quantities.
Copies: where the baseline has repeats, verbatim matches between a candidate answer and a baseline
answer of the same question are counted against what independent draws of two models would give
(:func:`copy_excess`; finite answer pools make some matches natural). In excess, a pass needs the
bound computed without the copied answers as well (fewer fresh answers: a wider bound), so copies
can only remove evidence, never make a pass. A candidate identical to the baseline as a whole is
not treated as copying: its distance is 0 (a deterministic rerun passes with D > 0).
Fewer than :data:`MIN_QUESTIONS` questions: the bound is the ceiling and the p of excess 1, so the
check is inconclusive, never pass (the validation shows the bounds hold from there on).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import norm
from scipy.stats import t as t_dist

from univar_eval.stats import resampling
from univar_eval.stats.distance import kernel_from_gram, normalise, question_form, question_mmd2

#: The largest MMD² between two distributions of unit vectors with k = exp(cos - 1): 2 (1 - e^-2).
MMD2_CEILING = 2.0 * (1.0 - math.exp(-2.0))
#: Questions needed for a bound (measured: benchmarks/validate_gate_stats.py --finite-pool).
MIN_QUESTIONS = 10
#: Questions a pass needs for d_S when a side has one answer to some question (measured: below it the upper bound
#: passes too often at D; see docs/statistics.md). With two answers a question or more on both sides,
#: :data:`MIN_QUESTIONS`.
MIN_QUESTIONS_ONE_ANSWER = 120
D_S, D_Q = "d_S", "d_Q"
#: Permuted statistics within this absolute distance of the observed one count as ties.
_TIE = 1e-12


@dataclass
class Bound:
    """One tested quantity: its estimate, standard error, upper bound and difference test."""

    quantity: str  # d_S or d_Q
    statistic: float  # unbiased estimate of theta (the squared distance)
    se: float
    df: int
    n_questions: int
    alpha: float
    upper_statistic: float  # one-sided 1 - alpha upper bound of theta (ceiling capped)
    p_difference: float | None = None  # permutation p of H0: distance = 0
    n_permutations: int = 0
    n_bootstrap: int = 0
    ceiling: float = MMD2_CEILING
    problem: str | None = None
    details: dict = field(default_factory=dict)
    min_questions_pass: int = MIN_QUESTIONS  # fewer: the upper bound is the ceiling (inconclusive, never pass)

    @property
    def distance(self) -> float:
        return math.sqrt(max(self.statistic, 0.0)) if math.isfinite(self.statistic) else math.nan

    @property
    def upper(self) -> float:
        u = self.upper_statistic
        return math.sqrt(min(max(u, 0.0), self.ceiling)) if math.isfinite(u) else math.nan

    @property
    def enough(self) -> bool:
        return self.n_questions >= MIN_QUESTIONS

    @property
    def enough_to_pass(self) -> bool:
        return self.n_questions >= max(MIN_QUESTIONS, self.min_questions_pass)

    def p_excess(self, tolerance: float) -> float:
        """p of ``H0: distance <= tolerance`` (one-sided Student-t tail; 1 below MIN_QUESTIONS)."""
        return p_excess(self.statistic, self.se, self.df, tolerance, enough=self.enough)

    def lower(self, level: float) -> float:
        """The one-sided ``level`` lower bound of the distance (the bound the test of excess inverts)."""
        return lower_bound(self.statistic, self.se, self.df, level, enough=self.enough, ceiling=self.ceiling)

    def to_dict(self) -> dict:
        return {**asdict(self), "distance": self.distance, "upper": self.upper, "enough_to_pass": self.enough_to_pass}


def p_excess(statistic: float, se: float, df: int | None, tolerance: float, *, enough: bool = True, squared=True):
    """p of ``H0: distance <= tolerance`` from an estimate of theta (``squared``: theta = distance²) and its
    standard error: the Student-t tail with ``df`` degrees of freedom (normal when None); 1 when not ``enough``
    questions or not finite."""
    if not enough or not (math.isfinite(statistic) and math.isfinite(se)):
        return 1.0
    excess = statistic - (tolerance**2 if squared else tolerance)
    if se <= 0:
        return 0.0 if excess > _TIE else 1.0
    return float(t_dist.sf(excess / se, df) if df else norm.sf(excess / se))


def lower_bound(statistic, se, df, level, *, enough=True, ceiling=MMD2_CEILING, squared=True) -> float:
    """The one-sided ``level`` lower bound of the distance, the bound that :func:`p_excess` inverts (0 when not
    ``enough`` questions)."""
    if not enough or not (math.isfinite(statistic) and math.isfinite(se)):
        return 0.0
    low = statistic - float(t_dist.ppf(level, df) if df else norm.ppf(level)) * se
    low = min(max(low, 0.0), ceiling)
    return math.sqrt(low) if squared else low


# -- the per-question layout -----------------------------------------------------------------------
@dataclass
class Layout:
    """The answers of both sides grouped by shared question, after copies are left out."""

    x: list  # per question: (c_x, d) candidate answers
    y: list  # per question: (c_y, d) baseline answers
    ids: list
    identical: np.ndarray  # per question: both answer sets bit-identical
    n_copies: int = 0  # verbatim matches between the sides' answers to one question (baseline with repeats)
    n_left_out_x: int = 0
    n_left_out_y: int = 0
    expected_copies: float = 0.0  # the matches independent draws would give (see copy_excess)

    @property
    def copies_in_excess(self) -> bool:
        """More verbatim matches than independent draws explain (a one-sided Poisson margin)."""
        return self.n_copies > self.expected_copies + 4.0 * math.sqrt(self.expected_copies + 1.0) + 2.0

    @property
    def n_questions(self) -> int:
        return len(self.ids)

    @property
    def all_identical(self) -> bool:
        return bool(self.identical.all()) if len(self.identical) else False


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])]))


def _matches(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :] == b[None, :, :]).all(2)


def _collision_rate(a: np.ndarray) -> float | None:
    """Share of pairs of one side's answers to a question that are verbatim equal (None below 2 answers)."""
    if len(a) < 2:
        return None
    same = _matches(a, a)
    return float((same.sum() - len(a)) / (len(a) * (len(a) - 1)))


def copy_excess(xs: list, ys: list) -> tuple[int, float]:
    """Verbatim matches between the candidate's and the baseline's answers to the same question, and how many
    independent draws would give: per pair of answers, the mean of the two sides' own collision rates (by
    Cauchy-Schwarz and AM-GM at least the chance that two independent draws of the two models coincide; the
    baseline's alone where the candidate has one answer). Only questions where the baseline has repeats count."""
    observed, expected = 0, 0.0
    for a, b in zip(xs, ys):
        rate_y = _collision_rate(b)
        if rate_y is None:
            continue
        rate_x = _collision_rate(a)
        observed += int(_matches(a, b).sum())
        expected += len(a) * len(b) * (rate_y if rate_x is None else (rate_x + rate_y) / 2.0)
    return observed, expected


def layout(x: np.ndarray, y: np.ndarray, groups_x, groups_y, *, copies: bool = True) -> Layout:
    """Group both sides by the questions they share. With ``copies``: questions whose two answer sets are
    bit-identical are marked (their d_S terms are exactly 0; all-identical sides: distance 0, p = 1), and the
    verbatim matches between the sides are counted (:func:`copy_excess`)."""
    x, y = normalise(x), normalise(y)
    by_x: dict = {}
    by_y: dict = {}
    for i, g in enumerate(groups_x):
        if g is not None:
            by_x.setdefault(g, []).append(i)
    for i, g in enumerate(groups_y):
        if g is not None:
            by_y.setdefault(g, []).append(i)
    shared = sorted(set(by_x) & set(by_y), key=str)
    left_x = len(x) - sum(len(by_x[g]) for g in shared)
    left_y = len(y) - sum(len(by_y[g]) for g in shared)
    xs = [x[by_x[g]] for g in shared]
    ys = [y[by_y[g]] for g in shared]
    if not copies:
        return Layout(xs, ys, list(shared), np.zeros(len(shared), dtype=bool), 0, left_x, left_y)
    identical = np.array([_same_rows(a, b) for a, b in zip(xs, ys)], dtype=bool)
    out = Layout(xs, ys, list(shared), identical, 0, left_x, left_y)
    if not out.all_identical:
        out.n_copies, out.expected_copies = copy_excess(xs, ys)
    return out


def without_copies(lay: Layout) -> Layout:
    """The layout less the candidate's answers that equal a baseline answer of the same question (where the
    baseline has repeats); a question left without candidate answers is left out."""
    keep_x, keep_y, keep_ids, left_y = [], [], [], lay.n_left_out_y
    for a, b, g in zip(lay.x, lay.y, lay.ids):
        if len(b) >= 2:
            a = a[~_matches(a, b).any(1)]
        if len(a):
            keep_x.append(a)
            keep_y.append(b)
            keep_ids.append(g)
        else:
            left_y += len(b)
    identical = np.array([_same_rows(a, b) for a, b in zip(keep_x, keep_y)], dtype=bool)
    return Layout(keep_x, keep_y, keep_ids, identical, 0, lay.n_left_out_x, left_y)


# -- d_S ------------------------------------------------------------------------------------------------
def shared_gram(lay: Layout, sigma: float = 1.0) -> np.ndarray:
    """``G[q, r] = <h_q, h_r>`` for every pair of questions, the diagonal ``|h_q|²`` included (0 for identical
    questions)."""
    z = np.vstack([np.vstack([a, b]) for a, b in zip(lay.x, lay.y)])
    q = lay.n_questions
    w = np.zeros((q, len(z)))
    start = 0
    for i, (a, b) in enumerate(zip(lay.x, lay.y)):
        if not lay.identical[i]:
            w[i, start : start + len(a)] = 1.0 / len(a)
            w[i, start + len(a) : start + len(a) + len(b)] = -1.0 / len(b)
        start += len(a) + len(b)
    k = kernel_from_gram(z @ z.T, sigma)
    g = w @ k @ w.T
    return (g + g.T) / 2.0


def off_diagonal(g: np.ndarray) -> np.ndarray:
    h = g.copy()
    np.fill_diagonal(h, 0.0)
    return h


def shared_matrix(lay: Layout, sigma: float = 1.0) -> np.ndarray:
    """``H[q, r] = <h_q, h_r>`` for q != r (0 on the diagonal and for identical questions)."""
    return off_diagonal(shared_gram(lay, sigma))


def u_parts(h: np.ndarray) -> tuple[float, float, float]:
    """The U-statistic ``sum_{q != r} H_qr / (Q (Q - 1))`` and the two terms of its variance: the first-order
    (linear) term, the jackknife over questions, and the pair term ``2 sum_{q != r} H_qr² / (Q (Q - 1))²``
    (the sign-flip variance). NaN variances below 3 questions."""
    q = len(h)
    rows = h.sum(1)
    u = float(rows.sum() / (q * (q - 1)))
    if q < 3:
        return u, math.nan, math.nan
    lin = 4.0 * float(((rows - rows.mean()) ** 2).sum()) / (q * (q - 1) * (q - 2) ** 2)
    pair = 2.0 * float((h**2).sum()) / (q * (q - 1)) ** 2
    return u, lin, pair


def u_statistic(h: np.ndarray) -> tuple[float, float]:
    """The U-statistic and its standard error ``sqrt(linear + pair)`` (:func:`u_parts`). Without the pair term a
    low estimate comes with too small an error (measured: 11.5 % wrong passes at D with one answer a question,
    40 questions, 200 simulations; 7.5 % with it)."""
    u, lin, pair = u_parts(h)
    if not math.isfinite(lin):
        return u, math.nan
    return u, math.sqrt(max(lin + pair, 0.0))


def score_upper(stat: float, lin: float, pair: float, v: float, factor: float) -> float:
    """The upper bound of theta_S that inverts the test of ``H0: theta_S >= theta0`` with the variance *at the
    boundary* (a score test): the linear variance term grows with the squared length of the mean shift, and the
    estimate of that length is ``v`` (the mean of every ``<h_q, h_r>``, the diagonal included), so at theta0 it is
    ``lin (v + theta0 - stat) / v``. A low estimate comes with a small linear term (measured correlation of the
    estimate and its jackknife variance: 0.93 at 40 questions), which the Wald bound ``stat + factor * se`` takes
    at face value: it passes too often. The bound is the smallest theta0 with ``theta0 - stat >= factor *
    sqrt(pair + lin (v + theta0 - stat) / v)``, in closed form; never below the Wald bound."""
    if not (math.isfinite(lin) and math.isfinite(pair)):
        return math.nan
    b = factor * factor * lin / v if v > 0 else 0.0
    x = (b + math.sqrt(b * b + 4.0 * factor * factor * max(pair + lin, 0.0))) / 2.0
    return stat + x


def _boot_u(h: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U-statistic and jackknife SE of each bootstrap resample (counts: how often each question was drawn)."""
    q = h.shape[0]
    hc = counts @ h  # (B, Q): each drawn question's row sum over the other drawn questions
    pairs = q * q - (counts**2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (hc * counts).sum(1) / pairs
        mean_row = (hc * counts).sum(1) / q
        ss = (counts * (hc - mean_row[:, None]) ** 2).sum(1)
        pair = 2.0 * ((counts @ (h * h)) * counts).sum(1) / pairs**2
        se = np.sqrt(4.0 * ss / (q * (q - 1) * (q - 2) ** 2) + pair)
    return u, se


def _upper(stat: float, se: float, df: int, boot: np.ndarray, boot_se: np.ndarray, alpha: float) -> float:
    """Bootstrap-t upper bound of the statistic, never below the Student-t one."""
    if se == 0.0:
        return stat
    with np.errstate(divide="ignore", invalid="ignore"):
        pivots = (boot - stat) / boot_se
    pivots = pivots[np.isfinite(pivots)]
    factor = float(t_dist.ppf(1 - alpha, df))
    if len(pivots):
        factor = max(factor, -float(np.quantile(pivots, alpha)))
    return stat + factor * se


def _p_at_least(perm: np.ndarray, observed: float) -> float:
    return float((1 + np.sum(perm >= observed - _TIE - 1e-6 * abs(observed))) / (1 + len(perm)))


def shared_bound(
    lay: Layout,
    *,
    alpha: float,
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    gram: np.ndarray | None = None,
    pass_minimum: bool = True,
) -> Bound:
    q = lay.n_questions
    if q < 3:
        return Bound(D_S, math.nan, math.nan, 0, q, alpha, math.nan, problem=f"only {q} shared question(s)")
    gram = shared_gram(lay) if gram is None else gram
    h = off_diagonal(gram)
    stat, lin, pair = u_parts(h)
    se = math.sqrt(max(lin + pair, 0.0))
    bound = Bound(D_S, stat, se, q - 1, q, alpha, math.nan, n_permutations=n_permutations, n_bootstrap=n_bootstrap)
    factor = float(t_dist.ppf(1 - alpha, q - 1))
    upper = stat if se == 0.0 else score_upper(stat, lin, pair, float(gram.mean()), factor)
    bound.details["upper_score"] = upper
    if n_bootstrap:
        counts = resampling.question_counts(np.random.default_rng([seed, 5]), q, n_bootstrap)
        boot, boot_se = _boot_u(h, counts)
        upper = max(upper, _upper(stat, se, q - 1, boot, boot_se, alpha))
    bound.upper_statistic = min(upper, MMD2_CEILING)
    one_answer = any(len(a) < 2 for a in lay.x) or any(len(b) < 2 for b in lay.y)
    if pass_minimum and one_answer and not lay.all_identical:  # identical sides: distance 0 exactly, no sampling
        bound.min_questions_pass = MIN_QUESTIONS_ONE_ANSWER
    if not bound.enough_to_pass:
        bound.upper_statistic = MMD2_CEILING
    if n_permutations:
        bound.p_difference = _p_at_least(_permuted_shared(lay, h, n_permutations, seed), stat)
    return bound


def _permuted_shared(lay: Layout, h: np.ndarray, b: int, seed: int) -> np.ndarray:
    q = lay.n_questions
    if all(len(a) == len(c) for a, c in zip(lay.x, lay.y)):  # swapping whole sides of a question: exact
        signs = resampling.sign_flips(q, b, seed).astype(np.float64)
        return np.einsum("ij,ij->i", signs @ h, signs) / (q * (q - 1))
    # mixed counts: relabel answers within each question, the quadratic form over every answer
    z = np.vstack([np.vstack([a, c]) for a, c in zip(lay.x, lay.y)])
    labels = np.concatenate([np.full(len(a) + len(c), i) for i, (a, c) in enumerate(zip(lay.x, lay.y))])
    cx = np.array([len(a) for a in lay.x])
    cy = np.array([len(c) for c in lay.y])
    k = kernel_from_gram(z @ z.T).astype(np.float32)
    k *= labels[:, None] != labels[None, :]
    # questions whose two answer sets are identical are relabelled too (their observed h_q is 0 either way); holding
    # them at 0 in every relabelling would condition the reference distribution on an event relabelling changes
    out = np.empty(b)
    rng = np.random.default_rng([seed, 3])
    for start in range(0, b, 1024):
        n = min(1024, b - start)
        wx = np.zeros((n, len(z)), dtype=np.float32)
        offset = 0
        for i in range(q):
            c = cx[i] + cy[i]
            pick = np.argsort(rng.random((n, c)), axis=1)[:, : cx[i]]
            block = np.zeros((n, c), dtype=np.float32)
            np.put_along_axis(block, pick, 1.0, axis=1)
            wx[:, offset : offset + c] = block
            offset += c
        w = wx / cx[labels] - (1 - wx) / cy[labels]
        out[start : start + n] = np.einsum("ij,ij->i", w @ k, w, dtype=np.float64)
    return out / (q * (q - 1))


# -- d_Q ------------------------------------------------------------------------------------------------
def question_values(lay: Layout, rows: list[int]) -> np.ndarray:
    """Each listed question's unbiased MMD² between the two sides (all 0 when every question's two answer sets are
    identical). A question whose two sets happen to be the same multiset keeps its unbiased value (at most 0): its
    expectation is the question's true MMD², and the permutation test relabels it like any other (setting such
    questions to 0 biased d_Q upwards and made the difference test liberal where answers repeat verbatim)."""
    out = np.zeros(len(rows))
    if lay.all_identical:
        return out
    for j, i in enumerate(rows):
        a, b = lay.x[i], lay.y[i]
        z = np.vstack([a, b])
        form = question_form(kernel_from_gram((z @ z.T)[None]), len(a), len(b))
        base = np.zeros((1, 1, len(z)))
        base[:, :, : len(a)] = 1.0
        out[j] = question_mmd2(base, form)[0, 0]
    return out


def mean_bound(
    values: np.ndarray,
    *,
    alpha: float,
    n_bootstrap: int,
    seed: int,
    quantity: str = D_Q,
    perm: np.ndarray | None = None,
) -> Bound:
    """Bound of the mean of independent per-question values (d_Q, or d_Q over one value's questions)."""
    q = len(values)
    if q < 2:
        return Bound(quantity, math.nan, math.nan, 0, q, alpha, math.nan, problem=f"only {q} question(s)")
    stat = float(values.mean())
    se = float(values.std(ddof=1)) / math.sqrt(q)
    bound = Bound(quantity, stat, se, q - 1, q, alpha, math.nan, n_bootstrap=n_bootstrap)
    if n_bootstrap:
        counts = resampling.question_counts(np.random.default_rng([seed, 6]), q, n_bootstrap)
        boot = counts @ values / q
        var = np.clip(counts @ values**2 / q - boot**2, 0.0, None) * q / (q - 1)
        bound.upper_statistic = min(_upper(stat, se, q - 1, boot, np.sqrt(var / q), alpha), MMD2_CEILING)
    else:
        bound.upper_statistic = min(stat + float(t_dist.ppf(1 - alpha, q - 1)) * se, MMD2_CEILING)
    if not bound.enough:
        bound.upper_statistic = MMD2_CEILING
    if perm is not None:
        bound.p_difference = _p_at_least(perm, stat)
        bound.n_permutations = len(perm)
    return bound


def _permuted_questions(lay: Layout, rows: list[int], b: int, seed: int) -> np.ndarray:
    """Mean per-question MMD² under within-question relabellings, every question relabelled (all 0 when every
    question's two answer sets are identical: p = 1)."""
    total = np.zeros(b)
    if lay.all_identical:
        return total
    for j, i in enumerate(rows):
        a, c = lay.x[i], lay.y[i]
        z = np.vstack([a, c])
        form = question_form(kernel_from_gram((z @ z.T)[None]), len(a), len(c))
        splits = resampling.within_question_splits(len(a), len(c), 1, b, seed, j)
        total += question_mmd2(splits.astype(np.float64), form)[:, 0]
    return total / len(rows)


# -- both ----------------------------------------------------------------------------------------------
@dataclass
class Evidence:
    """What a gate check decides on: d_S always (paired), d_Q where both sides have repeats."""

    bounds: list[Bound]
    n_questions: int
    n_copies: int
    n_left_out_x: int
    n_left_out_y: int
    identical: bool
    problem: str | None = None
    copies_in_excess: bool = False
    expected_copies: float = 0.0

    def get(self, quantity: str) -> Bound | None:
        return next((b for b in self.bounds if b.quantity == quantity), None)

    def to_dict(self) -> dict:
        return {
            "bounds": [b.to_dict() for b in self.bounds],
            "n_questions": self.n_questions,
            "n_copies": self.n_copies,
            "n_left_out_x": self.n_left_out_x,
            "n_left_out_y": self.n_left_out_y,
            "identical": self.identical,
            "problem": self.problem,
            "copies_in_excess": self.copies_in_excess,
            "expected_copies": self.expected_copies,
        }


def evaluate(
    x: np.ndarray,
    y: np.ndarray,
    groups_x,
    groups_y,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    n_permutations: int = 0,
    seed: int = 0,
) -> Evidence:
    """d_S (and d_Q where both sides have 2 answers a question or more) of candidate ``x`` against baseline ``y``."""
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Evidence([], 0, 0, 0, 0, False, "non-finite embeddings (NaN or infinite values): re-embed the answers")
    lay = layout(x, y, groups_x, groups_y)
    ev = Evidence([], lay.n_questions, lay.n_copies, lay.n_left_out_x, lay.n_left_out_y, lay.all_identical)
    ev.expected_copies = lay.expected_copies
    if lay.n_questions < 3:
        ev.problem = f"only {lay.n_questions} shared question(s): a paired comparison needs 3 or more"
        return ev
    ev.bounds = _bounds(lay, alpha=alpha, n_bootstrap=n_bootstrap, n_permutations=n_permutations, seed=seed)
    ev.copies_in_excess = lay.copies_in_excess
    if lay.copies_in_excess:
        # copies never help: a pass needs the bound without them too (fewer fresh answers: a wider bound)
        fresh = without_copies(lay)
        alone = _bounds(fresh, alpha=alpha, n_bootstrap=n_bootstrap, n_permutations=0, seed=seed)
        for b in ev.bounds:
            other = next((o for o in alone if o.quantity == b.quantity), None)
            upper = other.upper_statistic if other is not None and fresh.n_questions >= 3 else MMD2_CEILING
            b.details["upper_with_copies"] = b.upper
            b.upper_statistic = max(b.upper_statistic, upper if math.isfinite(upper) else MMD2_CEILING)
    return ev


def _bounds(lay: Layout, *, alpha: float, n_bootstrap: int, n_permutations: int, seed: int) -> list[Bound]:
    if lay.n_questions < 3:
        return []
    out = [shared_bound(lay, alpha=alpha, n_bootstrap=n_bootstrap, n_permutations=n_permutations, seed=seed)]
    rows = [i for i in range(lay.n_questions) if len(lay.x[i]) >= 2 and len(lay.y[i]) >= 2]
    if rows and 2 * len(rows) >= lay.n_questions:
        values = question_values(lay, rows)
        perm = _permuted_questions(lay, rows, n_permutations, seed) if n_permutations else None
        b = mean_bound(values, alpha=alpha, n_bootstrap=n_bootstrap, seed=seed, perm=perm)
        b.details["n_few_repeats"] = lay.n_questions - len(rows)
        b.details["per_question"] = values
        out.append(b)
    return out


def noise_floor(x: np.ndarray, groups, *, alpha: float = 0.05, n_bootstrap: int = 200, seed: int = 0) -> Bound | None:
    """The d_S a rerun of this model (as many answers a question) would show against it, from two halves of its
    repeats: each question's halves difference is rescaled to a rerun's, ``sqrt(f_rerun / f_halves)`` with
    ``f = 1/c_x + 1/c_y`` (the covariance of a difference of means scales with it exactly), so ``H_qr`` scales by
    the product of the two questions' factors. None without repeats (a question needs 2 answers)."""
    from univar_eval.stats.designs import split_repeats

    if groups is None:
        return None
    g = list(groups)
    a, b = split_repeats(g, seed)
    if len(a) < 3:
        return None
    x = normalise(x)
    lay = layout(x[a], x[b], [g[i] for i in a], [g[i] for i in b], copies=False)  # halves of one model
    counts: dict = {}
    for v in g:
        counts[v] = counts.get(v, 0) + 1
    if lay.n_questions < 3:
        return None
    scale = np.array(
        [math.sqrt((2.0 / counts[q]) / (1.0 / len(ax) + 1.0 / len(bx))) for q, ax, bx in zip(lay.ids, lay.x, lay.y)]
    )
    gram = shared_gram(lay) * np.outer(scale, scale)
    bound = shared_bound(
        lay, alpha=alpha, n_bootstrap=n_bootstrap, n_permutations=0, seed=seed, gram=gram, pass_minimum=False
    )
    bound.details["noise_floor"] = True
    return bound
