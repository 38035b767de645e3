"""Benchmark: the Fréchet permutation test, 200 v 200 answers, 768-d, 1,000 permutations.

    python benchmarks/bench_frechet.py [--answers 200] [--dim 768] [--permutations 1000] [--repeats 3]

Prints, from one sitting (the ratios are what matter on a shared machine; the load average is
printed beside each figure, and CPU seconds beside wall seconds):

(a) ``compare_sets(x, y, "frechet")``, the whole test (observed distance, 1,000 permutations), as
    ``univar-eval compare --metric frechet`` runs it;
(b) the 1,000 permuted distances alone, through this kernel (single-precision LAPACK, two threads);
(c) the same 1,000 through the previous kernel (the one in 0.2 before this change, double-precision
    eigenvalues from numpy; a copy is kept below as the reference), run as it ran (chunks of 16 pairs,
    two threads of one BLAS thread each);
(d) ``scipy.stats.permutation_test`` with the direct fit (``frechet_distance``) as the statistic, on
    fewer resamples, scaled to 1,000 (one BLAS thread, as (a) to (c));
and the agreement: the largest difference of this kernel's permuted distances from double precision
and from the previous kernel, beside the spread of the permutation distances, and both p-values.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from univar_eval.stats import distance as D  # noqa: E402
from univar_eval.stats import frechet as F  # noqa: E402
from univar_eval.stats import lapack, resampling  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def previous_chunk(fit: F.PooledFrechet, a: np.ndarray, b: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The kernel before this change (55a708f): the same Gram-block algebra, eigenvalues by numpy (in double)."""
    d = fit.d
    m, n = a.shape[1], b.shape[1]
    idx = np.concatenate([a, b], axis=1)
    k = fit.gram[idx[:, :, None], idx[:, None, :]]
    kxx, kyy, kxy = k[:, :m, :m], k[:, m:, m:], k[:, :m, m:]
    rx, ry = kxx.mean(2), kyy.mean(2)
    mxx, myy = rx.mean(1), ry.mean(1)
    rxy, cxy = kxy.mean(2), kxy.mean(1)
    mxy = rxy.mean(1)
    mean_term = mxx + myy - 2 * mxy
    gxx = kxx - rx[:, :, None] - rx[:, None, :] + mxx[:, None, None]
    gyy = kyy - ry[:, :, None] - ry[:, None, :] + myy[:, None, None]
    tx, sx, mux = F._lw_from_gram(gxx, d)
    ty, sy, muy = F._lw_from_gram(gyy, d)
    ax, ay = sx * mux, sy * muy
    gxy = kxy - rxy[:, :, None] - cxy[:, None, :] + mxy[:, None, None]
    bx, by = ((1 - sx) / m).astype(dtype), ((1 - sy) / n).astype(dtype)
    gxx, gyy = bx[:, None, None] * gxx.astype(dtype), by[:, None, None] * gyy.astype(dtype)
    gxy = np.sqrt(bx * by)[:, None, None] * gxy.astype(dtype)
    axd, ayd = ax[:, None, None].astype(dtype), ay[:, None, None].astype(dtype)
    eye = np.eye(m, dtype=dtype)
    low = np.linalg.cholesky(axd * eye + gxx)
    up = low.transpose(0, 2, 1)
    sym = np.empty((len(gxx), m + n, m + n), dtype=dtype)
    sym[:, :m, :m] = ayd * (up @ low - axd * eye)
    top = np.sqrt(ayd) * (up @ gxy)
    sym[:, :m, m:] = top
    sym[:, m:, :m] = top.transpose(0, 2, 1)
    sym[:, m:, m:] = axd * gyy + gxy.transpose(0, 2, 1) @ gxy
    mu = np.clip(np.linalg.eigvalsh(sym).astype(np.float64), 0.0, None)
    c = ax * ay
    tr_sqrt = np.sqrt(c[:, None] + mu).sum(1) + (d - m - n) * np.sqrt(c)
    return np.maximum(mean_term + tx + ty - 2 * tr_sqrt, 0.0)


def run_previous(fit: F.PooledFrechet, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """The previous kernel as it ran: chunks of 16 pairs on two threads of one BLAS thread each."""
    chunks = [(ia[s : s + 16], ib[s : s + 16]) for s in range(0, len(ia), 16)]
    with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
        return np.concatenate(list(pool.map(lambda c: previous_chunk(fit, *c), chunks)))


def timed(f):
    began, cpu = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - began, time.process_time() - cpu


def p_value(perm: np.ndarray, observed: float) -> float:
    return float((1 + np.sum(perm >= observed - 1e-5 * abs(observed))) / (1 + len(perm)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--answers", type=int, default=200)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--scipy-resamples", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3, help="timed runs of (a) to (c), interleaved (best kept)")
    args = p.parse_args()
    rng = np.random.default_rng(1)
    n, d = args.answers, args.dim
    centres = rng.normal(size=(n, d))
    x = D.normalise(centres + rng.normal(size=(n, d)))
    y = D.normalise(centres + rng.normal(size=(n, d)) + 0.02)
    pooled = np.vstack([x, y])
    wx = resampling.permutation_indicators(2 * n, n, args.permutations, 0, None)
    order = np.argsort(wx == 0, axis=1, kind="stable")
    ia, ib = order[:, :n], order[:, n:]
    lapack.available()
    with threadpool_limits(1):
        fit = F.PooledFrechet(pooled)

    best: dict[str, tuple] = {}
    for _ in range(args.repeats):
        for name, f in (
            ("a", lambda: D.compare_sets(x, y, "frechet", n_permutations=args.permutations, n_bootstrap=0)),
            ("b", lambda: fit(ia, ib, np.float32)),
            ("c", lambda: run_previous(fit, ia, ib)),
        ):
            out, wall, cpu = timed(f)
            if name not in best or wall < best[name][1]:
                best[name] = (out, wall, cpu, load())
    result, wall_a, cpu_a, load_a = best["a"]
    new, wall_b, cpu_b, load_b = best["b"]
    prev, wall_c, cpu_c, load_c = best["c"]
    print(f"Fréchet, {n} v {n} answers, {d}-d, {args.permutations} permutations; {os.cpu_count()} CPUs")
    print(f"  (a) compare_sets, whole test:        {wall_a:5.2f} s wall, {cpu_a:5.2f} s CPU  ({load_a})")
    print(f"  (b) this kernel, 1,000 permutations: {wall_b:5.2f} s wall, {cpu_b:5.2f} s CPU  ({load_b})")
    print(f"  (c) previous kernel, the same:       {wall_c:5.2f} s wall, {cpu_c:5.2f} s CPU  ({load_c})")
    print(f"      ratio (c)/(b): {wall_c / wall_b:.2f}x wall, {cpu_c / cpu_b:.2f}x CPU")

    from scipy import stats

    def statistic(i, j):  # the samples are row numbers of the pooled set (scipy permutes 1-d samples)
        return F.frechet_distance(pooled[i.astype(int)], pooled[j.astype(int)])

    k = args.scipy_resamples
    rows = (np.arange(n), np.arange(n, 2 * n))
    with threadpool_limits(1):
        _, wall_d, cpu_d = timed(
            lambda: stats.permutation_test(rows, statistic, n_resamples=k, vectorized=False, random_state=0)
        )
    scale = args.permutations / k
    print(
        f"  (d) scipy permutation_test, direct fit: {wall_d * scale:5.1f} s wall for {args.permutations} "
        f"({k} resamples x {scale:.0f})  ({load()}); ratio (d)/(a) {wall_d * scale / wall_a:.0f}x"
    )
    new64 = fit(ia[:200], ib[:200], np.float64)
    direct = np.array([F.frechet_distance(pooled[ia[i]], pooled[ib[i]]) for i in range(10)])
    observed = F.frechet_distance(x, y)
    print(
        f"  agreement: |this kernel (float32) - float64| <= {np.abs(new[:200] - new64).max():.1e} "
        f"(relative {np.abs(new[:200] / new64 - 1).max():.1e}); |this - previous kernel| <= "
        f"{np.abs(new - prev).max():.1e}; |float64 - direct fit| <= {np.abs(new64[:10] - direct).max():.1e}; "
        f"permutation spread (sd) {np.std(new):.1e}; observed {observed:.4f}; p = {result.p_value:.3f} "
        f"(previous kernel's permutations: p = {p_value(prev, observed):.3f})"
    )


if __name__ == "__main__":
    main()
