"""``univar-eval identify``: metrics against hand-computed cases, kNN and probe on data of known separability,
the seeded split, input gathering and refusals, the CLI end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import synthetic
from synthetic import manifest

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.stats import identify as ident
from univar_eval.storage.distribution import ValueDistribution


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "cache"))


def clustered(n_labels=6, n=60, d=32, noise=0.3, seed=0):
    """Rows that are noisy copies of ``n_labels`` orthonormal directions (well separated)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0][:n_labels]
    x = np.vstack([basis[i] + noise * rng.normal(size=(n, d)) / math.sqrt(d) for i in range(n_labels)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(n_labels), n)


def synthetic_bank(path, n=40, **kw):
    """Each model-language set is a noisy cloud around its own direction (model part + language part)."""
    return synthetic.synthetic_bank(path, model_weight=1.0, lang_weight=1.5, n=n, **kw)


# -- metrics -------------------------------------------------------------------------------------------------
def test_weighted_f1_hand_computed():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    # label 0: TP 2, FP 0, FN 1 -> 4/5; label 1: TP 1, FP 1, FN 1 -> 1/2; label 2: TP 1, FP 1, FN 0 -> 2/3
    expected = (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6
    assert ident.weighted_f1(y_true, y_pred, 3) == pytest.approx(expected)
    assert ident.weighted_f1(y_true, y_true, 3) == 1.0
    # a label only predicted (no true rows) weighs nothing; its false positive still lowers label 0's F1
    assert ident.weighted_f1(np.array([0, 0]), np.array([0, 1]), 2) == pytest.approx(2 / 3)
    assert ident.weighted_f1(np.array([0, 1]), np.array([1, 0]), 2) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_weighted_f1_agrees_with_scikit_learn(seed):
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    n_labels = 6
    y_true = rng.integers(0, n_labels, 80)
    y_pred = np.where(rng.random(80) < 0.5, y_true, rng.integers(0, n_labels, 80))
    y_pred[y_pred == 5] = 4  # a label never predicted: its F1 is 0 (sklearn's zero_division=0)
    expected = f1_score(y_true, y_pred, average="weighted", labels=list(range(n_labels)), zero_division=0)
    assert ident.weighted_f1(y_true, y_pred, n_labels) == pytest.approx(expected, abs=1e-12)


def test_confusion_and_accuracy():
    m = ident.confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert ident.accuracy(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])) == 0.5


def test_accuracy_at_k_hand_computed():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    y = np.array([2, 1, 0])
    assert ident.accuracy_at_k(scores, y, 1) == 0.0
    assert ident.accuracy_at_k(scores, y, 2) == pytest.approx(2 / 3)
    assert ident.accuracy_at_k(scores, y, 3) == 1.0
    assert ident.accuracy_at_k(scores, y, 10) == 1.0  # k above the number of labels
    # ties go to the lower label index
    assert ident.accuracy_at_k(np.zeros((2, 3)), np.array([0, 1]), 1) == 0.5


def _unit(angle_cos):
    return [angle_cos, math.sqrt(1 - angle_cos ** 2)]


def test_knn_majority_vote_and_tie_break_by_summed_similarity():
    test = np.array([[1.0, 0.0]])
    train = np.array([_unit(0.9), _unit(0.1), _unit(0.8), _unit(0.7)])
    labels = np.array([0, 0, 1, 1])
    assert ident.knn_predict(train, labels, test, 1, 2).tolist() == [0]  # nearest is label 0
    assert ident.knn_predict(train, labels, test, 3, 2).tolist() == [1]  # 2 votes to 1
    assert ident.knn_predict(train, labels, test, 4, 2).tolist() == [1]  # 2-2 tie: 1.5 beats 1.0
    assert ident.knn_predict(train, labels, test, 99, 2).tolist() == [1]  # k capped at the training size


def test_effective_k_capped_at_smallest_label():
    assert ident.effective_k(50, np.array([0] * 30 + [1] * 12)) == 12
    assert ident.effective_k(5, np.array([0] * 30 + [1] * 12)) == 5


def test_stratified_split_is_seeded_and_per_label():
    y = np.repeat(np.arange(3), [10, 20, 5])
    train, test = ident.stratified_split(y, 0.2, seed=1)
    assert np.bincount(y[test]).tolist() == [2, 4, 1]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(y)))
    again = ident.stratified_split(y, 0.2, seed=1)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(ident.stratified_split(y, 0.2, seed=2)[1], test)
    with pytest.raises(UserError, match="two or more"):
        ident.stratified_split(np.array([0, 0, 1]), 0.2)
    with pytest.raises(UserError, match="between 0 and 1"):
        ident.stratified_split(y, 1.5)


# -- known separability --------------------------------------------------------------------------------------
def test_separable_labels_are_identified():
    x, y = clustered()
    report = ident.identify(x, y, [f"m{i}$eng" for i in range(6)], seed=0)
    assert report["n_labels"] == 6 and report["chance"] == pytest.approx(1 / 6)
    assert report["n_test"] == 6 * 12 and report["knn"]["k"] == 48  # 48 training rows per label cap k=50
    assert report["knn"]["accuracy"] >= 0.97 and report["knn"]["weighted_f1"] >= 0.97
    assert report["probe"]["acc@1"] >= 0.95 and report["probe"]["weighted_f1"] >= 0.95
    assert report["probe"]["acc@5"] == 1.0 and report["probe"]["acc@10"] == 1.0
    assert report["probe"]["steps"] == 20  # 288 training rows: one batch of 512 per epoch


def test_pure_noise_is_near_chance_and_runs_are_reproducible():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6 * 100, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat(np.arange(6), 100)
    names = [f"m{i}$eng" for i in range(6)]
    report = ident.identify(x, y, names, seed=0, epochs=5)
    for value in (report["knn"]["accuracy"], report["probe"]["acc@1"]):
        assert abs(value - 1 / 6) < 0.12  # 120 held-out rows: chance +- about 3.5 standard errors
    assert report["probe"]["acc@5"] < 0.95
    assert ident.identify(x, y, names, seed=0, epochs=5) == report


def test_one_label_is_refused():
    x, y = clustered(n_labels=1)
    with pytest.raises(UserError, match="two labels"):
        ident.identify(x, y, ["only$eng"])


# -- inputs -------------------------------------------------------------------------------------------------
def test_gather_labels_bank_and_run_and_refuses_mixed_encoders(tmp_path):
    synthetic_bank(tmp_path / "bank", models=("alpha", "beta"), langs=("eng", "fra"))
    e = np.eye(16, dtype=np.float32)[:12]
    ValueDistribution(e, [{}] * 12, manifest("cand", "eng")).save(tmp_path / "run" / "univar_x" / "univar_pvq_eng")
    sets = ident.gather([str(tmp_path / "run")], bank=str(tmp_path / "bank"))
    x, y, names = ident.dataset(sets)
    assert names == ["alpha$eng", "alpha$fra", "beta$eng", "beta$fra", "cand$eng"]
    assert x.shape == (4 * 40 + 12, 16) and np.bincount(y).tolist() == [40, 40, 40, 40, 12]
    ValueDistribution(e, [{}] * 12, manifest("other", "eng", encoder="fake", fingerprint=0.5)).save(
        tmp_path / "run2" / "univar_x" / "univar_pvq_eng")
    with pytest.raises(UserError, match="use inputs from one encoder"):
        ident.gather([str(tmp_path / "run2")], bank=str(tmp_path / "bank"))
    with pytest.raises(UserError, match="not minilm"):
        ident.gather([str(tmp_path / "run")], encoder="minilm")


# -- CLI -----------------------------------------------------------------------------------------------------
def test_cli_identify_on_a_bank(tmp_path, capsys):
    synthetic_bank(tmp_path / "bank")
    out = tmp_path / "id.json"
    assert main(["identify", "--bank", str(tmp_path / "bank"), "--json", str(out), "--epochs", "200"]) == 0
    text = capsys.readouterr().out
    assert "identification of 9 labels" in text and "chance level: 1/9 = 11.11%" in text
    assert "kNN k=32 (capped from 50)" in text  # 40 rows per label, 8 held out
    report = json.loads(out.read_text())
    assert report["n_labels"] == 9 and report["n_train"] == 288 and report["n_test"] == 72
    assert report["encoder"]["name"] == "fake"
    assert report["knn"]["accuracy"] > 0.9 and report["probe"]["acc@1"] > 0.8
    assert [r["label"] for r in report["labels"]][:2] == ["alpha$eng", "alpha$fra"]


def test_cli_identify_embeds_qa_jsonl(tmp_path, capsys, minilm):
    stances = {"alpha": "I would help the others; kindness matters most to me.",
               "beta": "I would take the bigger reward for myself; winning is what counts."}
    with open(tmp_path / "qa.jsonl", "w") as fh:
        for model, stance in stances.items():
            for i in range(20):
                fh.write(json.dumps({"model": model, "lang": "eng", "questionnaire": "pvq",
                                     "question": f"What would you do in situation {i}?",
                                     "answer": f"{stance} Case {i}."}) + "\n")
    out = tmp_path / "id.json"
    assert main(["identify", str(tmp_path / "qa.jsonl"), "--encoder", "minilm", "--json", str(out),
                 "--epochs", "100"]) == 0
    report = json.loads(out.read_text())
    assert report["encoder"]["name"] == "minilm" and report["n_labels"] == 2 and report["n_test"] == 8
    assert report["knn"]["accuracy"] == 1.0 and report["probe"]["acc@1"] == 1.0


def test_cli_identify_errors(tmp_path, capsys):
    assert main(["identify"]) == 2
    assert "no inputs" in capsys.readouterr().err
    assert main(["identify", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
