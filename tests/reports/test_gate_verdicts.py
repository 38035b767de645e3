"""The gate's verdicts with known answers: each check's statistics are scripted (compare_sets stubbed with the
agreed contract), so outcomes, reasons, exit codes and every output format can be checked exactly."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.reports import gate
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

ENC = {"name": "minilm", "revision": None, "dimension": 8, "fingerprint": [0.1] * 8, "fingerprint_id": "fp"}


def manifest(model, q, lang, counts=None):
    return {
        "format": "univar-eval/value-distribution/1",
        "model": model,
        "task": f"univar_{q}_{lang}",
        "lang": lang,
        "questionnaire": q,
        "questionnaire_version": f"v-{lang}",
        "encoder": ENC,
        "translator": {"name": "none" if lang == "eng" else "nllb-600m"},
        "created": "2026-11-25T00:00:00",
        "counts": counts or {},
    }


def dist(model, q, lang, n, counts=None):
    emb = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    return ValueDistribution(emb, [{"id": f"q{i % 20}"} for i in range(n)], manifest(model, q, lang, counts))


class Script:
    """compare_sets stand-in: the result of a comparison is looked up by the candidate's number of answers."""

    def __init__(self):
        self.by_n: dict[int, dict] = {}
        self.calls: list[dict] = []
        self.noise = (math.nan, math.nan)  # within_noise's distance and upper bound

    def set(self, n, **fields):
        base = {
            "metric": "mmd",
            "distance": 0.01,
            "statistic": 1e-4,
            "p_value": 0.5,
            "ci_low": 0.0,
            "ci_high": 0.02,
            "upper": 0.02,
            "n_x": n,
            "n_y": n,
            "n_permutations": 1000,
            "n_bootstrap": 200,
            "seed": 0,
            "details": {},
            "design": "per_question",
            "n_questions": 20,
            "n_left_out_x": 0,
            "n_left_out_y": 0,
            "problem": None,
            "note": None,
        }
        self.by_n[n] = {**base, **fields}

    def compare_sets(
        self,
        x,
        y,
        metric="mmd",
        *,
        n_permutations,
        n_bootstrap,
        seed,
        groups_x,
        groups_y,
        alpha=0.05,
        paired=True,
        cache=None,
    ):
        self.calls.append(
            {
                "n_x": len(x),
                "paired": paired,
                "alpha": alpha,
                "n_permutations": n_permutations,
                "n_bootstrap": n_bootstrap,
            }
        )
        r = dict(self.by_n[len(x)])
        if not paired:
            r["design"] = "unpaired"

        class R:
            distance = r["distance"]

            @staticmethod
            def to_dict():
                return dict(r)

        return R()

    def gate_comparison(
        self, dist, ref, metric, *, alpha, n_bootstrap, n_permutations, seed, allow_other_questions=False
    ):
        """The gate's comparison: one tested quantity (d_S) from the scripted fields. ``se`` defaults to the
        standard error that puts the 95% Student-t bound (19 df) at ``upper``."""
        self.calls.append(
            {
                "n_x": len(dist),
                "paired": not allow_other_questions,
                "alpha": alpha,
                "n_permutations": n_permutations,
                "n_bootstrap": n_bootstrap,
            }
        )
        r = dict(self.by_n[len(dist)])
        stat = r.get("statistic_", r["distance"] ** 2 if math.isfinite(r["distance"]) else math.nan)
        se = r.get("se", max(r["upper"] ** 2 - stat, 1e-12) / T95 if math.isfinite(r["upper"]) else 1.0)
        test = {
            "quantity": "d_S" if not allow_other_questions else "mmd (unpaired)",
            "distance": r["distance"],
            "upper": r["upper"],
            "p_difference": r["p_value"],
            "statistic": stat,
            "se": se,
            "df": 19,
            "squared": True,
            "enough": True,
            "n_questions": r["n_questions"],
        }
        return {
            "status": "ok",
            "tests": [test],
            "design": "unpaired" if allow_other_questions else r["design"],
            "n_x": len(dist),
            "n_y": len(ref),
            "n_questions": r["n_questions"],
            "n_left_out_x": r["n_left_out_x"],
            "n_left_out_y": r["n_left_out_y"],
            "note": r["note"],
            "problem": r["problem"],
            "n_copies": 0,
        }

    def within_noise(self, x, groups, metric, seed, **kw):
        class R:
            distance, upper = self.noise

        return R()

    def baseline_noise(self, ref, metric, seed, **kw):
        return tuple(None if math.isnan(v) else v for v in self.noise)


T95 = 1.729133  # Student t, 0.95, 19 df


@pytest.fixture()
def script(monkeypatch):
    s = Script()
    monkeypatch.setattr(distance_mod, "compare_sets", s.compare_sets)
    monkeypatch.setattr(distance_mod, "within_noise", s.within_noise, raising=False)
    monkeypatch.setattr(gate, "gate_comparison", s.gate_comparison)
    monkeypatch.setattr(gate, "baseline_noise", s.baseline_noise)
    return s


def setup(tmp_path, baseline: dict, candidate: dict, cand_counts=None):
    """baseline/candidate: {(questionnaire, lang): n answers}. The baseline's entries have the candidate's sizes."""
    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many([(dist("base", q, lang, n), "base", "test") for (q, lang), n in baseline.items()])
    run = tmp_path / "cand"
    for (q, lang), n in candidate.items():
        dist("cand", q, lang, n, cand_counts).save(run / "univar_2026-11-25T00-00-00" / f"univar_{q}_{lang}")
    return str(run), str(bank.path)


def gate_cli(run, bank, *extra, tmp_path=None):
    return main(["gate", run, "--bank", bank, "--against", "base", *extra])


def check_by(report_file):
    return {c["name"]: c for c in json.loads(report_file.read_text())["checks"]}


# -- three outcomes with --max-distance ------------------------------------------------------------------------
def test_pass_only_when_the_upper_bound_is_below_d(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    script.set(40, distance=0.01, upper=0.04, p_value=0.6)
    assert gate_cli(run, bank, "--max-distance", "0.05") == 0
    out = capsys.readouterr().out
    assert "equivalent: d_S upper bound 0.0400 < 0.05 (95% one-sided; d_S 0.0100)" in out and out.rstrip().endswith(
        "PASSED: 1 of 1 check pass, 0 fail, 0 inconclusive"
    )
    # the same numbers with a tolerance under the bound: no evidence of equivalence -> inconclusive, exit 1
    assert gate_cli(run, bank, "--max-distance", "0.03") == 1
    assert "INCONCLUSIVE: 0 of 1 check pass, 0 fail, 1 inconclusive" in capsys.readouterr().out
    assert gate_cli(run, bank, "--max-distance", "0.03", "--allow-inconclusive") == 0
    assert "INCONCLUSIVE (allowed)" in capsys.readouterr().out


def test_inconclusive_says_the_bound_and_how_many_answers_would_decide(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    # distance 0.02, bound 0.08, D 0.05: the half-width 0.06 must shrink to 0.03, a factor 2 -> 4x the answers
    script.set(40, distance=0.02, upper=0.08, p_value=0.3, n_questions=20)
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--max-distance", "0.05", "--json", str(js)) == 1
    c = check_by(js)["univar_pvq_eng"]
    assert c["outcome"] == "inconclusive" and c["upper"] == 0.08
    assert c["to_decide"] == (
        "about 160 answers per side (120 more) would roughly bring the bound below 0.05, "
        "i.e. about 8 answers per question (lm-eval repeats)"
    )
    assert c["reason"].startswith("inconclusive: d_S upper bound 0.0800 >= 0.05 and p(d_S <= 0.05) = ")
    assert (c["quantity"], c["upper"]) == ("d_S", 0.08)
    # above D, excess not shown: stat 0.0081, se (0.0225 - 0.0081) / 1.7291 = 0.008328, t = 0.0056 / 0.008328
    # = 0.6724, p(d_S <= 0.05) = 0.2546 (19 df); z from 0.6601 to 1.6449: (1.6449/0.6601)^2 = 6.21 -> 249 answers
    script.set(40, distance=0.09, upper=0.15, p_value=0.2, n_questions=None)
    assert gate_cli(run, bank, "--max-distance", "0.05", "--json", str(js)) == 1
    c = check_by(js)["univar_pvq_eng"]
    assert c["outcome"] == "inconclusive" and c["p_excess"] == pytest.approx(0.2546, abs=2e-4)
    assert c["to_decide"] == (
        "about 249 answers per side (209 more) would roughly make a distance above 0.05 significant"
    )


def test_fail_needs_the_lower_bound_above_d(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    # d_S 0.09 (stat 0.0081), se 0.001: t = (0.0081 - 0.0025) / 0.001 = 5.6, p = 1.0e-5 (19 df)
    script.set(40, distance=0.09, upper=0.12, p_value=0.001, se=0.001)
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--max-distance", "0.05", "--json", str(js)) == 1
    c = check_by(js)["univar_pvq_eng"]
    assert c["outcome"] == "fail" and c["p_excess"] == pytest.approx(1.03e-5, rel=0.05)
    # the lower bound (Bonferroni over 1 test: 95%): sqrt(0.0081 - 1.7291 * 0.001) = 0.07982
    assert c["lower"] == pytest.approx(0.07982, abs=1e-4) and c["quantity"] == "d_S"
    assert c["reason"].startswith("d_S exceeds 0.05: lower bound 0.0798 (0.95 one-sided, Bonferroni over 1)")
    assert "FAILED: 0 of 1" in capsys.readouterr().out
    # the old rule's fail (difference significant, estimate above D) without evidence of excess: inconclusive
    script.set(40, distance=0.09, upper=0.12, p_value=0.001)
    assert gate_cli(run, bank, "--max-distance", "0.05", "--json", str(js)) == 1
    assert check_by(js)["univar_pvq_eng"]["outcome"] == "inconclusive"
    # significant but below D, with a bound above D: neither equivalence nor a relevant difference
    script.set(40, distance=0.04, upper=0.07, p_value=0.001)
    assert gate_cli(run, bank, "--max-distance", "0.05", "--allow-inconclusive") == 0
    assert "INCONCLUSIVE (allowed): 0 of 1 check pass, 0 fail, 1 inconclusive" in capsys.readouterr().out


def test_without_d_a_difference_test_labelled_as_such(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    script.set(40, distance=0.03, ci_low=0.0, ci_high=0.06, upper=0.055, p_value=0.4)
    assert gate_cli(run, bank) == 0
    out = capsys.readouterr().out
    assert "no significant difference (not a proof of equivalence): d_S 0.0300 (p = 0.4000, holm 0.4000)" in out
    assert "no max distance: difference test only" in out
    script.set(40, distance=0.03, p_value=0.01)
    assert gate_cli(run, bank) == 1
    assert "values differ from the baseline: d_S 0.0300 (p = 0.0100, holm 0.0100 < 0.05)" in capsys.readouterr().out


def test_holm_over_checks_by_hand(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40, ("pvq", "deu"): 41}, {("pvq", "eng"): 40, ("pvq", "deu"): 41})
    script.set(40, p_value=0.03)
    script.set(41, p_value=0.03)
    assert gate_cli(run, bank) == 0  # Holm: 2 x 0.03 = 0.06 >= 0.05 for both
    assert gate_cli(run, bank, "--correction", "none") == 1
    # enough permutations for alpha / 2 checks: ceil(10 * 2 / 0.05) = 400 < 1000 stays 1000
    assert {c["n_permutations"] for c in script.calls} == {1000}


def test_every_format_carries_all_three_outcomes(tmp_path, script, capsys):
    sizes = {("pvq", "eng"): 40, ("pvq", "deu"): 41, ("pvq", "fra"): 42}
    run, bank = setup(tmp_path, sizes, sizes)
    script.set(40, distance=0.01, upper=0.03, p_value=0.7)  # pass
    script.set(41, distance=0.20, upper=0.25, p_value=0.001)  # fail
    script.set(42, distance=0.03, upper=0.09, p_value=0.5)  # inconclusive
    f = {k: tmp_path / f"g.{k}" for k in ("json", "md", "xml")}
    assert (
        gate_cli(
            run,
            bank,
            "--max-distance",
            "0.05",
            "--json",
            str(f["json"]),
            "--markdown",
            str(f["md"]),
            "--junit",
            str(f["xml"]),
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "FAILED: 1 of 3 checks pass, 1 fail, 1 inconclusive" in out
    report = json.loads(f["json"].read_text())
    assert {c["name"]: c["outcome"] for c in report["checks"]} == {
        "univar_pvq_eng": "pass",
        "univar_pvq_deu": "fail",
        "univar_pvq_fra": "inconclusive",
    }
    assert (report["verdict"], report["n_passed"], report["n_failed"], report["n_inconclusive"]) == ("failed", 1, 1, 1)
    md = f["md"].read_text()
    assert md.startswith("### univar-eval gate: FAILED (1/3 pass, 1 fail, 1 inconclusive)")
    assert "| ❌ | univar_pvq_deu |" in md and "| ❔ | univar_pvq_fra |" in md and "| ✅ | univar_pvq_eng |" in md
    root = ET.parse(f["xml"]).getroot()
    failed = {
        c.get("name"): c.find("failure").get("type") for c in root.iter("testcase") if c.find("failure") is not None
    }
    assert failed == {"univar_pvq_deu": "fail", "univar_pvq_fra": "inconclusive"}
    # allowed inconclusive checks are JUnit "skipped", not failures
    gate_cli(run, bank, "--max-distance", "0.05", "--allow-inconclusive", "--junit", str(f["xml"]))
    suite = ET.parse(f["xml"]).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "1")


def test_insufficient_stays_a_failure_with_d(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 5})
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--max-distance", "0.05", "--allow-inconclusive", "--json", str(js)) == 1
    c = check_by(js)["univar_pvq_eng"]
    assert (c["outcome"], c["reason"]) == ("fail", "insufficient answers (5 vs baseline 40; need 10)")
    assert not script.calls


# -- missing work ------------------------------------------------------------------------------------------------
def test_baseline_entries_the_candidate_lacks_fail(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40, ("pvq", "deu"): 41, ("wvs", "eng"): 42}, {("pvq", "eng"): 40})
    script.set(40, p_value=0.9)
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--json", str(js)) == 1
    checks = check_by(js)
    assert checks["univar_pvq_deu"]["reason"] == "missing in candidate (the baseline has 41 answers for it)"
    assert checks["univar_wvs_eng"]["outcome"] == "fail" and checks["univar_pvq_eng"]["outcome"] == "pass"
    # --tasks and --langs narrow both sides
    assert gate_cli(run, bank, "--tasks", "univar_pvq", "--langs", "eng") == 0
    assert gate_cli(run, bank, "--tasks", "univar_pvq_eng") == 0
    # a named language that a side lacks fails: deu (baseline only) and fra (neither side)
    assert gate_cli(run, bank, "--tasks", "univar_pvq", "--langs", "eng", "deu", "fra", "--json", str(js)) == 1
    checks = check_by(js)
    assert checks["univar_pvq_deu"]["reason"].startswith("missing in candidate")
    assert checks["lang fra"]["reason"] == "language fra (named in --langs) is missing in candidate and baseline"
    assert gate_cli(run, bank, "--tasks", "univar_globe", "--json", str(js)) == 1
    assert check_by(js)["univar_globe"]["reason"] == (
        "task univar_globe (named in --tasks) is missing in candidate and baseline"
    )


def test_candidate_task_without_baseline_fails(tmp_path, script):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40, ("pvq", "deu"): 41})
    script.set(40, p_value=0.9)
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--json", str(js)) == 1
    assert check_by(js)["univar_pvq_deu"]["reason"].startswith("no baseline entry for base / univar_pvq_deu (")
    assert "--tasks" in check_by(js)["univar_pvq_deu"]["reason"]


# -- the control never decides -----------------------------------------------------------------------------------
def test_control_is_reported_with_ratios_and_never_decides(tmp_path, script, capsys):
    sizes = {("pvq", "eng"): 40, ("control", "eng"): 41}
    run, bank = setup(tmp_path, sizes, sizes)
    script.set(40, distance=0.30, upper=0.01, p_value=0.9)
    script.set(41, distance=0.10, upper=0.50, p_value=0.001, se=1e-4)  # the control differs a lot: no matter
    js, xml = tmp_path / "g.json", tmp_path / "g.xml"
    assert gate_cli(run, bank, "--max-distance", "0.05", "--json", str(js), "--junit", str(xml)) == 0
    out = capsys.readouterr().out
    checks = check_by(js)
    assert checks["univar_pvq_eng"]["ratio_to_control"] == pytest.approx(3.0)
    assert checks["univar_control_eng"]["outcome"] == "fail" and checks["univar_control_eng"]["decides"] is False
    assert "3.00× ctrl" in out and "FAIL (info)" in out and "PASSED: 1 of 1 check pass" in out
    assert ET.parse(xml).getroot().find("testsuite").get("failures") == "0"
    # nor does a missing control
    run2, bank2 = setup(tmp_path / "b", sizes, {("pvq", "eng"): 40})
    assert gate_cli(run2, bank2, "--max-distance", "0.05") == 0


# -- finite or fail ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"distance": math.nan, "se": 0.01}, "not a finite result: distance is not finite"),
        ({"p_value": math.nan}, "not a finite result: p-value is not finite"),
        ({"upper": math.inf}, "not a finite result: upper bound is not finite"),
        ({"se": math.nan}, "not a finite result: standard error is not finite"),
        (
            {"problem": "every answer shares one question id: no pair to compare"},
            "not a finite result: every answer shares one question id: no pair to compare",
        ),
    ],
)
def test_non_finite_results_fail_with_their_reason(tmp_path, script, fields, reason):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    script.set(40, **{"distance": 0.0, "upper": 0.01, "p_value": 0.9, **fields})
    js = tmp_path / "g.json"
    assert gate_cli(run, bank, "--max-distance", "0.05", "--allow-inconclusive", "--json", str(js)) == 1
    c = check_by(js)["univar_pvq_eng"]
    assert (c["outcome"], c["reason"]) == ("fail", reason)


# -- options -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--alpha", "0"], "error: --alpha must be between 0 and 1 (exclusive), got 0.0"),
        (["--alpha", "1"], "error: --alpha must be between 0 and 1 (exclusive), got 1.0"),
        (["--alpha", "nan"], "error: --alpha must be between 0 and 1 (exclusive), got nan"),
        (["--max-distance", "-0.1"], "error: --max-distance must be a finite number >= 0, got -0.1"),
        (["--max-distance", "inf"], "error: --max-distance must be a finite number >= 0, got inf"),
        (["--max-distance", "nan"], "error: --max-distance must be a finite number >= 0, got nan"),
        (["--permutations", "0"], "error: --permutations must be at least 99, got 0"),
        (["--min-answers", "1"], "error: --min-answers must be at least 2, got 1"),
        (["--bootstrap", "0"], "error: --bootstrap must be at least 1, got 0"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, script, capsys, args, message):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    assert gate_cli(run, bank, *args) == 2
    assert capsys.readouterr().err.splitlines() == [message]
    assert not script.calls


# -- design: shared questions, unpaired, noise, truncation ---------------------------------------------------------
def test_left_out_answers_are_counted_and_shared_shift_is_explained(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    note = "one answer per question: only shifts shared across questions are testable; ask for repeats"
    script.set(40, design="shared_shift", n_left_out_x=3, n_left_out_y=1, note=note)
    js, md = tmp_path / "g.json", tmp_path / "g.md"
    gate_cli(run, bank, "--json", str(js), "--markdown", str(md))
    c = check_by(js)["univar_pvq_eng"]
    assert (c["design"], c["n_left_out"], c["n_left_out_baseline"]) == ("shared_shift", 3, 1)
    out = capsys.readouterr().out
    assert f"note: {note}" in out and note in md.read_text()
    assert "[left out: 3 candidate and 1 baseline answers the comparison does not use" in out
    assert f"note: {note}" in json.loads(js.read_text())["notes"]


def test_allow_other_questions_is_unpaired_in_every_output(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    script.set(40)
    f = {k: tmp_path / f"g.{k}" for k in ("json", "md", "xml")}
    assert (
        gate_cli(
            run,
            bank,
            "--allow-other-questions",
            "--json",
            str(f["json"]),
            "--markdown",
            str(f["md"]),
            "--junit",
            str(f["xml"]),
        )
        == 0
    )
    assert [c["paired"] for c in script.calls] == [False]
    out = capsys.readouterr().out
    assert "UNPAIRED" in out.splitlines()[0] and "UNPAIRED comparison (--allow-other-questions)" in out
    report = json.loads(f["json"].read_text())
    assert report["settings"]["design"] == "unpaired" and report["checks"][0]["design"] == "unpaired"
    assert "UNPAIRED comparison" in f["md"].read_text()
    suite = ET.parse(f["xml"]).getroot().find("testsuite")
    assert suite.get("name").endswith("(unpaired)") and "design=unpaired" in suite.find("testcase/system-out").text
    gate_cli(run, bank)
    assert script.calls[-1]["paired"] is True


def test_baseline_noise_is_reported_beside_the_distance(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40})
    script.set(40, distance=0.09, p_value=0.001)
    script.noise = (0.02, 0.05)
    assert gate_cli(run, bank) == 1
    out = capsys.readouterr().out
    assert "values differ from the baseline: d_S 0.0900 (p = 0.0010, holm 0.0010 < 0.05), baseline noise 0.0200" in out
    assert "0.0200 (<0.0500)" in out  # the noise column
    script.noise = (math.nan, math.nan)  # no repeats in the baseline: nothing shown
    js = tmp_path / "g.json"
    gate_cli(run, bank, "--json", str(js))
    assert check_by(js)["univar_pvq_eng"]["noise"] is None


def test_encoder_truncation_above_5_percent_warns(tmp_path, script, capsys):
    run, bank = setup(
        tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40}, cand_counts={"n_answers": 40, "n_encoder_truncated": 4}
    )
    script.set(40)
    gate_cli(run, bank)
    assert (
        "warning: run: 10% of the texts exceeded the encoder's maximum length (the question's middle was cut)"
        in capsys.readouterr().out
    )
    run2, bank2 = setup(
        tmp_path / "b",
        {("pvq", "eng"): 40},
        {("pvq", "eng"): 40},
        cand_counts={"n_answers": 40, "n_encoder_truncated": 2},
    )  # 5 %: not above
    gate_cli(run2, bank2)
    assert "warning" not in capsys.readouterr().out


def test_compare_shows_design_noise_and_left_out(tmp_path, script, capsys):
    run, bank = setup(
        tmp_path, {("pvq", "eng"): 40}, {("pvq", "eng"): 40}, cand_counts={"n_answers": 40, "n_encoder_truncated": 10}
    )
    script.set(
        40,
        design="shared_shift",
        n_left_out_x=2,
        note="one answer per question: only shifts shared across questions are testable",
    )
    script.noise = (0.02, 0.05)
    assert main(["compare", run, "--bank", bank]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("cand "))
    assert "shared_shift" in row and "40 (-2)" in row and "0.0200 (<0.0500)" in row
    assert "note: one answer per question: only shifts shared across questions are testable" in out
    assert "warning: run: 25% of the texts exceeded" in out
    assert main(["compare", run, "--bank", bank, "--allow-other-questions"]) == 0
    out = capsys.readouterr().out
    assert "UNPAIRED comparison (--allow-other-questions)" in out and "unpaired" in out


def test_evidence_needed_when_distance_sits_at_d():
    c = gate.Check("t", "values", "eng", gate.INCONCLUSIVE, "", distance=0.05, upper=0.08, p_value=0.5, n=40)
    assert gate.evidence_needed(c, 0.05, 0.05).startswith("the distance sits at the tolerance")


def test_one_question_asked_with_repeats_fails_instead_of_passing_on_nan(tmp_path, capsys):
    """Issue 13, item 3, with the real statistics: every answer shares one question id, so no pair of answers to
    different questions exists; the distance cannot be computed and the check must fail with its reason."""
    rng = np.random.default_rng(0)
    bank = Bank(tmp_path / "bank", create=True)

    def same_q(n):
        return ValueDistribution(
            rng.normal(size=(n, 8)).astype(np.float32), [{"id": "q1"}] * n, manifest("base", "pvq", "eng")
        )

    bank.add(same_q(30), model="base", source="test")
    cand = same_q(30)
    cand.manifest["model"] = "cand"
    cand.save(tmp_path / "cand" / "univar_2026-11-25T00-00-00" / "univar_pvq_eng")
    js = tmp_path / "g.json"
    assert (
        main(
            [
                "gate",
                str(tmp_path / "cand"),
                "--bank",
                str(bank.path),
                "--against",
                "base",
                "--max-distance",
                "0.05",
                "--allow-inconclusive",
                "--json",
                str(js),
            ]
        )
        == 1
    )
    c = check_by(js)["univar_pvq_eng"]
    assert c["outcome"] == "fail" and c["reason"].startswith("not a finite result: ")


def test_a_candidate_run_without_any_distribution_fails_every_baseline_entry(tmp_path, script, capsys):
    run, bank = setup(tmp_path, {("pvq", "eng"): 40, ("pvq", "deu"): 41}, {})
    (tmp_path / "cand").mkdir()  # lm-eval wrote its results, but no univar task finished
    (tmp_path / "cand" / "results_2026-11-25T00-00-00.json").write_text(json.dumps({"results": {}}))
    assert gate_cli(run, bank, "--max-distance", "0.05") == 1
    out = capsys.readouterr().out
    assert out.count("missing in candidate") == 2 and "FAILED: 0 of 2 checks pass, 2 fail" in out
