"""End to end: the umbrella group ``univar`` over the value questionnaires, and the control beside it."""

from __future__ import annotations

import json

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.pipeline import questionnaire as q

pytestmark = pytest.mark.e2e
LOGS: dict[str, str] = {}  # the group run's stderr


@pytest.fixture(scope="module")
def group_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("univar-group")
    out = work / "runs"
    proc = run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "univar,univar_control",
            "--limit",
            "2",
            "--output_path",
            str(out),
            "--gen_kwargs",
            "max_gen_toks=24",
            "--metadata",
            json.dumps({"encoder": "minilm", "translator": "none"}),
        ],
        cwd=work,
    )
    LOGS["stderr"] = proc.stderr
    return out, read_results(out)


def test_group_run_is_quiet_and_says_where_its_artifacts_go(group_run):
    """Issue 16: no lm-eval warning per task about custom kwargs or unregistered metrics; the folder once."""
    err = LOGS["stderr"]
    assert "Custom kwargs" not in err and "not found in the evaluate library" not in err
    assert err.count("univar-eval: value distributions of this run go to") == 1


def test_univar_group_covers_every_value_set_and_language_but_not_the_control(group_run):
    _, results = group_run
    subtasks = results["group_subtasks"]
    assert set(subtasks["univar"]) == {f"univar_{name}" for name in q.VALUE_SETS}
    for name in q.VALUE_SETS:
        assert set(subtasks[f"univar_{name}"]) == {f"univar_{name}_{lang}" for lang in q.available_languages(name)}
    assert "univar_control" not in subtasks["univar"]
    assert set(subtasks["univar_control"]) == {f"univar_control_{lang}" for lang in q.available_languages("control")}
    assert len(subtasks["univar_control"]) == len(q.LANGUAGES)


def test_every_task_reports_and_writes_its_distribution(group_run):
    out, results = group_run
    tasks = [
        t
        for name in [*q.VALUE_SETS, "control"]
        for t in (f"univar_{name}_{lang}" for lang in q.available_languages(name))
    ]
    for task in tasks:
        r = results["results"][task]
        assert r["n_answers,none"] + r["n_empty,none"] == 2
        folder = next(out.rglob(f"univar_*/{task}"))
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["task"] == task and manifest["questionnaire"] == task.split("_")[1]
    # group numbers are means over the subtasks (lm-eval's rule); the tiny model answers every question
    # (never empty), so each language has two answers and a dispersion to average
    langs = q.available_languages("pvq")
    per_lang = [results["results"][f"univar_pvq_{lang}"] for lang in langs]
    assert all(r["n_answers,none"] == 2 for r in per_lang)
    mean = sum(r["value_dispersion,none"] for r in per_lang) / len(langs)
    assert 0.0 <= mean <= 2.0  # the answers alone: the tiny model says much the same to every question
    assert results["results"]["univar_pvq"]["value_dispersion,none"] == pytest.approx(mean)
