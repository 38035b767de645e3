"""Benchmark: one run (25 languages x 200 answers) against a bank of 50 models x 25 languages.

    python benchmarks/bench_compare.py [--models 50] [--answers 200] [--permutations 1000]
                                       [--previous DIR] [--repeats 1]

Random unit vectors of dimension 768 stand in for embeddings. Prints the time to build the bank (not part
of the target), the time to compare the run with every reference including 1,000-permutation tests, the
CPU seconds and peak resident memory, with the load average beside each figure. Target: under 10 s and
2 GB on a 2-core machine.

Beside it, in the same sitting (on a shared machine the ratio is the figure that holds):

* ``--previous DIR``: the same comparisons by another tree's ``univar_eval`` (e.g. the last release,
  ``git archive <commit> univar_eval | tar -x -C DIR``), run in turn with this one, and the largest
  difference of their distances and p-values;
* ``scipy.stats.permutation_test`` with the same statistic (the unbiased MMD² from the pooled kernel,
  vectorised over resamples) on a few comparisons, scaled to all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENCODER = {"name": "bench", "revision": None, "dimension": 768, "fingerprint": [0.0] * 32, "fingerprint_id": "bench"}


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def unit(rng, n, d=768):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def manifest(lang):
    return {
        "task": f"univar_pvq_{lang}",
        "lang": lang,
        "questionnaire": "pvq",
        "questionnaire_version": "bench",
        "encoder": ENCODER,
        "translator": {"name": "none" if lang == "eng" else "nllb-600m"},
        "model": "bench",
    }


def build(folder: Path, models: int, answers: int) -> float:
    """The bank and the run (embeddings.npy per language), written once for every tree compared."""
    from univar_eval.pipeline.questionnaire import LANGUAGES
    from univar_eval.storage.bank import Bank
    from univar_eval.storage.distribution import ValueDistribution

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    bank = Bank(folder / "bank", create=True)
    items = [
        (ValueDistribution(unit(rng, answers), [{}] * answers, manifest(lang)), f"ref-{m:02d}", "bench")
        for m in range(models)
        for lang in LANGUAGES
    ]
    bank.add_many(items)
    np.save(folder / "run.npy", np.stack([unit(rng, answers) for _ in LANGUAGES]))
    return time.perf_counter() - t0


def measure(folder: Path, permutations: int) -> dict:
    """One timed pass of the comparisons with the ``univar_eval`` on sys.path (run in a child process)."""
    from univar_eval.pipeline.questionnaire import LANGUAGES
    from univar_eval.stats.references import reference_distances
    from univar_eval.storage.bank import Bank
    from univar_eval.storage.distribution import ValueDistribution

    run = np.load(folder / "run.npy")
    dists = [ValueDistribution(run[i], [{}] * run.shape[1], manifest(lang)) for i, lang in enumerate(LANGUAGES)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = load()
    t0, c0 = time.perf_counter(), time.process_time()
    bank = Bank(folder / "bank")
    results = [reference_distances(dist, bank, n_permutations=permutations) for dist in dists]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = [(r["lang"], m, v["distance"], v["p_value"]) for r in results for m, v in sorted(r["references"].items())]
    return {
        "wall": wall,
        "cpu": cpu,
        "load": f"{load_before} before, {load()} after",
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before,
        "rows": rows,
    }


def child(tree: Path, folder: Path, permutations: int) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]); "
        "import bench_compare as b; from pathlib import Path; "
        "print(json.dumps(b.measure(Path(sys.argv[3]), int(sys.argv[4]))))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tree), str(ROOT / "benchmarks"), str(folder), str(permutations)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def scipy_reference(folder: Path, permutations: int, count: int) -> float:
    """Seconds per comparison with ``scipy.stats.permutation_test`` and the same statistic (fixed-bandwidth
    Gaussian kernel, unbiased MMD², as ``compare_sets`` computes it unpaired), on ``count`` comparisons."""
    from scipy import stats

    from univar_eval.storage.bank import Bank

    bank = Bank(folder / "bank")
    run = np.load(folder / "run.npy")
    entries = bank.entries(task="univar_pvq_eng")[:count]
    t0 = time.perf_counter()
    for e in entries:
        x = run[0].astype(np.float64)
        y = np.asarray(bank.load(e).embeddings, dtype=np.float64)
        pooled = np.vstack([x, y])
        k = np.exp(pooled @ pooled.T - 1.0)  # exp(-|a - b|² / 2) on unit vectors
        np.fill_diagonal(k, 0.0)
        m, n = len(x), len(y)

        def statistic(i, j, axis=-1):
            i, j = np.atleast_2d(i).astype(int), np.atleast_2d(j).astype(int)
            kxx = k[i[:, :, None], i[:, None, :]].sum((1, 2)) / (m * (m - 1))
            kyy = k[j[:, :, None], j[:, None, :]].sum((1, 2)) / (n * (n - 1))
            kxy = k[i[:, :, None], j[:, None, :]].sum((1, 2)) / (m * n)
            return kxx + kyy - 2 * kxy

        stats.permutation_test(
            (np.arange(m), np.arange(m, m + n)),
            statistic,
            n_resamples=permutations,
            vectorized=True,
            alternative="greater",
            random_state=0,
        )
    return (time.perf_counter() - t0) / len(entries)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--previous", type=Path, help="a folder holding another tree's univar_eval package")
    ap.add_argument("--repeats", type=int, default=1, help="timed passes of each tree, interleaved (best kept)")
    ap.add_argument("--scipy-comparisons", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = build(folder, args.models, args.answers)
        trees = {"this tree": ROOT} | ({"previous": args.previous.resolve()} if args.previous else {})
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                r = child(tree, folder, args.permutations)
                if name not in best or r["wall"] < best[name]["wall"]:
                    best[name] = r
        per_scipy = scipy_reference(folder, args.permutations, args.scipy_comparisons)
    n_cmp = len(best["this tree"]["rows"])
    print(
        f"bank: {args.models} models x 25 languages x {args.answers} answers, dim 768 (built in {built:.1f} s); "
        f"{os.cpu_count()} CPUs"
    )
    for name, r in best.items():
        print(
            f"  {name:9s}: {n_cmp} comparisons, {args.permutations} permutations each, in {r['wall']:.2f} s wall, "
            f"{r['cpu']:.2f} s CPU ({1000 * r['wall'] / n_cmp:.1f} ms per comparison); peak memory "
            f"{r['peak_mb']:.0f} MB ({r['load']})"
        )
    now = best["this tree"]
    if "previous" in best:
        prev = best["previous"]
        dd = max(abs(a[2] - b[2]) for a, b in zip(now["rows"], prev["rows"]))
        dp = max(abs(a[3] - b[3]) for a, b in zip(now["rows"], prev["rows"]))
        print(
            f"  ratio previous / this tree: {prev['wall'] / now['wall']:.2f}x wall, "
            f"{prev['cpu'] / now['cpu']:.2f}x CPU; "
            f"largest difference: distance {dd:.1e}, p-value {dp:.1e}"
        )
    print(
        f"  scipy permutation_test, same statistic: {per_scipy * 1000:.0f} ms per comparison "
        f"({args.scipy_comparisons} timed), {per_scipy * n_cmp:.0f} s for {n_cmp} ({load()}); "
        f"ratio {per_scipy * n_cmp / now['wall']:.0f}x"
    )


if __name__ == "__main__":
    main()
