"""compare: the control ratio by hand, and --allow-other-questions for entries that asked other questions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic import manifest

from univar_eval.cli import main
from univar_eval.reports.compare import _attach_control
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution


def row(questionnaire, distance, lang="eng", run="m", reference="ref"):
    return {
        "run": run,
        "reference": reference,
        "lang": lang,
        "questionnaire": questionnaire,
        "task": f"univar_{questionnaire}_{lang}",
        "distance": distance,
    }


def test_ratio_to_control_by_hand():
    rows = [
        row("pvq", 0.05),
        row("wvs", 0.01),
        row("control", 0.02),
        row("pvq", 0.05, lang="fra"),  # no control in French
        row("pvq", 0.3, reference="other"),
        row("control", 0.0, reference="other"),  # zero control
        row("globe", math.nan),
        row("pvq", 0.04, run="n"),
    ]  # NaN distance; another run has no control
    _attach_control(rows)
    ratio = [r["ratio_to_control"] for r in rows]
    assert ratio[0] == pytest.approx(2.5) and ratio[1] == pytest.approx(0.5)
    assert ratio[2] is None  # the control itself has no ratio
    assert ratio[3] is None and rows[3]["control_distance"] is None
    assert ratio[4] is None and rows[4]["control_distance"] == 0.0
    assert ratio[6] is None and ratio[7] is None
    assert rows[0]["control_distance"] == 0.02


def unit(n, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_allow_other_questions(tmp_path, capsys):
    bank = Bank(tmp_path / "bank", create=True)
    ref = manifest("released", "eng")
    ref["questionnaire_version"] = "external:0123456789abcdef"  # e.g. UniVaR's released questions
    bank.add(ValueDistribution(unit(20, seed=1), [{"i": i} for i in range(20)], ref), model="released", source="csv")
    run = tmp_path / "run" / "univar_2026-01-01T00-00-00" / "univar_pvq_eng"
    ValueDistribution(unit(20, seed=2), [{"i": i} for i in range(20)], manifest("cand", "eng")).save(run)
    args = [
        "compare",
        str(tmp_path / "run"),
        "--bank",
        str(bank.path),
        "--permutations",
        "99",
        "--bootstrap",
        "0",
        "--min-answers",
        "5",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "questionnaire version differs (v1 vs external:0123456789abcdef)" in err and "\n" == err[-1]
    assert main([*args, "--allow-other-questions"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("cand"))
    assert "univar_pvq_eng" in line and "released" in line and line.rstrip().endswith("ok")
    # other settings are still refused with the flag
    other = manifest("cand2", "eng", encoder="labse")
    run2 = tmp_path / "run2" / "univar_2026-01-01T00-00-00" / "univar_pvq_eng"
    ValueDistribution(unit(20, seed=3), [{"i": i} for i in range(20)], other).save(run2)
    assert (
        main(
            [
                "compare",
                str(tmp_path / "run2"),
                "--bank",
                str(bank.path),
                "--allow-other-questions",
                "--permutations",
                "99",
                "--bootstrap",
                "0",
                "--min-answers",
                "5",
            ]
        )
        == 2
    )
    assert "encoder differs (labse vs fake)" in capsys.readouterr().err
