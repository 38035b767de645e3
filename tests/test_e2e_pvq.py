"""End to end: the real lm_eval CLI, --model hf on the tiny model, the installed package, the minilm encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.distribution import ValueDistribution

pytestmark = pytest.mark.e2e

LIMIT = 12


@pytest.fixture(scope="module")
def pvq_run(tiny_lm, tmp_path_factory):
    work = tmp_path_factory.mktemp("pvq-run")
    out = work / "runs"
    proc = run_lm_eval(
        [*hf_args(tiny_lm), "--tasks", "univar_pvq_eng", "--limit", str(LIMIT), "--log_samples",
         "--output_path", str(out), "--metadata", json.dumps({"encoder": "minilm"})],
        cwd=work,
    )
    return out, proc


def test_results_entry(pvq_run):
    out, proc = pvq_run
    res = read_results(out)["results"]["univar_pvq_eng"]
    assert res["n_answers,none"] + res["n_empty,none"] == LIMIT
    assert 0.0 <= res["refusal_rate,none"] <= 1.0 or res["n_answers,none"] == 0
    if res["n_answers,none"] >= 2:
        assert 0.0 <= res["value_dispersion,none"] <= 2.0
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
    non_empty = [s for s in samples if s["filtered_resps"][0].strip()]
    assert len(dist) == len(non_empty) == dist.manifest["counts"]["n_answers"]
    assert dist.embeddings.shape == (len(non_empty), 384)
    assert np.allclose(np.linalg.norm(dist.embeddings, axis=1), 1.0, atol=2e-3)
    for rec in dist.records:
        sample = by_doc[rec["doc_index"]]
        assert rec["id"] == sample["doc"]["id"]
        assert rec["answer"] == sample["filtered_resps"][0]
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
