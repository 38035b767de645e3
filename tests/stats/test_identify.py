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
from univar_eval.reports import identify as ident_report
from univar_eval.stats import identify as ident
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.usefixtures("private_cache")


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
    return [angle_cos, math.sqrt(1 - angle_cos**2)]


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
    assert report["probe"]["acc@5"] == 1.0 and "acc@10" not in report["probe"]  # 6 labels: acc@10 is 1 by construction
    assert report["probe"]["steps"] == 20  # 288 training rows: one batch of 512 per epoch
    assert report["split"]["kind"] == "stratified" and report["split"]["note"].startswith("80/20 per label")


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


# -- the paper's protocol ------------------------------------------------------------------------------------
def test_probe_learning_rate_follows_univar_lambda_schedule():
    x, y = clustered(n_labels=3, n=20)
    probe = ident.train_probe(x, y, 3, epochs=20, lr=2e-3)
    # LambdaLR factor 1 - epoch/20, stepped once per epoch: 2e-3, 1.9e-3, ..., 1e-4
    assert probe.learning_rates == pytest.approx([2e-3 * (1 - e / 20) for e in range(20)])
    assert ident.train_probe(x, y, 3, epochs=4, lr=1.0).learning_rates == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_paper_fixed_split_per_label():
    y = np.repeat(np.arange(3), [170, 168, 200])
    train, test, info = ident.choose_split(y, "pvq", seed=4)
    assert info["kind"] == "paper" and (info["n_train_per_label"], info["n_test_per_label"]) == (128, 40)
    assert np.bincount(y[train]).tolist() == [128] * 3 and np.bincount(y[test]).tolist() == [40] * 3
    assert not set(train) & set(test)
    # drawn at random within each label, seeded
    assert np.array_equal(ident.choose_split(y, "pvq", seed=4)[1], test)
    assert not np.array_equal(ident.choose_split(y, "pvq", seed=5)[1], test)
    assert test[:40].tolist() != list(range(40))
    assert ident.PAPER_SPLIT == {
        "pvq": (128, 40),
        "wvs": (201, 50),
        "globe": (54, 30),
        "situations": (1000, 250),
        "control": (735, 250),
    }


def test_small_sources_fall_back_to_80_20_and_say_why():
    y = np.repeat(np.arange(2), 132)  # our WVS: 132 items, the paper's 201/50 needs 251
    train, test, info = ident.choose_split(y, "wvs")
    assert info["kind"] == "stratified" and np.bincount(y[test]).tolist() == [26, 26]
    assert (
        info["note"] == "80/20 per label (the paper's 201/50 per label needs 251 answers per label, the smallest "
        "label has 132)"
    )
    assert ident.choose_split(np.repeat(np.arange(2), 81), "globe")[2]["kind"] == "stratified"  # 84 needed
    assert "no fixed counts" in ident.choose_split(y, "custom")[2]["note"]


def test_question_split_keeps_every_question_on_one_side():
    questions = np.array([f"q{i % 30}" for i in range(90)] * 2, dtype=object)  # 2 labels x 3 repeats x 30 questions
    y = np.repeat(np.arange(2), 90)
    train, test, info = ident.choose_split(y, "pvq", split="question", questions=questions, seed=1)
    assert info["kind"] == "question" and info["n_questions"] == 30 and info["n_test_questions"] == 6
    assert not set(questions[train]) & set(questions[test])
    assert len(test) == 6 * 3 * 2 and sorted(np.concatenate([train, test]).tolist()) == list(range(180))
    with pytest.raises(UserError, match="question of every answer"):
        ident.choose_split(y, "pvq", split="question", questions=None)
    with pytest.raises(UserError, match="unknown split"):
        ident.choose_split(y, "pvq", split="pooled")


def test_question_keys():
    assert ident.question_keys([{"id": "pvq-a-01"}, {"id": "pvq-a-02"}]) == ["pvq-a-01", "pvq-a-02"]
    # file:line ids of external CSVs are positions, not questions: the question text is used
    assert ident.question_keys([{"id": "m.csv:2", "question": "Why  Help?"}]) == ["why help?"]
    assert ident.question_keys([{"i": 1}]) is None


def _source_bank(path, n=40):
    """PVQ sets where models separate well, and control sets of pure noise, for the same labels."""
    rng = np.random.default_rng(7)
    bank = Bank(path, create=True)
    directions = {m: rng.normal(size=16) for m in ("alpha", "beta", "gamma")}
    for m, direction in directions.items():
        for q in ("pvq", "control"):
            e = synthetic.cloud(direction, n, rng) if q == "pvq" else synthetic.cloud(rng.normal(size=16), n, rng, 3.0)
            records = [{"id": f"{q}-{i}", "question": f"question {i}"} for i in range(n)]
            bank.add(ValueDistribution(e, records, manifest(m, "eng", questionnaire=q)), model=m, source="synthetic")
    return bank


def test_each_source_is_evaluated_on_its_own(tmp_path):
    _source_bank(tmp_path / "bank")
    sets = ident_report.gather([], bank=str(tmp_path / "bank"))
    reports = ident.identify_sources(sets, epochs=100)
    assert list(reports) == ["pvq", "control"]  # the control last; never pooled with the value sets
    for source, rep in reports.items():
        assert rep["source"] == source and rep["n_labels"] == 3 and rep["n_train"] + rep["n_test"] == 3 * 40
    assert reports["pvq"]["knn"]["accuracy"] == 1.0
    assert reports["control"]["knn"]["accuracy"] < 0.7
    by_q = ident.identify_sources(sets, epochs=5, split="question")
    assert by_q["pvq"]["split"]["kind"] == "question"


def test_source_with_one_label_is_skipped_and_all_single_refused(tmp_path):
    _source_bank(tmp_path / "bank")
    sets = ident_report.gather([], bank=str(tmp_path / "bank"))
    lone = [s for s in sets if s.source == "pvq"] + [s for s in sets if s.source == "control"][:1]
    reports = ident.identify_sources(lone, epochs=2)
    assert "skipped" in reports["control"] and "only one label" in ident_report.format_report(reports["control"])
    with pytest.raises(UserError, match="two labels"):
        ident.identify_sources([s for s in sets if s.model == "alpha"], epochs=2)


# -- inputs -------------------------------------------------------------------------------------------------
def test_gather_labels_bank_and_run_and_refuses_mixed_encoders(tmp_path):
    synthetic_bank(tmp_path / "bank", models=("alpha", "beta"), langs=("eng", "fra"))
    e = np.eye(16, dtype=np.float32)[:12]
    ValueDistribution(e, [{}] * 12, manifest("cand", "eng")).save(tmp_path / "run" / "univar_x" / "univar_pvq_eng")
    sets = ident_report.gather([str(tmp_path / "run")], bank=str(tmp_path / "bank"))
    x, y, names = ident.dataset(sets)
    assert names == ["alpha$eng", "alpha$fra", "beta$eng", "beta$fra", "cand$eng"]
    assert x.shape == (4 * 40 + 12, 16) and np.bincount(y).tolist() == [40, 40, 40, 40, 12]
    ValueDistribution(e, [{}] * 12, manifest("other", "eng", encoder="fake", fingerprint=0.5)).save(
        tmp_path / "run2" / "univar_x" / "univar_pvq_eng"
    )
    with pytest.raises(UserError, match="use inputs from one encoder"):
        ident_report.gather([str(tmp_path / "run2")], bank=str(tmp_path / "bank"))
    with pytest.raises(UserError, match="not minilm"):
        ident_report.gather([str(tmp_path / "run")], encoder="minilm")


# -- CLI -----------------------------------------------------------------------------------------------------
def test_cli_identify_on_a_bank(tmp_path, capsys):
    synthetic_bank(tmp_path / "bank")
    out = tmp_path / "id.json"
    assert main(["identify", "--bank", str(tmp_path / "bank"), "--json", str(out), "--epochs", "200"]) == 0
    text = capsys.readouterr().out
    assert "source pvq: identification of 9 labels" in text and "chance level: 1/9 = 11.11%" in text
    assert "kNN k=32 (capped from 50)" in text  # 40 rows per label, 8 held out
    assert "split: stratified, 80/20 per label (the paper's 128/40 per label needs 168" in text
    assert "probe acc@5" in text and "probe acc@10" not in text  # 9 labels: acc@10 would be 1 by construction
    report = json.loads(out.read_text())
    assert list(report["sources"]) == ["pvq"] and report["split"] == "paper"
    block = report["sources"]["pvq"]
    assert block["n_labels"] == 9 and block["n_train"] == 288 and block["n_test"] == 72
    assert report["encoder"]["name"] == "fake" and block["encoder"]["name"] == "fake"
    assert block["knn"]["accuracy"] > 0.9 and block["probe"]["acc@1"] > 0.7  # chance 0.11
    assert [r["label"] for r in block["labels"]][:2] == ["alpha$eng", "alpha$fra"]


def test_cli_identify_embeds_qa_jsonl(tmp_path, capsys, minilm):
    stances = {
        "alpha": "I would help the others; kindness matters most to me.",
        "beta": "I would take the bigger reward for myself; winning is what counts.",
    }
    with open(tmp_path / "qa.jsonl", "w") as fh:
        for model, stance in stances.items():
            for i in range(20):
                fh.write(
                    json.dumps(
                        {
                            "model": model,
                            "lang": "eng",
                            "questionnaire": "pvq",
                            "question": f"What would you do in situation {i}?",
                            "answer": f"{stance} Case {i}.",
                        }
                    )
                    + "\n"
                )
    out = tmp_path / "id.json"
    assert (
        main(["identify", str(tmp_path / "qa.jsonl"), "--encoder", "minilm", "--json", str(out), "--epochs", "100"])
        == 0
    )
    text = capsys.readouterr().out
    assert "probe acc@1" in text and "acc@5" not in text.split("chance level")[0]  # two labels: no acc@5/acc@10 rows
    assert "(acc@5 and acc@10 not shown: with 2 labels they are 1 by construction)" in text
    report = json.loads(out.read_text())["sources"]["pvq"]
    assert report["encoder"]["name"] == "minilm" and report["n_labels"] == 2 and report["n_test"] == 8
    assert report["knn"]["accuracy"] == 1.0 and report["probe"]["acc@1"] == 1.0
    assert sorted(report["probe"]) == ["acc@1", "batch_size", "epochs", "lr", "schedule", "steps", "weighted_f1"]


def test_cli_identify_errors(tmp_path, capsys):
    assert main(["identify"]) == 2
    assert "no inputs" in capsys.readouterr().err
    assert main(["identify", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
