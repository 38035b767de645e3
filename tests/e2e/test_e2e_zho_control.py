"""End to end in Chinese: the per-language group ``univar_zho`` (PVQ, GLOBE and the control), banked, then a second
run compared against that bank; the comparison carries each value set's ratio to the Chinese control."""

from __future__ import annotations

import json

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.cli import main

pytestmark = pytest.mark.e2e

SETTINGS = json.dumps({"encoder": "minilm", "translator": "none"})


def _run(tiny_lm, work, name: str, seed: int):
    out = work / name
    run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "univar_zho",
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


def test_univar_zho_is_compared_with_the_chinese_control(tiny_lm, tmp_path, capsys):
    first = _run(tiny_lm, tmp_path, "first", 1)
    results = read_results(first)["results"]
    assert {"univar_pvq_zho", "univar_globe_zho", "univar_control_zho"} <= set(results)
    for task in ("univar_pvq_zho", "univar_globe_zho", "univar_control_zho"):
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
    control = by_task["univar_control_zho"]
    assert control["lang"] == "zho" and control["distance"] > 0
    for task in ("univar_pvq_zho", "univar_globe_zho"):
        row = by_task[task]
        assert row["lang"] == "zho"
        # the ratio is the value set's distance over the control's, for the same run, reference and language
        assert row["ratio_to_control"] == pytest.approx(row["distance"] / control["distance"])
    assert "vs control" in out and "univar_pvq_zho" in out
