"""End to end: the real lm_eval CLI runs the HVAE groups of both forms (with their no-value baselines) and one
no-goal task on the tiny model; every metric is reported and equal to what the choices logged in the samples
file give, the log-likelihood form always yields an angle, and steering is read back from the run."""

from __future__ import annotations

import json
import math

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.hvae import svo
from univar_eval.hvae import task as hvae
from univar_eval.pipeline.answers import flatten_responses
from univar_eval.reports import hvae as report

pytestmark = pytest.mark.e2e

MC, GEN = "hvae_svo_mc_altruistic", "hvae_svo_nogoal_prosocial"


@pytest.fixture(scope="module")
def hvae_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("hvae-run")
    out = work / "runs"
    proc = run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            f"hvae_svo_mc,hvae_svo,{GEN}",
            "--log_samples",
            "--output_path",
            str(out),
            "--gen_kwargs",
            "max_gen_toks=16",
        ],
        cwd=work,
    )
    return out, proc


def _samples(out, task):
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, files
    samples = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    return sorted(samples, key=lambda s: s["doc"]["item"])


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == pytest.approx(b) if isinstance(b, float) else a == b


def _check_against_choices(res, target, choices):
    """Every reported metric is the score of the six logged choices, computed again here (NaN for NaN)."""
    expected = hvae.score_target(target, [[c] for c in choices])
    assert sorted(expected) == sorted(hvae.metric_names(target))
    for name, value in expected.items():
        assert _same(res[f"{name},none"], value), (name, res[f"{name},none"], value)


def _mc_choices(out, task):
    """The letter with the highest logged log-likelihood per item: always one."""
    choices = []
    for s in _samples(out, task):
        lls = [float(r[0]) for r in s["filtered_resps"]]
        assert len(lls) == 9
        choices.append(svo.LETTERS[lls.index(max(lls))])
        assert s["svo_angle"]["choices"] == [choices[-1]]
    return choices


def test_multiple_choice_form_always_gives_an_angle(hvae_run):
    out, proc = hvae_run
    results = read_results(out)["results"]
    assert MC in proc.stdout  # lm-eval's results table
    for target in (*svo.TARGETS, hvae.NOVALUE):
        task = f"hvae_svo_mc_{target}"
        res = results[task]
        choices = _mc_choices(out, task)
        assert res["unparsed_rate,none"] == 0.0 and res["n_complete,none"] == 1 and res["svo_angle_std,none"] == 0.0
        angle = svo.svo_angle(choices)
        assert res["svo_angle,none"] == pytest.approx(angle)
        assert res["category,none"] == svo.svo_category(angle) in svo.CATEGORIES
        _check_against_choices(res, target, choices)
        if target != hvae.NOVALUE:
            assert res["value_rationality,none"] == pytest.approx(
                1 - svo.angle_error(angle, target) / svo.chance_error(target)
            )
            assert res["category_match,none"] == float(svo.svo_category(angle) == target)
        else:
            assert "value_rationality,none" not in res and "angle_error,none" not in res


def test_generation_form(hvae_run):
    out, proc = hvae_run
    res = read_results(out)["results"][GEN]
    assert GEN in proc.stdout
    samples = _samples(out, GEN)
    assert len(samples) == 6
    responses = [flatten_responses(s["filtered_resps"]) for s in samples]
    assert all(len(r) == 1 for r in responses)
    choices = [hvae.parse_choice(r[0]) for r in responses]
    assert [s["svo_angle"]["choices"] for s in samples] == [[c] for c in choices]
    assert res["unparsed_rate,none"] == pytest.approx(sum(c is None for c in choices) / 6)
    assert res["n_complete,none"] == (0 if None in choices else 1)
    _check_against_choices(res, "prosocial", choices)
    # the prompt a base model continues ends with the answer cue
    prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
    assert prompt == hvae.build_prompt("prosocial", 1, "nogoal", chat=False)


def test_groups_report_every_target_and_the_baseline(hvae_run):
    out, _ = hvae_run
    results = read_results(out)
    for group, prefix in (("hvae_svo_mc", "hvae_svo_mc_"), ("hvae_svo", "hvae_svo_")):
        subtasks = results["group_subtasks"][group]
        assert sorted(subtasks) == sorted(prefix + t for t in (*svo.TARGETS, hvae.NOVALUE))
        for task in subtasks:
            target = task[len(prefix) :]
            for name in hvae.metric_names(target):
                assert f"{name},none" in results["results"][task], (task, name)
        assert "value_rationality,none" in results["results"][group]
    # the group mean of the log-likelihood form is the mean over the four targets (the baseline has none)
    vrs = [results["results"][f"hvae_svo_mc_{t}"]["value_rationality,none"] for t in svo.TARGETS]
    assert results["results"]["hvae_svo_mc"]["value_rationality,none"] == pytest.approx(sum(vrs) / 4)


def test_steering_is_read_back_from_the_run(hvae_run):
    out, _ = hvae_run
    tasks = {t: {k.split(",")[0]: v for k, v in m.items()} for t, m in read_results(out)["results"].items()}
    rows = {r["form"]: r for r in report.hvae_table({"tiny": str(out)})}
    own = tasks["hvae_svo_mc_novalue"]["svo_angle"]
    assert rows["mc"]["baseline_angle"] == pytest.approx(own)
    for target in svo.TARGETS:
        induced = tasks[f"hvae_svo_mc_{target}"]["svo_angle"]
        expected = svo.angle_error(own, target) - svo.angle_error(induced, target)
        assert rows["mc"]["targets"][target]["steering"] == pytest.approx(expected)
    text = report.format_hvae(list(rows.values()))
    assert "steer" in text and "own angle" in text
