"""Benchmark: the Fréchet permutation test, 200 v 200 answers, 768-d, 1,000 permutations.

    python benchmarks/bench_frechet.py [--answers 200] [--dim 768] [--permutations 1000] [--repeats 3]

Prints, from one sitting (the ratios are what matter on a shared machine; the load average is
printed beside each figure):

(a) ``compare_sets(x, y, "frechet")``, the whole test (observed distance, 1,000 permutations), as
    ``univar-eval compare --metric frechet`` runs it;
(b) the same 1,000 permuted distances through the previous kernel (Cholesky of S_x, then the d-span
    eigenvalue problem of L' S_y L; a copy is kept below as the reference);
(c) ``scipy.stats.permutation_test`` with the direct fit (``frechet_distance``) as the statistic, on
    fewer resamples, scaled to 1,000;
and the agreement: the largest difference between (a)'s and (b)'s permuted distances, and between
the single-precision kernel and double precision, beside the spread of the permutation distances.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from univar_eval.stats import distance as D  # noqa: E402
from univar_eval.stats import frechet as F  # noqa: E402
from univar_eval.stats import resampling  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def centred_gram(gram: np.ndarray, a: np.ndarray) -> np.ndarray:
    k = gram[a[:, :, None], a[:, None, :]]
    return k - k.mean(2, keepdims=True) - k.mean(1, keepdims=True) + k.mean((1, 2), keepdims=True)


def previous_kernel(fit: F.PooledFrechet, a: np.ndarray, b: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The kernel before this change: Cholesky of S_x and eigenvalues of L' S_y L in the pooled span."""
    d, k = fit.d, fit.coords.shape[1]
    m, n = a.shape[1], b.shape[1]
    px, py = fit.coords[a], fit.coords[b]
    mean_term = ((px.mean(1) - py.mean(1)) ** 2).sum(1)
    tx, sx, mux = F._lw_from_gram(centred_gram(fit.gram, a), d)
    ty, sy, muy = F._lw_from_gram(centred_gram(fit.gram, b), d)
    ax, ay = sx * mux, sy * muy
    cx = (px - px.mean(1, keepdims=True)).astype(dtype)
    cy = (py - py.mean(1, keepdims=True)).astype(dtype)
    bx, by = ((1 - sx) / m).astype(dtype), ((1 - sy) / n).astype(dtype)
    eye = np.eye(k, dtype=dtype)
    cov_x = ax[:, None, None].astype(dtype) * eye + bx[:, None, None] * (cx.transpose(0, 2, 1) @ cx)
    cov_y = ay[:, None, None].astype(dtype) * eye + by[:, None, None] * (cy.transpose(0, 2, 1) @ cy)
    low = np.linalg.cholesky(cov_x)
    lam = np.clip(np.linalg.eigvalsh(low.transpose(0, 2, 1) @ cov_y @ low).astype(np.float64), 0.0, None)
    tr_sqrt = np.sqrt(lam).sum(1) + (d - k) * np.sqrt(ax * ay)
    return np.maximum(mean_term + tx + ty - 2 * tr_sqrt, 0.0)


def run_previous(fit, ia, ib) -> np.ndarray:
    """The previous kernel as it ran: chunks of 16 pairs on two threads of one BLAS thread each."""
    from concurrent.futures import ThreadPoolExecutor

    chunks = [(ia[s : s + 16], ib[s : s + 16]) for s in range(0, len(ia), 16)]
    with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
        return np.concatenate(list(pool.map(lambda c: previous_kernel(fit, *c), chunks)))


def timed(f):
    began, cpu = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - began, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--answers", type=int, default=200)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--scipy-resamples", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3, help="timed runs of (a) and (b), interleaved (best kept)")
    args = p.parse_args()
    rng = np.random.default_rng(1)
    n, d = args.answers, args.dim
    centres = rng.normal(size=(n, d))
    x = centres + rng.normal(size=(n, d))
    y = centres + rng.normal(size=(n, d)) + 0.01
    pooled = np.vstack([x, y])
    wx = resampling.permutation_indicators(2 * n, n, args.permutations, 0, None)
    order = np.argsort(wx == 0, axis=1, kind="stable")
    ia, ib = order[:, :n], order[:, n:]

    best: dict[str, tuple] = {}
    for _ in range(args.repeats):
        for name, f in (
            ("a", lambda: D.compare_sets(x, y, "frechet", n_permutations=args.permutations, n_bootstrap=0)),
            ("b", lambda: run_previous(F.PooledFrechet(pooled), ia, ib)),
        ):
            out, wall, cpu = timed(f)
            if name not in best or wall < best[name][1]:
                best[name] = (out, wall, cpu, load())
    result, wall_a, cpu_a, load_a = best["a"]
    prev, wall_b, cpu_b, load_b = best["b"]
    print(f"Fréchet, {n} v {n} answers, {d}-d, {args.permutations} permutations; {os.cpu_count()} CPUs")
    print(f"  (a) compare_sets, Gram kernel:      {wall_a:5.2f} s wall, {cpu_a:5.2f} s CPU  ({load_a})")
    print(f"  (b) previous Cholesky kernel:       {wall_b:5.2f} s wall, {cpu_b:5.2f} s CPU  ({load_b})")
    print(f"      ratio (b)/(a): {wall_b / wall_a:.2f}x wall, {cpu_b / cpu_a:.2f}x CPU")

    from scipy import stats

    def statistic(i, j):  # the samples are row numbers of the pooled set (scipy permutes 1-d samples)
        return F.frechet_distance(pooled[i.astype(int)], pooled[j.astype(int)])

    k = args.scipy_resamples
    rows = (np.arange(n), np.arange(n, 2 * n))
    _, wall_c, cpu_c = timed(
        lambda: stats.permutation_test(rows, statistic, n_resamples=k, vectorized=False, random_state=0)
    )
    scale = args.permutations / k
    print(
        f"  (c) scipy permutation_test, direct fit: {wall_c * scale:5.1f} s wall for {args.permutations} "
        f"({k} resamples x {scale:.0f})  ({load()}); ratio (c)/(a) {wall_c * scale / wall_a:.0f}x"
    )

    fit = F.PooledFrechet(pooled)
    new32 = fit(ia, ib, np.float32)
    new64 = fit(ia[:100], ib[:100], np.float64)
    direct = np.array([F.frechet_distance(pooled[ia[i]], pooled[ib[i]]) for i in range(10)])
    spread = float(np.std(new32))
    print(
        f"  agreement: |Gram - previous| <= {np.abs(new32 - prev).max():.1e} (both float32); "
        f"|float32 - float64| <= {np.abs(new32[:100] - new64).max():.1e}; |float64 - direct fit| <= "
        f"{np.abs(new64[:10] - direct).max():.1e}; permutation spread (sd) {spread:.1e}; "
        f"p = {result.p_value:.3f}"
    )


if __name__ == "__main__":
    main()
