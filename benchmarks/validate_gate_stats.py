"""Validation: size, power and wrong-pass rate of the paired designs on synthetic embeddings.

    python benchmarks/validate_gate_stats.py [--sims 1000] [--permutations 199] [--bootstrap 200] [--questions 60]
    python benchmarks/validate_gate_stats.py --finite-pool [--sims 1000] [--pool-questions 10 40 171] [--jobs 2]
    python benchmarks/validate_gate_stats.py --finite-pool --pass-bound [--sims 1000] [--pool-questions 40 120]

``--finite-pool`` (issue 24): answers drawn from finite per-question pools (``benchmarks/finite_pool.py``),
candidates whose exact d_S (or d_Q) is 0, 0.5, 0.8, 1 and 1.5 times D; for 1 v 1, 3 v 3, 4 v 1 and 1 v 4
answers a question (candidate v baseline), shifts shared by all questions ("stance"), confined to one value's
questions ("value") and cancelling across questions (d_Q, 3 v 3): pass rates at 0 and 0.5 D, wrong fails at
0.8 D and D, wrong passes at D, power at 1.5 D and the difference test's size. Up to 2 hours on 2 cores at 1,000
simulations a cell; never run in CI. The rows below are those of the earlier generator (uniform shifts of
Gaussian answers), kept:

Synthetic answers with strong question effects: answer = normalise(c_q + e + shift), question
centres ``c_q ~ N(0, I/d)``, answer noise ``e ~ N(0, 0.25 I/d)`` (within-question cosine about 0.8,
across questions about 0), d = 32. Each row is ``--sims`` seeded simulations (new questions, new
answers each time) of :func:`univar_eval.stats.distance.compare_sets` with its defaults for the
design that the question ids select, at alpha = 0.05:

* size: identical models, 1 and 3 answers per question, 0 and 20 questions answered by one side only,
  and 3 answers against 1 (a baseline with repeats, a candidate without: the shared-shift design);
* power: a shared shift (every answer moved by ``delta`` along one axis), and per-question changes
  that cancel on average (half the questions moved by ``+delta``, half by ``-delta``);
* the per-question effect at which 3 answers per question reach power 0.8 (a scan);
* wrong pass with a tolerance D: at an effect whose true distance equals D (the boundary of
  "above D", where a wrong pass is most likely) the rate of ``upper < D``. True distances are
  computed on 3 x 4,000 questions (shared shift) or 3 x 2,000 questions x 20 answers (per question).

Prints one table; every rate comes with its standard error and the check it must pass.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import finite_pool as pool  # noqa: E402

from univar_eval.stats import distance as D  # noqa: E402

DIM = 32
ALPHA = 0.05
NOISE = 0.5


def simulate(
    rng, n_questions: int, repeats: int, one_sided: int, delta: float, kind: str, repeats_y: int | None = None
):
    """(x, y, ids_x, ids_y): x answers n_questions + one_sided questions, y the first n_questions
    (``repeats`` answers a question, ``repeats_y`` for y when it differs)."""
    total = n_questions + one_sided
    centres = rng.normal(size=(total, DIM)) / math.sqrt(DIM)
    ids_x = [q for q in range(total) for _ in range(repeats)]
    ids_y = [q for q in range(n_questions) for _ in range(repeats_y or repeats)]
    x = centres[ids_x] + NOISE * rng.normal(size=(len(ids_x), DIM)) / math.sqrt(DIM)
    y = centres[ids_y] + NOISE * rng.normal(size=(len(ids_y), DIM)) / math.sqrt(DIM)
    if delta:
        sign = np.ones(n_questions) if kind == "shared" else np.where(np.arange(n_questions) < n_questions // 2, 1, -1)
        y[:, 0] += delta * sign[ids_y]
    return D.normalise(x), D.normalise(y), ids_x, ids_y


def true_distance(delta: float, kind: str, design: str, seeds=(99, 100, 101)) -> float:
    """The population value of the design's distance: its square averaged over very large simulated comparisons."""
    values = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        x, y, gx, gy = (
            simulate(rng, 4000, 1, 0, delta, kind)
            if design == "shared_shift"
            else simulate(rng, 2000, 20, 0, delta, kind)
        )
        values.append(D.compare_sets(x, y, n_permutations=0, n_bootstrap=0, groups_x=gx, groups_y=gy).statistic)
    return math.sqrt(max(float(np.mean(values)), 0.0))


def rate(
    args,
    repeats: int,
    one_sided: int,
    delta: float,
    kind: str,
    *,
    tolerance: float | None = None,
    sims: int | None = None,
    seed: int = 0,
    repeats_y: int | None = None,
) -> tuple[float, str, int]:
    """Rejection rate (p <= alpha), or with ``tolerance`` the wrong-pass rate (upper < D)."""
    sims = sims or args.sims
    hits, design = 0, ""
    for s in range(sims):
        rng = np.random.default_rng([seed, repeats, one_sided, int(delta * 1e6), s])
        x, y, gx, gy = simulate(rng, args.questions, repeats, one_sided, delta, kind, repeats_y)
        r = D.compare_sets(
            x,
            y,
            n_permutations=0 if tolerance is not None else args.permutations,
            n_bootstrap=args.bootstrap if tolerance is not None else 0,
            seed=s,
            alpha=ALPHA,
            groups_x=gx,
            groups_y=gy,
        )
        assert r.problem is None, r.problem
        design = r.design
        hits += (r.upper < tolerance) if tolerance is not None else (r.p_value <= ALPHA)
    return hits / sims, design, sims


# -- the finite-pool generator (issue 24) -------------------------------------------------------------------
TARGETS = (0.0, 0.5, 0.8, 1.0, 1.5)
DESIGNS = ((1, 1), (3, 3), (4, 1), (1, 4))


def pool_cell(n_questions, cx, cy, kind, sims, permutations, bootstrap, quantity="d_S", targets=TARGETS):
    """Rates over ``sims`` seeded worlds: for each target (share of D) the pass and fail rates of one gate check,
    and at target 0 the size of the difference test (permutation p <= alpha). D is half the alternative's exact
    distance in each world; the candidate is the mixture whose exact distance is target x D."""
    from univar_eval.stats import equivalence as E

    out = {t: [0, 0] for t in targets}
    size = 0
    for s in range(sims):
        for t in targets:
            rng = np.random.default_rng([n_questions, cx, cy, len(kind), int(100 * t), s])
            v, stance, values, w = pool.world(rng, n_questions)
            alt = pool.alternative(rng, kind, stance, values, w)
            theta_s, theta_q = pool.thetas(v, alt, w)
            d_alt = math.sqrt(max(theta_s if quantity == "d_S" else theta_q, 0.0))
            tol = 0.5 * d_alt
            lam = t * tol / d_alt if d_alt > 0 else 0.0
            x, gx = pool.sample(rng, v, (1 - lam) * w + lam * alt, cx)
            y, gy = pool.sample(rng, v, w, cy)
            ev = E.evaluate(
                x, y, gx, gy, alpha=ALPHA, n_bootstrap=bootstrap, n_permutations=permutations if t == 0 else 0, seed=s
            )
            b = ev.get(quantity)
            out[t][0] += b.upper < tol
            out[t][1] += b.p_excess(tol) < ALPHA
            if t == 0 and permutations:
                size += b.p_difference <= ALPHA
    return {t: (p / sims, f / sims) for t, (p, f) in out.items()}, size / sims


def pass_bound_main(args) -> None:
    """``--pass-bound``: only the pass rule (wrong pass at D, pass at 0.5 D) of d_S, stance shifts, for the designs
    and question counts given; about 10 x faster than the whole grid."""
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / args.sims)
    print(f"d_S pass bound, stance shifts, {args.sims} simulations a cell, alpha {ALPHA} (per cell bound {bound:.3f})")
    print("\n| answers c v b | questions | wrong pass @D | pass @0.5D | within alpha + 3 SE |\n|---|---|---|---|---|")
    for cx, cy in DESIGNS:
        for n_questions in args.pool_questions:
            rates, _ = pool_cell(n_questions, cx, cy, "stance", args.sims, 0, args.bootstrap, targets=(0.5, 1.0))
            wrong = rates[1.0][0]
            ok = "ok" if wrong <= bound else "OVER"
            print(f"| {cx} v {cy} | {n_questions} | {wrong:.3f} | {rates[0.5][0]:.3f} | {ok} |", flush=True)


def finite_pool_main(args) -> None:
    start = time.perf_counter()
    print(
        f"finite pools ({pool.POOL} answers a question, {pool.DIM}-d), alpha {ALPHA}, {args.sims} simulations a cell, "
        f"{args.bootstrap} bootstrap resamples, {args.permutations} permutations (size); D = half the alternative's "
        "exact distance; rates: wrong pass = pass at D, wrong fail = fail at 0.8 D (and at D)"
    )
    print(
        "\n| quantity | shift | answers c v b | questions | pass @0 | pass @0.5D | wrong fail @0.8D | wrong fail @D "
        "| wrong pass @D | power (fail) @1.5D | size (no D) | within alpha + 3 SE |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    wrong = []
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / args.sims)
    cells = [
        (quantity, kind, design, n_questions)
        for quantity, kind, design in [("d_S", kind, d) for kind in ("stance", "value") for d in DESIGNS]
        + [("d_Q", "cancel", (3, 3))]
        for n_questions in args.pool_questions
    ]
    jobs = [(args, *cell) for cell in cells]
    if args.jobs > 1:
        # one BLAS thread a worker process (spawned, so the setting is read when numpy loads there)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
    with contextlib.ExitStack() as stack:
        run = map
        if args.jobs > 1:
            run = stack.enter_context(
                ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
            ).map
        for (quantity, kind, (cx, cy), n_questions), (rates, size) in zip(cells, run(_grid_cell, jobs)):
            errors = (rates[0.8][1], rates[1.0][1], rates[1.0][0], size)
            wrong.append(errors)
            ok = "ok" if max(errors) <= bound else "OVER"
            print(
                f"| {quantity} | {kind} | {cx} v {cy} | {n_questions} | {rates[0.0][0]:.3f} | {rates[0.5][0]:.3f} | "
                f"{rates[0.8][1]:.3f} | {rates[1.0][1]:.3f} | {rates[1.0][0]:.3f} | {rates[1.5][1]:.3f} | "
                f"{size:.3f} | {ok} |",
                flush=True,
            )
    mean = np.mean(np.array(wrong), axis=0)
    print(
        f"\nmean over {len(wrong)} cells: wrong fail @0.8D {mean[0]:.3f}, wrong fail @D {mean[1]:.3f}, "
        f"wrong pass @D {mean[2]:.3f}, size {mean[3]:.3f} (each must be <= {ALPHA}); per cell bound "
        f"alpha + 3 SE = {bound:.3f}; {time.perf_counter() - start:.0f} s"
    )


def _grid_cell(job):
    args, quantity, kind, (cx, cy), n_questions = job
    return pool_cell(n_questions, cx, cy, kind, args.sims, args.permutations, args.bootstrap, quantity=quantity)


def se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), ALPHA * (1 - ALPHA)) / n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=1000)
    p.add_argument("--permutations", type=int, default=199)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--questions", type=int, default=60)
    p.add_argument("--shared-delta", type=float, default=0.12)
    p.add_argument("--scan", type=float, nargs="+", default=[0.06, 0.08, 0.1, 0.12, 0.14, 0.16])
    p.add_argument("--wrong-pass-delta", type=float, default=0.25)
    p.add_argument(
        "--finite-pool",
        action="store_true",
        help="the finite-pool generator (benchmarks/finite_pool.py): the gate's three outcomes in every design",
    )
    p.add_argument("--pool-questions", type=int, nargs="+", default=[10, 40, 171])
    p.add_argument(
        "--jobs", type=int, default=1, help="with --finite-pool: cells run in this many processes, one thread each"
    )
    p.add_argument("--pass-bound", action="store_true", help="with --finite-pool: only the d_S pass rule (faster)")
    args = p.parse_args()
    if args.finite_pool and args.pass_bound:
        pass_bound_main(args)
        return
    if args.finite_pool:
        finite_pool_main(args)
        return
    start = time.perf_counter()
    rows = []

    def row(what, repeats, one_sided, delta, kind, check, **kw):
        value, design, n = rate(args, repeats, one_sided, delta, kind, **kw)
        err = se(value, n)
        ok = {"size": value <= ALPHA + 2 * err, "wrong pass": value <= ALPHA + 2 * err}.get(check, True)
        shown = repeats if not kw.get("repeats_y") else f"{repeats} vs {kw['repeats_y']}"
        rows.append(
            (
                what,
                design,
                shown,
                one_sided,
                kind if delta else "-",
                f"{delta:g}",
                n,
                value,
                err,
                check,
                "ok" if ok else "FAIL",
            )
        )
        print(
            f"  {what:<11} {design:<13} {shown} ans/q  one-sided {one_sided:>2}  {kind if delta else '-':<8} "
            f"delta {delta:<5g} n {n}: {value:.3f} ± {err:.3f} ({check}: {rows[-1][-1]})",
            flush=True,
        )
        return value

    print(
        f"{args.questions} shared questions, d = {DIM}, alpha = {ALPHA}, {args.permutations} permutations, "
        f"{args.bootstrap} paired bootstrap resamples"
    )
    for repeats in (1, 3):
        for one_sided in (0, 20):
            row("size", repeats, one_sided, 0.0, "shared", "size")
    row("size", 3, 20, 0.0, "shared", "size", repeats_y=1)  # a baseline with repeats, a candidate without
    for repeats in (1, 3):
        for one_sided in (0, 20):
            row("power", repeats, one_sided, args.shared_delta, "shared", "power")
    row("power", 3, 20, args.shared_delta, "shared", "power", repeats_y=1)
    for repeats in (1, 3):
        row("power", repeats, 0, args.scan[-1], "cancel", "power" if repeats == 3 else "hard limit: ~alpha")
    reached = None
    for delta in args.scan:
        if row("scan", 3, 0, delta, "cancel", "power") >= 0.8 and reached is None:
            reached = delta
    print(
        f"per-question changes with 3 answers per question reach power >= 0.8 at delta = {reached} "
        f"(true per-question distance {true_distance(reached, 'cancel', 'per_question'):.4f})"
        if reached
        else "per-question changes: power 0.8 not reached in the scan"
    )
    for repeats, kind in ((1, "shared"), (3, "shared"), (3, "cancel")):
        design = "shared_shift" if repeats == 1 else "per_question"
        tol = true_distance(args.wrong_pass_delta, kind, design)
        print(f"  true {design} distance at delta {args.wrong_pass_delta} ({kind}): D = {tol:.4f}")
        row("wrong pass", repeats, 0, args.wrong_pass_delta, kind, "wrong pass", tolerance=tol)
        if repeats == 1:
            row("wrong pass", 3, 0, args.wrong_pass_delta, kind, "wrong pass", tolerance=tol, repeats_y=1)
    print("\n| check | design | answers/q | one-sided | change | delta | sims | rate | SE | criterion | |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            "| "
            + " | ".join(
                [r[0], r[1], str(r[2]), str(r[3]), r[4], r[5], str(r[6]), f"{r[7]:.3f}", f"{r[8]:.3f}", r[9], r[10]]
            )
            + " |"
        )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
