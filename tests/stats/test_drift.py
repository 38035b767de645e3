"""Per-value drift (issue 19): statistics against hand computations, the validation figures on synthetic
answers, rendering (escaping), the value circle, and the ``drift`` command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from synthetic import manifest

from univar_eval.cli import main
from univar_eval.pipeline.questionnaire import load
from univar_eval.reports import drift as report
from univar_eval.reports.plot import PVQ_CIRCLE
from univar_eval.stats import distance
from univar_eval.stats.drift import PER_QUESTION, SHARED_SHIFT, value_drift
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

PVQ = load("pvq", "eng")
LABELS = {r["id"]: (r["value"], r["higher_order"]) for r in PVQ.records}
VALUES = sorted({v for v, _ in LABELS.values()})


def two_sides(seed, *, shifted=None, repeats=3, shift=0.6, noise=0.35, dim=48, questions=None):
    """Candidate and baseline answers to PVQ's questions; ``shifted``: the value whose answers move."""
    rng = np.random.default_rng(seed)
    x, y, ix, iy = [], [], [], []
    for qid in questions or LABELS:
        centre = rng.normal(size=dim)
        centre /= np.linalg.norm(centre)
        moved = centre + shift * rng.normal(size=dim) / np.sqrt(dim) if LABELS[qid][0] == shifted else centre
        for side, c, ids in ((y, centre, iy), (x, moved, ix)):
            for _ in range(repeats):
                side.append(c / np.linalg.norm(c) + noise * rng.normal(size=dim) / np.sqrt(dim))
                ids.append(qid)
    return np.array(x), np.array(y), ix, iy


# -- statistics against independent computations ----------------------------------------------------------
def test_value_statistic_is_the_mean_of_per_question_unbiased_mmd2_and_shares_add_up():
    x, y, ix, iy = two_sides(0, shifted="hedonism")
    r = value_drift(x, y, ix, iy, LABELS, n_permutations=199, n_bootstrap=50, grouped=True)
    assert r.design == PER_QUESTION and r.n_questions == 171
    ix, iy = np.array(ix), np.array(iy)
    per_q = {q: distance.mmd2_unbiased(x[ix == q], y[iy == q]) for q in LABELS}
    total = sum(per_q.values())
    hed = [per_q[q] for q in LABELS if LABELS[q][0] == "hedonism"]
    row = next(v for v in r.values if v.label == "hedonism")
    assert row.statistic == pytest.approx(np.mean(hed), abs=1e-9)
    assert row.distance == pytest.approx(math.sqrt(np.mean(hed)), abs=1e-9)
    assert row.share == pytest.approx(sum(hed) / total, abs=1e-9)
    assert sum(v.share for v in r.values) == pytest.approx(1.0, abs=1e-9)
    assert r.total_statistic == pytest.approx(total / 171, abs=1e-9)
    assert row.ci_low <= row.distance <= row.ci_high and row.share_low <= row.share <= row.share_high
    # higher-order groups: PVQ's four, each the mean over its questions
    assert sorted(g.label for g in r.groups) == [
        "conservation",
        "openness_to_change",
        "self_enhancement",
        "self_transcendence",
    ]
    assert r.groups[0].label == "openness_to_change"  # hedonism is filed there


def test_one_changed_value_is_ranked_first_and_the_only_significant_one():
    for seed, target in ((1, "security_personal"), (2, "benevolence_caring")):
        x, y, ix, iy = two_sides(seed, shifted=target)
        r = value_drift(x, y, ix, iy, LABELS, n_permutations=4999, n_bootstrap=0, seed=seed)
        assert r.values[0].label == target
        assert r.values[0].p_adjusted < 0.01 and r.values[0].significant
        assert not any(v.significant for v in r.values[1:])


def test_without_change_at_most_alpha_of_the_values_are_flagged_on_average():
    flagged = []
    for seed in range(6):
        x, y, ix, iy = two_sides(100 + seed)
        r = value_drift(x, y, ix, iy, LABELS, n_permutations=999, n_bootstrap=0, seed=seed)
        flagged.append(np.mean([bool(v.significant) for v in r.values]))
    assert np.mean(flagged) <= 0.05


def test_one_answer_per_question_is_a_descriptive_ranking_without_p_values():
    x, y, ix, iy = two_sides(3, shifted="tradition", repeats=1)
    r = value_drift(x, y, ix, iy, LABELS, n_permutations=199)
    assert r.design == SHARED_SHIFT and "no test" in r.note
    assert all(v.p_value is None and v.ci_low is None and v.status == "ok" for v in r.values)  # 9 answers each
    assert r.values[0].label == "tradition"
    ix, iy = np.array(ix), np.array(iy)
    qs = [q for q in LABELS if LABELS[q][0] == "tradition"]
    hand = np.mean(
        [
            math.sqrt(
                2
                - 2
                * math.exp(
                    float(x[ix == q][0] @ y[iy == q][0])
                    / (np.linalg.norm(x[ix == q][0]) * np.linalg.norm(y[iy == q][0]))
                    - 1
                )
            )
            for q in qs
        ]
    )
    assert r.values[0].distance == pytest.approx(hand, abs=1e-9)


def test_per_value_minimum_is_separate_from_the_task_minimum():
    x, y, ix, iy = two_sides(4, repeats=1)
    assert all(v.status == "ok" for v in value_drift(x, y, ix, iy, LABELS).values)  # 9 < task's 10, still ok
    r = value_drift(x, y, ix, iy, LABELS, min_value_answers=10)
    assert all(v.status == "insufficient" and v.distance is None for v in r.values)


def test_moved_questions_are_relative_to_the_baseline_spread():
    # question a: candidate far from a tight baseline; question b: same cross distance, loose baseline
    e = np.eye(4)
    tight = [e[0], e[0] * 0.99 + e[1] * 0.01]
    loose = [e[2], e[3]]
    x = np.array([e[1], e[1], e[0], e[1]])
    y = np.array(tight + loose)
    labels = {"a": ("v1", "g"), "b": ("v2", "g")}
    r = value_drift(x, y, ["a", "a", "b", "b"], ["a", "a", "b", "b"], labels, n_permutations=99, min_value_answers=2)
    assert [m.id for m in r.questions] == ["a", "b"]
    assert r.questions[0].spread < r.questions[1].spread


# -- rendering ------------------------------------------------------------------------------------------
def test_text_is_cleaned_and_markdown_escaped():
    assert report.clean("a\x1b[31mb\nc\td", 100) == "a [31mb c d"
    assert report.clean("x" * 50, 10) == "x" * 9 + "…"


def test_circle_order_covers_exactly_the_pvq_values():
    assert sorted(PVQ_CIRCLE) == VALUES and len(PVQ_CIRCLE) == 19


# -- the command ----------------------------------------------------------------------------------------
def _dist(emb, ids, model, answers):
    records = [
        {"id": q, "value": LABELS[q][0], "higher_order": LABELS[q][1], "question": "Q?", "answer": a}
        for q, a in zip(ids, answers)
    ]
    m = manifest(model=model, task="univar_pvq_eng")
    m["questionnaire_version"] = PVQ.version
    return ValueDistribution(emb.astype(np.float32), records, m)


def test_drift_command_names_the_moved_value_in_text_markdown_json_and_draws_the_circle(tmp_path, capsys):
    x, y, ix, iy = two_sides(5, shifted="power_dominance")
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(_dist(y, iy, "base", ["calm | steady answer"] * len(iy)), model="base", source="test")
    run = tmp_path / "run"
    _dist(x, ix, "cand", ["bold\x1b[1m *new* | answer\nline"] * len(ix)).save(run / "univar_pvq_eng")
    args = [
        "drift",
        str(run),
        "--bank",
        str(tmp_path / "bank"),
        "--against",
        "base",
        "--permutations",
        "1999",
        "--bootstrap",
        "100",
    ]
    assert main(args + ["--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("value") and out.splitlines()[2].startswith("power_dominance ")
    assert "\x1b" not in out and (tmp_path / "c.png").stat().st_size > 10_000
    assert main(args + ["--format", "md"]) == 0
    md = capsys.readouterr().out
    assert (
        "\n| power_dominance | 0." in md and "| bold \\[1m *new* \\| answer line |" in md
    )  # "[" escaped: no link syntax
    assert main(args + ["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["values"][0]["label"] == "power_dominance" and data[0]["values"][0]["significant"]
    assert data[0]["questions"][0]["value"] == "power_dominance"
    assert main(args[:-4] + ["--against", "nobody"]) == 2


def test_gate_names_the_moved_values_and_gates_on_one_value(tmp_path, capsys):
    x, y, ix, iy = two_sides(6, shifted="power_dominance", shift=2.0)  # large enough for the whole-task check
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(_dist(y, iy, "base", ["a"] * len(iy)), model="base", source="test")
    run = tmp_path / "run"
    _dist(x, ix, "cand", ["b"] * len(ix)).save(run / "univar_pvq_eng")
    gate = [
        "gate",
        str(run),
        "--bank",
        str(tmp_path / "bank"),
        "--against",
        "base",
        "--permutations",
        "999",
        "--json",
        str(tmp_path / "g.json"),
    ]
    assert main(gate + ["--plot", str(tmp_path / "g.png")]) == 1
    checks = json.loads((tmp_path / "g.json").read_text())["checks"]
    assert len(checks) == 1 and "moved most: power_dominance 0." in checks[0]["reason"]
    assert (tmp_path / "g.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(gate + ["--fail-on-value", "power_dominance", "hedonism"]) == 1
    checks = {c["name"]: c for c in json.loads((tmp_path / "g.json").read_text())["checks"]}
    assert checks["univar_pvq_eng:power_dominance"]["outcome"] == "fail"
    assert checks["univar_pvq_eng:power_dominance"]["p_adjusted"] < 0.01
    assert checks["univar_pvq_eng:hedonism"]["outcome"] == "pass"
    assert main(gate + ["--fail-on-value", "no_such_value"]) == 2
    assert "no_such_value" in capsys.readouterr().err


def test_compare_by_value_adds_the_breakdown_behind_each_distance(tmp_path, capsys):
    x, y, ix, iy = two_sides(8, shifted="tradition")
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(_dist(y, iy, "base", ["a"] * len(iy)), model="base", source="test")
    run = tmp_path / "run"
    _dist(x, ix, "cand", ["b"] * len(ix)).save(run / "univar_pvq_eng")
    args = [
        "compare",
        str(run),
        "--bank",
        str(tmp_path / "bank"),
        "--permutations",
        "99",
        "--bootstrap",
        "0",
        "--by-value",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "vs base, design per_question, 171 questions" in out
    assert out.split("value  ", 1)[1].splitlines()[1].startswith("tradition")
    assert main(args + ["--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_value"][0]["values"][0]["label"] == "tradition"


def test_within_question_permutation_p_value_matches_exact_enumeration():
    """Two questions, 2 answers a side: 6 splits per question, 36 equally likely relabellings in all."""
    import itertools

    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    x[:2] += 0.8  # the candidate moved on question a
    ids = ["a", "a", "b", "b"]
    labels = {"a": ("v", "g"), "b": ("v", "g")}
    r = value_drift(x, y, ids, ids, labels, n_permutations=40000, n_bootstrap=0, min_value_answers=2)

    def per_split(pooled):
        out = []
        for pick in itertools.combinations(range(4), 2):
            rest = [i for i in range(4) if i not in pick]
            out.append(distance.mmd2_unbiased(pooled[list(pick)], pooled[rest]))
        return np.array(out)

    sa, sb = per_split(np.vstack([x[:2], y[:2]])), per_split(np.vstack([x[2:], y[2:]]))
    observed = (sa[0] + sb[0]) / 2  # combination (0, 1): the candidate's own answers
    exact = np.mean([(u + v) / 2 >= observed - 1e-12 for u in sa for v in sb])
    assert r.values[0].statistic == pytest.approx(observed, abs=1e-12)
    assert r.values[0].p_value == pytest.approx(exact, abs=0.01)


def test_a_value_without_repeats_is_listed_as_insufficient_not_dropped():
    x, y, ix, iy = two_sides(9, shifted="tradition")  # a shift, so that the shares have a positive total
    keep = [i for i, q in enumerate(ix) if LABELS[q][0] != "humility" or i % 3 == 0]  # one answer for humility
    r = value_drift(x[keep], y, [ix[i] for i in keep], iy, LABELS, n_permutations=99, n_bootstrap=20)
    assert r.design == PER_QUESTION and r.n_questions == 162 and len(r.values) == 19
    row = next(v for v in r.values if v.label == "humility")
    assert (row.status, row.n_questions, row.n_x, row.n_y, row.p_value) == ("insufficient", 0, 9, 27, None)
    assert sum(v.share for v in r.values if v.share is not None) == pytest.approx(1.0)


def test_per_value_numbers_agree_with_the_shared_per_question_comparison():
    x, y, ix, iy = two_sides(12, shifted="face", shift=0.25)
    r = value_drift(x, y, ix, iy, LABELS, n_permutations=4999, n_bootstrap=0)
    for label in ("face", "hedonism"):
        sx = [i for i, q in enumerate(ix) if LABELS[q][0] == label]
        sy = [i for i, q in enumerate(iy) if LABELS[q][0] == label]
        shared = distance.compare_sets(
            x[sx],
            y[sy],
            "mmd",
            groups_x=[ix[i] for i in sx],
            groups_y=[iy[i] for i in sy],
            n_permutations=4999,
            n_bootstrap=0,
        )
        row = next(v for v in r.values if v.label == label)
        assert shared.design == "per_question"
        assert row.statistic == pytest.approx(shared.statistic, abs=1e-6)
        assert row.p_value == pytest.approx(shared.p_value, abs=0.03)


def test_every_gate_path_goes_through_the_one_decision_function(tmp_path, monkeypatch):
    """Task values, the control and the --fail-on-value checks are all decided by reports.gate.decide, in one
    family: the value checks' tests are counted in the task checks' Holm correction (m = all tests)."""
    from univar_eval.reports import gate as gate_mod

    x, y, ix, iy = two_sides(6, shifted="power_dominance", shift=2.0)
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(_dist(y, iy, "base", ["a"] * len(iy)), model="base", source="test")
    run = tmp_path / "run"
    _dist(x, ix, "cand", ["b"] * len(ix)).save(run / "univar_pvq_eng")
    seen = []
    real = gate_mod.decide

    def spy(checks, **kw):
        seen.append(sorted(c.name for c in checks if c.tests))
        return real(checks, **kw)

    monkeypatch.setattr(gate_mod, "decide", spy)
    args = ["gate", str(run), "--bank", str(tmp_path / "bank"), "--against", "base", "--max-distance", "0.05"]
    main(args + ["--fail-on-value", "power_dominance", "--json", str(tmp_path / "g.json")])
    assert seen[-1] == ["univar_pvq_eng", "univar_pvq_eng:power_dominance"]
    checks = {c["name"]: c for c in json.loads((tmp_path / "g.json").read_text())["checks"]}
    n_tests = sum(len(c["tests"]) for c in checks.values())
    assert n_tests == 4  # d_S and d_Q of the task, d_S[value] and d_Q[value]
    value = checks["univar_pvq_eng:power_dominance"]
    assert {t["quantity"] for t in value["tests"]} == {"d_S[power_dominance]", "d_Q[power_dominance]"}
    # the value's 9 questions are too few for a bound: inconclusive, never a pass
    assert value["outcome"] == "inconclusive" and "too few for a bound" in value["reason"]
    # Holm over the 4 tests of the one family: the smallest raw p is multiplied by 4
    tests = [t for c in checks.values() for t in c["tests"]]
    smallest = min(tests, key=lambda t: t["p_excess"])
    assert smallest["p_adjusted"] == pytest.approx(min(1.0, 4 * smallest["p_excess"]))
