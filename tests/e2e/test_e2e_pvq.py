"""End to end: the real lm_eval CLI, --model hf on the tiny model, the installed package, the minilm encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.pipeline.answers import flatten_responses
from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.e2e

LIMIT = 12


@pytest.fixture(scope="module")
def pvq_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("pvq-run")
    out = work / "runs"
    proc = run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "univar_pvq_eng",
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


def test_results_entry(pvq_run):
    out, proc = pvq_run
    res = read_results(out)["results"]["univar_pvq_eng"]
    samples_file = next(out.rglob("samples_univar_pvq_eng_*.jsonl"))
    answers = [
        a
        for line in samples_file.read_text().splitlines()
        if line.strip()
        for a in flatten_responses(json.loads(line)["filtered_resps"])
    ]
    non_empty = [a for a in answers if a.strip()]
    # the tiny model's greedy answers are never empty (it writes the same few tokens for every question),
    # so every number below is computed from real answers, never skipped
    assert len(answers) == LIMIT and len(non_empty) >= 2
    assert res["n_answers,none"] == len(non_empty) and res["n_empty,none"] == LIMIT - len(non_empty)
    assert 0.0 <= res["refusal_rate,none"] <= 1.0
    # value_dispersion measures the answers alone: the random tiny model says (nearly) the same for every
    # question, so it scores (near) 0 although its QA texts differ by their questions
    distinct = {a.strip() for a in non_empty}
    if len(distinct) == 1:
        assert res["value_dispersion,none"] == 0.0
    else:
        assert 0.0 < res["value_dispersion,none"] <= 2.0
    assert "univar_pvq_eng" in proc.stdout  # lm-eval's results table


def test_artifacts_align_with_samples(pvq_run):
    out, _ = pvq_run
    samples_files = sorted(out.rglob("samples_univar_pvq_eng_*.jsonl"))
    assert len(samples_files) == 1
    samples = [json.loads(line) for line in samples_files[0].read_text().splitlines() if line.strip()]
    assert len(samples) == LIMIT
    folders = sorted(out.rglob("univar_*/univar_pvq_eng"))
    assert len(folders) == 1, folders
    # artifacts sit beside lm-eval's results, in the model's folder
    assert folders[0].parent.parent == samples_files[0].parent
    dist = ValueDistribution.load(folders[0])
    by_doc = {s["doc"]["doc_index"]: s for s in samples}
    answer_of = {s["doc"]["doc_index"]: flatten_responses(s["filtered_resps"])[0] for s in samples}
    non_empty = [s for s in samples if answer_of[s["doc"]["doc_index"]].strip()]
    assert len(dist) == len(non_empty) == dist.manifest["counts"]["n_answers"]
    assert dist.embeddings.shape == (len(non_empty), 384)
    assert np.allclose(np.linalg.norm(dist.embeddings, axis=1), 1.0, atol=2e-3)
    for rec in dist.records:
        sample = by_doc[rec["doc_index"]]
        assert rec["id"] == sample["doc"]["id"]
        assert rec["answer"] == answer_of[rec["doc_index"]]
        assert rec["text"] == f"Q: {sample['doc']['question'].strip()} A: {rec['answer'].strip()}"
    m = dist.manifest
    assert m["encoder"]["name"] == "minilm" and len(m["encoder"]["fingerprint"]) == 32
    assert m["questionnaire"] == "pvq" and m["lang"] == "eng" and m["task"] == "univar_pvq_eng"
    assert m["translator"] == {"name": "none"}
    assert m["model"] == str(Path(m["model"]))  # the pretrained path from --model_args


def test_embeddings_match_direct_encoding(pvq_run, minilm):
    out, _ = pvq_run
    dist = ValueDistribution.load(next(out.rglob("univar_*/univar_pvq_eng")))
    direct = minilm.encode([r["text"] for r in dist.records[:4]])
    # stored as float16 on disk
    assert np.allclose(dist.embeddings[:4], direct, atol=2e-3)


def test_every_repeat_is_embedded(tmp_path):
    """With ``repeats: N`` (sampling), each of the N answers to a question becomes a row."""
    from lm_eval.tasks import TaskManager

    from univar_eval.harness.lm_eval_api import keep_all_repeats

    assert keep_all_repeats([("a", "b"), ("c", "d")], None) == [["a", "b"], ["c", "d"]]
    tm = TaskManager(metadata={"encoder": "minilm", "output": str(tmp_path)})
    task = tm.load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    task.config.repeats = 3  # as `repeats: 3` in the YAML
    docs = list(task.test_docs())[:3]
    per_doc = [
        task.process_results(doc, [[f"I would help, reason {i}.", "", f"No, reason {i}."]])
        for i, doc in enumerate(docs)
    ]
    agg = task.aggregation()
    raw = {name: [d[name] for d in per_doc] for name in per_doc[0]}
    assert agg["n_answers"](raw["n_answers"]) == 6
    assert agg["n_empty"](raw["n_empty"]) == 3
    assert agg["refusal_rate"](raw["refusal_rate"]) == 0.0
    dist = ValueDistribution.load(next(tmp_path.glob("univar_*/univar_pvq_eng")))
    assert [(r["doc_index"], r["repeat"]) for r in dist.records] == [(0, 0), (0, 2), (1, 0), (1, 2), (2, 0), (2, 2)]


def test_bank_from_a_run_then_distances_in_lm_eval_and_compare(pvq_run, tiny_lm, tmp_path, capsys, monkeypatch):
    """A run becomes a reference; a second run of the same (greedy) model reports distance 0 to it."""
    from univar_eval.cli import main
    from univar_eval.storage.bank import Bank

    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "cache"))
    out, _ = pvq_run
    bank_dir = tmp_path / "bank"
    assert main(["bank", "add", "--bank", str(bank_dir), "--name", "tiny-ref", "--encoder", "minilm", str(out)]) == 0
    assert "reused the run's embeddings" in capsys.readouterr().out
    entry = Bank(bank_dir).entry("tiny-ref", "univar_pvq_eng")
    n_ref = entry["n_answers"]
    assert entry["questionnaire_version"]  # from the samples' docs

    out2 = tmp_path / "runs"
    proc = run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "univar_pvq_eng",
            "--limit",
            str(LIMIT),
            "--output_path",
            str(out2),
            "--metadata",
            json.dumps({"encoder": "minilm", "bank": str(bank_dir), "min_answers": 2}),
        ],
        cwd=tmp_path,
    )
    res = read_results(out2)["results"]["univar_pvq_eng"]
    assert n_ref >= 2, "the tiny model gave fewer than 2 non-empty answers"
    assert res["mmd@tiny-ref,none"] == pytest.approx(0.0, abs=1e-3)
    assert res["nearest_reference,none"] == "tiny-ref"
    assert res["nearest_distance,none"] == pytest.approx(0.0, abs=1e-3)
    assert "mmd@tiny-ref" in proc.stdout

    assert (
        main(
            [
                "compare",
                str(out2),
                "--bank",
                str(bank_dir),
                "--min-answers",
                "2",
                "--permutations",
                "200",
                "--bootstrap",
                "50",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "univar_pvq_eng" in table and "tiny-ref" in table and "encoder minilm" in table
