"""Benchmark: embedding through our pipeline vs calling ``SentenceTransformer.encode`` directly.

    UNIVAR_EVAL_CACHE=$(mktemp -d) python benchmarks/bench_embed.py [--texts 1000] [--encoder minilm]

Prints texts per second of (a) ``SentenceTransformer.encode`` on 1,000 QA texts, (b) our
path (``univar_eval.pipeline.cache.cached_encode``: hashing, cache look-up, encode, cache write)
with a cold cache, (c) the same with a warm cache. Targets: (b)/(a) speed ratio at least
0.9, (c) at least 20 times faster than (b).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each path (best kept)")
    args = ap.parse_args()
    os.environ.setdefault("UNIVAR_EVAL_CACHE", tempfile.mkdtemp(prefix="univar-bench-cache-"))
    from univar_eval.pipeline.answers import format_qa
    from univar_eval.pipeline.cache import cached_encode
    from univar_eval.pipeline.encoders import load_encoder
    from univar_eval.pipeline.questionnaire import load

    questions = [r["question"] for r in load("pvq", "eng").records]
    rng = np.random.default_rng(0)
    words = "I would help my family first because loyalty and care for others matter more than money or status".split()
    texts = [
        format_qa(questions[i % len(questions)], " ".join(rng.choice(words, size=25)) + f" ({i})")
        for i in range(args.texts)
    ]
    enc = load_encoder(args.encoder, device="cpu")
    enc.describe()  # fingerprint computed once, outside the timings
    enc.model.encode(texts[:64], batch_size=args.batch_size)  # warm-up

    # alternate the two paths and keep the best of each (timings on a shared machine are noisy)
    t_direct = t_cold = float("inf")
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        direct = enc.model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        t_direct = min(t_direct, time.perf_counter() - t0)
        os.environ["UNIVAR_EVAL_CACHE"] = tempfile.mkdtemp(prefix="univar-bench-cache-")  # a cold cache
        t0 = time.perf_counter()
        cold = cached_encode(enc, texts, batch_size=args.batch_size, progress=False)
        t_cold = min(t_cold, time.perf_counter() - t0)
    t0 = time.perf_counter()
    warm = cached_encode(enc, texts, batch_size=args.batch_size, progress=False)
    t_warm = time.perf_counter() - t0
    assert np.allclose(direct, cold, atol=1e-5) and np.array_equal(cold, warm)
    n = len(texts)
    print(f"{n} texts, encoder {args.encoder}, batch {args.batch_size}, best of {args.repeats} runs")
    print(f"SentenceTransformer.encode: {t_direct:.2f} s ({n / t_direct:.0f} texts/s)")
    print(f"pipeline, cold cache:       {t_cold:.2f} s ({n / t_cold:.0f} texts/s); ratio {t_direct / t_cold:.2f}")
    print(
        f"pipeline, warm cache:       {t_warm:.3f} s ({n / t_warm:.0f} texts/s); "
        f"{t_cold / t_warm:.0f}x faster than cold"
    )


if __name__ == "__main__":
    main()
