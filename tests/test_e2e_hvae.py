"""End to end: the real lm_eval CLI runs the HVAE groups of both forms (and one no-goal task) on the tiny
model; every metric is reported, in range, and equal to what the choices logged in the samples file give."""

from __future__ import annotations

import json
import math

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.hvae import svo
from univar_eval.hvae import task as hvae
from univar_eval.pipeline.answers import flatten_responses

pytestmark = pytest.mark.e2e

MC, GEN = "hvae_svo_mc_altruistic", "hvae_svo_nogoal_prosocial"


@pytest.fixture(scope="module")
def hvae_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("hvae-run")
    out = work / "runs"
    proc = run_lm_eval([*hf_args(tiny_lm), "--tasks", f"hvae_svo_mc,hvae_svo,{GEN}", "--log_samples",
                        "--output_path", str(out), "--gen_kwargs", "max_gen_toks=16"], cwd=work)
    return out, proc


def _samples(out, task):
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, files
    samples = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    return sorted(samples, key=lambda s: s["doc"]["item"])


def _check_ranges(res, target):
    for name in hvae.metric_names():
        assert f"{name},none" in res, name
    assert 0.0 <= res["unparsed_rate,none"] <= 1.0
    assert res["n_complete,none"] in (0, 1)
    if res["n_complete,none"]:
        low, high = svo.ANGLE_RANGE
        assert low - 1e-9 <= res["svo_angle,none"] <= high + 1e-9
        assert res["svo_angle_std,none"] == 0.0
        assert 0.0 <= res["value_rationality,none"] <= 1.0
        assert res["category,none"] in svo.CATEGORIES
        assert res["category_match,none"] == float(res["category,none"] == target)
    else:
        assert res["category,none"] == "none"
        assert math.isnan(res["svo_angle,none"]) and math.isnan(res["value_rationality,none"])


def _check_against_choices(res, target, choices):
    """The reported metrics are the scores of the six logged choices, computed again here."""
    if None in choices:
        assert res["n_complete,none"] == 0
        return
    angle = svo.svo_angle(choices)
    assert res["svo_angle,none"] == pytest.approx(angle)
    assert res["category,none"] == svo.svo_category(angle)
    assert res["value_rationality,none"] == pytest.approx(svo.value_rationality(angle, target))


def test_multiple_choice_form(hvae_run):
    out, proc = hvae_run
    res = read_results(out)["results"][MC]
    assert MC in proc.stdout  # lm-eval's results table
    _check_ranges(res, "altruistic")
    samples = _samples(out, MC)
    assert [s["doc"]["item"] for s in samples] == [1, 2, 3, 4, 5, 6]
    # the choice is the letter with the highest log-likelihood: always one, never unparsed
    choices = []
    for s in samples:
        lls = [float(r[0]) for r in s["filtered_resps"]]
        assert len(lls) == 9
        choices.append(svo.LETTERS[lls.index(max(lls))])
        assert s["svo_angle"]["choices"] == [choices[-1]]
    assert res["unparsed_rate,none"] == 0.0 and res["n_complete,none"] == 1
    _check_against_choices(res, "altruistic", choices)


def test_generation_form(hvae_run):
    out, proc = hvae_run
    res = read_results(out)["results"][GEN]
    assert GEN in proc.stdout
    _check_ranges(res, "prosocial")
    samples = _samples(out, GEN)
    assert len(samples) == 6
    responses = [flatten_responses(s["filtered_resps"]) for s in samples]
    assert all(len(r) == 1 for r in responses)
    choices = [hvae.parse_choice(r[0]) for r in responses]
    assert [s["svo_angle"]["choices"] for s in samples] == [[c] for c in choices]
    assert res["unparsed_rate,none"] == pytest.approx(sum(c is None for c in choices) / 6)
    _check_against_choices(res, "prosocial", choices)
    # the prompt a base model continues ends with the answer cue
    prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
    assert prompt == hvae.build_prompt("prosocial", 1, "nogoal", chat=False)


def test_both_groups_report_every_target(hvae_run):
    out, _ = hvae_run
    results = read_results(out)
    for group, prefix in (("hvae_svo_mc", "hvae_svo_mc_"), ("hvae_svo", "hvae_svo_")):
        subtasks = results["group_subtasks"][group]
        assert sorted(subtasks) == sorted(prefix + t for t in svo.TARGETS)
        for task in subtasks:
            _check_ranges(results["results"][task], task[len(prefix):])
        assert "value_rationality,none" in results["results"][group]
