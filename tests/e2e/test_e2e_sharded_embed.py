"""``univar-eval embed`` on two real CPU ranks (gloo) writes exactly what one process writes.

A run with kept answers of two tasks (English; French through a tiny seq2seq translator) is finished
once by one process and once by two ranks started as torchrun starts them. Each rank has a cache of
its own, and records the texts it embedded: rank 1 embeds its share and nothing else. A crash on
rank 1 stops both ranks with one line and leaves the kept answers as they were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ranks import launch

from univar_eval.pipeline.questionnaire import load
from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.e2e

STAMP = "univar_2026-12-06T00-00-00"
BATCH = 4  # blocks of 16 answers
SIZES = {"univar_pvq_eng": ("eng", 70), "univar_pvq_fra": ("fra", 24)}


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory, tiny_translator) -> Path:
    from univar_eval.harness.task_base import write_pending  # imports lm_eval

    run = tmp_path_factory.mktemp("kept") / "run"
    for task, (lang, n) in SIZES.items():
        questions = load("pvq", lang).records
        rows = [
            {
                "doc_index": i % len(questions),
                "id": questions[i % len(questions)]["id"],
                "lang": lang,
                "question": questions[i % len(questions)]["question"],
                "repeat": i // len(questions),
                "answer": f"Answer {i}: I would {'help them' if i % 3 else 'say no'}, because {i % 7} matters."
                if i % 11
                else "",
            }
            for i in range(n)
        ]
        translator = "none" if lang == "eng" else str(tiny_translator)
        write_pending(
            run / STAMP / task,
            rows,
            {
                "questionnaire": "pvq",
                "lang": lang,
                "model": "m",
                "task": task,
                "error": "out of memory",
                "settings": {"encoder": "minilm", "translator": translator, "encoder_batch_size": BATCH},
            },
        )
    return run


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def finish(kept_run: Path, where: Path, size: int, *, fail_rank: int | None = None):
    run = where / "run"
    shutil.copytree(kept_run, run)
    records = [where / f"embedded-by-rank{r}.jsonl" for r in range(size)]

    def args(rank):
        extra = ["--fail-on-call", "2"] if rank == fail_rank else []
        return [*extra, "--record", str(records[rank]), "--", "-v", "embed", str(run)]

    caches = {r: {"UNIVAR_EVAL_CACHE": str(where / f"cache{r}")} for r in range(size)}
    procs = launch(args, size, env_of_rank=caches)
    embedded = [[json.loads(line) for line in r.read_text().splitlines()] if r.exists() else [] for r in records]
    return run, procs, embedded


@pytest.fixture(scope="module")
def one_and_two(kept_run, tmp_path_factory):
    one = finish(kept_run, tmp_path_factory.mktemp("one"), 1)
    two = finish(kept_run, tmp_path_factory.mktemp("two"), 2)
    for run, procs, _ in (one, two):
        for rank, (code, _, err) in enumerate(procs):
            assert code == 0, f"rank {rank}:\n{err[-4000:]}"
    return one, two


def test_two_ranks_write_what_one_process_writes(one_and_two):
    (run1, procs1, _), (run2, procs2, _) = one_and_two
    for task in SIZES:
        a, b = run1 / STAMP / task, run2 / STAMP / task
        assert (a / "answers.jsonl").read_bytes() == (b / "answers.jsonl").read_bytes()
        da, db = ValueDistribution.load(a), ValueDistribution.load(b)
        assert np.abs(da.embeddings - db.embeddings).max() <= 1e-6
        ma, mb = dict(da.manifest), dict(db.manifest)
        sharding = mb.pop("sharding")
        assert sharding["world_size"] == 2 and sum(sharding["answers_per_rank"]) == len(db)
        ma.pop("created"), mb.pop("created")
        assert ma == mb
    # rank 0 prints, once; rank 1 prints nothing
    assert procs2[0][1] == procs1[0][1].replace(str(run1), str(run2)) and procs2[1][1] == ""
    assert procs1[0][1].count("embedded univar_pvq_") == 2


def test_each_rank_embedded_its_own_share_and_no_more(one_and_two):
    _, (run2, procs2, embedded) = one_and_two
    expected = {0: [], 1: []}
    for task in SIZES:
        dist = ValueDistribution.load(run2 / STAMP / task)
        texts = [r["text"] for r in dist.records]
        n0, n1 = dist.manifest["sharding"]["answers_per_rank"]
        assert n0 > 0 and n1 > 0 and n0 + n1 == len(texts)
        expected[0] += texts[:n0]
        expected[1] += texts[n0:]
    assert embedded[0] == expected[0] and embedded[1] == expected[1]
    log = procs2[0][2]
    # 70 answers, 7 of them empty: 63 in blocks of 16 (4 * BATCH), two blocks per rank
    assert (
        "univar-eval: embedding univar_pvq_eng: 63 answers in 4 blocks of 16 over 2 ranks; "
        "rank 0: answers 0-31 (32), rank 1: answers 32-62 (31)"
    ) in log


def test_a_crash_on_rank_1_loses_nothing(kept_run, tmp_path):
    before = snapshot(kept_run)
    run, procs, embedded = finish(kept_run, tmp_path, 2, fail_rank=1)
    assert [code for code, _, _ in procs] == [2, 2]
    assert [out for _, out, _ in procs] == ["", ""]
    last = [err.strip().splitlines()[-1] for _, _, err in procs]
    assert (
        last[0]
        == last[1]
        == ("error: embedding univar_pvq_eng: rank 1 of 2 failed (OSError: simulated crash of this rank's encoder)")
    )
    assert snapshot(run) == before  # every kept answer still there, nothing half-written
    assert len(embedded[1]) == 16  # rank 1 embedded one block before it crashed


def test_bank_add_on_two_ranks_writes_the_bank_one_process_writes(tmp_path):
    questions = load("pvq", "eng").records
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"model": m, "lang": "eng", "question": q["question"], "answer": f"{m} answer {i}: help them"})
            + "\n"
            for m in ("m1", "m2")
            for i, q in enumerate(questions[:40])
        )
    )
    banks = {}
    for size in (1, 2):
        bank = tmp_path / f"bank{size}"
        procs = launch(
            lambda r: ["--", "bank", "add", "--bank", str(bank), "--encoder", "minilm", "--batch-size", "4", str(qa)],
            size,
            env_of_rank={r: {"UNIVAR_EVAL_CACHE": str(tmp_path / f"cache{size}-{r}")} for r in range(size)},
        )
        assert [code for code, _, _ in procs] == [0] * size, procs[-1][2][-3000:]
        assert procs[0][1].count("added m") == 2 and all(out == "" for _, out, _ in procs[1:])
        banks[size] = bank
    one, two = (json.loads((banks[s] / "bank.json").read_text()) for s in (1, 2))
    assert len(one["entries"]) == len(two["entries"]) == 2
    for a, b in zip(one["entries"], two["entries"]):
        # the arrays (their sha256), answers, counts and settings are the same; file names and times are new
        assert (banks[1] / a["answers"]).read_bytes() == (banks[2] / b["answers"]).read_bytes()
        a, b = dict(a), dict(b)
        assert b.pop("sharding", {"world_size": 2})["world_size"] == 2
        for key in ("created", "added", "array", "answers"):
            a.pop(key, None), b.pop(key, None)
        assert a == b
