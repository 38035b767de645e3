"""Benchmark: one whole ``univar-eval gate`` run, from files on disk to the reports.

    python benchmarks/bench_gate.py [--langs 25] [--questionnaires 5] [--answers 200] [--repeats 4] [--dim 768]

Builds a bank holding a baseline and a candidate run folder with ``langs x questionnaires`` tasks
(200 answers each, float16, 768-d, strong question effects; ``--repeats`` answers per question on
both sides, so the per-question design and the baseline's noise floor are computed), then times
``univar-eval gate --max-distance`` end to end: reading and checking the arrays, the Holm-sized
permutation tests, the paired bootstrap bounds, the noise floors and the four report formats.
The statistics alone are timed by ``bench_gate_stats.py``; this adds everything around them.
Target (issue 13): a 125-check gate in under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from univar_eval.cli import main  # noqa: E402
from univar_eval.pipeline.questionnaire import LANGUAGES  # noqa: E402
from univar_eval.storage.bank import Bank  # noqa: E402
from univar_eval.storage.distribution import ValueDistribution  # noqa: E402

ENCODER = {"name": "bench", "revision": None, "dimension": 768, "fingerprint": [0.0] * 8, "fingerprint_id": "bench"}


def distribution(rng, model, q, lang, n_answers, repeats, dim, shift=0.0) -> ValueDistribution:
    n_questions = n_answers // repeats
    centres = np.random.default_rng(zlib.crc32(f"{q}{lang}".encode())).normal(size=(n_questions, dim))
    ids = [i for i in range(n_questions) for _ in range(repeats)]
    x = centres[ids] + 0.8 * rng.normal(size=(len(ids), dim))
    x[:, 0] += shift
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    manifest = {
        "format": "univar-eval/value-distribution/1",
        "model": model,
        "task": f"univar_{q}_{lang}",
        "lang": lang,
        "questionnaire": q,
        "questionnaire_version": "v1",
        "encoder": ENCODER,
        "translator": {"name": "none" if lang == "eng" else "nllb-600m"},
        "text_format": "qa/2",
        "created": "2026-11-29T00:00:00",
        "counts": {"n_answers": len(ids), "n_encoder_truncated": 0},
    }
    return ValueDistribution(x.astype(np.float16).astype(np.float32), [{"id": f"{q}-{i}"} for i in ids], manifest)


def main_() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--langs", type=int, default=25)
    p.add_argument("--questionnaires", type=int, default=5)
    p.add_argument("--answers", type=int, default=200)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--dim", type=int, default=768)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    questionnaires = ["pvq", "wvs", "globe", "situations", "extra"][: args.questionnaires]
    langs = list(LANGUAGES)[: args.langs]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        bank = Bank(tmp / "bank", create=True)
        bank.add_many(
            [
                (distribution(rng, "base", q, lang, args.answers, args.repeats, args.dim), "base", "bench")
                for q in questionnaires
                for lang in langs
            ]
        )
        for q in questionnaires:
            for lang in langs:
                distribution(rng, "cand", q, lang, args.answers, args.repeats, args.dim).save(
                    tmp / "cand" / "univar_2026-11-29T00-00-00" / f"univar_{q}_{lang}"
                )
        built = time.perf_counter() - t0
        out = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = main(
                [
                    "gate",
                    str(tmp / "cand"),
                    "--bank",
                    str(bank.path),
                    "--against",
                    "base",
                    "--max-distance",
                    "0.05",
                    "--json",
                    str(tmp / "g.json"),
                    "--markdown",
                    str(tmp / "g.md"),
                    "--junit",
                    str(tmp / "g.xml"),
                ]
            )
        elapsed = time.perf_counter() - t0
    n = len(questionnaires) * len(langs)
    print(
        f"gate of {n} checks ({len(langs)} languages x {len(questionnaires)} questionnaires, {args.answers} answers "
        f"a side, {args.repeats} per question, {args.dim}-d): {elapsed:.1f} s end to end (exit {code}); "
        f"building the files {built:.1f} s"
    )
    print(out.getvalue().strip().splitlines()[-1])


if __name__ == "__main__":
    main_()
