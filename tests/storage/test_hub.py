"""Shared banks on the Hugging Face Hub, offline: push's planned commit checked against huggingface_hub's own
operation objects, pull from a hub cache laid out as huggingface_hub lays it out (read by its own
snapshot_download with HF_HUB_OFFLINE=1), and hf:// banks in lm-eval's --metadata."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline.answers import TEXT_FORMAT
from univar_eval.pipeline.questionnaire import load
from univar_eval.storage import hub
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.storage.files import sha256_file

REPO = "acme/values"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "univar-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "_PULLED", {})


def dist(model, seed, encoder="minilm", fingerprint=0.1, revision=None, lang="eng"):
    emb = np.random.default_rng(seed).normal(size=(12, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    manifest = {
        "task": f"univar_pvq_{lang}",
        "lang": lang,
        "questionnaire": "pvq",
        "questionnaire_version": load("pvq", lang).version,
        "model": model,
        "translator": {"name": "none"},
        "text_format": TEXT_FORMAT,
        "encoder": {
            "name": encoder,
            "revision": revision,
            "dimension": 8,
            "fingerprint": [fingerprint] * 8,
            "fingerprint_id": f"fp-{encoder}",
        },
    }
    return ValueDistribution(emb, [{"id": f"q{i}", "answer": f"a{i}"} for i in range(12)], manifest)


def make_bank(path, models=("alpha", "beta"), **kw) -> Bank:
    bank = Bank(path, create=True)
    bank.add_many([(dist(m, i, **kw), m, "test") for i, m in enumerate(models)])
    return bank


def captured_push(bank_dir, monkeypatch, existing=()) -> dict:
    """Run ``univar-eval bank push`` with HfApi's network calls replaced; returns what create_commit got."""
    calls: dict = {}

    def create_repo(self, repo_id, **kw):
        calls["create_repo"] = (repo_id, kw)

    def list_repo_files(self, repo_id, **kw):
        return list(existing)

    def create_commit(self, repo_id, operations, **kw):
        calls["commit"] = {"repo_id": repo_id, "operations": list(operations), **kw}
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/{COMMIT}",
            commit_message=kw["commit_message"],
            commit_description="",
            oid=COMMIT,
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    assert main(["bank", "push", str(bank_dir), "--repo", REPO]) == 0
    return calls


def content_of(op: CommitOperationAdd) -> bytes:
    src = op.path_or_fileobj
    return src if isinstance(src, bytes) else Path(src).read_bytes()


def hub_cache(root: Path, repo: str, files: dict[str, bytes], commit: str = COMMIT, ref: str = "main") -> Path:
    """A hub cache as huggingface_hub lays it out: blobs named by their hash, a snapshot folder of relative links
    to them, and ``refs/<ref>`` holding the commit."""
    storage = root / f"datasets--{repo.replace('/', '--')}"
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    (storage / "refs").mkdir(exist_ok=True)
    snap = storage / "snapshots" / commit
    for name, data in files.items():
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs" / ref).write_text(commit)
    return snap


def published(tmp_path, monkeypatch, **kw) -> tuple[Bank, dict[str, bytes]]:
    """A bank pushed (to the fake API) and the files of that commit."""
    bank = make_bank(tmp_path / "local", **kw)
    ops = captured_push(bank.path, monkeypatch)["commit"]["operations"]
    return bank, {op.path_in_repo: content_of(op) for op in ops if isinstance(op, CommitOperationAdd)}


def test_push_plans_one_commit_of_every_file_with_its_checksums(tmp_path, monkeypatch, capsys):
    bank = make_bank(tmp_path / "bank")
    stale = "entries/gone/univar_pvq_eng.deadbeef.safetensors"
    calls = captured_push(bank.path, monkeypatch, existing=["bank.json", "README.md", stale])
    assert calls["create_repo"] == (REPO, {"repo_type": "dataset", "private": False, "exist_ok": True})
    commit = calls["commit"]
    assert commit["repo_id"] == REPO and commit["repo_type"] == "dataset" and commit["revision"] is None
    assert commit["commit_message"] == (
        "univar-eval bank: 2 entries of 2 models, encoder minilm@None (fingerprint fp-minilm)"
    )
    adds = {op.path_in_repo: op for op in commit["operations"] if isinstance(op, CommitOperationAdd)}
    deletes = [op.path_in_repo for op in commit["operations"] if isinstance(op, CommitOperationDelete)]
    named = [e[k] for e in bank.entries() for k in ("array", "answers")]
    assert sorted(adds) == sorted(["bank.json", "SHA256SUMS", "README.md", *named])
    assert deletes == [stale]  # an entry file of an earlier push that the bank no longer names
    # huggingface_hub hashed what it would upload: the bank's own files, byte for byte
    for name in ["bank.json", *named]:
        assert adds[name].upload_info.sha256.hex() == sha256_file(bank.path / name)
        assert adds[name].upload_info.size == (bank.path / name).stat().st_size
    sums = hub.read_checksums(content_of(adds["SHA256SUMS"]).decode(), "SHA256SUMS")
    assert sums == {name: sha256_file(bank.path / name) for name in ["bank.json", *named]}
    card = content_of(adds["README.md"]).decode()
    assert "| alpha | univar_pvq_eng | eng | 12 |" in card and f"univar-eval bank pull {REPO}@" in card
    assert f"pushed {bank.path} to {REPO} at commit {COMMIT}" in capsys.readouterr().out


def test_push_refuses_a_damaged_bank_before_any_upload(tmp_path, monkeypatch, capsys):
    bank = make_bank(tmp_path / "bank")
    monkeypatch.setattr(HfApi, "create_repo", lambda *a, **k: pytest.fail("a dry run touched the hub"))
    assert main(["bank", "push", str(bank.path), "--repo", REPO, "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == (
        f"would push to {REPO} (main): univar-eval bank: 2 entries of 2 models, encoder "
        "minilm@None (fingerprint fp-minilm)"
    )
    assert sorted(line.strip() for line in listed[1:]) == sorted(
        ["bank.json", "SHA256SUMS", "README.md", *(e[k] for e in bank.entries() for k in ("array", "answers"))]
    )
    array = bank.path / bank.entries()[0]["array"]
    array.write_bytes(array.read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setattr(HfApi, "create_commit", lambda *a, **k: pytest.fail("uploaded a damaged bank"))
    assert main(["bank", "push", str(bank.path), "--repo", REPO]) == 2
    assert "sha256 does not match" in capsys.readouterr().err
    assert main(["bank", "push", str(bank.path), "--repo", "not a repo"]) == 2


def test_pull_from_a_local_hub_cache_offline(tmp_path, monkeypatch):
    """`univar-eval bank pull` in a fresh process, HF_HOME pointing at a hub cache built by hand."""
    bank, files = published(tmp_path, monkeypatch)
    hub_cache(tmp_path / "hf" / "hub", REPO, files)
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("HF_HUB_CACHE", None)
    dest = tmp_path / "pulled"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from univar_eval.cli import main; sys.exit(main())",
            "bank",
            "pull",
            REPO,
            str(dest),
            "--verify",
            "0",  # a bank of made-up embeddings (tests/storage/test_verify.py re-embeds real ones)
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"pulled {REPO}@{COMMIT}: 2 entries, every sha256 checked" in proc.stdout
    files_there = [p for p in dest.rglob("*") if not p.is_dir()]
    assert files_there and not any(p.is_symlink() for p in files_there)  # copies, not links into the cache
    assert sorted(p.relative_to(dest).as_posix() for p in files_there) == sorted([*files, "origin.json"])
    pulled = Bank(dest)
    assert [(e["model"], e["sha256"]) for e in pulled.entries()] == [(e["model"], e["sha256"]) for e in bank.entries()]
    assert np.array_equal(pulled.load(pulled.entries()[1]).embeddings, bank.load(bank.entries()[1]).embeddings)
    origin = json.loads((dest / "origin.json").read_text())["pulls"][0]
    assert origin["repo"] == REPO and origin["revision"] == COMMIT and origin["requested"] == "main"
    assert origin["checksums"] is True and origin["entries"] == 2


def test_pull_checks_every_sha256_and_the_encoder(tmp_path, monkeypatch, capsys):
    _, files = published(tmp_path, monkeypatch)
    snap = hub_cache(tmp_path / "hf" / "hub", REPO, files)
    # an explicit commit resolves without refs; the bank is a folder of its own
    assert main(["bank", "pull", f"{REPO}@{COMMIT}", str(tmp_path / "a")]) == 0
    assert Bank(tmp_path / "a").models() == ["alpha", "beta"]

    # a damaged blob: its sha256 differs from SHA256SUMS; nothing is left behind
    array = next(p for p in snap.rglob("*.safetensors"))
    blob = array.resolve()
    good = blob.read_bytes()
    blob.write_bytes(good[:-4] + b"\x01\x02\x03\x04")
    assert main(["bank", "pull", REPO, str(tmp_path / "b")]) == 2
    assert "does not match its sha256 in SHA256SUMS" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.pull-*"))
    blob.write_bytes(good)

    # into a bank that holds another encoder's embeddings: refused as `bank add` refuses it, bank untouched
    other = make_bank(tmp_path / "other", models=("gamma",), encoder="labse", fingerprint=0.9)
    before = (other.path / "bank.json").read_bytes()
    assert main(["bank", "pull", REPO, str(other.path)]) == 2
    assert "holds labse embeddings" in capsys.readouterr().err
    assert (other.path / "bank.json").read_bytes() == before and not (other.path / "origin.json").exists()

    # into a bank of the same encoder: the entries are added, the pull recorded
    mine = make_bank(tmp_path / "mine", models=("gamma",))
    assert main(["bank", "pull", REPO, str(mine.path)]) == 0
    assert "added to the bank there" in capsys.readouterr().out
    merged = Bank(mine.path)
    assert merged.models() == ["alpha", "beta", "gamma"]
    assert merged.entry("alpha", "univar_pvq_eng")["source"] == f"hf://{REPO}@{COMMIT}"
    assert json.loads((mine.path / "origin.json").read_text())["pulls"][0]["revision"] == COMMIT

    # a folder that is neither empty nor a bank, and a revision the offline cache lacks
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    assert main(["bank", "pull", REPO, str(tmp_path / "junk")]) == 2
    assert "neither empty nor a bank" in capsys.readouterr().err
    assert main(["bank", "pull", f"{REPO}@v2", str(tmp_path / "c")]) == 2
    assert f"cannot fetch the bank {REPO}@v2" in capsys.readouterr().err


def test_pull_refuses_a_snapshot_whose_checksums_leave_files_out(tmp_path, monkeypatch, capsys):
    _, files = published(tmp_path, monkeypatch)
    files["SHA256SUMS"] = b"".join(
        line + b"\n" for line in files["SHA256SUMS"].splitlines() if not line.endswith(b".answers.jsonl")
    )
    hub_cache(tmp_path / "hf" / "hub", REPO, files)
    assert main(["bank", "pull", REPO, str(tmp_path / "x")]) == 2
    assert "not listed in SHA256SUMS" in capsys.readouterr().err


def test_metadata_hf_bank_is_pulled_once_and_needs_the_same_encoder(tmp_path, monkeypatch, capsys):
    from lm_eval.tasks import TaskManager

    from univar_eval.pipeline.encoders import get_card

    _, files = published(tmp_path, monkeypatch, revision=get_card("minilm").revision)
    hub_cache(tmp_path / "hf" / "hub", REPO, files)
    spec = f"hf://{REPO}@{COMMIT}"
    tasks = TaskManager(metadata={"encoder": "minilm", "bank": spec}).load(["univar_pvq_eng"])["tasks"]
    task = tasks["univar_pvq_eng"]
    local = hub.banks_dir() / "acme--values" / COMMIT
    assert task.settings.bank == str(local) and Bank(local).models() == ["alpha", "beta"]
    assert {"mmd@alpha", "mmd@beta"} <= set(task.aggregation())
    # a commit never changes: the next run reuses the folder without asking the hub
    monkeypatch.setattr(hub, "_PULLED", {})
    monkeypatch.setattr(hub, "snapshot", lambda *a: pytest.fail("asked the hub again"))
    assert hub.local_bank(spec) == str(local)
    assert main(["bank", "list", "--bank", spec]) == 0  # --bank takes hf:// wherever it takes a folder
    assert "alpha: univar_pvq_eng (12)" in capsys.readouterr().out
    capsys.readouterr()
    with pytest.raises(SystemExit):  # before generation: one "error: ..." line, exit code 2
        TaskManager(metadata={"encoder": "labse", "bank": spec}).load(["univar_pvq_eng"])
    assert "encoder differs (the bank holds minilm embeddings, this run uses labse)" in capsys.readouterr().err
    with pytest.raises(UserError, match="not a hub bank"):
        hub.local_bank("hf://acme")
