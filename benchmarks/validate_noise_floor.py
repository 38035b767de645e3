"""Validation: does the noise floor (``within_noise``) state what a rerun of the baseline would show?

    python benchmarks/validate_noise_floor.py [--sims 200] [--questions 40 120] [--dim 384] [--metrics mmd centroid]
    python benchmarks/validate_noise_floor.py --real-text [--sims 150]     # MiniLM on real sentences

The reference point printed beside every distance must mean "the distance a rerun of this same
model, with as many answers as the baseline, would show against the baseline". For each cell
(questions Q, answers per question c, metric) each of ``--sims`` seeded simulations draws a new
model and, from it, two independent samples of the same size (the baseline and its rerun):

* rerun: ``compare_sets(baseline, rerun)`` with the default design, 200 paired bootstrap resamples:
  its distance (the target) and its ``upper`` (the value D must exceed for that rerun to pass);
* floor: ``within_noise(baseline)`` on the baseline alone: its distance and its ``upper``
  ("none" / NaN where it says it cannot be measured).

The table gives mean, median and 95th percentile over the simulations (mean with its standard
error), the ratio of the floor's mean to the rerun's, and "pass at D = floor upper": how often
the rerun passes a gate whose D is set to the floor's upper bound (``rerun upper < floor upper``;
about one half when the two bounds have the same distribution).

Synthetic model (unit vectors in ``--dim`` dimensions, like the real encoders' output): answer =
normalise(0.6 g + 0.6 u_q + e), g a direction shared by all answers, u_q a unit direction per
question, e the answer noise: 0.45 along 16 directions of the question's own (a different subspace
for every question) plus 0.15 isotropic. Within-question cosine about 0.75, across questions about 0.4.
``c = 2-4``: each question gets 2, 3 or 4 answers (the same counts in the baseline and its rerun).

``--real-text``: the four stances of ``tests/test_gate_real_text.py`` (38 PVQ questions, answers put
together from paraphrases) answer 24 runs each (seeds 5000 + 100 i + k), embedded with ``minilm``;
each of ``--sims`` draws a stance's 2c runs at random: c merged as the baseline, c as its rerun.
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

RANK = 16
SHARED, QUESTION, OWN_NOISE, ISO_NOISE = 0.6, 0.6, 0.45, 0.15


def draw_model(rng, n_questions: int, dim: int):
    """One model: the shared direction, each question's direction and its own noise subspace."""
    g = rng.normal(size=dim)
    u = rng.normal(size=(n_questions, dim))
    basis = rng.normal(size=(n_questions, dim, RANK)) / math.sqrt(dim)
    return g / np.linalg.norm(g), u / np.linalg.norm(u, axis=1, keepdims=True), basis


def draw_answers(rng, model, ids) -> np.ndarray:
    g, u, basis = model
    ids = np.asarray(ids)
    dim = len(g)
    own = np.einsum("ndr,nr->nd", basis[ids], rng.normal(size=(len(ids), RANK))) / math.sqrt(RANK) * math.sqrt(dim)
    e = OWN_NOISE * own / math.sqrt(dim) + ISO_NOISE * rng.normal(size=(len(ids), dim)) / math.sqrt(dim)
    return D.normalise(SHARED * g + QUESTION * u[ids] + e)


def question_ids(rng, n_questions: int, repeats: str) -> list[int]:
    if repeats == "2-4":
        counts = rng.integers(2, 5, n_questions)
    else:
        counts = np.full(n_questions, int(repeats))
    return [q for q in range(n_questions) for _ in range(counts[q])]


def cell(n_questions: int, repeats: str, metric: str, dim: int, sims: int, bootstrap: int):
    rerun_d, rerun_u, floor_d, floor_u, designs = [], [], [], [], set()
    for s in range(sims):
        rng = np.random.default_rng([n_questions, dim, sum(map(ord, repeats)), s])
        model = draw_model(rng, n_questions, dim)
        ids = question_ids(rng, n_questions, repeats)
        base, rerun = draw_answers(rng, model, ids), draw_answers(rng, model, ids)
        r = D.compare_sets(
            base, rerun, metric, n_permutations=0, n_bootstrap=bootstrap, seed=s, groups_x=ids, groups_y=ids
        )
        f = D.within_noise(base, ids, metric, seed=s, n_bootstrap=bootstrap)
        assert r.problem is None, r.problem
        designs.add((r.design, f.design if f.problem is None else "none"))
        rerun_d.append(r.distance), rerun_u.append(r.upper), floor_d.append(f.distance)
        floor_u.append(np.nan if f.upper is None else f.upper)
    return [np.array(v) for v in (rerun_d, rerun_u, floor_d, floor_u)], designs


def real_text(sims: int, runs: int = 24) -> None:
    """The floor against reruns on MiniLM embeddings of real sentences (see the module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_gate_real_text import STANCES, answer_run, questions  # noqa: E402  (the test's answer generator)

    from univar_eval.pipeline.embed import build_distribution  # noqa: E402
    from univar_eval.settings import resolve  # noqa: E402

    qs = questions()
    settings = resolve({"encoder": "minilm", "device": "cpu"})
    emb = {
        (s, k): np.asarray(
            build_distribution(
                answer_run(s, qs, seed=5000 + 100 * i + k),
                task="univar_pvq_eng",
                questionnaire="pvq",
                lang="eng",
                settings=settings,
                model=s,
            )[0].embeddings
        )
        for i, s in enumerate(STANCES)
        for k in range(runs)
    }
    ids = [q["id"] for q in qs]
    print(f"real text: {len(STANCES)} stances x {runs} runs, {len(qs)} questions, minilm; {sims} draws a stance\n")
    print("| c/q | rerun distance | floor distance | rerun upper | floor upper | pass at D = floor upper |")
    print("|---|---|---|---|---|---|")
    for c in (2, 3, 4):
        rd, ru, fd, fu = [], [], [], []
        for s in STANCES:
            for rep in range(sims):
                pick = np.random.default_rng([c, rep, len(s)]).choice(runs, 2 * c, replace=False)
                base, rerun = (np.vstack([emb[s, k] for k in part]) for part in (pick[:c], pick[c:]))
                r = D.compare_sets(base, rerun, groups_x=ids * c, groups_y=ids * c, n_permutations=0, seed=rep)
                f = D.within_noise(base, ids * c, seed=rep)
                rd.append(r.distance), ru.append(r.upper), fd.append(f.distance)
                fu.append(np.nan if f.upper is None else f.upper)
        rd, ru, fd, fu = (np.array(v) for v in (rd, ru, fd, fu))
        rate = f"{np.mean(ru < fu):.2f}" if not np.isnan(fu).any() else "-"
        print(f"| {c} | {summary(rd)} | {summary(fd)} | {summary(ru)} | {summary(fu)} | {rate} |", flush=True)


def summary(v: np.ndarray) -> str:
    if np.isnan(v).any():
        return f"NaN in {np.isnan(v).mean():.0%}"
    return f"{v.mean():.4f}±{v.std(ddof=1) / math.sqrt(len(v)):.4f} {np.median(v):.4f} {np.quantile(v, 0.95):.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=200)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--questions", type=int, nargs="+", default=[40, 120])
    p.add_argument("--repeats", nargs="+", default=["2", "3", "4", "2-4"])
    p.add_argument("--dim", type=int, nargs="+", default=[384])
    p.add_argument("--metrics", nargs="+", default=["mmd", "centroid"])
    p.add_argument("--real-text", action="store_true", help="MiniLM on the real-text gate test's sentences")
    args = p.parse_args()
    start = time.perf_counter()
    if args.real_text:
        real_text(args.sims)
        print(f"\n{time.perf_counter() - start:.0f} s")
        return
    print(
        f"{args.sims} simulations a cell, {args.bootstrap} paired bootstrap resamples; "
        "each statistic as mean±SE median p95\n"
    )
    print(
        "| metric | d | Q | c/q | design rerun / floor | rerun distance | floor distance | floor/rerun (mean) "
        "| rerun upper | floor upper | floor/rerun upper (median) | pass at D = floor upper |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for metric in args.metrics:
        for dim in args.dim:
            for q in args.questions:
                for c in args.repeats:
                    (rd, ru, fd, fu), designs = cell(q, c, metric, dim, args.sims, args.bootstrap)
                    shown = "; ".join(f"{a} / {b}" for a, b in sorted(designs))
                    pass_rate = float(np.mean(ru < fu)) if not np.isnan(fu).any() else math.nan
                    print(
                        f"| {metric} | {dim} | {q} | {c} | {shown} | {summary(rd)} | {summary(fd)} | "
                        f"{fd.mean() / rd.mean():.2f} | {summary(ru)} | {summary(fu)} | "
                        f"{np.median(fu) / np.median(ru):.2f} | "
                        f"{pass_rate:.2f}±{math.sqrt(pass_rate * (1 - pass_rate) / len(ru)):.2f} |",
                        flush=True,
                    )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
