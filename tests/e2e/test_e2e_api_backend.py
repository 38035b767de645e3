"""End to end through the API backends: the real lm_eval CLI, ``--model local-chat-completions`` (and
``local-completions``), against an OpenAI-compatible stub server (tests/openai_stub.py) that answers
from a fixed table.

Three families in one chat run (PVQ questionnaire, HVAE nogoal prosocial, ValueLex projective): the
table's answers must reach the artifacts unchanged, be embedded, and give the metrics computed here
directly. The completions run checks that a base-model endpoint gets the base-model frames.
"""

from __future__ import annotations

import json
import math

import fixed_answers as fixed
import numpy as np
import pytest
from conftest import read_results, run_lm_eval
from openai_stub import ChatStub

from univar_eval.hvae import svo
from univar_eval.stats.dispersion import dispersion
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.valuelex.analysis import analyse_projective

pytestmark = pytest.mark.e2e

LIMIT = 6  # HVAE has six documents (one per SVO item); all six are needed for an angle
TASKS = ("univar_pvq_eng", "hvae_svo_nogoal_prosocial", "valuelex_projective")
MODEL = "stub-chat-1"


def pvq_docs() -> list[dict]:
    return fixed.pvq_docs(LIMIT)


def stems() -> list[dict]:
    return fixed.stems(LIMIT)


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("api-run")
    out = work / "runs"
    with ChatStub(fixed.table(LIMIT), default=fixed.DEFAULT) as stub:
        proc = run_lm_eval(
            [
                "--model",
                "local-chat-completions",
                "--model_args",
                f"model={MODEL},base_url={stub.url}",
                "--apply_chat_template",
                "--tasks",
                ",".join(TASKS),
                "--limit",
                str(LIMIT),
                "--log_samples",
                "--output_path",
                str(out),
                "--metadata",
                json.dumps({"encoder": "minilm", "encoder_device": "cpu"}),
            ],
            cwd=work,
            env={"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"},
        )
        requests = list(stub.requests)
    return out, proc, requests, read_results(out)["results"]


def test_every_prompt_went_to_the_server_as_a_chat_message(api_run):
    _, _, requests, _ = api_run
    assert len(requests) == LIMIT * len(TASKS)
    prompts = [ChatStub.last_user_message(r) for r in requests]
    assert all(r["model"] == MODEL and r["messages"][-1]["role"] == "user" for r in requests)
    # the chat form of each family: the PVQ question alone (no "Question: ... Answer:" frame), the HVAE
    # instruction without a base-model cue, the ValueLex instruction around the stem
    for d in pvq_docs():
        assert d["question"].strip() in prompts
    assert not any(p.startswith("Question:") or p.rstrip().endswith(("Answer:", "Goal:")) for p in prompts)
    assert sum("Decision" in p for p in prompts) == 6
    assert sum(p.startswith("Complete the following sentence") for p in prompts) == LIMIT
    pvq_request = next(r for r in requests if ChatStub.last_user_message(r) == pvq_docs()[0]["question"].strip())
    assert pvq_request["max_tokens"] == 128 and pvq_request["temperature"] == 0.0


def test_pvq_answers_embedded(api_run, minilm):
    out, _, _, results = api_run
    res = results["univar_pvq_eng"]
    assert res["n_answers,none"] == 5 and res["n_empty,none"] == 1
    assert res["refusal_rate,none"] == pytest.approx(1 / 5)
    folders = sorted(out.rglob("univar_*/univar_pvq_eng"))
    assert len(folders) == 1 and folders[0].parent.parent == out / MODEL  # beside lm-eval's results
    dist = ValueDistribution.load(folders[0])
    assert dist.manifest["model"] == MODEL
    expected = [(d["question"], a) for d, a in zip(pvq_docs(), fixed.PVQ_ANSWERS) if a]
    assert [(r["question"], r["answer"]) for r in dist.records] == expected
    texts = [f"Q: {q.strip()} A: {a.strip()}" for q, a in expected]
    assert [r["text"] for r in dist.records] == texts
    assert np.allclose(dist.embeddings, minilm.encode(texts), atol=2e-3)
    # value_dispersion: the spread of the answers embedded alone, not of the QA texts
    answers_alone = minilm.encode([a.strip() for _, a in expected])
    assert res["value_dispersion,none"] == pytest.approx(dispersion(answers_alone), abs=1e-3)


def test_hvae_angle_of_the_served_choices(api_run):
    _, _, _, results = api_run
    res = results["hvae_svo_nogoal_prosocial"]
    assert res["unparsed_rate,none"] == 0.0 and res["n_complete,none"] == 1
    assert res["svo_angle,none"] == pytest.approx(37.48, abs=0.01)  # the inequality-averse prosocial angle
    assert res["category,none"] == "prosocial" and res["category_match,none"] == 1.0
    expected_vr = svo.value_rationality(svo.svo_angle(fixed.PROSOCIAL), "prosocial")
    assert res["value_rationality,none"] == pytest.approx(expected_vr)


def test_valuelex_profile_of_the_served_completions(api_run, minilm):
    out, _, _, results = api_run
    res = results["valuelex_projective"]
    items = [{**s, "responses": [c]} for s, c in zip(stems(), fixed.PROJECTIVE)]
    expected, details = analyse_projective(items, minilm)
    assert res["n_completions,none"] == LIMIT and res["n_empty,none"] == 0
    assert expected["why_unscored"] == "" == res["why_unscored,none"]
    for name, value in expected.items():
        got = res[f"{name},none"]
        if isinstance(value, str):
            continue
        assert (
            math.isnan(value) and (got is None or (isinstance(got, float) and math.isnan(got)))
        ) or got == pytest.approx(value, abs=1e-4), name
    written = json.loads(next(out.rglob("univar_*/valuelex_projective/valuelex.json")).read_text())
    assert [r["completion"] for r in written["items"]] == [r["completion"] for r in details["items"]]
    assert written["model"] == MODEL


@pytest.fixture(scope="module")
def completions_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("api-completions-run")
    out = work / "runs"
    with ChatStub(fixed.table(LIMIT), default=fixed.DEFAULT) as stub:
        run_lm_eval(
            [
                "--model",
                "local-completions",
                "--model_args",
                f"model=stub-base,base_url={stub.completions_url},tokenizer_backend=None,tokenized_requests=False",
                "--tasks",
                "univar_pvq_eng,hvae_svo_nogoal_prosocial",
                "--limit",
                str(LIMIT),
                "--output_path",
                str(out),
                "--metadata",
                json.dumps({"encoder": "minilm"}),
            ],
            cwd=work,
            env={"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"},
        )
        requests = list(stub.requests)
    return out, requests, read_results(out)["results"]


def test_completions_endpoint_gets_base_model_frames(completions_run):
    out, requests, results = completions_run
    prompts = [r["prompt"] for r in requests]
    assert len(prompts) == 2 * LIMIT
    for d in pvq_docs():
        assert f"Question: {d['question'].strip()}\nAnswer:" in prompts
    assert sum(p.startswith("You are a prosocial person.") and p.endswith("\nAnswer:") for p in prompts) == 6
    assert results["univar_pvq_eng"]["n_answers,none"] == 5
    assert results["hvae_svo_nogoal_prosocial"]["svo_angle,none"] == pytest.approx(37.48, abs=0.01)
    dist = ValueDistribution.load(next(out.rglob("univar_*/univar_pvq_eng")))
    assert dist.manifest["model"] == "stub-base"
