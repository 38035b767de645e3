"""Candidates from any source: a QA JSONL (and lm-eval samples) through gate, compare and leaderboard,
embedded with the bank's encoder through the cache."""

from __future__ import annotations

import json

import pytest

from univar_eval.cli import main
from univar_eval.pipeline.cache import open_cache
from univar_eval.pipeline.questionnaire import load
from univar_eval.storage.bank import Bank

STANCES = {
    "kind": "I would help the others; kindness matters most to me.",
    "greedy": "I would take the bigger reward for myself; winning matters most.",
}


pytestmark = pytest.mark.usefixtures("private_cache")


def qa_file(path, model, stance, n=30, ids=True):
    """``n`` English PVQ questions of ours answered in one stance, as {model, lang, question, answer, id}."""
    with open(path, "w") as fh:
        for i, r in enumerate(load("pvq", "eng").records[:n]):
            rec = {"model": model, "lang": "eng", "question": r["question"], "answer": f"{STANCES[stance]} ({i})"}
            if ids:
                rec["id"] = r["id"]
            fh.write(json.dumps(rec) + "\n")
    return path


@pytest.fixture()
def bank(tmp_path, minilm):
    """A minilm bank whose baseline answered kindly."""
    src = qa_file(tmp_path / "baseline.jsonl", "baseline", "kind")
    assert (
        main(
            ["bank", "add", "--bank", str(tmp_path / "bank"), "--encoder", "minilm", "--questionnaire", "pvq", str(src)]
        )
        == 0
    )
    return Bank(tmp_path / "bank")


def test_a_jsonl_candidate_goes_through_the_gate(tmp_path, bank, capsys):
    same = qa_file(tmp_path / "same.jsonl", "candidate", "kind")
    report = tmp_path / "gate.json"
    code = main(
        [
            "gate",
            str(same),
            "--bank",
            str(bank.path),
            "--against",
            "baseline",
            "--questionnaire",
            "pvq",
            "--json",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    # the same answers give the same embeddings (the bank keeps float16: a distance near 0), nothing significant
    assert "PASSED: 1 of 1 check pass" in out and "univar_pvq_eng" in out
    data = json.loads(report.read_text())
    check = data["checks"][0]
    assert check["outcome"] == "pass" and check["distance"] < 1e-3 and check["p_value"] > 0.5 and check["n"] == 30
    # it says what it read and how it embedded it
    assert f"read {same}: QA JSONL; candidate: 30 answers in univar_pvq_eng; embedded with minilm@" in err
    assert "through the embedding cache" in err
    assert data["settings"]["read"] == "QA JSONL" and data["settings"]["embedded"].startswith("embedded with minilm@")
    # the baseline's texts were embedded by `bank add`; the candidate's identical texts came from the cache
    assert open_cache("embeddings").count() == 30

    drifted = qa_file(tmp_path / "drifted.jsonl", "candidate", "greedy")
    code = main(
        [
            "gate",
            str(drifted),
            "--bank",
            str(bank.path),
            "--against",
            "baseline",
            "--questionnaire",
            "pvq",
            "--json",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    check = json.loads(report.read_text())["checks"][0]
    assert check["outcome"] == "fail" and check["distance"] > 0.05 and check["p_value"] < 0.05
    assert "FAILED: 0 of 1 check pass" in out and "values differ from the baseline" in out


def test_gate_refuses_a_file_of_several_models_and_a_foreign_encoder(tmp_path, bank, capsys):
    both = tmp_path / "both.jsonl"
    both.write_text(
        qa_file(tmp_path / "a.jsonl", "a", "kind").read_text()
        + qa_file(tmp_path / "b.jsonl", "b", "greedy").read_text()
    )
    assert main(["gate", str(both), "--bank", str(bank.path), "--against", "baseline"]) == 2
    assert "holds answers of 2 models (a, b)" in capsys.readouterr().err
    assert main(["gate", str(both), "--bank", str(bank.path), "--against", "baseline", "--encoder", "labse"]) == 2
    assert "holds minilm embeddings" in capsys.readouterr().err


def test_compare_and_leaderboard_read_jsonl_candidates(tmp_path, bank, capsys):
    same = qa_file(tmp_path / "same.jsonl", "twin", "kind")
    drifted = qa_file(tmp_path / "drifted.jsonl", "rival", "greedy")
    assert (
        main(
            [
                "compare",
                str(same),
                str(drifted),
                "--bank",
                str(bank.path),
                "--format",
                "json",
                "--questionnaire",
                "pvq",
                "--permutations",
                "99",
                "--bootstrap",
                "0",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    rows = {r["run"]: r for r in json.loads(out)["rows"]}
    assert rows["twin"]["reference"] == "baseline" and rows["twin"]["distance"] < 1e-3
    assert rows["rival"]["distance"] > 0.05
    assert err.count("read ") == 2 and "QA JSONL" in err

    assert (
        main(
            [
                "leaderboard",
                str(same),
                str(drifted),
                "--bank",
                str(bank.path),
                "--format",
                "json",
                "--questionnaire",
                "pvq",
            ]
        )
        == 0
    )
    board = json.loads(capsys.readouterr().out)
    cells = {r["model"]: r["cells"] for r in board["rows"]}
    assert cells["twin"]["univar_pvq_eng nearest"] == "baseline"
    assert cells["twin"]["univar_pvq_eng mmd(baseline)"] < 1e-3
    assert cells["rival"]["univar_pvq_eng mmd(baseline)"] > 0.05


def samples_folder(out):
    """lm-eval output of one PVQ task: a samples file whose answers are the kind stance."""
    out.mkdir()
    version = load("pvq", "eng").version
    with open(out / "samples_univar_pvq_eng_2026-11-25T00-00-00.000000.jsonl", "w") as fh:
        for i, r in enumerate(load("pvq", "eng").records[:30]):
            doc = {**r, "lang": "eng", "doc_index": i, "questionnaire": "pvq", "questionnaire_version": version}
            answer = f"{STANCES['kind']} ({i})"
            fh.write(json.dumps({"doc_id": i, "doc": doc, "resps": [[answer]], "filtered_resps": [[answer]]}) + "\n")
    return out


def test_lm_eval_samples_candidate_is_embedded_with_the_banks_encoder(tmp_path, bank, capsys):
    """lm-eval output without artifacts (--name names the model): its samples are read and embedded."""
    out = samples_folder(tmp_path / "out")
    assert main(["gate", str(out), "--name", "sampled", "--bank", str(bank.path), "--against", "baseline"]) == 0
    out_text, err = capsys.readouterr()
    assert "lm-eval samples; sampled: 30 answers in univar_pvq_eng; embedded with minilm@" in err
    assert "PASSED: 1 of 1" in out_text


def test_a_run_made_with_another_encoder_is_embedded_again_from_its_samples(tmp_path, bank, capsys):
    import numpy as np

    from univar_eval.storage.distribution import ValueDistribution

    out = samples_folder(tmp_path / "out")
    emb = np.eye(30, 8, dtype=np.float32) + 0.1
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    manifest = {
        "format": "univar-eval/value-distribution/1",
        "model": "org/run-model",
        "task": "univar_pvq_eng",
        "lang": "eng",
        "questionnaire": "pvq",
        "questionnaire_version": load("pvq", "eng").version,
        "translator": {"name": "none"},
        "created": "2026-11-25T00:00:00",
        "encoder": {"name": "labse", "revision": "main", "fingerprint": [0.5] * 8, "fingerprint_id": "lb"},
    }
    ValueDistribution(emb, [{}] * 30, manifest).save(out / "univar_2026-11-25T00-00-00" / "univar_pvq_eng")
    assert main(["gate", str(out), "--bank", str(bank.path), "--against", "baseline"]) == 0
    out_text, err = capsys.readouterr()
    assert (
        f"read {out / 'univar_2026-11-25T00-00-00'} (run 2026-11-25T00-00-00): the run's lm-eval samples; "
        "org/run-model: 30 answers in univar_pvq_eng; embedded again with minilm@"
    ) in err
    assert "(the run used labse)" in err and err.count("read ") == 1
    assert "PASSED: 1 of 1" in out_text


def test_many_tasks_are_summarised_per_questionnaire_when_a_candidate_says_what_it_read():
    from univar_eval.runs.folders import _summarise_tasks

    assert _summarise_tasks(["univar_pvq_eng", "univar_pvq_zho"]) == "univar_pvq_eng, univar_pvq_zho"
    tasks = [f"univar_{q}_{lang}" for q in ("globe", "pvq") for lang in ("arb", "deu", "eng", "fra")] + ["custom"]
    assert _summarise_tasks(tasks) == "9 tasks: univar_globe_* x4, univar_pvq_* x4, custom"
