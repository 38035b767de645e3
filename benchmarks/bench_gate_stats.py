"""Benchmark: the statistics of one gate, and the Fréchet permutation test.

    python benchmarks/bench_gate_stats.py [--checks 125] [--answers 200] [--bootstrap 1000] \
        [--frechet-permutations 1000]

Gate: 125 checks (25 languages x 5 questionnaires), 200 answers a side in 768 dimensions with
strong question effects, each a paired comparison with the number of permutations Holm needs at
alpha = 0.05 over 125 checks (``reports.gate.permutations_needed``: 25,000) and a paired bootstrap
upper bound; timed for one answer per question (shared-shift design, 200 questions) and for 4
answers per question (per-question design, 50 questions). Target: under 30 s on 2 cores.

Fréchet: 200 vs 200 answers, 768-d, 1,000 permutations (issue 12's target: under 3 s on 2 cores).
Also prints the size of the permutation cache (bounded in bytes) and the bare-distance time of
lm-eval's metric path (no permutations, no bootstrap).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from univar_eval.stats import distance as D  # noqa: E402
from univar_eval.stats import resampling  # noqa: E402


def permutations_for(n_checks: int, alpha: float) -> int:
    """The count ``reports.gate.permutations_needed`` asks for with Holm (10 x checks / alpha)."""
    return max(1000, int(math.ceil(10 * n_checks / alpha)))


def answers(rng, n_questions: int, repeats: int, dim: int, shift: float = 0.0) -> tuple[np.ndarray, list]:
    centres = np.random.default_rng(12345).normal(size=(n_questions, dim))  # the questions: shared by every model
    ids = [q for q in range(n_questions) for _ in range(repeats)]
    x = centres[ids] + 0.8 * rng.normal(size=(len(ids), dim))
    x[:, 0] += shift * math.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), ids


def gate(n_checks: int, n_answers: int, repeats: int, dim: int, alpha: float, n_bootstrap: int) -> dict:
    rng = np.random.default_rng(0)
    n_perm = permutations_for(n_checks, alpha)
    data = []
    for c in range(n_checks):
        x, ids = answers(rng, n_answers // repeats, repeats, dim)
        y, _ = answers(rng, n_answers // repeats, repeats, dim, shift=0.1 if c % 10 == 0 else 0.0)
        data.append((x, y, ids))
    resampling.CACHE.clear()
    start, cpu = time.perf_counter(), time.process_time()
    results = [
        D.compare_sets(
            x, y, n_permutations=n_perm, n_bootstrap=n_bootstrap, seed=0, alpha=alpha, groups_x=ids, groups_y=ids
        )
        for x, y, ids in data
    ]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "design": results[0].design,
        "permutations": n_perm,
        "wall": wall,
        "cpu": cpu,
        "cache_mb": resampling.CACHE.nbytes / 2**20,
        "significant": sum(r.p_value < alpha / n_checks for r in results),
        "problems": sum(r.problem is not None for r in results),
    }


def frechet(n_answers: int, dim: int, n_perm: int, paired: bool) -> dict:
    rng = np.random.default_rng(1)
    x, ids = answers(rng, n_answers, 1, dim)
    y, _ = answers(rng, n_answers, 1, dim, shift=0.01)
    groups = (ids, ids) if paired else (None, None)
    start, cpu = time.perf_counter(), time.process_time()
    r = D.compare_sets(x, y, "frechet", n_permutations=n_perm, n_bootstrap=0, groups_x=groups[0], groups_y=groups[1])
    return {
        "design": r.design,
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "p": r.p_value,
        "distance": r.distance,
    }


def bare(n_checks: int, n_answers: int, dim: int) -> tuple[float, float]:
    rng = np.random.default_rng(2)
    x, ids = answers(rng, n_answers, 1, dim)
    y, _ = answers(rng, n_answers, 1, dim)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_checks):
        D.compare_sets(x, y, n_permutations=0, n_bootstrap=0, groups_x=ids, groups_y=ids)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checks", type=int, default=125)
    p.add_argument("--answers", type=int, default=200)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--frechet-permutations", type=int, default=1000)
    p.add_argument("--skip-gate", action="store_true")
    args = p.parse_args()
    if not args.skip_gate:
        for repeats in (1, 4):
            g = gate(args.checks, args.answers, repeats, args.dim, args.alpha, args.bootstrap)
            print(
                f"gate {args.checks} checks, {args.answers} answers a side ({repeats} per question, {g['design']}), "
                f"{g['permutations']} permutations + {args.bootstrap} paired bootstrap each: "
                f"{g['wall']:.1f} s wall, {g['cpu']:.1f} s CPU; permutation cache {g['cache_mb']:.0f} MiB "
                f"(bound {resampling.CACHE_BYTES / 2**20:.0f}); significant after Bonferroni {g['significant']}"
                f"/{args.checks} (12-13 carry a shift); problems {g['problems']}"
            )
    wall, cpu = bare(args.checks, args.answers, args.dim)
    print(f"lm-eval metric path: {args.checks} bare paired distances in {wall:.2f} s wall, {cpu:.2f} s CPU")
    for paired in (False, True):
        f = frechet(args.answers, args.dim, args.frechet_permutations, paired)
        print(
            f"frechet {args.answers} vs {args.answers}, {args.dim}-d, {args.frechet_permutations} permutations "
            f"({f['design']}): {f['wall']:.1f} s wall, {f['cpu']:.1f} s CPU (p = {f['p']:.4f})"
        )


if __name__ == "__main__":
    main()
