"""End to end in one non-Latin-script language: the per-language group ``univar_<lang>`` over all five sets (PVQ,
WVS, GLOBE, moral situations and the control), banked, then a second run compared against that bank; every value-set
row carries its ratio to that language's control."""

from __future__ import annotations

import json

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.cli import main
from univar_eval.pipeline.questionnaire import QUESTIONNAIRES

pytestmark = pytest.mark.e2e

LANG = "zho"  # Chinese script; every set has a data file in it
TASKS = [f"univar_{q}_{LANG}" for q in QUESTIONNAIRES]
SETTINGS = json.dumps({"encoder": "minilm", "translator": "none"})


def _run(tiny_lm, work, name: str, seed: int):
    out = work / name
    run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            f"univar_{LANG}",
            "--limit",
            "12",
            "--output_path",
            str(out),
            "--log_samples",
            "--gen_kwargs",
            "do_sample=True,temperature=1.0,max_gen_toks=16",
            "--seed",
            str(seed),
            "--metadata",
            SETTINGS,
        ],
        cwd=work,
    )
    return out


def test_every_set_of_one_language_is_banked_and_compared_with_its_control(tiny_lm, tmp_path, capsys):
    first = _run(tiny_lm, tmp_path, "first", 1)
    results = read_results(first)["results"]
    assert len(TASKS) == 5 and set(TASKS) <= set(results)
    for task in TASKS:
        assert results[task]["n_answers,none"] + results[task]["n_empty,none"] == 12
    bank = tmp_path / "bank"
    assert main(["bank", "add", str(first), "--bank", str(bank), "--name", "tiny-first"]) == 0
    capsys.readouterr()

    second = _run(tiny_lm, tmp_path, "second", 2)
    report_path = tmp_path / "report.json"
    code = main(
        [
            "compare",
            str(second),
            "--bank",
            str(bank),
            "--permutations",
            "99",
            "--bootstrap",
            "0",
            "-o",
            str(report_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    rows = json.loads(report_path.read_text())["rows"]
    by_task = {r["task"]: r for r in rows}
    assert set(TASKS) <= set(by_task)
    control = by_task[f"univar_control_{LANG}"]
    assert control["lang"] == LANG and control["distance"] > 0
    for task in TASKS:
        if task == control["task"]:
            continue
        row = by_task[task]
        assert row["lang"] == LANG
        # the ratio is the value set's distance over the control's, for the same run, reference and language
        assert row["ratio_to_control"] == pytest.approx(row["distance"] / control["distance"])
    assert "vs control" in out and all(task in out for task in TASKS)
