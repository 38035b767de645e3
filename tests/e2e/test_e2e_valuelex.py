"""End to end: the real lm_eval CLI runs the ``valuelex`` group (both tasks) on the tiny model with the
minilm encoder; every metric is reported, in range, and equal to what the logged samples give."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.pipeline.answers import flatten_responses
from univar_eval.valuelex import lexicon, projective, task, taxonomy

pytestmark = pytest.mark.e2e

LIMIT = 6  # the stems are interleaved, so the first six probe each subdimension once


@pytest.fixture(scope="module")
def valuelex_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("valuelex-run")
    out = work / "runs"
    proc = run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "valuelex",
            "--limit",
            str(LIMIT),
            "--log_samples",
            "--output_path",
            str(out),
            "--metadata",
            json.dumps({"encoder": "minilm"}),
        ],
        cwd=work,
    )
    return out, proc


def _samples(out, task):
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def test_lexicon_metrics(valuelex_run):
    out, proc = valuelex_run
    res = read_results(out)["results"]["valuelex_lexicon"]
    assert "valuelex_lexicon" in proc.stdout
    for name in task.lexicon_metric_names():
        assert f"{name},none" in res, name
    samples = _samples(out, "valuelex_lexicon")
    assert len(samples) == LIMIT
    words = [w for s in samples for r in flatten_responses(s["filtered_resps"]) for w in lexicon.parse_value_words(r)]
    assert res["n_words,none"] == len(words)
    rates = [res[f"{n},none"] for n in task.lexicon_metric_names() if n not in ("n_words", "why_unscored")]
    if words:
        assert all(0.0 <= r <= 1.0 for r in rates)
        positive = [res[f"share_{s},none"] for s in taxonomy.load_taxonomy().subdimensions]
        assert sum(positive) == pytest.approx(1.0) or math.isnan(positive[0])
    else:  # the random tiny model writes no words: shares are undefined, not 0, and the results say why
        assert all(math.isnan(r) for r in rates)
        assert res["why_unscored,none"].startswith(f"{LIMIT} of {LIMIT} answers named no word that maps to a value")
        assert "valuelex_lexicon: " in proc.stderr and "answers could not be scored" in proc.stderr


def test_projective_profile(valuelex_run, minilm):
    out, _ = valuelex_run
    res = read_results(out)["results"]["valuelex_projective"]
    for name in task.projective_metric_names():
        assert f"{name},none" in res, name
    samples = _samples(out, "valuelex_projective")
    assert len(samples) == LIMIT
    assert res["n_completions,none"] + res["n_empty,none"] == LIMIT
    tax = taxonomy.load_taxonomy()
    for name in [f"orientation_{x}" for x in [*tax.dimensions, *tax.subdimensions]]:
        v = res[f"{name},none"]
        assert math.isnan(v) or -1.0 <= v <= 1.0
    # the reported profile is the mean orientation of the logged completions, scored again here
    docs = [s["doc"] for s in samples]
    responses = [flatten_responses(s["filtered_resps"])[0] for s in samples]
    kept = [i for i, r in enumerate(responses) if projective.clean_completion(docs[i]["stem"], r)]
    assert res["n_completions,none"] == len(kept)
    if kept:
        scores = projective.score_completions(
            [(docs[i]["stem"], docs[i]["subdim"]) for i in kept], [responses[i] for i in kept], minilm
        )
        expected = projective.profile([docs[i]["subdim"] for i in kept], scores)
        for name, value in expected.items():
            got = res[f"{name},none"]
            assert (math.isnan(value) and math.isnan(got)) or got == pytest.approx(value, abs=1e-6), name
    # the per-completion details beside lm-eval's output
    details = json.loads(next(out.rglob("univar_*/valuelex_projective/valuelex.json")).read_text())
    assert details["encoder"]["name"] == "minilm" and len(details["items"]) == LIMIT
    assert all(i["orientation"] is None or -1 <= i["orientation"] <= 1 for i in details["items"])
    assert np.isfinite(details["calibration"]["temperature"])
