"""Reference banks: building from each source, integrity, refusals, atomic writes, the embedding cache."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline.answers import TEXT_FORMAT
from univar_eval.pipeline.cache import cached_encode, open_cache
from univar_eval.pipeline.questionnaire import load
from univar_eval.stats.references import reference_distances
from univar_eval.storage import files as storage
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.usefixtures("private_cache")


def qa_jsonl(path, models=("alpha", "beta"), n=30, lang="eng"):
    questions = [r["question"] for r in load("pvq", "eng").records[:n]]
    stances = {
        "alpha": "I would help the others, kindness matters most to me.",
        "beta": "I would take the bigger reward for myself, winning matters most.",
        "gamma": "I would follow tradition and do what my elders expect.",
    }
    with open(path, "w") as fh:
        for m in models:
            for i, q in enumerate(questions):
                fh.write(
                    json.dumps(
                        {
                            "model": m,
                            "lang": lang,
                            "question": q,
                            "answer": f"{stances[m]} ({i})",
                            "questionnaire": "pvq",
                        }
                    )
                    + "\n"
                )
    return path


def manifest_like(
    encoder_name="minilm",
    fingerprint=None,
    task="univar_pvq_eng",
    lang="eng",
    translator="none",
    version="v1",
    revision=None,
):
    fp = fingerprint or [0.0] * 8
    return {
        "task": task,
        "lang": lang,
        "questionnaire": "pvq",
        "questionnaire_version": version,
        "encoder": {"name": encoder_name, "revision": revision, "fingerprint": fp, "fingerprint_id": "x"},
        "translator": {"name": translator},
        "model": "m",
        "text_format": TEXT_FORMAT,
    }


def random_dist(n=20, d=8, seed=0, **kw):
    emb = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ValueDistribution(emb, [{"i": i} for i in range(n)], manifest_like(**kw))


def test_bank_add_list_show_remove_from_jsonl(tmp_path, capsys, minilm):
    src = qa_jsonl(tmp_path / "qa.jsonl")
    bank_dir = tmp_path / "bank"
    assert main(["bank", "add", "--bank", str(bank_dir), "--encoder", "minilm", str(src)]) == 0
    out = capsys.readouterr().out
    assert "added alpha / univar_pvq_eng: 30 answers" in out and "added beta / univar_pvq_eng: 30 answers" in out
    bank = Bank(bank_dir)
    assert bank.references(task="univar_pvq_eng", lang="eng") == ["alpha", "beta"]
    entry = bank.entry("alpha", "univar_pvq_eng")
    # the questions are ours, so the entry carries our questionnaire version
    assert entry["questionnaire_version"] == load("pvq", "eng").version
    assert entry["encoder"]["name"] == "minilm" and entry["encoder"]["dimension"] == 384
    assert entry["sha256"] == storage.sha256_file(bank_dir / entry["array"])
    assert entry["answers_sha256"] == storage.sha256_file(bank_dir / entry["answers"])
    assert json.loads((bank_dir / "bank.json").read_text())["format"] == "univar-eval/bank/2"
    # no id in the JSONL: none is invented from the file's name (answers pair by question text)
    assert "id" not in storage.read_jsonl(bank_dir / entry["answers"])[0]
    emb = bank.load(entry).embeddings
    assert emb.shape == (30, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=2e-3)  # float16 on disk
    answers = storage.read_jsonl(bank_dir / entry["answers"])
    assert answers[0]["text"].startswith("Q: ") and " A: I would help the others" in answers[0]["text"]

    assert main(["bank", "list", "--bank", str(bank_dir)]) == 0
    assert "alpha: univar_pvq_eng (30)" in capsys.readouterr().out
    assert main(["bank", "show", "--bank", str(bank_dir), "beta", "--verify"]) == 0
    assert "all 1 arrays match their sha256" in capsys.readouterr().out
    assert main(["bank", "remove", "--bank", str(bank_dir), "beta"]) == 0
    assert Bank(bank_dir).models() == ["alpha"]
    assert not (bank_dir / "entries" / "beta").exists() or not any((bank_dir / "entries" / "beta").iterdir())


def test_univar_released_csv_layout(tmp_path, minilm):
    folder = tmp_path / "pvq" / "qa_translated"
    folder.mkdir(parents=True)
    for model in ("aya-101", "chatglm3-6b"):
        with open(folder / f"{model}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["question", "answer", "lang", "mt_lang"])
            for i in range(12):
                w.writerow(
                    [f"Would you help a neighbour in case {i}?", f"Yes, I would help ({model} {i}).", "zh", "en"]
                )
                w.writerow([f"Would you help a stranger in case {i}?", f"Perhaps ({model} {i}).", "eng", "en"])
    bank_dir = tmp_path / "bank"
    assert main(["bank", "add", "--bank", str(bank_dir), "--encoder", "minilm", str(tmp_path / "pvq")]) == 0
    bank = Bank(bank_dir)
    assert bank.models() == ["aya-101", "chatglm3-6b"]
    zho = bank.entry("aya-101", "univar_pvq_zho")
    assert zho["lang"] == "zho" and zho["n_answers"] == 12
    # already English: recorded as translated by UniVaR's NLLB-200 3.3B, never translated again
    assert zho["translator"] == {"name": "nllb-3.3b", "applied_by": "source"}
    assert zho["questionnaire_version"].startswith("external:")
    # two models' CSVs pair by question text, whatever the files are called
    aya = bank.load(zho, with_answers=True)
    res = reference_distances(aya, bank, against=["chatglm3-6b"], min_answers=5, n_permutations=0)
    r = res["references"]["chatglm3-6b"]
    assert r["design"] == "shared_shift" and r["n_questions"] == 12
    assert bank.entry("aya-101", "univar_pvq_eng")["translator"] == {"name": "none"}


def test_tampered_and_truncated_arrays_fail_their_checksum(tmp_path):
    bank = Bank(tmp_path / "bank", create=True)
    entry = bank.add(random_dist(), model="m1", source="test")
    path = bank.path / entry["array"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        Bank(bank.path).load(entry)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(UserError) as err:
        Bank(bank.path).load(entry)
    assert str(path) in str(err.value)


def test_corrupt_manifest_is_explained(tmp_path):
    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "bank.json").write_text("{not json")
    with pytest.raises(UserError, match="bank.json"):
        Bank(tmp_path / "bank")
    with pytest.raises(UserError, match="no reference bank"):
        Bank(tmp_path / "missing")


def test_bank_refuses_a_second_encoder(tmp_path):
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(random_dist(), model="m1", source="a")
    with pytest.raises(UserError, match="holds minilm embeddings"):
        bank.add(random_dist(encoder_name="labse"), model="m2", source="b")
    with pytest.raises(UserError, match="holds minilm embeddings"):
        bank.add(random_dist(fingerprint=[0.5] * 8), model="m2", source="b")
    assert Bank(bank.path).models() == ["m1"]


def test_a_failed_write_leaves_the_bank_as_it_was(tmp_path, monkeypatch):
    bank = Bank(tmp_path / "bank", create=True)
    first = bank.add(random_dist(seed=1), model="m1", source="a")
    before = (bank.path / "bank.json").read_bytes()
    array_before = (bank.path / first["array"]).read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("univar_eval.storage.bank.write_jsonl", crash)
    with pytest.raises(OSError):
        bank.add(random_dist(seed=2), model="m1", source="b")  # same entry: would replace it
    assert (bank.path / "bank.json").read_bytes() == before
    assert sorted(p.name for p in (bank.path / "entries" / "m1").iterdir()) == sorted(
        [first["array"].split("/")[-1], first["answers"].split("/")[-1]]
    )  # nothing half-written left
    monkeypatch.undo()
    reloaded = Bank(bank.path)
    # the manifest still names the old array and its sha256, and no temp files are left behind
    assert reloaded.entry("m1", "univar_pvq_eng")["sha256"] == first["sha256"]
    assert not [p for p in bank.path.rglob("*") if ".tmp" in p.name]
    # the old array is byte-identical, and it still loads against its checksum
    assert (bank.path / first["array"]).read_bytes() == array_before
    loaded = reloaded.load(reloaded.entry("m1", "univar_pvq_eng"))
    assert np.array_equal(loaded.embeddings, random_dist(seed=1).embeddings.astype(np.float16).astype(np.float32))


def test_reference_distances_refuse_other_settings_and_report_insufficient(tmp_path):
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(random_dist(seed=1), model="near", source="a")
    bank.add(random_dist(seed=2), model="far", source="a")
    run = random_dist(seed=1)
    res = reference_distances(run, bank, min_answers=10, n_permutations=200)
    assert res["nearest"] == "near" and res["references"]["near"]["distance"] == pytest.approx(0, abs=0.02)
    assert res["references"]["far"]["p_value"] is not None
    small = ValueDistribution(run.embeddings[:5], run.records[:5], run.manifest)
    res = reference_distances(small, bank, min_answers=10)
    assert res["status"] == "insufficient" and res["nearest"] is None
    assert math.isnan(res["references"]["near"]["distance"])
    other_version = random_dist(version="v2")
    with pytest.raises(UserError, match="questionnaire version differs"):
        reference_distances(other_version, bank)
    zho_bank = Bank(tmp_path / "bank2", create=True)
    zho_bank.add(random_dist(task="univar_pvq_zho", lang="zho", translator="nllb-3.3b"), model="r", source="a")
    with pytest.raises(UserError, match="translation setting differs"):
        reference_distances(random_dist(task="univar_pvq_zho", lang="zho", translator="nllb-600m"), zho_bank)


def test_embedding_cache_embeds_each_text_once(minilm):
    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, []
            self.name, self.dimension = inner.name, inner.dimension

        def describe(self):
            return self.inner.describe()

        def encode(self, texts, **kw):
            self.calls.append(list(texts))
            return self.inner.encode(texts, **kw)

    enc = Counting(minilm)
    texts = ["Q: a? A: yes.", "Q: b? A: no.", "Q: a? A: yes."]
    first = cached_encode(enc, texts)
    assert enc.calls == [["Q: a? A: yes.", "Q: b? A: no."]]
    second = cached_encode(enc, texts + ["Q: c? A: maybe."])
    assert enc.calls[1] == ["Q: c? A: maybe."]
    assert np.array_equal(first, second[:3])
    assert np.allclose(first, minilm.encode(texts), atol=1e-6)
    assert open_cache("embeddings").count() == 3


def test_lm_eval_task_refuses_an_incomparable_bank_before_generating(tmp_path, capsys):
    from lm_eval.tasks import TaskManager

    from univar_eval.pipeline.encoders import get_card

    bank = Bank(tmp_path / "bank", create=True)
    # the real minilm card's revision; version "v1": not our questionnaire's
    bank.add(random_dist(revision=get_card("minilm").revision), model="ref", source="a")
    # before generation, lm_eval stops with one "error: ..." line and exit code 2
    for encoder, problem in (("minilm", "questionnaire version differs"), ("labse", "encoder differs")):
        with pytest.raises(SystemExit) as exc:
            TaskManager(metadata={"encoder": encoder, "bank": str(bank.path)}).load(["univar_pvq_eng"])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and problem in err[0] and err[0].startswith("error: ")


def test_malformed_sample_lines_name_file_and_line(tmp_path, capsys):
    good = {
        "doc_id": 0,
        "doc": {"id": "q1", "question": "Would you help?", "lang": "eng", "value": "v", "higher_order": "h"},
        "resps": [["Yes."]],
        "filtered_resps": [["Yes."]],
    }
    path = tmp_path / "samples_univar_pvq_eng_2026-11-25T00-00-00.000000.jsonl"
    path.write_text(json.dumps(good) + "\n{broken\n")
    assert main(["bank", "add", "--bank", str(tmp_path / "b"), "--name", "m", "--encoder", "minilm", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{path}:2" in err and len(err.strip().splitlines()) == 1
    path.write_text(json.dumps({"doc": {"no_question": 1}, "resps": []}) + "\n")
    assert main(["bank", "add", "--bank", str(tmp_path / "b"), "--name", "m", str(path)]) == 2
    assert f"{path}:1: not a univar questionnaire sample" in capsys.readouterr().err
    assert not (tmp_path / "b" / "bank.json").exists()


def test_lm_eval_task_accepts_a_bank_made_with_the_same_local_translator(tmp_path, tiny_translator):
    """The early check uses the same names as the manifests: a local translator folder is 'local:<folder>'."""
    from lm_eval.tasks import TaskManager

    from univar_eval.pipeline.encoders import get_card

    folder = tiny_translator  # a loadable one: translators are loaded before generation too
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(
        random_dist(
            revision=get_card("minilm").revision,
            task="univar_pvq_zho",
            lang="zho",
            translator=f"local:{folder.name}",
            version=load("pvq", "zho").version,
        ),
        model="ref",
        source="a",
    )
    tasks = TaskManager(metadata={"encoder": "minilm", "translator": str(folder), "bank": str(bank.path)}).load(
        ["univar_pvq_zho"]
    )["tasks"]
    assert "mmd@ref" in tasks["univar_pvq_zho"].aggregation()


def fake_run(root, n=12):
    """An lm-eval samples file of univar_pvq_eng and beside it the run's artifacts, whose embeddings are a
    marker (all rows e1), so a reused entry and a re-embedded one are told apart."""
    q = load("pvq", "eng")
    folder = root / "model"
    folder.mkdir(parents=True)
    lines = []
    for i, r in enumerate(q.records[:n]):
        doc = {**r, "questionnaire": "pvq", "questionnaire_version": q.version, "doc_index": i}
        lines.append(json.dumps({"doc_id": i, "doc": doc, "filtered_resps": [[f"I would help them ({i})."]]}))
    (folder / "samples_univar_pvq_eng_2026-01-01T00-00-00.jsonl").write_text("\n".join(lines) + "\n")
    marker = np.zeros((n, 384), dtype=np.float32)
    marker[:, 0] = 1.0
    m = manifest_like(encoder_name="minilm")
    m["questionnaire_version"] = q.version
    ValueDistribution(marker, [{"id": r["id"]} for r in q.records[:n]], m).save(
        folder / "univar_2026-01-01T00-00-00" / "univar_pvq_eng"
    )
    return folder


def test_bank_add_reuses_run_embeddings_unless_no_reuse(tmp_path, capsys, minilm):
    run = fake_run(tmp_path / "runs")
    reuse, fresh = tmp_path / "reuse", tmp_path / "fresh"
    assert main(["bank", "add", "--bank", str(reuse), "--name", "m", str(run)]) == 0
    assert "reused the run's embeddings" in capsys.readouterr().out
    emb = Bank(reuse).load(Bank(reuse).entry("m", "univar_pvq_eng")).embeddings
    assert np.array_equal(emb[:, 0], np.ones(12)) and not emb[:, 1:].any()  # the marker, unchanged

    assert (
        main(["bank", "add", "--bank", str(fresh), "--name", "m", "--encoder", "minilm", "--no-reuse", str(run)]) == 0
    )
    assert "embedded with minilm" in capsys.readouterr().out
    bank = Bank(fresh)
    entry = bank.entry("m", "univar_pvq_eng")
    texts = [a["text"] for a in storage.read_jsonl(fresh / entry["answers"])]
    assert np.allclose(bank.load(entry).embeddings, minilm.encode(texts), atol=2e-3)  # re-embedded


def test_bank_add_no_replace_refuses_and_keeps_the_entry(tmp_path, capsys, minilm):
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(random_dist(seed=1), model="alpha", source="a")
    before = {p: p.read_bytes() for p in bank.path.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(UserError, match="alpha / univar_pvq_eng"):
        bank.add_many([(random_dist(seed=2), "alpha", "b")], replace=False)
    after = {p: p.read_bytes() for p in bank.path.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # nothing written, nothing replaced
    # the CLI flag reaches the bank: a second add of the same model and task exits 2 with one line
    qa = qa_jsonl(tmp_path / "qa.jsonl", models=("alpha",), n=5)
    code = main(["bank", "add", "--bank", str(tmp_path / "bank2"), "--encoder", "minilm", str(qa)])
    assert code == 0
    capsys.readouterr()
    first = Bank(tmp_path / "bank2").entry("alpha", "univar_pvq_eng")
    assert main(["bank", "add", "--bank", str(tmp_path / "bank2"), "--encoder", "minilm", "--no-replace", str(qa)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "alpha / univar_pvq_eng" in err and err.count("\n") == 1
    assert Bank(tmp_path / "bank2").entry("alpha", "univar_pvq_eng") == first
    assert main(["bank", "add", "--bank", str(tmp_path / "bank2"), "--encoder", "minilm", str(qa)]) == 0
    assert Bank(tmp_path / "bank2").entry("alpha", "univar_pvq_eng")["array"] != first["array"]  # replaced


CONCURRENT_ADD = """
import sys
import numpy as np
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution
model = sys.argv[2]
for i in range(4):
    e = np.random.default_rng(i).normal(size=(6, 8)).astype(np.float32)
    m = {"task": f"univar_pvq_t{i}", "lang": "eng", "encoder": {"name": "fake", "dimension": 8,
         "fingerprint": [0.0] * 8, "fingerprint_id": "fp"}}
    Bank(sys.argv[1], create=True).add(ValueDistribution(e, [{"i": j} for j in range(6)], m), model=model, source="p")
"""


def test_concurrent_adds_keep_every_entry_and_clean_none_of_the_others_files(tmp_path):
    """Orphan cleaning runs under the lock every write takes, so a concurrent add never loses a file."""
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_ADD, str(tmp_path / "bank"), m]) for m in ("p1", "p2")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    bank = Bank(tmp_path / "bank")
    assert [(e["model"], e["task"]) for e in bank.entries()] == [
        (m, f"univar_pvq_t{i}") for m in ("p1", "p2") for i in range(4)
    ]
    for e in bank.entries():
        assert bank.load(e).embeddings.shape == (6, 8)
    files = sorted(p.relative_to(bank.path).as_posix() for p in (bank.path / "entries").rglob("*") if p.is_file())
    assert files == sorted(e[k] for e in bank.entries() for k in ("array", "answers"))


def test_safetensors_header_bombs_and_symlinked_arrays_are_refused(tmp_path):
    bank = Bank(tmp_path / "bank", create=True)
    entry = bank.add(random_dist(), model="m1", source="test")
    path = bank.path / entry["array"]
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")  # a header claiming exabytes
    with pytest.raises(UserError, match="corrupt safetensors header"):
        storage.load_array(path)
    outside = tmp_path / "outside.safetensors"
    storage.save_array(outside, np.ones((20, 8)))
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(UserError, match="^damaged bank: .*leads outside the bank"):
        Bank(bank.path)
    assert outside.exists()
