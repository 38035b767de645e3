"""``bank add --as-repeats``: several runs of one model become one entry whose answers are repeats of each question;
without the flag, several runs of one model are refused."""

from __future__ import annotations

import json

from univar_eval.cli import main
from univar_eval.pipeline.questionnaire import load
from univar_eval.storage.bank import Bank


def run_file(path, answers):
    questions = load("pvq", "eng").records[: len(answers)]
    with open(path, "w") as fh:
        for q, a in zip(questions, answers):
            fh.write(
                json.dumps(
                    {
                        "model": "alpha",
                        "lang": "eng",
                        "id": q["id"],
                        "question": q["question"],
                        "answer": a,
                        "questionnaire": "pvq",
                    }
                )
                + "\n"
            )
    return str(path)


def test_two_runs_of_one_model_are_refused_without_the_flag_and_merged_with_it(tmp_path, capsys, minilm):
    first = run_file(tmp_path / "run1.jsonl", [f"I would help them, kindness first ({i})." for i in range(12)])
    second = run_file(tmp_path / "run2.jsonl", [f"Helping others is what I would do ({i})." for i in range(12)])
    bank_dir = str(tmp_path / "bank")
    assert main(["bank", "add", "--bank", bank_dir, "--encoder", "minilm", first, second]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: alpha / univar_pvq_eng comes from 2 runs ({first}, {second}); pass --as-repeats to merge "
        "them into one entry as repeats, or give each run its own --name"
    ]
    assert not (tmp_path / "bank" / "bank.json").exists()

    assert main(["bank", "add", "--bank", bank_dir, "--encoder", "minilm", "--as-repeats", first, second]) == 0
    assert "added alpha / univar_pvq_eng: 24 answers (2 runs merged as repeats" in capsys.readouterr().out
    bank = Bank(bank_dir)
    entry = bank.entry("alpha", "univar_pvq_eng")
    dist = bank.load(entry, with_answers=True)
    assert len(dist) == 24 and [r["run"] for r in dist.records] == [0] * 12 + [1] * 12
    ids = [r["id"] for r in dist.records]
    assert ids[:12] == ids[12:]  # every question answered twice: repeats
    assert entry["source"] == f"{first}, {second}"
