"""gate.decide, the one decision function, with hand-computed inputs: the family, Holm, the three outcomes, the
rows that fail outside the family (the coverage hook), and every output carrying the quantity and both bounds."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from scipy.stats import t as t_dist

from univar_eval.reports import gate


def hyp(quantity, distance, se, upper, n=30):
    return {
        "quantity": quantity,
        "distance": distance,
        "statistic": distance**2,
        "se": se,
        "df": n - 1,
        "upper": upper,
        "p_difference": 0.5,
        "squared": True,
        "enough": True,
        "n_questions": n,
    }


def rows():
    return [
        gate.Check(
            "a",
            "values",
            "eng",
            gate.FAIL,
            "",
            tests=[hyp("d_S", 0.01, 1e-5, 0.02), hyp("d_Q", 0.03, 1e-4, 0.04)],
        ),
        gate.Check("b", "values", "eng", gate.FAIL, "", tests=[hyp("d_S", 0.12, 0.001, 0.14)]),
        gate.Check("c", "values", "deu", gate.FAIL, "incomplete: 12 of 57 questions unanswered", rule="incomplete"),
        gate.Check("univar_control_eng", "control", "eng", gate.FAIL, "", tests=[hyp("d_S", 0.2, 0.001, 0.25)]),
    ]


def test_one_family_holm_three_outcomes_and_the_incomplete_hook():
    checks = gate.decide(rows(), alpha=0.05, max_distance=0.05, max_question_distance=0.035)
    a, b, c, ctrl = checks
    # a: d_S passes (0.02 < 0.05), d_Q's bound 0.04 >= 0.035 and no excess: the row is inconclusive
    assert [t["outcome"] for t in a.tests] == ["pass", "inconclusive"] and a.outcome == "inconclusive"
    assert a.tests[1]["tolerance"] == 0.035 and a.quantity == "d_Q"
    # b: (0.0144 - 0.0025) / 0.001 = 11.9 on 29 df; Holm over the 3 tests of the deciding family
    raw = t_dist.sf(11.9, 29)
    assert b.outcome == "fail" and b.p_excess == pytest.approx(raw) and b.p_adjusted == pytest.approx(3 * raw)
    # the Bonferroni lower bound at 1 - 0.05 / 3
    assert b.lower == pytest.approx((0.0144 - t_dist.ppf(1 - 0.05 / 3, 29) * 0.001) ** 0.5)
    assert b.reason.startswith("d_S exceeds 0.05: lower bound ")
    # the incomplete row fails outside the family, untouched
    assert (c.outcome, c.reason, c.p_adjusted) == ("fail", "incomplete: 12 of 57 questions unanswered", None)
    # the control is its own family of one (no correction) and never decides
    assert ctrl.p_adjusted == pytest.approx(ctrl.p_excess) and not ctrl.decides
    assert gate.summary(checks)["n_failed"] == 2 and gate.exit_code(checks) == 1
    # deciding again (e.g. after --fail-on-value rows are added) gives the same verdicts
    again = gate.decide(checks, alpha=0.05, max_distance=0.05, max_question_distance=0.035)
    assert [r.outcome for r in again] == ["inconclusive", "fail", "fail", "fail"]


def test_without_d_the_difference_test_decides():
    checks = rows()
    checks[1].tests[0]["p_difference"] = 0.001
    gate.decide(checks, alpha=0.05, max_distance=None)
    assert checks[1].outcome == "fail" and checks[1].p_adjusted == pytest.approx(0.003)
    assert checks[0].outcome == "pass" and checks[0].reason.startswith(gate.NO_DIFFERENCE)


def test_every_output_carries_the_quantity_and_both_bounds():
    checks = gate.decide(rows(), alpha=0.05, max_distance=0.05)
    b = checks[1]
    bounds = f"[{b.lower:.4f}, 0.1400]"
    text = gate.to_text(checks, "t")
    assert "quantity" in text.splitlines()[1] and bounds in text and "d_S" in text
    # Markdown escapes brackets (no cell can render as a link); the escaped form renders as the bounds
    assert bounds.replace("[", "\\[").replace("]", "\\]") in gate.to_markdown(checks, "t")
    out = ET.fromstring(gate.to_junit(checks).split("\n", 1)[1]).find(".//testcase[@name='b']/system-out").text
    assert "quantity=d_S" in out and f"lower={b.lower}" in out and "upper=0.14" in out
    js = gate.to_json(checks, {})
    row = next(c for c in js["checks"] if c["name"] == "b")
    assert row["tests"][0]["lower"] == b.lower and row["tests"][0]["upper"] == 0.14
