"""Step: Fréchet distance. Gaussian fits with Ledoit-Wolf covariances, exact, and fast for permutations.

``frechet(X, Y) = |mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x^½ S_y S_x^½)^½)`` (the FID formula) with
shrunk covariances ``S = a I + b Xc'Xc`` (``a = s mu``, ``b = (1 - s) / n``; Ledoit & Wolf 2004),
since a task has fewer answers than dimensions.

:func:`frechet_distance` fits one pair of sets. :func:`frechet_from_gram` computes the same
value for many subsets of one pooled set at once (permutations and bootstrap resamples) from
the pooled Gram matrix alone: every quantity above is a function of inner products of the
subsets' rows, and with ``S_x = a_x (I + beta_x Xc'Xc)`` (``beta = b / a``)

    tr((S_x^½ S_y S_x^½)^½) = sqrt(a_x a_y) [(d - n) + sum_i sqrt(1 + beta_y lambda_i)],

where ``lambda_i`` are the eigenvalues of the n x n matrix ``Gyy + beta_x Gyx Gxy`` (``G`` the
centred Gram blocks; eigenvalues of ``I + beta_y F'F`` with ``F = Yc (I + beta_x Xc'Xc)^½``).
So a permutation costs one n x n symmetric eigenvalue problem instead of a QR of the
pooled data and a square root of a full-rank covariance; the result equals the direct fit
(checked in the tests). Where the identity does not apply (no shrinkage, or more answers than
dimensions) the direct fit is used.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

#: Subsets per batch of the Gram computation (bounds memory: chunk x n x n floats, three blocks).
_CHUNK = 64
#: Threads for the batched eigenvalue problems (each single-threaded: faster than threaded BLAS at n ~ 200).
_THREADS = 2


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
    """Fréchet distance of Gaussian fits with shrunk covariances, on the rows as given.

    Exact and fast for n << d: both covariances are ``a I + b S`` with ``S`` living in the
    span ``Q`` of the centred data, so the trace term is computed in ``Q`` and the
    orthogonal complement adds ``(d - r) (sqrt(a_x) - sqrt(a_y))²``.
    ``shrinkage``: "ledoit-wolf" (default) or a fixed number in [0, 1] (0 = sample covariance).
    """
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


def _centre(k: np.ndarray) -> np.ndarray:
    return k - k.mean(2, keepdims=True) - k.mean(1, keepdims=True) + k.mean((1, 2), keepdims=True)


def _lw_from_gram(g: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subset: trace of the sample covariance, shrinkage and target, from centred Gram blocks (b, n, n)."""
    n = g.shape[1]
    diag = np.einsum("bii->bi", g)
    trace = diag.sum(1) / n
    s_fro2 = (g ** 2).sum((1, 2)) / n ** 2
    mu = trace / d
    delta = (s_fro2 - 2 * mu * trace + d * mu * mu) / d
    beta = ((diag ** 2).sum(1) - n * s_fro2) / (n * n) / d
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(delta <= 0, 1.0, np.clip(beta / delta, 0.0, 1.0))
    return trace, shrink, mu


def _eigvalsh_threaded(mats: np.ndarray) -> np.ndarray:
    with threadpool_limits(1):
        if len(mats) < 2 * _THREADS:
            return np.linalg.eigvalsh(mats)
        parts = np.array_split(mats, _THREADS)
        with ThreadPoolExecutor(_THREADS) as pool:
            return np.concatenate(list(pool.map(np.linalg.eigvalsh, parts)))


def frechet_from_gram(gram: np.ndarray, ix: np.ndarray, iy: np.ndarray, d: int,
                      pooled: np.ndarray | None = None) -> np.ndarray:
    """Fréchet distances of the subsets ``pooled[ix[i]]`` vs ``pooled[iy[i]]`` (index rows, duplicates allowed)
    from the pooled Gram matrix ``gram = pooled @ pooled.T`` of rows in ``d`` dimensions.

    ``pooled`` (the rows themselves) is needed only for the direct fit where the identity of the
    module docstring does not apply.
    """
    ix, iy = np.atleast_2d(ix), np.atleast_2d(iy)
    if ix.shape[1] < iy.shape[1]:  # the eigenvalue problem is as large as the second set: make it the smaller
        ix, iy = iy, ix
    out = np.empty(len(ix))
    for start in range(0, len(ix), _CHUNK):
        a, b = ix[start:start + _CHUNK], iy[start:start + _CHUNK]
        kxx, kyy, kxy = gram[a[:, :, None], a[:, None, :]], gram[b[:, :, None], b[:, None, :]], \
            gram[a[:, :, None], b[:, None, :]]
        mean_term = kxx.mean((1, 2)) + kyy.mean((1, 2)) - 2 * kxy.mean((1, 2))
        gxx, gyy, gxy = _centre(kxx), _centre(kyy), _centre(kxy)
        tx, sx, mux = _lw_from_gram(gxx, d)
        ty, sy, muy = _lw_from_gram(gyy, d)
        ax, ay = sx * mux, sy * muy
        m, n = a.shape[1], b.shape[1]
        ok = (ax > 0) & (ay > 0) & (n <= d)
        value = np.full(len(a), np.nan)
        if ok.any():
            beta_x = ((1 - sx[ok]) / m) / ax[ok]
            beta_y = ((1 - sy[ok]) / n) / ay[ok]
            mats = gyy[ok] + beta_x[:, None, None] * (gxy[ok].transpose(0, 2, 1) @ gxy[ok])
            lam = np.clip(_eigvalsh_threaded(mats), 0.0, None)
            tr_sqrt = np.sqrt(ax[ok] * ay[ok]) * ((d - n) + np.sqrt(1.0 + beta_y[:, None] * lam).sum(1))
            value[ok] = np.maximum(mean_term[ok] + tx[ok] + ty[ok] - 2 * tr_sqrt, 0.0)
        for i in np.flatnonzero(~ok):
            if pooled is None:
                raise ValueError("the direct Fréchet fit needs the pooled rows")
            value[i] = frechet_distance(pooled[a[i]], pooled[b[i]])
        out[start:start + len(a)] = value
    return out
