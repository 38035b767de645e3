"""Benchmark: one run (25 languages x 200 answers) against a bank of 50 models x 25 languages.

    python benchmarks/bench_compare.py [--models 50] [--answers 200] [--permutations 1000]

Random unit vectors of dimension 768 stand in for embeddings. Prints the time to build
the bank (not part of the target), the time to compare the run with every reference
including 1,000-permutation tests, and the peak resident memory. Target: under 10 s and
2 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from univar_eval.pipeline.questionnaire import LANGUAGES  # noqa: E402
from univar_eval.stats.references import reference_distances  # noqa: E402
from univar_eval.storage.bank import Bank  # noqa: E402
from univar_eval.storage.distribution import ValueDistribution  # noqa: E402

ENCODER = {"name": "bench", "revision": None, "dimension": 768, "fingerprint": [0.0] * 32, "fingerprint_id": "bench"}


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--permutations", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    langs = list(LANGUAGES)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bank = Bank(Path(tmp) / "bank", create=True)
        items = [
            (ValueDistribution(unit(rng, args.answers), [{}] * args.answers, manifest(lang)), f"ref-{m:02d}", "bench")
            for m in range(args.models)
            for lang in langs
        ]
        bank.add_many(items)
        del items
        build = time.perf_counter() - t0
        run = [ValueDistribution(unit(rng, args.answers), [{}] * args.answers, manifest(lang)) for lang in langs]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        bank = Bank(bank.path)
        n_cmp = 0
        for dist in run:
            res = reference_distances(dist, bank, n_permutations=args.permutations)
            n_cmp += len(res["references"])
        elapsed = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"bank: {args.models} models x {len(langs)} languages x {args.answers} answers, dim 768 "
        f"(built in {build:.1f} s)"
    )
    print(
        f"compare: {n_cmp} comparisons with {args.permutations} permutations each in {elapsed:.2f} s "
        f"({1000 * elapsed / n_cmp:.1f} ms per comparison)"
    )
    print(f"peak resident memory: {peak:.0f} MB (before comparing: {rss_before:.0f} MB)")


if __name__ == "__main__":
    main()
