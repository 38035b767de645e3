"""Hostile input and faults (issue 14): one test per numbered item (item 12, report escaping, lives with the
report renderer's tests).

Every test asserts the exact exit code, the exact one-line message, and that nothing outside the bank (and
nothing the bank already held) changed. The files of the whole temporary folder are snapshotted (name ->
bytes) before and compared after.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline.cache import TABLE, cached_encode, open_cache, text_key
from univar_eval.pipeline.questionnaire import load
from univar_eval.reports.compare import compare_runs, format_table
from univar_eval.stats.references import pairing_keys, reference_distances
from univar_eval.storage import files as storage
from univar_eval.storage.bank import FORMAT, Bank
from univar_eval.storage.distribution import ValueDistribution

N = 12
QUESTIONS = [r["question"] for r in load("pvq", "eng").records[:N]]


pytestmark = pytest.mark.usefixtures("private_cache")


# -- helpers ----------------------------------------------------------------------------------------------
def snapshot(root: Path, *, skip: tuple[str, ...] = ("cache",)) -> dict[str, bytes]:
    """Every file under ``root`` (name -> bytes; symlinks as their target), except the folders in ``skip``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.split("/")[0] in skip:
            continue
        if p.is_symlink():
            out[rel] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The single ``error: ...`` line of stderr (the test fails if there is more than one line)."""
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    return lines[0]


def qa_records(model="alpha", n=N, lang="eng", **extra):
    return [
        {
            "model": model,
            "lang": lang,
            "question": q,
            "answer": f"{model} would help the others ({i}).",
            "questionnaire": "pvq",
            **extra,
        }
        for i, q in enumerate(QUESTIONS[:n])
    ]


def write_jsonl(path: Path, records: list[dict], *, bom: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def unit_rows(n=N, d=8, seed=0) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def dist(n=N, d=8, seed=0, task="univar_pvq_eng", lang="eng", encoder="fake", records=None):
    manifest = {
        "task": task,
        "lang": lang,
        "questionnaire": "pvq",
        "questionnaire_version": "v1",
        "translator": {"name": "none"},
        "model": "m",
        "encoder": None
        if encoder is None
        else {"name": encoder, "revision": None, "dimension": d, "fingerprint": [0.0] * 8, "fingerprint_id": "fp"},
    }
    return ValueDistribution(
        unit_rows(n, d, seed), records or [{"id": f"q{i}", "question": QUESTIONS[i]} for i in range(n)], manifest
    )


def small_bank(path: Path, models=("m1",)) -> Bank:
    bank = Bank(path, create=True)
    for i, m in enumerate(models):
        bank.add(dist(seed=i), model=m, source="test")
    return bank


def edit_manifest(bank_dir: Path, change) -> None:
    data = json.loads((bank_dir / "bank.json").read_text())
    change(data)
    (bank_dir / "bank.json").write_text(json.dumps(data))


def damaged(bank_dir: Path, what: str) -> str:
    return (
        f"error: damaged bank: {bank_dir / 'bank.json'}: {what}; nothing it names was read or changed: "
        "restore bank.json from a backup or rebuild the bank"
    )


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside every bank that no command may touch."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    return outside / "victim.txt"


# -- 1. writes outside the bank ----------------------------------------------------------------------------
def test_1_task_and_model_names_never_write_outside_the_bank(tmp_path, capsys, victim, minilm):
    bank_dir = tmp_path / "bank"
    for task in ("../../../outside/pwned", str(tmp_path / "outside" / "pwned")):
        src = write_jsonl(tmp_path / "qa.jsonl", qa_records(task=task))
        before = snapshot(tmp_path)
        code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)
        assert code == 2 and out == ""
        assert one_error(err) == (
            f"error: {src}:1: task {task!r} is not a task name (letters, digits, '_', '-', "
            "'.'; at most 128, starting with a letter or digit)"
        )
        assert snapshot(tmp_path) == before and not bank_dir.exists()
    # a hostile model name is slugged into one folder under entries/
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records(model="../../outside/evil"))
    before = snapshot(tmp_path, skip=("cache", "bank"))
    code, out, _ = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)
    assert code == 0 and "added ../../outside/evil / univar_pvq_eng: 12 answers" in out
    entry = Bank(bank_dir).entry("../../outside/evil", "univar_pvq_eng")
    assert entry["array"].startswith("entries/outside__evil/univar_pvq_eng.")
    assert snapshot(tmp_path, skip=("cache", "bank")) == before
    # entries/<model> symlinked out of the bank: refused before anything is written there
    (bank_dir / "entries" / "alpha").symlink_to(tmp_path / "outside", target_is_directory=True)
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records(model="alpha"))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)
    assert code == 2
    rel = one_error(err).split("array '")[1].split("'")[0]
    assert one_error(err) == damaged(
        bank_dir,
        f"alpha: array {rel!r} leads outside the bank (a symlink to "
        f"{(tmp_path / 'outside' / rel.split('/')[-1]).resolve()})",
    )
    assert snapshot(tmp_path) == before


def test_1_a_lock_file_that_is_a_symlink_is_refused_in_one_line(tmp_path, capsys, victim):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir, models=("m1", "m2"))
    lock = bank_dir / ".lock"
    for target in (victim, tmp_path / "outside" / "missing"):  # to a file, and dangling (never created through it)
        lock.unlink()
        lock.symlink_to(target)
        before = snapshot(tmp_path)
        for argv in (["bank", "remove", "--bank", bank_dir, "m2"], ["bank", "show", "--bank", bank_dir, "--fix"]):
            code, out, err = cli(capsys, *argv)
            assert (code, out) == (2, "") and one_error(err) == (
                f"error: {lock}: the bank's lock file is a symlink (to {target}), which univar-eval does not "
                f"follow; remove it (rm {lock}) and run again"
            ), argv
            assert snapshot(tmp_path) == before
        with pytest.raises(UserError, match="lock file is a symlink"):
            Bank(bank_dir).add(dist(seed=5), model="m3", source="test")
        assert snapshot(tmp_path) == before
    lock.unlink()  # the fix the message names
    assert cli(capsys, "bank", "remove", "--bank", bank_dir, "m2")[0] == 0 and not lock.is_symlink()


def test_1_a_lock_file_that_is_a_folder_is_refused_in_one_line(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir, models=("m1", "m2"))
    lock = bank_dir / ".lock"
    lock.unlink()
    lock.mkdir()
    for holds in ((), ("note.txt",)):  # empty, and holding a file (never deleted by univar-eval)
        for name in holds:
            (lock / name).write_text("keep me\n")
        before = snapshot(tmp_path)
        for argv in (["bank", "remove", "--bank", bank_dir, "m2"], ["bank", "show", "--bank", bank_dir, "--fix"]):
            code, out, err = cli(capsys, *argv)
            assert (code, out) == (2, "") and one_error(err) == (
                f"error: {lock}: the bank's lock file is a folder, which univar-eval cannot lock; remove it "
                f"(rmdir {lock}, or move it out of the bank if it holds anything) and run again"
            ), argv
            assert snapshot(tmp_path) == before and lock.is_dir()
        with pytest.raises(UserError, match="lock file is a folder"):
            Bank(bank_dir).add(dist(seed=5), model="m3", source="test")
        assert snapshot(tmp_path) == before
    (lock / "note.txt").unlink()
    lock.rmdir()  # the fix the message names
    assert cli(capsys, "bank", "remove", "--bank", bank_dir, "m2")[0] == 0 and lock.is_file()
    assert [e["model"] for e in Bank(bank_dir).entries()] == ["m1"]


# -- 2. deletes outside the bank ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_2_a_manifest_naming_files_outside_is_damaged_and_never_followed(tmp_path, capsys, victim, how):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir, models=("m1", "m2"))
    entry = Bank(bank_dir).entry("m1", "univar_pvq_eng")
    if how == "relative":
        named, what = "../outside/victim.txt", "is outside the bank's entries/ folder"
        edit_manifest(bank_dir, lambda d: d["entries"][0].update(array=named))
    elif how == "absolute":
        named, what = str(victim), "is outside the bank's entries/ folder"
        edit_manifest(bank_dir, lambda d: d["entries"][0].update(answers=named))
    else:  # the named file is inside, but a symlink to the victim
        named = entry["array"]
        (bank_dir / named).unlink()
        (bank_dir / named).symlink_to(victim)
        what = f"leads outside the bank (a symlink to {victim.resolve()})"
    key = "answers" if how == "absolute" else "array"
    expected = damaged(bank_dir, f"entry m1 / univar_pvq_eng: {key} {named!r} {what}")
    before = snapshot(tmp_path)
    for argv in (
        ["bank", "remove", "--bank", bank_dir, "m1"],
        ["bank", "show", "--bank", bank_dir, "m1", "--verify"],
        ["bank", "list", "--bank", bank_dir],
        ["bank", "show", "--bank", bank_dir, "--fix"],
    ):
        code, out, err = cli(capsys, *argv)
        assert (code, out) == (2, "") and one_error(err) == expected
    with pytest.raises(UserError) as e:  # a replacing add goes through the same check
        Bank(bank_dir, create=True).add(dist(seed=5), model="m1", source="again")
    assert f"error: {e.value}" == expected
    assert snapshot(tmp_path) == before and victim.read_text() == "precious\n"


# -- 3. encoder check bypass -------------------------------------------------------------------------------
def test_3_a_null_encoder_cannot_bypass_the_one_encoder_check(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir)
    edit_manifest(bank_dir, lambda d: d["entries"][0].update(encoder=None))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "list", "--bank", bank_dir)
    assert (code, out) == (2, "")
    assert one_error(err) == damaged(bank_dir, "entry m1 / univar_pvq_eng: encoder None is not an object")
    with pytest.raises(UserError):
        Bank(bank_dir, create=True).add(dist(encoder="labse"), model="m2", source="b")
    assert snapshot(tmp_path) == before
    # an entry of a second encoder hand-written into the manifest is refused too
    bank2 = tmp_path / "bank2"
    small_bank(bank2, models=("m1", "m2"))
    edit_manifest(bank2, lambda d: d["entries"][1]["encoder"].update(name="labse"))
    code, _, err = cli(capsys, "bank", "list", "--bank", bank2)
    assert code == 2 and one_error(err) == damaged(
        bank2, "entry m2 / univar_pvq_eng: encoder labse differs from the bank's fake (a bank holds one encoder)"
    )
    # and a distribution without an encoder cannot be added at all
    bank3 = Bank(tmp_path / "bank3", create=True)
    with pytest.raises(UserError, match="^cannot add x to the bank: its manifest lacks 'encoder'$"):
        bank3.add(dist(encoder=None), model="m", source="x")
    assert not (tmp_path / "bank3").exists() or not (tmp_path / "bank3" / "bank.json").exists()


# -- 4. bank add drops languages ---------------------------------------------------------------------------
def test_4_one_task_in_several_languages_is_refused_not_dropped(tmp_path, capsys, minilm):
    bank_dir = tmp_path / "bank"
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records(task="mytask") + qa_records(task="mytask", lang="fra"))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", "--translator", "none", src)
    assert (code, out) == (2, "")
    assert one_error(err) == (
        "error: alpha / mytask comes in 2 languages (eng, fra) but a bank entry holds one "
        "language: give each language its own task (or leave 'task' out: it defaults to "
        "univar_<questionnaire>_<lang>)"
    )
    assert snapshot(tmp_path) == before
    # the Bank refuses it too, whoever calls it
    with pytest.raises(UserError, match=r"^m / t comes in 2 languages \(eng, fra\)"):
        Bank(bank_dir, create=True).add_many([(dist(task="t"), "m", "a"), (dist(task="t", lang="fra"), "m", "b")])
    # without a task each language keeps its own entry: nothing is dropped
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records() + qa_records(lang="fra"))
    code, out, _ = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", "--translator", "none", src)
    assert code == 0
    assert [(e["task"], e["lang"], e["n_answers"]) for e in Bank(bank_dir).entries()] == [
        ("univar_pvq_eng", "eng", 12),
        ("univar_pvq_fra", "fra", 12),
    ]


# -- 5. silent replacing -----------------------------------------------------------------------------------
def test_5_replacing_says_so_with_counts_and_empty_name_is_refused(tmp_path, capsys, minilm):
    bank_dir = tmp_path / "bank"
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    assert cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)[0] == 0
    smaller = write_jsonl(tmp_path / "qa8.jsonl", qa_records(n=8))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--name", "", src)
    assert (code, out) == (2, "")
    assert one_error(err) == (
        "error: --name is empty; give the reference model's name, or leave --name out to use the model the source names"
    )
    assert snapshot(tmp_path) == before
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--no-replace", smaller)
    assert (code, out) == (2, "")
    assert one_error(err) == (
        "error: bank already has alpha / univar_pvq_eng (12 answers); leave out --no-replace to replace it"
    )
    assert snapshot(tmp_path) == before
    with pytest.raises(SystemExit) as e:  # no '--replace' flag exists, and no message suggests one
        main(["bank", "add", "--bank", str(bank_dir), "--replace", str(smaller)])
    assert e.value.code == 2 and "unrecognized arguments: --replace" in capsys.readouterr().err
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, smaller)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "replaced alpha / univar_pvq_eng: 12 answers before, 8 now (embedded with minilm)"
    assert Bank(bank_dir).entry("alpha", "univar_pvq_eng")["n_answers"] == 8


# -- 6. answers files checksummed --------------------------------------------------------------------------
def test_6_answers_files_are_checksummed_and_verified_on_load(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    bank = small_bank(bank_dir, models=("m1", "m2"))
    entry = bank.entry("m1", "univar_pvq_eng")
    answers = bank_dir / entry["answers"]
    assert entry["answers_sha256"] == storage.sha256_file(answers)
    original = answers.read_bytes()
    answers.write_text(original.decode().replace('"q0"', '"q9"'))  # rewritten ids change the pairing
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--verify")
    assert code == 2
    assert one_error(err) == (
        f"error: {answers}: sha256 does not match the manifest (answers file modified or "
        "replaced); remove the entry and add it again"
    )
    with pytest.raises(UserError, match="answers file modified or replaced"):
        reference_distances(dist(seed=3), Bank(bank_dir), min_answers=5, n_permutations=0)
    answers.unlink()
    code, out, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--verify")
    assert code == 2
    assert one_error(err) == f"error: {answers}: answers file is missing; remove the entry and add it again"
    answers.write_bytes(original)
    code, out, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--verify")
    assert code == 0 and out.endswith("all 1 arrays match their sha256 (and so do their answers files)\n")
    assert snapshot(tmp_path) == {**before, f"bank/{entry['answers']}": original}


# -- 7. embedding cache integrity --------------------------------------------------------------------------
class CountingEncoder:
    """A deterministic stand-in encoder: the embedding of a text is a function of its bytes."""

    name, dimension = "counting", 8

    def __init__(self):
        self.calls: list[list[str]] = []

    def describe(self):
        return {"fingerprint_id": "c0ffee"}

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        return np.stack([unit_rows(1, 8, seed=sum(t.encode())).ravel() for t in texts])


def test_7_a_tampered_cache_value_is_recomputed_never_used(tmp_path, capsys, caplog, minilm):
    enc = CountingEncoder()
    texts = ["Q: a? A: yes.", "Q: b? A: no."]
    clean = cached_encode(enc, texts)
    cache = open_cache("embeddings")
    with sqlite3.connect(cache.path) as db:  # overwrite one value, leave its checksum
        db.execute(f"UPDATE {TABLE} SET value = ? WHERE key = ?", (np.ones(8, "<f4").tobytes(), text_key(texts[0])))
    again = cached_encode(enc, texts)
    assert np.array_equal(again, clean) and enc.calls[-1] == [texts[0]]  # recomputed, the other one reused
    assert "1 cached value(s)" in caplog.text and "failed authentication; recomputing them" in caplog.text
    assert np.array_equal(cached_encode(enc, texts), clean) and len(enc.calls) == 2  # the row was repaired
    # end to end: a bank entry built from a poisoned cache equals one built from a clean cache (distance 0)
    bank_dir = tmp_path / "bank"
    src = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    assert cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)[0] == 0
    with sqlite3.connect(cache.path) as db:
        db.execute(f"UPDATE {TABLE} SET value = ? WHERE ns LIKE 'minilm:%'", (np.ones(384, "<f4").tobytes(),))
    code, out, _ = cli(capsys, "bank", "add", "--bank", bank_dir, "--name", "alpha-again", src)
    assert code == 0 and "added alpha-again / univar_pvq_eng: 12 answers" in out
    bank = Bank(bank_dir)
    a, b = (bank.load(bank.entry(m, "univar_pvq_eng"), with_answers=True) for m in ("alpha", "alpha-again"))
    assert np.array_equal(np.asarray(a.embeddings), np.asarray(b.embeddings))
    assert reference_distances(a, bank, min_answers=5, n_permutations=0)["references"]["alpha-again"][
        "distance"
    ] == pytest.approx(0.0, abs=1e-3)  # poisoned values would have given a large one


# -- 8. default ids independent of file names --------------------------------------------------------------
def test_8_records_pair_by_question_text_not_by_file_name(tmp_path, capsys, minilm):
    records = qa_records() + qa_records(model="beta")
    for r in records[N:]:
        r["question"] = "  " + r["question"].replace(" ", "   ") + "\n"  # same text, other whitespace
    banks = []
    for name in ("one.jsonl", "two-other-name.jsonl"):
        src = write_jsonl(tmp_path / name, records)
        banks.append(tmp_path / f"bank-{name}")
        assert cli(capsys, "bank", "add", "--bank", banks[-1], "--encoder", "minilm", src)[0] == 0
    one, two = Bank(banks[0]), Bank(banks[1])
    for model in ("alpha", "beta"):  # the stored answers do not depend on the file's name
        assert (banks[0] / one.entry(model, "univar_pvq_eng")["answers"]).read_bytes() == (
            banks[1] / two.entry(model, "univar_pvq_eng")["answers"]
        ).read_bytes()
    alpha = one.load(one.entry("alpha", "univar_pvq_eng"), with_answers=True)
    assert "id" not in alpha.records[0]
    beta = one.load(one.entry("beta", "univar_pvq_eng"), with_answers=True)
    # beta's questions differ in whitespace only: they pair with alpha's by text (comparing the two entries needs
    # --allow-other-questions, their external questionnaire versions differ, and that comparison is unpaired)
    keys = pairing_keys(alpha, beta)
    assert len(set(keys["groups_x"]) & set(keys["groups_y"])) == N
    # without ids or question texts nothing pairs, and the report says so
    bare = [dist(seed=1, records=[{} for _ in range(N)]), dist(seed=2, records=[{} for _ in range(N)])]
    report = compare_runs({"x": [bare[0]], "y": [bare[1]]}, min_answers=5, n_permutations=0, n_bootstrap=0)
    assert report["rows"][0]["paired_questions"] == 0
    assert format_table(report).splitlines()[-1] == (
        "unpaired: x / univar_pvq_eng vs y: no question ids or question texts in common, so the answers were "
        "compared as independent samples."
    )


# -- 9. manifest schema, NaN, run manifests without sha256, format version ----------------------------------
@pytest.mark.parametrize(
    "change,what",
    [
        (lambda e: e.update(n_answers=-3), "entry m1 / univar_pvq_eng: n_answers -3 is not a whole number >= 1"),
        (
            lambda e: e.update(n_answers="12"),
            "entry m1 / univar_pvq_eng: n_answers '12' is not a whole number >= 1",
        ),
        (lambda e: e.pop("sha256"), "entry m1 / univar_pvq_eng: sha256 missing"),
        (lambda e: e.update(sha256="abc"), "entry m1 / univar_pvq_eng: sha256 'abc' is not a sha256 (64 hex digits)"),
        (
            lambda e: e["encoder"].update(fingerprint=["x"]),
            "entry m1 / univar_pvq_eng: encoder.fingerprint ['x'] is not a list of finite numbers",
        ),
        (lambda e: e.update(model=7), "entry 1: model 7 is not a non-empty text"),
        (lambda e: e.update(array=None), "entry m1 / univar_pvq_eng: array None is not a file name inside the bank"),
    ],
)
def test_9_manifests_are_checked_against_the_schema(tmp_path, capsys, change, what):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir)
    edit_manifest(bank_dir, lambda d: change(d["entries"][0]))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "list", "--bank", bank_dir)
    assert (code, out) == (2, "") and one_error(err) == damaged(bank_dir, what)
    assert snapshot(tmp_path) == before


def test_9_nan_embeddings_and_unverifiable_runs_are_refused(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    bank = small_bank(bank_dir)
    entry = bank.entry("m1", "univar_pvq_eng")
    bad = unit_rows()
    bad[3, 2] = np.nan
    digest = storage.save_array(bank_dir / entry["array"], bad)  # a consistent manifest around a NaN array
    edit_manifest(bank_dir, lambda d: d["entries"][0].update(sha256=digest))
    code, _, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--verify")
    assert code == 2 and one_error(err) == (
        f"error: {bank_dir / entry['array']}: holds NaN or infinite embeddings; remove the entry and add it again"
    )
    edit_manifest(bank_dir, lambda d: d["entries"][0].update(n_answers=float("nan")))
    code, _, err = cli(capsys, "bank", "list", "--bank", bank_dir)
    assert code == 2 and one_error(err) == (
        f"error: damaged bank: {bank_dir / 'bank.json'}: NaN is not allowed in JSON; restore it or rebuild it"
    )
    edit_manifest(bank_dir, lambda d: d["entries"][0].update(n_answers=N))
    with pytest.raises(UserError, match="^cannot add nan .* its embeddings are not a finite 2-D array"):
        bank.add(ValueDistribution(bad, [{}] * N, dist().manifest), model="m2", source="nan")
    run = dist().save(tmp_path / "run" / "univar_x" / "univar_pvq_eng")
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["sha256"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError) as e:
        ValueDistribution.load(run)
    assert str(e.value) == (
        f"damaged run artifact {run / 'manifest.json'}: sha256 missing; nothing was changed: "
        "restore its task folder from a backup or rerun the lm_eval task"
    )


def test_9_old_format_banks_load_with_a_warning_and_upgrade(tmp_path, capsys, caplog):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir, models=("m1", "m2"))

    def to_format_1(d):
        d["format"] = "univar-eval/bank/1"
        for e in d["entries"]:
            e.pop("answers_sha256")

    edit_manifest(bank_dir, to_format_1)
    before = snapshot(tmp_path)
    code, out, _ = cli(capsys, "bank", "show", "--bank", bank_dir, "--verify")
    assert code == 0 and "all 2 arrays match" in out  # an old bank is never called damaged
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: bank {bank_dir} is in the older format univar-eval/bank/1 (answers files not checksummed); "
        f"'univar-eval bank upgrade {bank_dir}' adds what it lacks"
    ]
    assert snapshot(tmp_path) == before
    code, out, _ = cli(capsys, "bank", "upgrade", bank_dir)
    assert code == 0 and out == (
        f"upgraded bank {bank_dir} from univar-eval/bank/1 to {FORMAT}: 2 entries gained an answers checksum\n"
    )
    bank = Bank(bank_dir)
    assert bank.format == FORMAT
    assert all(e["answers_sha256"] == storage.sha256_file(bank_dir / e["answers"]) for e in bank.entries())
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "bank/bank.json"} == {
        k: v for k, v in before.items() if k != "bank/bank.json"
    }  # only the manifest changed
    assert (
        cli(capsys, "bank", "upgrade", bank_dir)[1] == f"bank {bank_dir} is already in format {FORMAT}; nothing to do\n"
    )


# -- 10. exit codes and one-line messages ------------------------------------------------------------------
def test_10_uncaught_errors_exit_2_with_one_line_and_a_hint(tmp_path, capsys, monkeypatch):
    import univar_eval.cli.bank as bank_cli

    def boom(args):
        raise ValueError("boom\nsecond line")

    small_bank(tmp_path / "bank")
    monkeypatch.setattr(bank_cli, "cmd_list", boom)
    code, out, err = cli(capsys, "bank", "list", "--bank", tmp_path / "bank")
    assert (code, out) == (2, "")
    assert one_error(err) == (
        "error: unexpected ValueError: boom second line; rerun with -v (univar-eval -v ...) for the traceback"
    )
    for argv in (["-v", "bank", "list"], ["bank", "list", "-v"], ["bank", "-v", "list"], ["bank", "list", "--verbose"]):
        code, out, err = cli(capsys, *argv, "--bank", tmp_path / "bank")
        assert code == 2 and "Traceback (most recent call last)" in err, argv
        assert err.strip().splitlines()[-1] == "error: unexpected ValueError: boom second line"


def test_10_verbose_is_accepted_after_the_command_too(tmp_path, capsys):
    from univar_eval.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["gate", "run", "-v"]).verbose is True
    assert parser.parse_args(["-v", "gate", "run"]).verbose is True  # not undone by the command's own -v
    assert parser.parse_args(["gate", "run"]).verbose is False
    assert parser.parse_args(["bank", "add", "src", "--bank", "b", "-v"]).verbose is True
    with pytest.raises(SystemExit):
        parser.parse_args(["gate", "--help"])
    assert "-v, --verbose" in capsys.readouterr().out


def test_10_the_cases_seen_each_end_in_one_clear_line(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    bank = small_bank(bank_dir)
    entry = bank.entry("m1", "univar_pvq_eng")
    before = snapshot(tmp_path)
    cases = []
    # wrong types and missing keys in bank.json
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "bank.json").write_text(json.dumps({"format": FORMAT, "entries": "all"}))
    cases.append((["bank", "list", "--bank", tmp_path / "b1"], damaged(tmp_path / "b1", "'entries' is not a list")))
    # --bank pointing at a file
    cases.append(
        (
            ["bank", "list", "--bank", tmp_path / "b1" / "bank.json"],
            f"error: --bank {tmp_path / 'b1' / 'bank.json'} is a file; a reference bank is a folder (made by "
            "'univar-eval bank add')",
        )
    )
    # garbage, non-string model or task, list ids
    for name, text, message in [
        ("garbage.jsonl", "\x00\x01 not json\n", "1: malformed JSON line (Expecting value)"),
        ("model.jsonl", json.dumps({**qa_records()[0], "model": 3}) + "\n", "1: 'model' must be text, not int"),
        ("task.jsonl", json.dumps({**qa_records()[0], "task": ["a"]}) + "\n", "1: 'task' must be text, not list"),
        (
            "ids.jsonl",
            json.dumps({**qa_records()[0], "id": [1, 2]}) + "\n",
            "1: 'id' must be text or a whole number, not list",
        ),
    ]:
        (tmp_path / name).write_text(text)
        cases.append(
            (["bank", "add", "--bank", tmp_path / "new", tmp_path / name], f"error: {tmp_path / name}:{message}")
        )
    for argv, expected in cases:
        code, out, err = cli(capsys, *argv)
        assert (code, out, one_error(err)) == (2, "", expected)
    assert not (tmp_path / "new").exists()
    # short answers file, rank-3 array, wrong-dimension array (each with a consistent checksum)
    answers = bank_dir / entry["answers"]
    lines = answers.read_text().splitlines(keepends=True)
    answers.write_text("".join(lines[:5]))
    edit_manifest(bank_dir, lambda d: d["entries"][0].update(answers_sha256=storage.sha256_file(answers)))
    code, _, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--verify")
    assert code == 2 and one_error(err) == (
        f"error: {answers}: 5 answers but the bank manifest says 12; remove the entry and add it again"
    )
    array = bank_dir / entry["array"]
    for arr, message in [
        (np.zeros((N, 2, 4)), "embeddings have shape [12, 2, 4]; expected 2-D (answers x dimensions); rebuild it"),
        (unit_rows(d=5), "5 dimensions but the bank's encoder has 8; remove the entry and add it again"),
    ]:
        digest = storage.save_array(array, arr)
        edit_manifest(bank_dir, lambda d, digest=digest: d["entries"][0].update(sha256=digest))
        code, _, err = cli(capsys, "bank", "show", "--bank", bank_dir, "m1", "--task", "univar_pvq_eng", "--verify")
        assert code == 2 and one_error(err) == f"error: {array}: {message}"
    assert set(snapshot(tmp_path)) - set(before) == {
        "b1/bank.json",
        "garbage.jsonl",
        "model.jsonl",
        "task.jsonl",
        "ids.jsonl",
    }


def test_10_a_closed_pipe_ends_quietly(tmp_path):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir)
    data = json.loads((bank_dir / "bank.json").read_text())
    template = data["entries"][0]
    data["entries"] = [
        {
            **template,
            "model": f"model-{i:05d}",
            "array": f"entries/x/{i}.safetensors",
            "answers": f"entries/x/{i}.answers.jsonl",
        }
        for i in range(4000)
    ]
    (bank_dir / "bank.json").write_text(json.dumps(data))
    entry_point = "import sys; from univar_eval.cli import main; sys.exit(main())"
    script = f"set -o pipefail; {sys.executable} -c '{entry_point}' bank list --bank {bank_dir} | head -1"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith(f"bank {bank_dir}: 4000 entries") and proc.stderr == ""
    assert proc.returncode == 141


# -- 11. BOM and invalid UTF-8 -----------------------------------------------------------------------------
def test_11_bom_jsonl_is_accepted_and_invalid_utf8_names_file_and_line(tmp_path, capsys, minilm):
    bank_dir = tmp_path / "bank"
    src = write_jsonl(tmp_path / "bom.jsonl", qa_records(), bom=True)
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, "--encoder", "minilm", src)
    assert code == 0 and out.splitlines()[0] == "added alpha / univar_pvq_eng: 12 answers (embedded with minilm)"
    bad = tmp_path / "bad.jsonl"
    good_line = json.dumps(qa_records(model="beta")[0]).encode()
    bad.write_bytes(good_line + b"\n" + good_line[:20] + b"\xff\xfe" + good_line[20:] + b"\n")
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "add", "--bank", bank_dir, bad)
    assert (code, out) == (2, "")
    assert one_error(err) == f"error: {bad}:2: not valid UTF-8 (byte 21 of the line); save the file as UTF-8"
    assert snapshot(tmp_path) == before


# -- 13. orphans of a killed bank add ----------------------------------------------------------------------
KILLED_ADD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import univar_eval.storage.bank as bank_mod
    from univar_eval.storage.distribution import ValueDistribution
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after the array, before the answers and the manifest
    bank_mod.write_jsonl = die
    e = np.eye(12, 8, dtype=np.float32)
    m = {"task": "univar_pvq_eng", "lang": "eng", "encoder": {"name": "fake", "dimension": 8,
         "fingerprint": [0.0] * 8, "fingerprint_id": "fp"}}
    bank_mod.Bank(sys.argv[1], create=True).add(ValueDistribution(e, [{}] * 12, m), model="m1", source="killed")
""")


def test_13_orphans_of_a_killed_add_are_cleaned_under_the_lock(tmp_path, capsys):
    bank_dir = tmp_path / "bank"
    small_bank(bank_dir, models=("m1", "m2"))
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILLED_ADD, str(bank_dir)], capture_output=True, timeout=120)
    assert proc.returncode == -9
    (bank_dir / ".bank.json.0123456789ab.tmp").write_text("{half")  # as a kill during the manifest write leaves
    orphans = sorted(set(snapshot(tmp_path)) - set(before))
    assert len(orphans) == 2 and orphans[1].startswith("bank/entries/m1/univar_pvq_eng.")
    code, out, err = cli(capsys, "bank", "show", "--bank", bank_dir, "--verify", "--fix")
    assert code == 0 and err == ""
    cleaned = ["entries/m1/" + orphans[1].split("/")[-1], ".bank.json.0123456789ab.tmp"]
    assert out.splitlines()[0] == f"removed 2 orphaned file(s) no entry named: {', '.join(sorted(cleaned))}"
    assert snapshot(tmp_path) == before  # everything the bank held is byte-identical
    # bank add cleans too
    (bank_dir / "entries" / "m2" / ".x.safetensors.aaaaaaaaaaaa.tmp").write_bytes(b"partial")
    bank = Bank(bank_dir)
    bank.add(dist(seed=9), model="m3", source="t")
    assert bank.cleaned == ["entries/m2/.x.safetensors.aaaaaaaaaaaa.tmp"]


# -- 14. permissions follow the umask ----------------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_14_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        bank = small_bank(tmp_path / "bank")
        run = dist().save(tmp_path / "run")
    finally:
        os.umask(old)
    entry = bank.entry("m1", "univar_pvq_eng")
    files = [
        bank.path / "bank.json",
        bank.path / entry["array"],
        bank.path / entry["answers"],
        run / "manifest.json",
        run / "embeddings.safetensors",
        run / "answers.jsonl",
    ]
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(mode) for f in files}


def test_11_csv_with_bom_loads_and_invalid_utf8_names_the_line(tmp_path, capsys):
    from univar_eval.runs.sources import from_univar_csv

    folder = tmp_path / "pvq" / "qa_translated"
    folder.mkdir(parents=True)
    rows = "question,answer,lang\n" + "".join(f"Would you help {i}?,Yes {i}.,eng\n" for i in range(3))
    good = folder / "m.csv"
    good.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    assert [len(g.records) for g in from_univar_csv(good, None, None)] == [3]
    bad = folder / "bad.csv"
    bad.write_bytes(rows.encode().replace(b"Yes 2", b"Yes \xff2"))
    code, out, err = cli(capsys, "bank", "add", "--bank", tmp_path / "bank", bad)
    assert (code, out) == (2, "")
    assert one_error(err) == f"error: {bad}:4: not valid UTF-8 (byte 23 of the line); save the file as UTF-8"
    assert not (tmp_path / "bank").exists()
