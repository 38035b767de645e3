"""Step: distances. How far apart two value distributions are, with a permutation test and a paired bootstrap bound.

Three statistics between two sets of embeddings ``X`` (m x d) and ``Y`` (n x d),
all computed on L2-normalised rows (the encoders' output already is):

``mmd``       Maximum mean discrepancy with a Gaussian kernel. The statistic is the
              unbiased estimate MMD² (Gretton et al., 2012) and the reported distance is
              ``sqrt(max(MMD², 0))``. Bandwidth rule: fixed ``sigma = 1`` on unit vectors,
              i.e. ``k(x, y) = exp(-|x - y|² / 2) = exp(cos(x, y) - 1)``; the same kernel for
              every pair of sets, so numbers are comparable across models, languages and
              runs (a gate threshold means the same thing everywhere). ``bandwidth="median"``
              switches to the median heuristic on the pooled set (sigma = median pairwise
              distance), which adapts to one comparison but is not comparable across them.
``frechet``   Fréchet distance between Gaussian fits (the FID formula) with Ledoit-Wolf
              shrinkage covariances (:mod:`univar_eval.stats.frechet`).
``centroid``  Cosine distance between the two mean embeddings, ``1 - cos(mean_x, mean_y)``.

Which distance is reported (the one rule; :mod:`univar_eval.stats.designs` implements it)
-------------------------------------------------------------------------------------------
Two answers to one question resemble each other whatever the model, so when both sets carry
question ids the comparison is paired, and it uses only the questions *both* sides answered:
answers to a question the other side did not answer are left out and counted
(``n_left_out_x`` / ``n_left_out_y``), never pooled into a free stratum.

``per_question``  (``mmd`` only) at least two answers per question on *both* sides (for at
                  least half of the shared questions; the others are left out and counted in
                  ``details["n_few_repeats"]``). Statistic: the mean over the Q shared questions
                  of each question's unbiased MMD² between the two sides' answers; distance
                  ``sqrt(max(., 0))``. Permutations relabel answers within each question. It
                  sees shifts shared across questions and per-question changes alike.
``shared_shift``  one answer per question on either side (or a metric without a per-question
                  form). Statistic: MMD² over pairs of answers to *different* questions (pairs
                  to the same question are left out of every kernel sum); permutations swap
                  answers within questions. With one answer a side it only sees shifts shared
                  across questions (a swap within a question cannot tell a model change from
                  sampling noise), and every result says so in ``note``.
``unpaired``      no question ids on a side, or ``paired=False`` (``--allow-other-questions``):
                  a plain two-sample test, free permutations, each side resampled on its own.

Tests and intervals. ``p_value = (1 + #{perm >= observed}) / (1 + B)`` from ``n_permutations``
seeded permutations of the design. The bootstrap is paired: question ids are drawn with
replacement and each draw brings both sides' answers to that question (unpaired: each side
resampled on its own). ``upper`` is the one-sided ``1 - alpha`` upper bound of the distance
and ``ci_low``/``ci_high`` the two-sided ``ci`` interval: for ``per_question`` the studentised
(bootstrap-t) interval of the mean over questions, never narrower than the Student-t one; else
percentile on MMD², which is unbiased, and bias-corrected percentile for the plug-in Fréchet and
centroid distances. The validation (``benchmarks/validate_gate_stats.py``) checks that a true
distance at D gives ``upper < D`` (a wrong "pass") at most alpha of the time. With
``n_permutations=0`` and ``n_bootstrap=0`` only the distance is computed (lm-eval's metric path).

Finite or say why: whenever the distance, p-value or a bound cannot be computed (all answers
share one question id, no shared question, non-finite embeddings, too few shared questions for
a bootstrap) it is NaN and ``problem`` holds a one-line reason; a NaN never comes without one.
:func:`within_noise` gives the noise floor: the distance a rerun of the baseline, with as many
answers, would show (two halves of its repeats compared, rescaled to the full size).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import t as t_dist
from threadpoolctl import threadpool_limits

from univar_eval.stats import lapack, resampling
from univar_eval.stats.designs import (  # noqa: F401  (paired_subsample: part of this module's API)
    PER_QUESTION,
    SHARED_SHIFT,
    UNPAIRED,
    Design,
    choose_design,
    paired_subsample,
    split_repeats,
)
from univar_eval.stats.frechet import PooledFrechet, ledoit_wolf  # noqa: F401  (ledoit_wolf: part of this module's API)
from univar_eval.stats.frechet import frechet_distance as _frechet_rows

METRICS = ("mmd", "frechet", "centroid")
DEFAULT_PERMUTATIONS = 1000
DEFAULT_BOOTSTRAP = 200
DEFAULT_ALPHA = 0.05
#: Rows of the batched quadratic forms computed at once (bounds memory: chunk x N floats).
_CHUNK = 256
#: Share of bootstrap resamples that must give a finite statistic for a bound to be reported.
_MIN_FINITE_BOOTSTRAP = 0.9

SHARED_SHIFT_NOTE = (
    "one answer per question: only shifts shared across questions are testable; ask with repeats "
    "(lm-eval `repeats: N` with sampling) to test per-question changes"
)
UNPAIRED_NOTE = (
    "unpaired: the answers are compared as two independent samples, not matched by question "
    "(differences in which questions were asked count as differences)"
)


def pooled_note(metric: str) -> str:
    return (
        f"{metric} compares the pooled answers to the shared questions: only shifts shared across questions "
        "are testable; use mmd to test per-question changes"
    )


@dataclass
class DistanceResult:
    """One comparison: the distance, its permutation p-value, bootstrap interval and upper bound, and its design."""

    metric: str
    distance: float
    statistic: float
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    n_x: int
    n_y: int
    n_permutations: int
    n_bootstrap: int
    seed: int
    details: dict = field(default_factory=dict)
    design: str = UNPAIRED
    n_questions: int = 0  # shared questions used (0 when unpaired)
    n_left_out_x: int = 0  # answers whose question the other side did not answer (paired designs)
    n_left_out_y: int = 0
    upper: float | None = None  # one-sided (1 - alpha) upper bound of the distance
    alpha: float = DEFAULT_ALPHA
    problem: str | None = None  # why a value is NaN (None when everything is finite)
    note: str | None = None  # what the design can and cannot see

    def to_dict(self) -> dict:
        return asdict(self)


# -- helpers ------------------------------------------------------------------------------------
def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {x.shape}")
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def _check_sets(x: np.ndarray, y: np.ndarray, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x, y = normalise(x), normalise(y)  # float64
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the two sets have different dimensions ({x.shape[1]} vs {y.shape[1]})")
    if len(x) < minimum or len(y) < minimum:
        raise ValueError(f"each set needs at least {minimum} embeddings (got {len(x)} and {len(y)})")
    return x, y


def median_bandwidth(pooled: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of the pooled set (a seeded subsample above ``max_points``)."""
    pooled = normalise(pooled)
    if len(pooled) > max_points:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), max_points, replace=False)]
    sq = np.clip(2.0 - 2.0 * pooled @ pooled.T, 0.0, None)
    iu = np.triu_indices(len(pooled), k=1)
    med = float(np.sqrt(np.median(sq[iu])))
    return med if med > 0 else 1.0


def gaussian_kernel(a: np.ndarray, b: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """``exp(-|a_i - b_j|² / (2 sigma²))`` for unit vectors (``|a - b|² = 2 - 2 a.b``)."""
    return kernel_from_gram(normalise(a) @ normalise(b).T, sigma)


def kernel_from_gram(gram: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """The Gaussian kernel from the cosine (Gram) matrix of unit vectors, in the Gram matrix's dtype."""
    sq = np.clip(2.0 - 2.0 * gram, 0.0, None)
    return np.exp(sq / gram.dtype.type(-2.0 * sigma * sigma))


def _bandwidth(x, y, bandwidth, seed) -> float:
    if bandwidth in (None, "fixed"):
        return 1.0
    if bandwidth == "median":
        return median_bandwidth(np.vstack([x, y]), seed=seed)
    return float(bandwidth)


# -- quadratic forms over indicator / count vectors ----------------------------------------------
def _pair_counts(w: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """For weight rows ``w`` (B x N): the number of ordered pairs of items with *different* labels,
    ``(sum w)² - sum_l (sum_{i in l} w_i)²`` (items sharing a label, e.g. answers to one question, are not paired)."""
    per_label = w.astype(np.float64) @ onehot
    return w.sum(1, dtype=np.float64) ** 2 - (per_label**2).sum(1)


def _cross_counts(wx: np.ndarray, wy: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    return wx.sum(1, dtype=np.float64) * wy.sum(1, dtype=np.float64) - (
        (wx.astype(np.float64) @ onehot) * (wy.astype(np.float64) @ onehot)
    ).sum(1)


def _forms_complementary(k: np.ndarray, wx: np.ndarray):
    """``wx K wx``, ``wy K wy``, ``wx K wy`` for 0/1 rows ``wx`` and ``wy = 1 - wx``: one product per batch."""
    rows = k.sum(1, dtype=np.float64)
    total = rows.sum()
    sxx = np.concatenate([np.einsum("ij,ij->i", a @ k, a) for a in _chunks(wx)]).astype(np.float64)
    sx1 = wx @ rows
    return sxx, total - 2.0 * sx1 + sxx, sx1 - sxx


def _forms(k: np.ndarray, wx: np.ndarray, wy: np.ndarray):
    """Batched ``wx K wx``, ``wy K wy``, ``wx K wy`` for any weight rows."""
    out = []
    for a, b in zip(_chunks(wx), _chunks(wy)):
        ka = a @ k
        out.append(
            np.stack(
                [
                    (ka * a).sum(1, dtype=np.float64),
                    ((b @ k) * b).sum(1, dtype=np.float64),
                    (ka * b).sum(1, dtype=np.float64),
                ],
                axis=1,
            )
        )
    res = np.concatenate(out)
    return res[:, 0], res[:, 1], res[:, 2]


def _chunks(w: np.ndarray, size: int = _CHUNK):
    for start in range(0, len(w), size):
        yield w[start : start + size]


# -- the statistics ---------------------------------------------------------------------------------
def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float | str | None = None, seed: int = 0) -> float:
    """Unbiased MMD² with a Gaussian kernel (see the module docstring for the bandwidth rule)."""
    x, y = _check_sets(x, y)
    sigma = _bandwidth(x, y, bandwidth, seed)
    kxx, kyy, kxy = gaussian_kernel(x, x, sigma), gaussian_kernel(y, y, sigma), gaussian_kernel(x, y, sigma)
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.sum() / (m * n)
    )


def centroid_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``1 - cos(mean(x), mean(y))`` on normalised rows."""
    x, y = _check_sets(x, y, minimum=1)
    mx, my = x.mean(0), y.mean(0)
    denom = np.linalg.norm(mx) * np.linalg.norm(my)
    return float(max(1.0 - (mx @ my) / denom, 0.0)) if denom > 0 else 1.0


def frechet_distance(x: np.ndarray, y: np.ndarray, shrinkage: float | str = "ledoit-wolf") -> float:
    """Fréchet distance of Gaussian fits with shrunk covariances (see :mod:`univar_eval.stats.frechet`)."""
    x, y = _check_sets(x, y)
    return _frechet_rows(x, y, shrinkage)


# -- the statistic of each design, observed, permuted and bootstrapped ---------------------------------
@dataclass
class _Draws:
    observed: float  # the reported statistic (float64)
    reference: float  # the observed statistic computed the way the permutations are (for ties)
    permuted: np.ndarray | None = None
    boot: np.ndarray | None = None
    details: dict = field(default_factory=dict)
    #: (ci, alpha) -> (low, high, upper) on the statistic's scale, where the design has its own bootstrap bounds
    bounds: Callable | None = None


def question_form(k: np.ndarray, cx: int, cy: int) -> tuple:
    """Each question's unbiased MMD² as a quadratic form in its answers' labels (for :func:`question_mmd2`).

    ``k``: the pooled kernel blocks (G, c, c) of G questions, each with ``cx`` answers of x then ``cy`` of y
    (``c = cx + cy``; not changed). With the block's diagonal zeroed to ``K``, row sums ``r`` and labels
    ``a`` (1 = x): ``t(a) = (A + B + 2C) a'Ka - 2 (B + C) a'r + B 1'K1``
    with ``A = 1/(cx(cx-1))``, ``B = 1/(cy(cy-1))``, ``C = 1/(cx cy)``.
    """
    k = k.copy()
    idx = np.arange(cx + cy)
    k[:, idx, idx] = 0.0
    r = k.sum(2)
    a_, b_, c_ = 1.0 / (cx * (cx - 1)), 1.0 / (cy * (cy - 1)), 1.0 / (cx * cy)
    return k, r, a_ + b_ + 2 * c_, 2 * (b_ + c_), b_ * r.sum(1)


def question_mmd2(w: np.ndarray, form: tuple) -> np.ndarray:
    """Per-question MMD² (batch, G) for 0/1 labels ``w`` (batch, G, c), 1 = x, of :func:`question_form`'s G
    questions."""
    k, r, quad, lin, const = form
    wt = w.transpose(1, 0, 2)  # (G, batch, c): one matrix product per question
    return (quad * ((wt @ k) * wt).sum(2) - lin * (wt * r[:, None, :]).sum(2) + const[:, None]).T


def _per_question_mmd(xs, ys, dz: Design, sigma, n_perm, n_boot, seed, rng) -> _Draws:
    """Mean over questions of each question's unbiased MMD² (:func:`question_form`), permuted within questions."""
    q = dz.n_questions
    cx, cy = np.bincount(dz.qx, minlength=q), np.bincount(dz.qy, minlength=q)
    t_obs = np.empty(q)
    perm = np.zeros(n_perm) if n_perm else None
    ref = 0.0
    patterns = sorted({(int(a), int(b)) for a, b in zip(cx, cy)})
    for tag, (px, py) in enumerate(patterns):
        qs = np.flatnonzero((cx == px) & (cy == py))
        blocks = np.stack([np.vstack([xs[dz.qx == j], ys[dz.qy == j]]) for j in qs])  # (G, c, d)
        form = question_form(kernel_from_gram(blocks @ blocks.transpose(0, 2, 1), sigma), px, py)
        base = np.zeros((1, len(qs), px + py))
        base[:, :, :px] = 1.0
        t_obs[qs] = question_mmd2(base, form)[0]
        ref += float(t_obs[qs].sum())
        if n_perm:
            splits = resampling.within_question_splits(px, py, len(qs), n_perm, seed, tag)
            for s in range(0, n_perm, 2048):
                perm[s : s + 2048] += question_mmd2(splits[s : s + 2048].astype(np.float64), form).sum(1)
    draws = _Draws(float(t_obs.mean()), ref / q, None if perm is None else perm / q)
    draws.details["per_question"] = t_obs
    if n_boot:
        counts = resampling.question_counts(rng, q, n_boot)
        draws.boot = counts @ t_obs / q
        draws.bounds = _studentised_bounds(t_obs, counts)
    return draws


def _studentised_bounds(t: np.ndarray, counts: np.ndarray) -> Callable:
    """Bounds for the mean of the per-question values ``t`` from the paired bootstrap ``counts``: the
    studentised (bootstrap-t) interval, never narrower than the Student-t one.

    The per-question MMD² estimates are skewed, and a low mean comes with a low spread, so the
    percentile bound is a little too low (wrong-pass rate above alpha in the validation); the
    bootstrap-t corrects for the skew, the Student-t floor for the small number of questions.
    """
    q = len(t)
    mean, se = float(t.mean()), float(t.std(ddof=1)) / np.sqrt(q) if q > 1 else 0.0
    m = counts @ t / q
    var = np.clip(counts @ (t**2) / q - m**2, 0.0, None) * q / max(q - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pivots = (m - mean) / np.sqrt(var / q)
    pivots = pivots[np.isfinite(pivots)]

    def bounds(ci: float, alpha: float) -> tuple[float, float, float]:
        if q < 2 or not len(pivots):
            return np.nan, np.nan, np.nan
        tail = (1 - ci) / 2
        above = lambda level: max(-float(np.quantile(pivots, 1 - level)), t_dist.ppf(level, q - 1))  # noqa: E731
        below = lambda level: max(float(np.quantile(pivots, level)), t_dist.ppf(level, q - 1))  # noqa: E731
        return mean - below(1 - tail) * se, mean + above(1 - tail) * se, mean + above(1 - alpha) * se

    return bounds


def _sign_flip_mmd(xs, ys, dz: Design, sigma, n_perm, n_boot, seed, rng) -> _Draws:
    """Shared-shift MMD² with one answer per question a side: ``sum_{q != r} H_qr / (Q (Q - 1))`` with
    ``H_qr = k(x_q, x_r) + k(y_q, y_r) - k(x_q, y_r) - k(y_q, x_r)``; a permutation flips the signs of
    questions (swaps their two answers), a paired bootstrap draws questions: ``c'Hc / (Q² - sum c²)``."""
    q = dz.n_questions
    x, y = xs[np.argsort(dz.qx)], ys[np.argsort(dz.qy)]
    kxy = kernel_from_gram(x @ y.T, sigma)
    h = kernel_from_gram(x @ x.T, sigma) + kernel_from_gram(y @ y.T, sigma) - kxy - kxy.T
    np.fill_diagonal(h, 0.0)
    draws = _Draws(float(h.sum() / (q * (q - 1))), 0.0)
    h32 = h.astype(np.float32)
    draws.reference = float(((np.ones((1, q), np.float32) @ h32).sum(dtype=np.float64)) / (q * (q - 1)))
    if n_perm:
        signs = resampling.sign_flips(q, n_perm, seed)
        draws.permuted = np.concatenate(
            [np.einsum("ij,ij->i", s @ h32, s, dtype=np.float64) for s in _chunks(signs, 4096)]
        ) / (q * (q - 1))
    if n_boot:
        c = resampling.question_counts(rng, q, n_boot)
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample of one question has no pair
            draws.boot = np.einsum("ij,ij->i", c @ h, c) / (q * q - (c**2).sum(1))
    return draws


def _dense(metric, xs, ys, dz: Design, sigma, n_perm, n_boot, seed, rng, cache: dict | None = None) -> _Draws:
    """Any design, ``mmd`` or ``centroid``: batched quadratic forms over the pooled kernel (or Gram) matrix.

    In the shared-shift design pairs of answers to one question are left out of the MMD sums and
    permutations swap answers within questions; unpaired, each item is its own label. The Gram blocks are
    computed once, in double precision: the observed statistic comes from them, the permutations and
    resamples from their single-precision copy. ``cache``: a dict shared by comparisons of one set ``x``
    against many (``reference_distances``), which keeps x's own block (and kernel) for the next one.
    """
    m, n = len(xs), len(ys)
    paired = dz.name != UNPAIRED
    labels = np.concatenate([dz.qx, dz.qy]) if paired else np.arange(m + n)
    key = (metric, sigma, dz.x_index.tobytes())
    own = cache.get(key) if cache is not None else None
    if own is None:
        gxx = xs @ xs.T
        own = (gxx, kernel_from_gram(gxx, sigma) if metric == "mmd" else gxx)
        if cache is not None:
            cache[key] = own
    gxy, gyy = xs @ ys.T, ys @ ys.T
    if metric == "mmd":
        blocks = own[1], kernel_from_gram(gxy, sigma), kernel_from_gram(gyy, sigma)
    else:
        blocks = own[0], gxy, gyy
    k = np.empty((m + n, m + n), dtype=np.float32)
    k[:m, :m], k[:m, m:], k[m:, :m], k[m:, m:] = blocks[0], blocks[1], blocks[1].T, blocks[2]
    if metric == "mmd":
        k *= labels[:, None] != labels[None, :]  # no pair of answers to one question (nor an item with itself)
        onehot = np.zeros((m + n, labels.max() + 1))
        onehot[np.arange(m + n), labels] = 1.0
        observed = _mmd2_blocks(*blocks, dz if paired else None)

        def from_forms(sxx, syy, sxy, wx, wy):
            return (
                sxx / _pair_counts(wx, onehot)
                + syy / _pair_counts(wy, onehot)
                - 2.0 * sxy / _cross_counts(wx, wy, onehot)
            )
    else:
        observed = centroid_distance(xs, ys)

        def from_forms(sxx, syy, sxy, wx, wy):
            return np.clip(1.0 - sxy / np.sqrt(np.clip(sxx * syy, 1e-24, None)), 0.0, None)

    base = np.zeros((1, m + n), dtype=np.float32)
    base[0, :m] = 1
    draws = _Draws(observed, float(from_forms(*_forms_complementary(k, base), base, 1 - base)[0]))
    if n_perm:
        strata = tuple(labels.tolist()) if paired else None
        wx = resampling.permutation_indicators(m + n, m, n_perm, seed, strata)
        # every permutation keeps the per-label counts of each set, so the pair counts are the base's
        draws.permuted = from_forms(*_forms_complementary(k, wx), base, 1 - base)
    if n_boot:
        if paired:
            c = resampling.question_counts(rng, dz.n_questions, n_boot).astype(np.float32)
            wx = np.hstack([c[:, dz.qx], np.zeros((n_boot, n), np.float32)])
            wy = np.hstack([np.zeros((n_boot, m), np.float32), c[:, dz.qy]])
        else:
            wx, wy = resampling.independent_weights(rng, m, n, n_boot)
        with np.errstate(divide="ignore", invalid="ignore"):
            draws.boot = from_forms(*_forms(k, wx, wy), wx, wy)
    return draws


def _frechet(xs, ys, dz: Design, sigma, n_perm, n_boot, seed, rng) -> _Draws:
    """Fréchet distance; permutations and resamples share one decomposition of the pooled set."""
    m, n = len(xs), len(ys)
    lapack.available()  # scipy's LAPACK loaded before the limit below, so that the limit covers it too
    with threadpool_limits(1):  # small factorisations: threaded BLAS gains nothing, and stalls on a busy machine
        fit = PooledFrechet(np.vstack([xs, ys]))
        observed = _frechet_rows(xs, ys)
    # permutation statistics in single precision, the observed one computed alike for the ties
    draws = _Draws(observed, float(fit(np.arange(m)[None], m + np.arange(n)[None], np.float32)[0]))
    paired = dz.name != UNPAIRED
    if n_perm:
        strata = tuple(np.concatenate([dz.qx, dz.qy]).tolist()) if paired else None
        wx = resampling.permutation_indicators(m + n, m, n_perm, seed, strata)
        order = np.argsort(wx == 0, axis=1, kind="stable")  # the m items of x first, then y
        draws.permuted = fit(order[:, :m], order[:, m:], np.float32)
    if n_boot:
        if not paired:
            draws.boot = fit(rng.integers(0, m, (n_boot, m)), m + rng.integers(0, n, (n_boot, n)))
        else:
            counts = resampling.question_counts(rng, dz.n_questions, n_boot).astype(np.int64)
            rows = [(np.repeat(np.arange(m), c[dz.qx]), m + np.repeat(np.arange(n), c[dz.qy])) for c in counts]
            boot = np.empty(n_boot)
            for size in sorted({(len(a), len(b)) for a, b in rows}):  # equal sizes are batched together
                sel = [i for i, (a, b) in enumerate(rows) if (len(a), len(b)) == size]
                boot[sel] = (
                    fit(np.stack([rows[i][0] for i in sel]), np.stack([rows[i][1] for i in sel]))
                    if min(size) >= 2
                    else np.nan
                )
            draws.boot = boot
    return draws


def _mmd2_rows(x, y, sigma) -> float:
    kxx, kyy, kxy = (kernel_from_gram(a @ b.T, sigma) for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.sum() / (m * n)
    )


def _mmd2_blocks(kxx, kxy, kyy, dz: Design | None) -> float:
    """The observed MMD² from the three kernel blocks (float64): the same sums as :func:`_mmd2_rows`
    (``dz`` None) and :func:`mmd2_unbiased_masked` (pairs of answers to one question left out)."""
    if dz is None:
        m, n = len(kxx), len(kyy)
        return float(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2.0 * kxy.sum() / (m * n)
        )

    def mean(k, qa, qb):
        keep = qa[:, None] != qb[None, :]
        return float((k * keep).sum() / keep.sum())

    return mean(kxx, dz.qx, dz.qx) + mean(kyy, dz.qy, dz.qy) - 2.0 * mean(kxy, dz.qx, dz.qy)


def mmd2_unbiased_masked(x, y, dz: Design, sigma: float = 1.0) -> float:
    """Shared-shift MMD² (float64): the unbiased MMD² over pairs of answers to different questions."""

    def mean(a, qa, b, qb):
        k = kernel_from_gram(a @ b.T, sigma)
        keep = qa[:, None] != qb[None, :]
        return float((k * keep).sum() / keep.sum())

    return mean(x, dz.qx, x, dz.qx) + mean(y, dz.qy, y, dz.qy) - 2.0 * mean(x, dz.qx, y, dz.qy)


# -- tests of difference ------------------------------------------------------------------------------
def compare_sets(
    x: np.ndarray,
    y: np.ndarray,
    metric: str = "mmd",
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = DEFAULT_ALPHA,
    bandwidth: float | str | None = None,
    groups_x=None,
    groups_y=None,
    paired: bool = True,
    cache: dict | None = None,
) -> DistanceResult:
    """Distance between two sets with a permutation p-value, a paired bootstrap interval and upper bound.

    ``groups_x`` / ``groups_y``: the question id of each answer. The design (per-question,
    shared-shift or unpaired), the answers it leaves out and the rule for the reported distance
    are described in the module docstring. ``paired=False`` forces the unpaired design. ``cache``: a dict
    kept by a caller comparing one ``x`` with many sets (x's own kernel block is then computed once).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    x, y = _check_sets(x, y)
    m, n = len(x), len(y)
    dz = choose_design(groups_x, groups_y, m, n, paired=paired, per_question=(metric == "mmd"))
    result = DistanceResult(
        metric=metric,
        distance=np.nan,
        statistic=np.nan,
        p_value=np.nan if n_permutations else None,
        ci_low=np.nan if n_bootstrap else None,
        ci_high=np.nan if n_bootstrap else None,
        n_x=m,
        n_y=n,
        n_permutations=n_permutations,
        n_bootstrap=n_bootstrap,
        seed=seed,
        design=dz.name,
        n_questions=dz.n_questions,
        n_left_out_x=dz.n_left_out_x,
        n_left_out_y=dz.n_left_out_y,
        upper=np.nan if n_bootstrap else None,
        alpha=alpha,
        note=_note(metric, dz),
    )
    if dz.name != UNPAIRED:
        result.details["paired_questions"] = dz.n_questions  # kept for readers of the earlier field
    if dz.n_few_repeats:
        result.details["n_few_repeats"] = dz.n_few_repeats
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        result.problem = "non-finite embeddings (NaN or infinite values): re-embed the answers"
        return result
    if dz.problem:
        result.problem = dz.problem
        return result
    xs, ys = x[dz.x_index], y[dz.y_index]
    rng = np.random.default_rng(seed)
    sigma = 1.0
    if metric == "mmd":
        sigma = _bandwidth(xs, ys, bandwidth, seed)
        result.details["bandwidth"] = sigma
        if dz.name == PER_QUESTION:
            engine = _per_question_mmd
        elif dz.name == SHARED_SHIFT and dz.one_to_one:
            engine = _sign_flip_mmd
        else:
            engine = functools.partial(_dense, "mmd", cache=cache)
    elif metric == "centroid":
        engine = functools.partial(_dense, "centroid", cache=cache)
    else:
        engine = _frechet
    draws = engine(xs, ys, dz, sigma, n_permutations, n_bootstrap, seed, rng)
    to_distance: Callable = (lambda s: np.sqrt(np.clip(s, 0, None))) if metric == "mmd" else (lambda s: s)
    result.statistic = draws.observed
    result.distance = float(to_distance(draws.observed))
    problems = []
    if draws.permuted is not None:
        perm = draws.permuted
        if np.isfinite(perm).all() and np.isfinite(draws.reference):
            # a tiny tolerance so that ties computed in another precision count as ties
            tol = 1e-5 * max(abs(draws.reference), float(np.mean(np.abs(perm))), 1e-300)
            result.p_value = float((1 + np.sum(perm >= draws.reference - tol)) / (1 + len(perm)))
        else:
            problems.append("a permuted statistic is not finite")
    if draws.boot is not None:
        boot = draws.boot[np.isfinite(draws.boot)]
        if len(boot) < _MIN_FINITE_BOOTSTRAP * n_bootstrap or (dz.name != UNPAIRED and dz.n_questions < 2):
            problems.append(f"only {dz.n_questions} shared question(s): too few for a paired bootstrap bound")
        else:
            tail = (1 - ci) / 2
            q = np.array(draws.bounds(ci, alpha)) if draws.bounds else np.quantile(boot, [tail, 1 - tail, 1 - alpha])
            if metric != "mmd":
                # plug-in distances are biased upward with few answers: shift by the bootstrap estimate of the bias
                q = q - (float(np.mean(boot)) - draws.observed)
            result.ci_low, result.ci_high, result.upper = (float(v) for v in to_distance(np.clip(q, 0, None)))
    if not np.isfinite(result.statistic):
        problems.insert(0, f"the {metric} statistic is not finite")
    if problems:
        result.problem = "; ".join(problems)
    return result


def _note(metric: str, dz: Design) -> str | None:
    if dz.name == UNPAIRED:
        return UNPAIRED_NOTE
    if dz.name == SHARED_SHIFT:
        return pooled_note(metric) if metric != "mmd" and dz.n_repeated else SHARED_SHIFT_NOTE
    return None


def within_noise(
    x: np.ndarray,
    groups,
    metric: str = "mmd",
    seed: int = 0,
    *,
    n_permutations: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    alpha: float = DEFAULT_ALPHA,
    ci: float = 0.95,
) -> DistanceResult:
    """The noise floor: the distance a rerun of this model, with as many answers as it has, would show against it.

    Each question's answers are split in two (seeded; see :func:`designs.split_repeats`), the halves
    are compared, and the result is rescaled from the halves' size to the full size by the statistic's
    sample-size law (each half holds half the answers, so unscaled the halves overstate a full
    comparison's noise: 1.5x for mmd with 4 answers a question, 2x for centroid with 2;
    ``benchmarks/validate_noise_floor.py`` measures it). ``distance`` is then one draw of what a rerun's
    distance would be, and ``upper`` one draw of a rerun's ``upper`` (the D a rerun needs to pass).

    ``mmd`` (a rerun with 2 answers a question or more is compared per question): with no difference,
    the unbiased MMD² of m against n answers to one question has mean 0 and variance ``2 tau_q f(m, n)``,
    ``f(m, n) = 1/(m(m-1)) + 1/(n(n-1)) + 2/(mn)`` (:func:`noise_variance_factor`; exact: the three sums of
    the doubly centred kernel are uncorrelated), ``tau_q`` a property of the question alone. Each
    question's halves value is multiplied by ``sqrt(f(c, c) / f(h1, h2))`` (c its answers, h1 + h2 = c),
    averaged as a rerun would average (rerun questions without a halves value count at the mean
    ``tau``), and the studentised bootstrap bounds are computed on the rescaled values. A question of 3
    answers splits 1 + 2 and gives ``U(pair) - mean k(single, pair)``: mean 0, variance
    ``tau (1 + 1/2) + (1 + 1/2) var(mu_q)`` (``mu_q(x)`` the kernel's mean against the question's answers);
    its rescaling counts only the ``tau`` term, so it overstates a little (about 7 % in distance in the
    validation). A question of 2 answers gives no per-question value: no statistic of two answers
    estimates ``tau_q`` (a four-answer moment), and comparing halves of one answer for shared shifts
    understates a per-question rerun's noise 4 to 7 times. With fewer than half the rerun's questions
    holding 3 answers or more the floor is NaN and ``problem`` says so. ``p_value`` is None.

    ``centroid``: the distance is a quadratic form in the difference of the two means, whose covariance
    is ``sum_q c_q C_q / M²`` a side (``C_q`` the question's answer covariance, estimated by its within-
    question variance; questions with one answer at the mean); distance and bounds scale by the ratio
    of the rerun's to the halves'. Where the halves would weight questions differently (mixed odd and even
    counts) they drop the extra answer of odd questions (else their means differ by the question mix: 1.12x
    with 2-4 answers a question). ``frechet`` and an mmd rerun in the shared-shift design (most
    questions with one answer) are not rescaled (``details["rerun_scale"]`` is absent): they overstate.
    Without question ids or without repeats the distance is NaN and ``problem`` says why.
    """
    x = normalise(x)
    if groups is None:
        return _unavailable(metric, x, seed, "no question ids: the halves of a model's repeats cannot be matched")
    a, b = split_repeats(groups, seed)
    if len(a) < 2 or len(b) < 2:
        return _unavailable(
            metric,
            x,
            seed,
            "no repeats: every question has one answer, so the model's own noise "
            "cannot be measured; ask with repeats (lm-eval `repeats: N` with "
            "sampling) or add runs with `bank add --as-repeats`",
        )
    g = list(groups)
    if metric == "mmd":
        rerun = choose_design(g, g, len(g), len(g))
        if rerun.name == PER_QUESTION:
            return _per_question_floor(x, g, a, b, rerun, seed=seed, n_bootstrap=n_bootstrap, ci=ci, alpha=alpha)
    if metric == "centroid":
        b = _same_counts(b, a, g)
    result = compare_sets(
        x[a],
        x[b],
        metric,
        n_permutations=n_permutations,
        n_bootstrap=n_bootstrap,
        seed=seed,
        alpha=alpha,
        ci=ci,
        groups_x=[g[i] for i in a],
        groups_y=[g[i] for i in b],
    )
    result.details["noise_floor"] = True
    if metric == "centroid" and np.isfinite(result.statistic):
        scale = _centroid_rerun_scale(x, g, a, b)
        result.details.update(halves_distance=result.distance, rerun_scale=scale)
        result.statistic *= scale
        result.distance *= scale
        for name in ("ci_low", "ci_high", "upper"):
            if getattr(result, name) is not None:
                setattr(result, name, getattr(result, name) * scale)
    return result


def _same_counts(b: np.ndarray, a: np.ndarray, groups: list) -> np.ndarray:
    """The rows of ``b`` less the extra answer of each odd question, where needed for both halves to weight every
    question alike (pooled means of halves weighting questions differently differ by the question mix, not by noise)."""
    quota: dict = {}
    for i in a:
        quota[groups[i]] = quota.get(groups[i], 0) + 1
    in_b: dict = {}
    for i in b:
        in_b[groups[i]] = in_b.get(groups[i], 0) + 1
    if all(in_b[q] * len(a) == n * len(b) for q, n in quota.items()):
        return b  # every question has the same share of each half already (e.g. 3 answers everywhere: 1 + 2)
    keep = []
    for i in b:
        if quota.get(groups[i], 0) > 0:
            quota[groups[i]] -= 1
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def noise_variance_factor(m: int, n: int) -> float:
    """``f(m, n)``: with no difference, an unbiased MMD² of m against n answers has variance ``2 tau f(m, n)``."""
    return 1.0 / (m * (m - 1)) + 1.0 / (n * (n - 1)) + 2.0 / (m * n)


def _per_question_floor(
    x: np.ndarray,
    groups: list,
    a: np.ndarray,
    b: np.ndarray,
    rerun: Design,
    *,
    seed: int,
    n_bootstrap: int,
    ci: float,
    alpha: float,
) -> DistanceResult:
    """The mmd floor of a per-question rerun: each question's halves value rescaled (see :func:`within_noise`)."""
    rows_a: dict = {}
    rows_b: dict = {}
    for i in a:
        rows_a.setdefault(groups[i], []).append(i)
    for i in b:
        rows_b.setdefault(groups[i], []).append(i)
    counts = np.bincount(rerun.qx, minlength=rerun.n_questions)
    target = float(sum(2.0 * noise_variance_factor(int(c), int(c)) for c in counts))  # sum of the rerun's variances
    values, coefs, n_one_answer = [], [], 0
    for q in rows_a.keys() & rows_b.keys():
        xa, xb = x[rows_a[q]], x[rows_b[q]]
        if len(xa) >= 2 and len(xb) >= 2:
            values.append(_mmd2_rows(xa, xb, 1.0))
            coefs.append(2.0 * noise_variance_factor(len(xa), len(xb)))
        elif max(len(xa), len(xb)) >= 2:  # 1 answer against n: U(pairs of the n) - mean k(single, n)
            single, many = (xa, xb) if len(xa) == 1 else (xb, xa)
            n = len(many)
            k = kernel_from_gram(many @ many.T)
            values.append(float((k.sum() - np.trace(k)) / (n * (n - 1)) - kernel_from_gram(single @ many.T).mean()))
            coefs.append(2.0 / (n * (n - 1)) + 1.0 / n)
            n_one_answer += 1
    used = len(values)
    result = DistanceResult(
        metric="mmd",
        distance=np.nan,
        statistic=np.nan,
        p_value=None,
        ci_low=np.nan if n_bootstrap else None,
        ci_high=np.nan if n_bootstrap else None,
        n_x=len(a),
        n_y=len(b),
        n_permutations=0,
        n_bootstrap=n_bootstrap,
        seed=seed,
        design=PER_QUESTION,
        n_questions=used,
        upper=np.nan if n_bootstrap else None,
        alpha=alpha,
        details={
            "noise_floor": True,
            "rerun_questions": rerun.n_questions,
            "rerun_scale": "per question",
            "n_split_one_answer": n_one_answer,
        },
    )
    if used < 2 or 2 * used < rerun.n_questions:
        result.problem = (
            "too few repeats for a per-question noise floor: a rerun is compared question by question, "
            "and its noise can be measured from 3 answers a question or more on at least half the "
            "questions (2 answers cannot show it); ask with `repeats: 4` or merge 4 runs with "
            "`bank add --as-repeats`"
        )
        return result
    t = np.array(values)
    u = t * np.sqrt(target / (used * np.array(coefs))) * used / rerun.n_questions
    result.details["halves_distance"] = float(np.sqrt(max(float(t.mean()), 0.0)))
    result.statistic = float(u.mean())
    result.distance = float(np.sqrt(max(result.statistic, 0.0)))
    if not np.isfinite(result.statistic):
        result.problem = "the mmd statistic is not finite"
    elif n_bootstrap:
        boot = resampling.question_counts(np.random.default_rng(seed), used, n_bootstrap)
        bounds = np.array(_studentised_bounds(u, boot)(ci, alpha))
        result.ci_low, result.ci_high, result.upper = (float(v) for v in np.sqrt(np.clip(bounds, 0, None)))
    return result


def _centroid_rerun_scale(x: np.ndarray, groups: list, a: np.ndarray, b: np.ndarray) -> float:
    """Null size of a rerun's centroid distance over the halves': ratio of the covariances of the mean differences."""
    by_q: dict = {}
    for i, g in enumerate(groups):
        if g is not None:
            by_q.setdefault(g, []).append(i)
    spread = {
        g: float(((x[rows] - x[rows].mean(0)) ** 2).sum() / (len(rows) - 1))
        for g, rows in by_q.items()
        if len(rows) >= 2
    }
    typical = float(np.mean(list(spread.values())))
    counts = {g: len(rows) for g, rows in by_q.items()}
    total = sum(counts.values())
    rerun = 2.0 * sum(c * spread.get(g, typical) for g, c in counts.items()) / total**2

    def side(rows):
        per_q: dict = {}
        for i in rows:
            per_q[groups[i]] = per_q.get(groups[i], 0) + 1
        return sum(c * spread[g] for g, c in per_q.items()) / len(rows) ** 2

    half = side(a) + side(b)
    return rerun / half if half > 0 else 1.0


def _unavailable(metric, x, seed, problem) -> DistanceResult:
    return DistanceResult(
        metric=metric,
        distance=np.nan,
        statistic=np.nan,
        p_value=None,
        ci_low=None,
        ci_high=None,
        n_x=len(x),
        n_y=0,
        n_permutations=0,
        n_bootstrap=0,
        seed=seed,
        problem=problem,
        details={"noise_floor": True},
    )


def distance(x: np.ndarray, y: np.ndarray, metric: str = "mmd", **kwargs) -> float:
    """The unpaired distance alone (no test, no interval); :func:`compare_sets` for the paired designs."""
    if metric == "mmd":
        return float(np.sqrt(max(mmd2_unbiased(x, y, **kwargs), 0.0)))
    if metric == "frechet":
        return frechet_distance(x, y, **kwargs)
    if metric == "centroid":
        return centroid_distance(x, y)
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
