"""Attack 7 of issue 25: hub references and banks. A revision with path parts loaded a folder outside the hub cache;
``bank add --bank hf://...`` made a local folder ``./hf:/...``; a pulled repository's own ``origin.json`` was
taken as its provenance; a killed pull left a hidden folder no command removed; a 256-character model name passed
the name check and then failed with an OSError. A pulled bank's embeddings are also checked against its answers."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from integrity_world import one_error_line
from test_hub import COMMIT, REPO, _private_caches, hub_cache, published  # noqa: F401 - the fixture is autouse

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.storage import hub
from univar_eval.storage.bank import Bank


@pytest.mark.parametrize("rev", ["../../x", "main/../../x", "a/b", "..", "refs/pr/1"])
def test_a_revision_with_path_parts_is_refused_before_the_hub_is_asked(rev, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hub, "snapshot", lambda *a: pytest.fail("asked the hub"))
    code = main(["gate", str(tmp_path), "--bank", f"hf://{REPO}@{rev}", "--against", "carer"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "is neither a 40-hex commit nor a branch or tag name" in line


def test_a_snapshot_outside_the_hub_cache_is_refused(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere" / COMMIT
    outside.mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(outside))
    with pytest.raises(UserError, match="not a commit snapshot of it in the hub cache"):
        hub.snapshot(REPO, "main")


def test_writing_commands_refuse_hub_banks(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"model": "m", "lang": "eng", "question": "q?", "answer": "a."}) + "\n")
    for argv in (
        ["bank", "add", "--bank", f"hf://{REPO}", str(src)],
        ["bank", "remove", "--bank", f"hf://{REPO}", "m"],
        ["bank", "upgrade", f"hf://{REPO}"],
    ):
        assert main(argv) == 2, argv
        assert "a hub bank is read-only here" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "hf:").exists()


def test_provenance_is_ours_never_the_repository_s(tmp_path, monkeypatch, capsys):
    _, files = published(tmp_path, monkeypatch)
    fake = {"format": hub.ORIGIN_FORMAT, "pulls": [{"repo": "trusted/bank", "revision": "f" * 40}]}
    hub_cache(tmp_path / "hf" / "hub", REPO, {**files, hub.ORIGIN: json.dumps(fake).encode()})
    dest = tmp_path / "pulled"
    assert main(["bank", "pull", REPO, str(dest), "--verify", "0"]) == 0
    pulls = json.loads((dest / hub.ORIGIN).read_text())["pulls"]
    assert [(p["repo"], p["revision"]) for p in pulls] == [(REPO, COMMIT)]


def test_an_interrupted_pull_is_cleaned_by_the_next(tmp_path, monkeypatch, capsys):
    _, files = published(tmp_path, monkeypatch)
    hub_cache(tmp_path / "hf" / "hub", REPO, files)
    dest = tmp_path / "pulled"
    killed = tmp_path / ".pulled.pull-0badf00d"  # what a killed pull leaves
    (killed / "entries").mkdir(parents=True)
    (killed / "entries" / "big.safetensors").write_bytes(b"\0" * 4096)
    assert main(["bank", "pull", REPO, str(dest), "--verify", "0"]) == 0
    assert not killed.exists() and (dest / "bank.json").is_file()
    assert not [p for p in tmp_path.iterdir() if ".pull-" in p.name]


def test_a_model_name_too_long_for_a_folder_is_refused_in_one_line(tmp_path, capsys):
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"model": "m", "lang": "eng", "question": "q?", "answer": "a."}) + "\n")
    for name in ("a" * 256, "名" * 100):  # 256 bytes; 300 bytes in UTF-8
        assert main(["bank", "add", "--bank", str(tmp_path / "b"), "--name", name, str(src)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "too long for a folder name" in line and "unexpected" not in line
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*.safetensors"))


def real_bank_files(bank_dir: Path) -> dict[str, bytes]:
    plan = hub.plan_push(bank_dir, REPO)
    files = {name: path.read_bytes() for name, path in plan.files.items()}
    files[hub.CHECKSUMS] = plan.checksums.encode()
    return files


def test_a_pulled_bank_with_forged_embeddings_is_refused(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = Bank(tmp_path / "local", create=True)
    bank.add(w.run("carer", 0), model="carer", source="run 0")
    files = real_bank_files(bank.path)
    # the publisher swaps in the achiever's embeddings and recomputes every checksum
    entry = Bank(bank.path).entries()[0]
    forged = Bank(tmp_path / "forged", create=True)
    forged.add(
        type(w.run("carer", 0))(
            np.asarray(w.run("achiever", 0).embeddings), w.run("carer", 0).records, dict(w.run("carer", 0).manifest)
        ),
        model="carer",
        source="run 0",
    )
    bad = real_bank_files(forged.path)
    assert bad["bank.json"] != files["bank.json"] and entry["answers_sha256"]
    hub_cache(tmp_path / "hf" / "hub", REPO, bad)
    dest = tmp_path / "pulled"
    assert main(["bank", "pull", REPO, str(dest), "--verify", "16"]) == 2
    assert "embeddings do not match their answers" in one_error_line(capsys.readouterr().err)
    assert not dest.exists()  # nothing landed
    # the honest bank pulls, verified
    hub_cache(tmp_path / "hf2" / "hub", REPO, files, commit="1" * 40)
    huggingface_hub.constants.HF_HUB_CACHE = str(tmp_path / "hf2" / "hub")
    assert main(["bank", "pull", f"{REPO}@{'1' * 40}", str(dest), "--verify", "16"]) == 0
    err = capsys.readouterr().err
    assert "verified bank" in err and "16 of 38 answers re-embedded" in err


def test_an_lm_eval_run_refuses_a_forged_hub_bank_before_generation(integrity_world, tmp_path, capsys, monkeypatch):
    """The run's ``bank`` setting as hf://: the pulled copy's entries are re-embedded before generation like a local
    bank's (run setting ``verify``); a forged entry (checksums and SHA256SUMS recomputed) stops the run."""
    from lm_eval.tasks import TaskManager

    from univar_eval.pipeline import verify as check

    monkeypatch.setattr(check, "_VERIFIED_ENTRIES", {})
    w = integrity_world
    answers, embeddings = w.run("carer", 0), w.run("achiever", 0)
    bank = Bank(tmp_path / "forged", create=True)
    bank.add(
        type(answers)(np.asarray(embeddings.embeddings), answers.records, dict(answers.manifest)),
        model="carer",
        source="x",
    )
    files = {p.relative_to(bank.path).as_posix(): p.read_bytes() for p in bank.path.rglob("*") if p.is_file()}
    files = {k: v for k, v in files.items() if not k.startswith(".")}
    hub_cache(tmp_path / "hf" / "hub", REPO, files)
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        TaskManager(metadata={"encoder": "minilm", "bank": f"hf://{REPO}@{COMMIT}", "verify": 8}).load(
            ["univar_pvq_eng"]
        )
    assert caught.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "embeddings do not match their answers" in line and "seed" in line
