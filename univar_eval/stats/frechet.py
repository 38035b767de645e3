"""Step: Fréchet distance. Gaussian fits with Ledoit-Wolf covariances, exact, and fast for permutations.

``frechet(X, Y) = |mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x^½ S_y S_x^½)^½)`` (the FID formula) with
shrunk covariances ``S = a I + b Xc'Xc`` (``a = s mu``, ``b = (1 - s) / n``; Ledoit & Wolf 2004),
since a task has fewer answers than dimensions.

:func:`frechet_distance` fits one pair of sets. :class:`PooledFrechet` computes the same
value for many pairs of subsets of one pooled set (permutations and bootstrap resamples): the
centred rows of every subset lie in the span of the pooled centred rows, so one SVD of the
pooled set serves every pair, means, traces and shrinkages come from the pooled Gram matrix,
and each pair costs one Cholesky factor and one symmetric eigenvalue problem of the span's
size (``tr((S_x^½ S_y S_x^½)^½)`` from the eigenvalues of ``L' S_y L``, ``S_x = L L'``), run on
two threads. In double precision it equals the direct fit (checked in the tests); permutation
statistics run in single precision (about twice as fast; 4e-8 from double precision at 200 vs 200
answers in 768 dimensions, against a permutation spread of 6e-3). A pair still costs an r x r
eigenvalue problem (r = m + n - 1), the floor of an exact computation: about 11 ms of CPU at
200 vs 200 (``benchmarks/bench_gate_stats.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

#: Subset pairs per batch (bounds memory: a few chunk x r x r floats).
_CHUNK = 16
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
    s_fro2 = float((gram**2).sum()) / n**2 if gram is not None else float(((xc.T @ xc) ** 2).sum()) / n**2
    trace = float((xc**2).sum()) / n
    mu = trace / d
    delta = (s_fro2 - 2 * mu * trace + d * mu * mu) / d  # |S - mu I|_F² / d
    row4 = float(((xc**2).sum(1) ** 2).sum())
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


def _lw_from_gram(g: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subset, from its centred Gram block ``g`` (b, n, n): trace of the sample covariance, Ledoit-Wolf
    shrinkage and target; the same formulas as :func:`ledoit_wolf` (``d`` the full dimension)."""
    n = g.shape[1]
    sq_norms = np.einsum("bii->bi", g)
    trace = sq_norms.sum(1) / n
    s_fro2 = (g**2).sum((1, 2)) / n**2
    mu = trace / d
    delta = (s_fro2 - 2 * mu * trace + d * mu * mu) / d
    beta = ((sq_norms**2).sum(1) - n * s_fro2) / (n * n) / d
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(delta <= 0, 1.0, np.clip(beta / delta, 0.0, 1.0))
    return trace, shrink, mu


def _centred_gram(gram: np.ndarray, a: np.ndarray) -> np.ndarray:
    k = gram[a[:, :, None], a[:, None, :]]
    return k - k.mean(2, keepdims=True) - k.mean(1, keepdims=True) + k.mean((1, 2), keepdims=True)


class PooledFrechet:
    """Fréchet distances between many pairs of subsets of one pooled set (see the module docstring)."""

    def __init__(self, pooled: np.ndarray):
        self.pooled = np.asarray(pooled, dtype=np.float64)
        self.d = self.pooled.shape[1]
        centred = self.pooled - self.pooled.mean(0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        keep = s > s[0] * 1e-10 if len(s) and s[0] > 0 else np.zeros(len(s), bool)
        self.coords = u[:, keep] * s[keep]  # pooled rows in an orthonormal basis of the centred span
        self.gram = self.coords @ self.coords.T

    def __call__(self, ix: np.ndarray, iy: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Distances of ``pooled[ix[i]]`` vs ``pooled[iy[i]]`` (index rows, duplicates allowed).

        ``dtype=np.float32`` runs the covariance, Cholesky and eigenvalue steps in single precision,
        about twice as fast (used for permutation statistics, the observed one computed alike).
        """
        ix, iy = np.atleast_2d(ix), np.atleast_2d(iy)
        chunks = [(ix[s : s + _CHUNK], iy[s : s + _CHUNK]) for s in range(0, len(ix), _CHUNK)]
        with threadpool_limits(1):
            if len(chunks) == 1:
                parts = [self._chunk(*chunks[0], dtype)]
            else:
                with ThreadPoolExecutor(_THREADS) as pool:
                    parts = list(pool.map(lambda c: self._chunk(*c, dtype), chunks))
        return np.concatenate(parts)

    def _chunk(self, a: np.ndarray, b: np.ndarray, dtype=np.float64) -> np.ndarray:
        d, k = self.d, self.coords.shape[1]
        m, n = a.shape[1], b.shape[1]
        px, py = self.coords[a], self.coords[b]
        mean_term = ((px.mean(1) - py.mean(1)) ** 2).sum(1)  # the means' difference lies in the span
        tx, sx, mux = _lw_from_gram(_centred_gram(self.gram, a), d)
        ty, sy, muy = _lw_from_gram(_centred_gram(self.gram, b), d)
        ax, ay = sx * mux, sy * muy
        value = np.full(len(a), np.nan)
        ok = (ax > 0) & (ay > 0)
        if ok.any():
            cx = (px[ok] - px[ok].mean(1, keepdims=True)).astype(dtype)
            cy = (py[ok] - py[ok].mean(1, keepdims=True)).astype(dtype)
            bx, by = ((1 - sx[ok]) / m).astype(dtype), ((1 - sy[ok]) / n).astype(dtype)
            eye = np.eye(k, dtype=dtype)
            cov_x = ax[ok, None, None].astype(dtype) * eye + bx[:, None, None] * (cx.transpose(0, 2, 1) @ cx)
            cov_y = ay[ok, None, None].astype(dtype) * eye + by[:, None, None] * (cy.transpose(0, 2, 1) @ cy)
            low = np.linalg.cholesky(cov_x)  # cov_x = L L'; L' cov_y L has the eigenvalues of cov_x cov_y
            lam = np.clip(np.linalg.eigvalsh(low.transpose(0, 2, 1) @ cov_y @ low).astype(np.float64), 0.0, None)
            tr_sqrt = np.sqrt(lam).sum(1) + (d - k) * np.sqrt(ax[ok] * ay[ok])  # outside the span both are a I
            value[ok] = np.maximum(mean_term[ok] + tx[ok] + ty[ok] - 2 * tr_sqrt, 0.0)
        for i in np.flatnonzero(~ok):  # no shrinkage: the direct fit
            value[i] = frechet_distance(self.pooled[a[i]], self.pooled[b[i]])
        return value
