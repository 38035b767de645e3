"""Step: Fréchet distance. Gaussian fits with Ledoit-Wolf covariances, exact, and fast for permutations.

``frechet(X, Y) = |mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x^½ S_y S_x^½)^½)`` (the FID formula) with
shrunk covariances ``S = a I + b Xc'Xc`` (``a = s mu``, ``b = (1 - s) / n``; Ledoit & Wolf 2004),
since a task has fewer answers than dimensions.

:func:`frechet_distance` fits one pair of sets. :class:`PooledFrechet` computes the same
value for many pairs of subsets of one pooled set (permutations and bootstrap resamples) from the
pooled Gram matrix alone. One SVD of the pooled set gives that matrix. Means, traces and shrinkages
come from a pair's Gram block. The trace term ``tr((S_x^½ S_y S_x^½)^½)`` comes from a symmetric
(m+n) x (m+n) matrix built from the same block with one m x m Cholesky factor
(:func:`_trace_sqrt`), never from a d-sized or span-sized product. A pair therefore costs one
symmetric eigenvalue problem of size m + n and a few m x m products. The eigenvalue problem is the
floor of an exact computation: the product of two covariances, with m - 1 and n - 1 directions of
their own, has at most m + n - 2 non-trivial eigenvalues (the matrix keeps size m + n: two more cost little).

Batches of pairs run on two threads of one BLAS thread each. In double precision the result equals the
direct fit (checked in the tests). Permutation statistics run in single precision, their eigenvalues from
LAPACK's ``ssyevd`` with the interpreter lock released (:mod:`univar_eval.stats.lapack`; numpy would solve
them in double precision); their error against double precision (1.6e-6 relative, against the p-value's
tie tolerance of 1e-5) is printed by ``benchmarks/bench_frechet.py``, and so is the speed against the
previous kernel (the same algebra with numpy's eigenvalues: 1.63x).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from univar_eval.stats import lapack

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
    sq_norms = np.einsum("bii->bi", g).astype(np.float64)
    trace = sq_norms.sum(1) / n
    s_fro2 = np.square(g).sum((1, 2), dtype=np.float64) / n**2
    mu = trace / d
    delta = (s_fro2 - 2 * mu * trace + d * mu * mu) / d
    beta = ((sq_norms**2).sum(1) - n * s_fro2) / (n * n) / d
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(delta <= 0, 1.0, np.clip(beta / delta, 0.0, 1.0))
    return trace, shrink, mu


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
        self._gram_single: np.ndarray | None = None

    def _gram32(self) -> np.ndarray:
        if self._gram_single is None:
            self._gram_single = self.gram.astype(np.float32)
        return self._gram_single

    def __call__(self, ix: np.ndarray, iy: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Distances of ``pooled[ix[i]]`` vs ``pooled[iy[i]]`` (index rows, duplicates allowed).

        ``dtype=np.float32`` runs the covariance, Cholesky and eigenvalue steps in single precision,
        about twice as fast (used for permutation statistics, the observed one computed alike).
        """
        ix, iy = np.atleast_2d(ix), np.atleast_2d(iy)
        chunks = [(ix[s : s + _CHUNK], iy[s : s + _CHUNK]) for s in range(0, len(ix), _CHUNK)]
        lapack.available()  # loads scipy's LAPACK before the thread limit is set, so that the limit covers it
        with threadpool_limits(1):
            if len(chunks) == 1:
                parts = [self._chunk(*chunks[0], dtype)]
            else:
                with ThreadPoolExecutor(_THREADS) as pool:
                    parts = list(pool.map(lambda c: self._chunk(*c, dtype), chunks))
        return np.concatenate(parts)

    def _chunk(self, a: np.ndarray, b: np.ndarray, dtype=np.float64) -> np.ndarray:
        """The distances of one batch of pairs, from the pooled Gram matrix alone (see :func:`_trace_sqrt`)."""
        d = self.d
        if a.shape[1] > b.shape[1]:  # the Cholesky factor is of the smaller side; the distance is symmetric
            a, b = b, a
        m, n = a.shape[1], b.shape[1]
        # one gather of the pair's Gram block (rows, then columns: faster than one fancy index); centring each
        # side is a matter of row and column means
        gram = self.gram if dtype == np.float64 else self._gram32()
        k = np.stack([gram.take(row, 0).take(row, 1) for row in np.concatenate([a, b], axis=1)])
        kxx, kyy, kxy = k[:, :m, :m], k[:, m:, m:], k[:, :m, m:]
        rx, ry = kxx.mean(2), kyy.mean(2)  # x_i . mean(x), y_j . mean(y)
        mxx, myy = rx.mean(1), ry.mean(1)
        rxy, cxy = kxy.mean(2), kxy.mean(1)  # x_i . mean(y), mean(x) . y_j
        mxy = rxy.mean(1)
        mean_term = (mxx + myy - 2 * mxy).astype(np.float64)  # |mean(x) - mean(y)|²
        for block, rows, cols, mean in ((kxx, rx, rx, mxx), (kyy, ry, ry, myy), (kxy, rxy, cxy, mxy)):
            block -= rows[:, :, None]  # centred in place: k is this batch's own copy
            block -= cols[:, None, :]
            block += mean[:, None, None]
        tx, sx, mux = _lw_from_gram(kxx, d)
        ty, sy, muy = _lw_from_gram(kyy, d)
        ax, ay = sx * mux, sy * muy
        value = np.full(len(a), np.nan)
        ok = (ax > 0) & (ay > 0)
        if ok.any():
            sel = slice(None) if ok.all() else ok  # no copies when every pair is shrunk (the usual case)
            tr_sqrt = _trace_sqrt(
                kxx[sel], kyy[sel], kxy[sel], ax[sel], ay[sel], d, (1 - sx[sel]) / m, (1 - sy[sel]) / n
            )
            value[sel] = np.maximum(mean_term[sel] + tx[sel] + ty[sel] - 2 * tr_sqrt, 0.0)
        for i in np.flatnonzero(~ok):  # no shrinkage: the direct fit
            value[i] = frechet_distance(self.pooled[a[i]], self.pooled[b[i]])
        return value


def _trace_sqrt(gxx, gyy, gxy, ax, ay, d: int, bx=1.0, by=1.0) -> np.ndarray:
    """``tr((S_x^½ S_y S_x^½)^½)`` for ``S_x = ax I + Cx'Cx``, ``S_y = ay I + Cy'Cy`` in ``d`` dimensions,
    given only the Gram blocks ``gxx = Cx Cx'``, ``gyy = Cy Cy'``, ``gxy = Cx Cy'`` (batched; ``bx``, ``by``:
    factors of ``Cx'Cx`` and ``Cy'Cy``, applied here rather than in a pass of their own).

    ``S_x^½ S_y S_x^½ = c (I + Y'Y)`` with ``c = ax ay`` and ``Y = [Cx / √ax; Cy S_x^½ / √c]``; the
    non-zero eigenvalues of ``Y'Y`` are those of the (m+n) x (m+n) matrix
    ``YY' = [[hxx, R hxy], [., hyy + hxy'hxy]]`` in the scaled blocks ``hxx = gxx / ax``,
    ``hyy = gyy / ay``, ``hxy = gxy / √c`` (``Cx S_x^½ = √ax R Cx`` with ``R = (I + hxx)^½``:
    ``C f(C'C) = f(CC') C``). With the Cholesky factor ``I + hxx = L L'`` instead of the root, the
    similar matrix ``I + diag(L' R^-1, I) YY' diag(R L'^-1, I)`` is ``[[L'L, L'hxy], [., I + hyy + hxy'hxy]]``:
    symmetric, built with one m x m Cholesky factor and products of m x m and m x n blocks (never a
    d-sized one), and with eigenvalues ``1 + mu >= 1``. One symmetric eigenvalue problem of size m + n
    gives the trace ``√c sum √(1 + mu)``; the other d - (m+n) directions give ``√c`` each. The scaled
    blocks keep the entries near 1 whatever the size of the embeddings, which suits single precision.
    """
    m, n = gxx.shape[1], gyy.shape[1]
    dtype = gxx.dtype
    c = ax * ay
    bx, by = np.broadcast_to(bx, c.shape), np.broadcast_to(by, c.shape)
    hxx = gxx * (bx / ax)[:, None, None].astype(dtype)
    hxx[:, np.arange(m), np.arange(m)] += 1
    hxy = gxy * np.sqrt(bx * by / c)[:, None, None].astype(dtype)
    low = np.linalg.cholesky(hxx)
    sym = np.zeros((len(gxx), m + n, m + n), dtype=dtype)  # only the lower triangle is filled and read
    np.matmul(low.transpose(0, 2, 1), low, out=sym[:, :m, :m])
    np.matmul(hxy.transpose(0, 2, 1), low, out=sym[:, m:, :m])
    np.matmul(hxy.transpose(0, 2, 1), hxy, out=sym[:, m:, m:])
    sym[:, m:, m:] += gyy * (by / ay)[:, None, None].astype(dtype)
    sym[:, np.arange(m, m + n), np.arange(m, m + n)] += 1
    values = lapack.eigvalsh_lower(sym) if dtype == np.float32 else np.linalg.eigvalsh(sym, UPLO="L")
    return np.sqrt(c) * (np.sqrt(np.clip(values, 0.0, None)).sum(1) + (d - m - n))
