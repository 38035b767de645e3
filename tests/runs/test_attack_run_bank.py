"""Issue 25, "embeddings checked against their answers", inside an lm-eval run: the ``bank`` setting's entries were
used as stored, so a forged entry (the carer's answers behind the achiever's embeddings, checksums recomputed by
``bank add``) changed the run's mmd@<ref> and nearest_* metrics. Now, before generation, a sample of each entry the
task compares with is embedded again (run setting ``verify``, default 16); a mismatch stops the run with exit 2
and one line, and the distances at aggregation use the verified manifest, whose checksums every file must match."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import OFFLINE_ENV, hf_args
from integrity_world import TASK

from univar_eval.pipeline import verify as check
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution


def forged_bank(w, folder) -> str:
    """The carer's answers with the achiever's embeddings, added as a bank entry (its checksums are correct)."""
    answers, embeddings = w.run("carer", 0), w.run("achiever", 0)
    bank = Bank(folder, create=True)
    bank.add(
        ValueDistribution(np.asarray(embeddings.embeddings), answers.records, dict(answers.manifest)),
        model="carer",
        source="runs of the carer",
    )
    return str(bank.path)


def load_task(bank: str, **metadata):
    from lm_eval.tasks import TaskManager

    meta = {"encoder": "minilm", "bank": bank, **metadata}
    return TaskManager(metadata=meta).load([TASK])["tasks"][TASK]


def refused(capsys, bank: str, **metadata) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        load_task(bank, **metadata)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(check, "_VERIFIED_ENTRIES", {})


def test_a_forged_bank_entry_stops_the_run_before_generation(integrity_world, tmp_path, capsys):
    bank = forged_bank(integrity_world, tmp_path / "bank")
    line = refused(capsys, bank, verify=16)
    assert line.startswith(f"error: {TASK}: bank ") and "carer / univar_pvq_eng" in line
    assert "embeddings do not match their answers" in line and re.search(r"seed \d+", line)


def test_the_default_is_the_commands_default_16(integrity_world, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(check, "DEFAULT_SAMPLE", 16)  # the suite's conftest sets 0; this is the real default
    bank = forged_bank(integrity_world, tmp_path / "bank")
    assert "embeddings do not match their answers" in refused(capsys, bank)
    monkeypatch.setenv("UNIVAR_EVAL_VERIFY", "all")  # the environment variable, like every setting
    assert "38 of 38 checked" in refused(capsys, bank)


def test_verify_0_uses_the_bank_unchecked_and_says_so(integrity_world, tmp_path, caplog):
    bank = forged_bank(integrity_world, tmp_path / "bank")
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        task = load_task(bank, verify=0)  # the attack, when the check is switched off
    assert "mmd@carer" in task.aggregation()
    assert any("not verified (verify: 0)" in r.getMessage() for r in caplog.records)


def test_an_honest_bank_is_verified_once_and_its_distances_computed(integrity_world, tmp_path, caplog, monkeypatch):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    calls = []
    real = check.verify_bank
    monkeypatch.setattr(check, "verify_bank", lambda *a, **k: calls.append(1) or real(*a, **k))
    with caplog.at_level(logging.INFO, logger="univar_eval"):
        task = load_task(bank, verify="all")
        load_task(bank, verify="all")  # lm-eval builds tasks again (groups, listings): verified once
    assert len(calls) == 1
    [line] = [r.getMessage() for r in caplog.records if "verified bank" in r.getMessage()]
    assert "38 of 38 answers re-embedded" in line and re.search(r"seed \d+", line)
    metrics = task._bank_metrics(w.run("carer", 1))
    assert metrics["nearest_reference"] == "carer" and math.isfinite(metrics["mmd@carer"])


def test_a_bank_file_replaced_after_verification_gives_nan_with_the_reason(integrity_world, tmp_path, caplog):
    """The distances use the manifest that was verified: a file swapped during generation is refused; the run's
    answers and embeddings are saved already, so only the distances are lost, and the log says why."""
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    task = load_task(bank, verify=4)
    forged = forged_bank(w, tmp_path / "other")  # a consistent forged entry, then copied over the verified one
    entry, other = Bank(bank).entry("carer", TASK), Bank(forged).entry("carer", TASK)
    for key in ("array", "answers"):
        (tmp_path / "bank" / entry[key]).write_bytes((tmp_path / "other" / other[key]).read_bytes())
    manifest = json.loads((tmp_path / "other" / "bank.json").read_text())
    manifest["entries"][0].update(array=entry["array"], answers=entry["answers"])
    (tmp_path / "bank" / "bank.json").write_text(json.dumps(manifest))  # checksums "recomputed" too
    with caplog.at_level(logging.ERROR, logger="univar_eval"):
        metrics = task._bank_metrics(w.run("carer", 1))
    assert metrics["nearest_reference"] == "error"
    assert math.isnan(metrics["mmd@carer"]) and math.isnan(metrics["nearest_distance"])
    [message] = [r.getMessage() for r in caplog.records if "distances to the bank not computed" in r.getMessage()]
    assert "sha256" in message and "answers and their embeddings are saved" in message


@pytest.mark.parametrize("value", [-1, "-1", "some", "1.5", True])
def test_a_bad_verify_setting_is_refused(value):
    from univar_eval.errors import UserError
    from univar_eval.settings import resolve

    with pytest.raises(UserError, match=r"setting verify=.* is neither 'all' nor a whole number >= 0"):
        resolve({"verify": value}, environ={})
    with pytest.raises(UserError, match="did you mean 'verify'"):
        resolve({"verfy": 16}, environ={})
    assert [resolve({"verify": v}, environ={}).verify for v in ("all", "ALL", 0, "16")] == [-1, -1, 0, 16]
    assert resolve({"verify": "all"}, environ={}).to_dict()["verify"] == "all"  # read back as written


def test_a_bad_verify_setting_stops_the_run_in_one_line(tmp_path, capsys, integrity_world):
    bank = integrity_world.bank(tmp_path, integrity_world.run("carer", 0))
    assert "setting verify='some' is neither 'all' nor a whole number >= 0" in refused(capsys, bank, verify="some")


@pytest.mark.e2e
def test_lm_eval_stops_on_a_forged_bank_before_generating(integrity_world, tiny_lm, tmp_path):
    bank = forged_bank(integrity_world, tmp_path / "bank")
    out = tmp_path / "runs"
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "lm_eval"),
            *hf_args(tiny_lm),
            "--tasks",
            TASK,
            "--limit",
            "12",
            "--log_samples",
            "--output_path",
            str(out),
            "--metadata",
            json.dumps({"encoder": "minilm", "bank": bank}),
        ],
        cwd=tmp_path,
        env={**os.environ, **OFFLINE_ENV},
        capture_output=True,
        text=True,
        timeout=900,
    )
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "embeddings do not match their answers" in errors[0]
    assert not list(tmp_path.rglob("samples_*.jsonl")) and not list(tmp_path.rglob("results_*.json"))
