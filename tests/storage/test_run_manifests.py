"""Run artifact manifests are checked against their schema on every read.

A run folder built here (no lm_eval) is damaged one way at a time; every command that reads runs
(``compare``, ``gate``, ``embed``, ``leaderboard``, ``drift``, ``identify``, ``map``, ``bank add``) must exit 2
with one ``error: damaged run artifact <file>: <what>; ...`` line, no traceback, and leave every file as it
was. A valid run still reads as before: its centroid distance is the hand-computed ``1 - 1/sqrt(2)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from univar_eval import __version__
from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline.questionnaire import load
from univar_eval.storage import files as storage
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import DISTRIBUTION_FORMAT, PENDING_FORMAT, ValueDistribution, read_manifest

N, D = 12, 8
STAMP = "univar_2026-11-25T00-00-00"
TASK = "univar_pvq_eng"
QUESTIONS = [r["question"] for r in load("pvq", "eng").records[:N]]
ENCODER = {"name": "fake", "revision": None, "dimension": D, "fingerprint": [0.0] * 8, "fingerprint_id": "fp"}
HINT = "nothing was changed: restore its task folder from a backup or rerun the lm_eval task"


pytestmark = pytest.mark.usefixtures("private_cache")


# -- helpers ----------------------------------------------------------------------------------------------
def rows(*directions) -> np.ndarray:
    """N unit rows along the mean of the given basis directions (e.g. rows(0, 1) = (e0 + e1) / sqrt 2)."""
    v = np.zeros(D, dtype=np.float32)
    v[list(directions)] = 1.0
    return np.tile(v / np.linalg.norm(v), (N, 1))


def manifest(model: str) -> dict:
    return {
        "format": DISTRIBUTION_FORMAT,
        "created": "2026-11-25T00:00:00+00:00",
        "model": model,
        "task": TASK,
        "lang": "eng",
        "questionnaire": "pvq",
        "questionnaire_version": "v1",
        "translator": {"name": "none"},
        "encoder": dict(ENCODER),
        "text_format": "qa/2",
        "counts": {"n_answers": N, "n_empty": 0, "n_refused": 0, "n_truncated": 0, "n_encoder_truncated": 0},
    }


def make_run(root: Path, model: str, emb: np.ndarray, *, results: bool = True) -> Path:
    """``root/<model>/`` as lm_eval --output_path leaves it: ``univar_<stamp>/<task>/`` and a results file."""
    out = root / model
    records = [{"id": f"q{i}", "question": QUESTIONS[i], "answer": f"answer {i}"} for i in range(N)]
    ValueDistribution(emb, records, manifest(model)).save(out / STAMP / TASK)
    if results:
        (out / "results_2026-11-25T00-00-01.json").write_text(
            json.dumps(
                {
                    "model_name": model,
                    "results": {TASK: {"alias": TASK, "n_answers,none": N}},
                    "configs": {TASK: {"metadata": {"univar_artifacts": str(out / STAMP)}}},
                }
            )
        )
    return out


@pytest.fixture
def world(tmp_path):
    """Run ``a`` (every answer along e0), run ``b`` (along (e0 + e1) / sqrt 2) and a bank whose baseline is a."""
    a = make_run(tmp_path / "runs", "a", rows(0))
    b = make_run(tmp_path / "runs", "b", rows(0, 1))
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(ValueDistribution.load(a / STAMP / TASK), model="baseline", source="test")
    return tmp_path, a, b, bank.path


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "cache"
    }


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def the_error(err: str) -> str:
    """The one ``error:`` line of stderr (it must be the last line; no traceback anywhere)."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], err
    return errors[0]


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def commands(tmp: Path, a: Path, b: Path, bank: Path) -> dict[str, list]:
    return {
        "compare": ["compare", a, b, "--metric", "centroid", "--permutations", 99, "--bootstrap", 0],
        "gate": ["gate", a, "--bank", bank, "--against", "baseline", "--permutations", 99, "--bootstrap", 50],
        "embed": ["embed", a],
        "leaderboard": ["leaderboard", a, b],
        "drift": ["drift", a, "--bank", bank, "--against", "baseline"],
        "identify": ["identify", a, "--bank", bank],
        "map": ["map", a, "-o", tmp / "map.png"],
        "bank add": ["bank", "add", "--bank", tmp / "bank2", a],
    }


# -- a valid run reads as before -----------------------------------------------------------------------------
def test_a_valid_run_reads_as_before(world, capsys):
    tmp, a, b, bank = world
    before = snapshot(tmp)
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)["compare"], "--format", "json")
    assert code == 0 and "error" not in err
    [row] = json.loads(out)["rows"]
    # centroid distance: 1 - cos(e0, (e0 + e1) / sqrt 2) = 1 - 1/sqrt(2), whatever float16 storage rounds
    assert row["distance"] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    code, out, _ = cli(capsys, *commands(tmp, a, b, bank)["gate"], "--max-distance", "0.1", "--json", tmp / "g.json")
    assert code == 0 and out.endswith("PASSED: 1 of 1 check pass, 0 fail, 0 inconclusive\n")
    [check] = json.loads((tmp / "g.json").read_text())["checks"]
    assert check["outcome"] == "pass" and check["distance"] == pytest.approx(0.0, abs=1e-9)  # the baseline itself
    (tmp / "g.json").unlink()
    assert snapshot(tmp) == before
    m = read_manifest(a / STAMP / TASK / "manifest.json")
    assert m["format"] == DISTRIBUTION_FORMAT and m["n_answers"] == N and len(m["sha256"]) == 64


# -- damage to the manifest: every command refuses it in one line -------------------------------------------
def _manifest_damage(tmp: Path, a: Path):
    m = a / STAMP / TASK / "manifest.json"
    return m, {
        "not JSON": (lambda: m.write_text("this is not JSON\n"), f"{m}: not valid JSON (line 1: Expecting value)"),
        "truncated": (
            lambda: m.write_text(m.read_text()[:40]),
            None,
        ),  # the parser's words depend on where it was cut: checked by prefix
        "key missing": (lambda: edit(m, lambda d: d.pop("encoder")), f"{m}: encoder missing"),
        "nested key missing": (
            lambda: edit(m, lambda d: d["encoder"].pop("fingerprint")),
            f"{m}: encoder.fingerprint missing",
        ),
        "wrong type": (
            lambda: edit(m, lambda d: d.update(n_answers="12")),
            f"{m}: n_answers '12' is not a whole number >= 0",
        ),
        "not an object": (lambda: m.write_text("[1, 2]\n"), f"{m}: not a JSON object (got list)"),
        "negative count": (
            lambda: edit(m, lambda d: d["counts"].update(n_empty=-1)),
            f"{m}: counts.n_empty -1 is not a whole number >= 0",
        ),
        "NaN count": (
            lambda: m.write_text(m.read_text().replace('"n_empty": 0', '"n_empty": NaN')),
            f"{m}: NaN is not allowed in JSON",
        ),
        "bad fingerprint": (
            lambda: edit(m, lambda d: d["encoder"].update(fingerprint=["x"])),
            f"{m}: encoder.fingerprint ['x'] is not a list of finite numbers",
        ),
        "translator": (
            lambda: edit(m, lambda d: d.update(translator="none")),
            f"{m}: translator 'none' is not an object",
        ),
        "path escaping the folder": (
            lambda: edit(m, lambda d: d.update(task="../../../outside/x")),
            f"{m}: task '../../../outside/x' is not a task name (letters, digits, '_', '-', '.'; no path separators)",
        ),
        "format missing": (lambda: edit(m, lambda d: d.pop("format")), f"{m}: format missing"),
    }


MANIFEST_DAMAGE = [
    "not JSON",
    "truncated",
    "key missing",
    "nested key missing",
    "wrong type",
    "not an object",
    "negative count",
    "NaN count",
    "bad fingerprint",
    "translator",
    "path escaping the folder",
    "format missing",
]


@pytest.mark.parametrize("kind", MANIFEST_DAMAGE)
@pytest.mark.parametrize("command", ["compare", "gate", "embed", "identify"])
def test_a_damaged_manifest_is_refused_in_one_line(world, capsys, kind, command):
    tmp, a, b, bank = world
    m, cases = _manifest_damage(tmp, a)
    damage, what = cases[kind]
    damage()
    before = snapshot(tmp)
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)[command])
    line = the_error(err)
    assert code == 2 and out == ""
    if what is None:
        assert line.startswith(f"error: damaged run artifact {m}: not valid JSON (line ") and line.endswith(HINT)
    else:
        assert line == f"error: damaged run artifact {what}; {HINT}"
    assert snapshot(tmp) == before


@pytest.mark.parametrize("command", ["leaderboard", "drift", "identify", "map", "bank add"])
def test_every_reader_of_runs_checks_the_manifest(world, capsys, command):
    tmp, a, b, bank = world
    m = a / STAMP / TASK / "manifest.json"
    edit(m, lambda d: d["encoder"].pop("name"))
    before = snapshot(tmp)
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)[command])
    assert code == 2 and out == ""
    assert the_error(err) == f"error: damaged run artifact {m}: encoder.name missing; {HINT}"
    assert snapshot(tmp) == before


@pytest.mark.parametrize("command", ["compare", "gate", "embed"])
def test_an_unknown_format_version_names_the_release_not_damage(world, capsys, command):
    tmp, a, b, bank = world
    m = a / STAMP / TASK / "manifest.json"
    edit(m, lambda d: d.update(format="univar-eval/value-distribution/9"))
    before = snapshot(tmp)
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)[command])
    assert (code, out) == (2, "")
    assert the_error(err) == (
        f"error: {m}: format 'univar-eval/value-distribution/9' is not one univar-eval "
        f"{__version__} reads ({DISTRIBUTION_FORMAT}, {PENDING_FORMAT}); it was written "
        "by another release: upgrade univar-eval, or rerun the lm_eval task with this one; nothing was changed"
    )
    assert snapshot(tmp) == before


# -- damage to the files the manifest describes -------------------------------------------------------------
def _file_damage(a: Path):
    folder = a / STAMP / TASK
    emb, answers = folder / "embeddings.safetensors", folder / "answers.jsonl"

    def resave(array):  # a consistent sha256 around an array of another shape
        digest = storage.save_array(emb, array)
        edit(folder / "manifest.json", lambda d: d.update(sha256=digest))

    def flip_a_byte():
        data = bytearray(emb.read_bytes())
        data[-1] ^= 0xFF
        emb.write_bytes(bytes(data))

    return {
        "embeddings missing": (lambda: emb.unlink(), f"{emb}: file is missing"),
        "checksum": (flip_a_byte, f"{emb}: sha256 does not match the manifest (file truncated or modified)"),
        "fewer rows": (lambda: resave(rows(0)[:10]), f"{emb}: 10 embeddings but the manifest says n_answers 12"),
        "wrong dimension": (
            lambda: resave(np.ones((N, D + 1), dtype=np.float32) / 3),
            f"{emb}: 9 dimensions but the manifest's encoder fake has 8",
        ),
        "NaN embeddings": (
            lambda: resave(np.full((N, D), np.nan, dtype=np.float32)),
            f"{emb}: holds NaN or infinite embeddings",
        ),
        "answers cut short": (
            lambda: answers.write_text("".join(answers.read_text().splitlines(True)[:7])),
            f"{answers}: 7 answers but 12 embeddings",
        ),
        "answers malformed": (
            lambda: answers.write_text("{oops\n" + answers.read_text()),
            f"{answers}:1: malformed JSON line (Expecting property name enclosed in double quotes)",
        ),
    }


FILE_DAMAGE = [
    "embeddings missing",
    "checksum",
    "fewer rows",
    "wrong dimension",
    "NaN embeddings",
    "answers cut short",
    "answers malformed",
]


@pytest.mark.parametrize("kind", FILE_DAMAGE)
@pytest.mark.parametrize("command", ["compare", "gate"])
def test_damaged_embeddings_or_answers_are_refused_in_one_line(world, capsys, kind, command):
    tmp, a, b, bank = world
    damage, what = _file_damage(a)[kind]
    damage()
    before = snapshot(tmp)
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)[command])
    assert (code, out) == (2, "")
    assert the_error(err) == f"error: damaged run artifact {what}; {HINT}"
    assert snapshot(tmp) == before


def test_a_damaged_results_file_is_refused_in_one_line(world, capsys):
    tmp, a, b, bank = world
    results = a / "results_2026-11-25T00-00-01.json"
    for change, what in [
        (lambda d: d.update(results=[1]), "no 'results' object"),
        (lambda d: d["results"].update({TASK: 3}), f"results of {TASK!r} are not an object of metrics"),
        (lambda d: d.update(configs={TASK: "x"}), "'configs' is not an object of task configs"),
        (lambda d: d.update(model_name=["a"]), "model_name ['a'] is not text"),
    ]:
        good = results.read_text()
        edit(results, change)
        before = snapshot(tmp)
        for command in ("compare", "gate"):
            code, out, err = cli(capsys, *commands(tmp, a, b, bank)[command])
            assert (code, out) == (2, "")
            assert the_error(err) == (
                f"error: {results}: not an lm-eval results file ({what}); nothing was "
                "changed: restore it or rerun the lm_eval run"
            )
        assert snapshot(tmp) == before
        results.write_text(good)


# -- kept answers (embedding failed during the run) ----------------------------------------------------------
def keep_answers(out: Path, task: str, n: int = N) -> Path:
    """A task folder whose embedding failed, as the harness writes it (``write_pending``)."""
    from univar_eval.harness.task_base import write_pending  # imports lm_eval

    rows = [{"id": f"q{i}", "question": QUESTIONS[i], "answer": "yes"} for i in range(n)]
    return write_pending(
        out / STAMP / task,
        rows,
        {
            "questionnaire": "pvq",
            "lang": "eng",
            "model": "a",
            "task": task,
            "error": "encoder crashed",
            "settings": {"encoder": "minilm", "translator": "nllb-600m", "encoder_batch_size": 32},
        },
    )


def test_answers_are_never_kept_under_a_manifest_embed_would_refuse(tmp_path):
    from univar_eval.harness.task_base import write_pending

    with pytest.raises(UserError) as e:
        write_pending(tmp_path / "t", [{"answer": "x"}], {"task": "../up", "settings": {}})
    assert str(e.value) == (
        f"cannot keep the answers in {tmp_path / 't'}: their manifest's task '../up' is not a "
        "task name (letters, digits, '_', '-', '.'; no path separators)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "damage,file,what",
    [
        (lambda f: edit(f / "manifest.json", lambda d: d.pop("n_answers")), "manifest.json", "n_answers missing"),
        (
            lambda f: edit(f / "manifest.json", lambda d: d.update(settings=["minilm"])),
            "manifest.json",
            "settings ['minilm'] is not an object",
        ),
        (
            lambda f: edit(f / "manifest.json", lambda d: d["settings"].update(encoder={"x": 1})),
            "manifest.json",
            "settings.encoder {'x': 1} is not text, a number or null",
        ),
        (
            lambda f: edit(f / "manifest.json", lambda d: d.update(task="a/b")),
            "manifest.json",
            "task 'a/b' is not a task name (letters, digits, '_', '-', '.'; no path separators)",
        ),
        (
            lambda f: (f / "answers.jsonl").write_text("\n".join((f / "answers.jsonl").read_text().splitlines()[:3])),
            "answers.jsonl",
            "3 answers but the manifest says n_answers 12",
        ),
    ],
)
def test_embed_checks_every_kept_folder_before_it_embeds_any(tmp_path, capsys, damage, file, what):
    out = tmp_path / "runs" / "a"
    keep_answers(out, "univar_pvq_eng")  # valid, and first in order: it must not be embedded either
    bad = keep_answers(out, "univar_wvs_eng")
    damage(bad)
    before = snapshot(tmp_path)
    code, stdout, err = cli(capsys, "embed", out)
    assert (code, stdout) == (2, "")
    assert the_error(err) == f"error: damaged run artifact {bad / file}: {what}; {HINT}"
    assert snapshot(tmp_path) == before


def test_embed_finishes_valid_kept_answers(tmp_path, capsys, minilm):
    out = tmp_path / "runs" / "a"
    folder = keep_answers(out, "univar_pvq_eng")
    code, stdout, err = cli(capsys, "embed", out, "--translator", "none")
    assert code == 0, err
    assert stdout == f"embedded univar_pvq_eng: {N} answers with minilm -> {folder}\n"
    m = read_manifest(folder / "manifest.json")
    assert m["format"] == DISTRIBUTION_FORMAT and m["n_answers"] == N and m["encoder"]["name"] == "minilm"
    assert ValueDistribution.load(folder).embeddings.shape == (N, minilm.dimension)


# -- what is not ours is passed over; what we write always passes ------------------------------------------
def test_another_tools_manifest_beside_a_run_is_not_read(world, capsys):
    tmp, a, b, bank = world
    other = a / "some_model" / "manifest.json"  # e.g. a model folder saved in the output path
    other.parent.mkdir()
    other.write_text(json.dumps({"name": "not ours", "files": ["../x"]}))
    (a / "notes").mkdir()
    (a / "notes" / "manifest.json").write_text("not JSON at all")
    assert read_manifest(other) is None and read_manifest(a / "notes" / "manifest.json") is None
    code, out, err = cli(capsys, *commands(tmp, a, b, bank)["compare"], "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["distance"] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_save_refuses_a_manifest_it_could_not_read_back(tmp_path):
    bad = {**manifest("a"), "task": "../escape"}
    with pytest.raises(UserError) as e:
        ValueDistribution(rows(0), [{}] * N, bad).save(tmp_path / "t")
    assert str(e.value) == (
        f"cannot save the value distribution in {tmp_path / 't'}: its manifest's task "
        "'../escape' is not a task name (letters, digits, '_', '-', '.'; no path separators)"
    )
    assert not (tmp_path / "t").exists() and not (tmp_path / "escape").exists()


# -- lm-eval samples: the fields read are checked too ----------------------------------------------------------
@pytest.mark.parametrize(
    "change,what",
    [
        (lambda s: s["doc"].update(lang=["eng"]), "doc.lang ['eng'] is not text or null"),
        (lambda s: s["doc"].update(question=7), "doc.question 7 is not text"),
        (lambda s: s["doc"].update(id=[1]), "doc.id [1] is not text, a whole number or null"),
        (lambda s: s.update(resps=3), "resps 3 is not text or a list"),
    ],
)
def test_damaged_lm_eval_samples_are_refused_in_one_line(tmp_path, capsys, change, what):
    samples = [
        {
            "doc_id": i,
            "doc": {"id": f"q{i}", "question": QUESTIONS[i], "lang": "eng", "questionnaire": "pvq"},
            "resps": [[f"answer {i}"]],
        }
        for i in range(N)
    ]
    change(samples[2])
    path = tmp_path / "samples_univar_pvq_eng_2026-11-25T00-00-01.jsonl"
    storage.write_jsonl(path, samples)
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "bank", "add", "--bank", tmp_path / "bank", "--name", "m", path)
    assert (code, out) == (2, "")
    assert the_error(err) == (
        f"error: {path}:3: not a univar questionnaire sample ({what}); restore the file or "
        "rerun the lm_eval run; nothing was changed"
    )
    assert snapshot(tmp_path) == before
