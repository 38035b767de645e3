"""Attack 2 of issue 25: embeddings never tied to their answers. A run folder whose answers.jsonl holds one model's
answers and whose embeddings come from another run (checksums recomputed) passed. Now embeddings read from disk
are checked: a fresh random sample of answers is re-embedded with the recorded encoder, bypassing the cache."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from integrity_world import TASK, gate, one_error_line, save_run

from univar_eval.cli import main
from univar_eval.runs import verify
from univar_eval.storage.distribution import ValueDistribution


def forged(w) -> ValueDistribution:
    """The achiever's answers behind a rerun of the carer's embeddings (save() recomputes every checksum)."""
    answers, embeddings = w.run("achiever", 1), w.run("carer", 1)
    return ValueDistribution(np.asarray(embeddings.embeddings), answers.records, dict(answers.manifest))


def test_embeddings_of_other_answers_are_refused(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    run = save_run(forged(w), tmp_path / "cand")
    assert gate(capsys, run, bank, "--verify", "0")[0] == 0  # the attack, when the check is switched off
    code, out, err = gate(capsys, run, bank, "--verify", "16")
    line = one_error_line(err)
    assert code == 2 and "PASS" not in out
    assert "embeddings do not match their answers" in line and re.search(r"seed \d+", line)
    assert TASK in line
    # compare and identify read run folders the same way
    for command in ("compare", "identify"):
        assert main([command, str(run), "--bank", bank, "--verify", "4"]) == 2, command
        assert "embeddings do not match their answers" in one_error_line(capsys.readouterr().err)


def test_a_swapped_text_behind_an_answer_is_refused(integrity_world, tmp_path, capsys):
    """The embedded text must be the question and the answer: a consistent (text, embedding) pair of another
    answer, filed under this answer, is caught without re-embedding it."""
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    mine, theirs = w.run("achiever", 1), w.run("carer", 1)
    recs = [{**a, "text": b["text"]} for a, b in zip(mine.records, theirs.records)]
    run = save_run(ValueDistribution(np.asarray(theirs.embeddings), recs, dict(mine.manifest)), tmp_path / "c")
    code, _, err = gate(capsys, run, bank, "--verify", "3")
    assert code == 2 and "embedded text is not its question and answer" in one_error_line(err)


def test_an_honest_run_is_verified_and_passes(integrity_world, tmp_path, capsys, figures):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    run = save_run(w.run("carer", 1), tmp_path / "cand")
    main(["gate", str(run), "--bank", bank, "--against", "carer", "--verify", "0"])  # warm: encoder loaded once
    capsys.readouterr()
    timings = {}
    for n in ("0", "16", "all"):
        start = time.perf_counter()
        code, out, err = gate(capsys, run, bank, "--verify", n)
        timings[n] = time.perf_counter() - start
        assert code == 0 and "PASSED" in out, err
    line = next(ln for ln in err.splitlines() if ln.startswith("verified"))
    assert "38 of 38 answers re-embedded" in line
    assert float(re.search(r"smallest cosine ([0-9.]+)", line).group(1)) >= 1 - verify.COSINE_TOLERANCE
    figures(
        f"verify (MiniLM, CPU, 38 answers): gate --verify 0 {timings['0']:.2f} s, --verify 16 {timings['16']:.2f} s, "
        f"--verify all {timings['all']:.2f} s"
    )


def test_the_default_sample_is_16_and_the_seed_is_fresh(integrity_world, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(verify, "DEFAULT_SAMPLE", 16)  # the suite's conftest sets 0; this is the real default
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    run = save_run(w.run("carer", 1), tmp_path / "cand")
    seeds = set()
    for _ in range(2):
        code, _, err = gate(capsys, run, bank)
        assert code == 0
        line = next(ln for ln in err.splitlines() if ln.startswith("verified"))
        assert "16 of 38 answers re-embedded" in line
        seeds.add(re.search(r"seed (\d+)", line).group(1))
    assert len(seeds) == 2


def test_stored_rows_match_their_text_far_inside_the_tolerance(integrity_world, figures):
    """The tolerance's margin, measured: float16 storage against other answers to the same questions."""
    w = integrity_world
    a, b = w.run("carer", 1), w.run("achiever", 1)
    a16 = np.asarray(a.embeddings, dtype=np.float16).astype(np.float64)
    fresh = np.asarray(a.embeddings, dtype=np.float64)

    def cos(x, y):
        return np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))

    same = cos(a16, fresh).min()
    other = cos(np.asarray(b.embeddings, dtype=np.float64), fresh).max()
    figures(f"verify: float16 storage cosine min {same:.6f}; another answer to the same question max {other:.4f}")
    assert 1 - same < verify.COSINE_TOLERANCE / 10 and other < 1 - 10 * verify.COSINE_TOLERANCE


@pytest.mark.parametrize("f,n,p", [(0.1, 16, 0.8147), (0.2, 16, 0.9719), (0.35, 16, 0.9990)])
def test_detection_probability_as_documented(f, n, p):
    assert verify.detection_probability(f, n) == pytest.approx(p, abs=1e-4)
