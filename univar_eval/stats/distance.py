"""Step: distances. How far apart two value distributions are, with a permutation test and a bootstrap interval.

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
``frechet``   Fréchet distance between Gaussian fits (the FID formula)
              ``|mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x S_y)^½)`` with Ledoit-Wolf shrinkage
              covariances, since a task has fewer answers than dimensions.
``centroid``  Cosine distance between the two mean embeddings, ``1 - cos(mean_x, mean_y)``.

:func:`compare_sets` adds a permutation test (seeded; for ``mmd`` and ``centroid`` the
pooled kernel or Gram matrix is computed once and every permutation is a batched
quadratic form over index indicators) giving ``p_value = (1 + #{perm >= observed}) / (1 + B)``,
and a bootstrap interval (resampling each set with replacement; percentile for MMD, bias-corrected
percentile for the plug-in Fréchet and centroid distances).

Paired design: when both sets answered the same questions (two models, one questionnaire), two
answers to one question resemble each other whatever the model, and treating the sets as
independent samples would make any two models look alike. Given each answer's question id,
:func:`compare_sets` leaves pairs of answers to the same question out of the MMD sums and
permutes the set labels within each question.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

METRICS = ("mmd", "frechet", "centroid")
DEFAULT_PERMUTATIONS = 1000
DEFAULT_BOOTSTRAP = 200
#: Rows of the batched quadratic forms computed at once (bounds memory: chunk x N floats).
_CHUNK = 256


@dataclass
class DistanceResult:
    """One comparison: the distance, its permutation p-value and bootstrap interval."""

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
    return w.sum(1, dtype=np.float64) ** 2 - (per_label ** 2).sum(1)


def _cross_counts(wx: np.ndarray, wy: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    return (wx.sum(1, dtype=np.float64) * wy.sum(1, dtype=np.float64)
            - ((wx.astype(np.float64) @ onehot) * (wy.astype(np.float64) @ onehot)).sum(1))


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
        out.append(np.stack([(ka * a).sum(1, dtype=np.float64), ((b @ k) * b).sum(1, dtype=np.float64),
                             (ka * b).sum(1, dtype=np.float64)], axis=1))
    res = np.concatenate(out)
    return res[:, 0], res[:, 1], res[:, 2]


def _chunks(w: np.ndarray):
    for start in range(0, len(w), _CHUNK):
        yield w[start:start + _CHUNK]


@functools.lru_cache(maxsize=32)
def _permutation_indicators(n_total: int, m: int, b: int, seed: int, strata: tuple | None = None) -> np.ndarray:
    """``b`` seeded random splits of ``n_total`` items into ``m`` and the rest, as 0/1 rows.

    With ``strata`` (one label per item, the first ``m`` items being the first set), labels are
    exchanged only within a stratum: answers to the same question swap sets, so the per-question
    make-up of each set is kept (a paired design). Cached: comparisons with the same sizes,
    strata and seed reuse the same permutations.
    """
    rng = np.random.default_rng([seed, n_total, m])
    if strata is None:
        idx = np.argsort(rng.random((b, n_total)), axis=1)[:, :m]
        wx = np.zeros((b, n_total), dtype=np.float32)
        np.put_along_axis(wx, idx, 1.0, axis=1)
    else:
        st = np.asarray(strata, dtype=np.int64)
        in_x = np.zeros(n_total, dtype=bool)
        in_x[:m] = True
        n_x_of = np.bincount(st, weights=in_x, minlength=st.max() + 1).astype(np.int64)
        order = np.argsort(st[None, :] + rng.random((b, n_total)), axis=1)  # grouped by stratum, shuffled within
        sorted_st = np.sort(st)
        start = np.searchsorted(sorted_st, sorted_st, side="left")
        template = ((np.arange(n_total) - start) < n_x_of[sorted_st]).astype(np.float32)
        wx = np.zeros((b, n_total), dtype=np.float32)
        np.put_along_axis(wx, order, np.broadcast_to(template, (b, n_total)), axis=1)
    wx.setflags(write=False)
    return wx


def question_labels(groups_x, groups_y, m: int, n: int) -> tuple[np.ndarray, tuple | None]:
    """Labels for masking pairs and strata for permuting, from the question id of each answer.

    Questions asked in both sets become strata (and pairs of answers to the same question are
    left out of every kernel sum); answers whose question is in one set only share one free
    stratum. Without ids every item is its own label and permutations are free.
    """
    if groups_x is None or groups_y is None:
        return np.arange(m + n), None
    gx, gy = list(groups_x), list(groups_y)
    if len(gx) != m or len(gy) != n:
        raise ValueError("one question id per embedding is needed")
    shared = sorted(({g for g in gx if g is not None} & {g for g in gy if g is not None}), key=str)
    if not shared:
        return np.arange(m + n), None
    index = {g: i + 1 for i, g in enumerate(shared)}
    strata = tuple(index.get(g, 0) for g in gx + gy)
    labels = np.array([index[g] if g in index else -(i + 1) for i, g in enumerate(gx + gy)])
    return np.unique(labels, return_inverse=True)[1], strata


def _bootstrap_weights(rng: np.random.Generator, m: int, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    wx = np.zeros((b, m + n), dtype=np.float32)
    wy = np.zeros((b, m + n), dtype=np.float32)
    rows = np.arange(b)[:, None]
    np.add.at(wx, (rows, rng.integers(0, m, size=(b, m))), 1.0)
    np.add.at(wy, (rows, m + rng.integers(0, n, size=(b, n))), 1.0)
    return wx, wy


# -- the statistics ---------------------------------------------------------------------------------
def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float | str | None = None, seed: int = 0) -> float:
    """Unbiased MMD² with a Gaussian kernel (see the module docstring for the bandwidth rule)."""
    x, y = _check_sets(x, y)
    sigma = _bandwidth(x, y, bandwidth, seed)
    kxx, kyy, kxy = gaussian_kernel(x, x, sigma), gaussian_kernel(y, y, sigma), gaussian_kernel(x, y, sigma)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.sum() / (m * n))


def centroid_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``1 - cos(mean(x), mean(y))`` on normalised rows."""
    x, y = _check_sets(x, y, minimum=1)
    mx, my = x.mean(0), y.mean(0)
    denom = np.linalg.norm(mx) * np.linalg.norm(my)
    return float(max(1.0 - (mx @ my) / denom, 0.0)) if denom > 0 else 1.0


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Ledoit-Wolf shrinkage of the covariance of ``x``: returns (centred x, shrinkage s, target mu).

    The estimate is ``(1 - s) S + s mu I`` with ``S = Xc'Xc / n`` and ``mu = tr(S) / d``
    (Ledoit & Wolf, 2004); computed through the n x n Gram matrix when n < d.
    """
    n, d = x.shape
    xc = x - x.mean(0)
    gram = xc @ xc.T if n < d else None
    s_fro2 = float((gram ** 2).sum()) / n ** 2 if gram is not None else float(((xc.T @ xc) ** 2).sum()) / n ** 2
    trace = float((xc ** 2).sum()) / n
    mu = trace / d
    delta = (s_fro2 - 2 * mu * trace + d * mu * mu) / d  # |S - mu I|_F² / d
    row4 = float(((xc ** 2).sum(1) ** 2).sum())
    beta = (row4 - n * s_fro2) / (n * n) / d
    shrink = 1.0 if delta <= 0 else float(np.clip(beta / delta, 0.0, 1.0))
    return xc, shrink, mu


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(x: np.ndarray, y: np.ndarray, shrinkage: float | str = "ledoit-wolf") -> float:
    """Fréchet distance of Gaussian fits with shrunk covariances.

    Exact and fast for n << d: both covariances are ``a I + b S`` with ``S`` living in the
    span ``Q`` of the centred data, so the trace term is computed in ``Q`` and the
    orthogonal complement adds ``(d - r) (sqrt(a_x) - sqrt(a_y))²``.
    ``shrinkage``: "ledoit-wolf" (default) or a fixed number in [0, 1] (0 = sample covariance).
    """
    x, y = _check_sets(x, y)
    d = x.shape[1]

    def fit(z):
        zc, s, mu = ledoit_wolf(z)
        if shrinkage != "ledoit-wolf":
            s = float(shrinkage)
        return zc, s, mu

    xc, sx, mux = fit(x)
    yc, sy, muy = fit(y)
    q, _ = np.linalg.qr(np.vstack([xc, yc]).T)  # d x r orthonormal
    r = q.shape[1]
    px, py = xc @ q, yc @ q
    cx = (1 - sx) * (px.T @ px) / len(x) + sx * mux * np.eye(r)
    cy = (1 - sy) * (py.T @ py) / len(y) + sy * muy * np.eye(r)
    root = _sqrt_psd(cx)
    w = np.linalg.eigvalsh(root @ cy @ root)
    tr_sqrt = float(np.sqrt(np.clip(w, 0, None)).sum())
    ax, ay = sx * mux, sy * muy
    complement = (d - r) * (np.sqrt(ax) - np.sqrt(ay)) ** 2
    mean_term = float(((x.mean(0) - y.mean(0)) ** 2).sum())
    value = mean_term + float(np.trace(cx) + np.trace(cy)) - 2 * tr_sqrt + complement
    return max(value, 0.0)


# -- tests of difference ------------------------------------------------------------------------------
def compare_sets(x: np.ndarray, y: np.ndarray, metric: str = "mmd", *, n_permutations: int = DEFAULT_PERMUTATIONS,
                 n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0, ci: float = 0.95,
                 bandwidth: float | str | None = None, groups_x=None, groups_y=None) -> DistanceResult:
    """Distance between two sets with a permutation p-value and a bootstrap interval.

    ``groups_x`` / ``groups_y``: the question id of each answer. When both sets answered the same
    questions (two models, one questionnaire), answers to one question are more alike than any
    other pair whatever the model, so the comparison is paired: pairs of answers to the same
    question are left out of the MMD sums and permutations swap answers within a question.
    Without ids the sets are treated as independent samples.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    x, y = _check_sets(x, y)
    m, n = len(x), len(y)
    rng = np.random.default_rng(seed)
    details: dict = {}
    labels, strata = question_labels(groups_x, groups_y, m, n)
    if strata is not None:
        details["paired_questions"] = len(set(strata) - {0})
    if metric in ("mmd", "centroid"):
        pooled = np.vstack([x, y]).astype(np.float32)
        gram = pooled @ pooled.T
        if metric == "mmd":
            sigma = _bandwidth(x, y, bandwidth, seed)
            details["bandwidth"] = sigma
            k = kernel_from_gram(gram, sigma)
            k *= (labels[:, None] != labels[None, :])  # no pair of answers to one question (nor an item with itself)
            onehot = np.zeros((m + n, labels.max() + 1))
            onehot[np.arange(m + n), labels] = 1.0

            def from_forms(sxx, syy, sxy, wx, wy):
                # a bootstrap resample can hold no usable pair (one answer drawn again and again, or answers to
                # one question only): its statistic is NaN and is left out of the interval, without a warning
                with np.errstate(divide="ignore", invalid="ignore"):
                    return sxx / _pair_counts(wx, onehot) + syy / _pair_counts(wy, onehot) \
                        - 2.0 * sxy / _cross_counts(wx, wy, onehot)

            to_distance: Callable = lambda s: np.sqrt(np.clip(s, 0, None))  # noqa: E731
        else:
            k = gram

            def from_forms(sxx, syy, sxy, wx, wy):
                return np.clip(1.0 - sxy / np.sqrt(np.clip(sxx * syy, 1e-24, None)), 0.0, None)

            to_distance = lambda s: s  # noqa: E731
        base = np.zeros((1, m + n), dtype=np.float32)
        base[0, :m] = 1
        observed = float(from_forms(*_forms(k, base, 1 - base), base, 1 - base)[0])
        perm_stats = boot_stats = None
        if n_permutations:
            wx = _permutation_indicators(m + n, m, n_permutations, seed, strata)
            sxx, syy, sxy = _forms_complementary(k, wx)
            # every permutation keeps the per-label counts of each set, so the pair counts are the base's
            perm_stats = from_forms(sxx, syy, sxy, base, 1 - base)
        if n_bootstrap:
            wx, wy = _bootstrap_weights(rng, m, n, n_bootstrap)
            boot_stats = from_forms(*_forms(k, wx, wy), wx, wy)
    else:
        observed = frechet_distance(x, y)
        to_distance = lambda s: s  # noqa: E731
        pooled = np.vstack([x, y])
        perm_stats = None
        if n_permutations:
            perm_stats = np.empty(n_permutations)
            for i, row in enumerate(_permutation_indicators(m + n, m, n_permutations, seed, strata)):
                sel = row.astype(bool)
                perm_stats[i] = frechet_distance(pooled[sel], pooled[~sel])
        boot_stats = None
        if n_bootstrap:
            boot_stats = np.array([frechet_distance(x[rng.integers(0, m, m)], y[rng.integers(0, n, n)])
                                   for _ in range(n_bootstrap)])
    p_value = None
    if perm_stats is not None:
        # a tiny tolerance so that ties computed in float32 count as ties
        p_value = float((1 + np.sum(perm_stats >= observed - 1e-6 * max(1.0, abs(observed)))) / (1 + len(perm_stats)))
    lo = hi = None
    if boot_stats is not None:
        boot_stats = boot_stats[np.isfinite(boot_stats)]
    if boot_stats is not None and len(boot_stats):
        # MMD² is estimated without bias: percentile interval. Fréchet and centroid distances are
        # plug-in estimates, biased upward with few answers: the percentile interval shifted by the
        # bootstrap estimate of that bias.
        alpha = (1 - ci) / 2
        q = np.quantile(boot_stats, [alpha, 1 - alpha])
        if metric != "mmd":
            q = q - (float(np.mean(boot_stats)) - observed)
        lo, hi = (float(v) for v in to_distance(np.clip(q, 0, None)))
    return DistanceResult(metric=metric, distance=float(to_distance(observed)), statistic=observed, p_value=p_value,
                          ci_low=lo, ci_high=hi, n_x=m, n_y=n, n_permutations=n_permutations,
                          n_bootstrap=n_bootstrap, seed=seed, details=details)


def distance(x: np.ndarray, y: np.ndarray, metric: str = "mmd", **kwargs) -> float:
    """The distance alone (no test, no interval)."""
    if metric == "mmd":
        return float(np.sqrt(max(mmd2_unbiased(x, y, **kwargs), 0.0)))
    if metric == "frechet":
        return frechet_distance(x, y, **kwargs)
    if metric == "centroid":
        return centroid_distance(x, y)
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
