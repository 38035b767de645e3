"""``univar-eval calibrate``: the D proposed from reruns of the baseline, with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.stats import calibration
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

ENC = {"name": "minilm", "revision": None, "dimension": 8, "fingerprint": [0.1] * 8, "fingerprint_id": "fp"}


def manifest(model):
    return {
        "format": "univar-eval/value-distribution/1",
        "model": model,
        "task": "univar_pvq_eng",
        "lang": "eng",
        "questionnaire": "pvq",
        "questionnaire_version": "v-eng",
        "encoder": ENC,
        "translator": {"name": "none"},
        "created": "2026-11-25T00:00:00",
        "counts": {},
    }


def test_propose_is_at_least_every_seen_rerun_and_reaches_for_the_tail():
    uppers = np.array([[0.02, 0.03], [0.025, 0.028], [0.021, 0.035]])
    out = calibration.propose(uppers, probability=0.95, seed=0)
    assert out["per_rerun"] == pytest.approx([0.03, 0.028, 0.035])
    assert out["max_distance"] > 0.035 and out["pass_rate_seen"] == 1.0 and not out["no_spread"]
    # more probability asks for a larger D
    assert calibration.propose(uppers, probability=0.99, seed=0)["max_distance"] > out["max_distance"]
    with pytest.raises(ValueError):
        calibration.propose(uppers[:2])


def test_greedy_reruns_show_no_spread_and_say_so():
    out = calibration.propose(np.zeros((4, 3)))
    assert out["max_distance"] is None and out["no_spread"] and "greedy" in out["note"]


def test_calibrate_command_from_three_reruns(tmp_path, capsys):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 8))
    ids = [q for q in range(20) for _ in range(3)]

    def draw(model):
        x = (centres[ids] + 0.5 * rng.normal(size=(len(ids), 8))).astype(np.float32)
        return ValueDistribution(x, [{"id": f"q{i}"} for i in ids], manifest(model))

    bank = Bank(tmp_path / "bank", create=True)
    bank.add(draw("base"), model="base", source="test")
    runs = []
    for k in range(3):
        run = tmp_path / f"rerun{k}"
        draw("base").save(run / "univar_2026-11-25T00-00-00" / "univar_pvq_eng")
        runs.append(str(run))
    js = tmp_path / "c.json"
    assert main(["calibrate", *runs, "--bank", str(bank.path), "--against", "base", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    result = json.loads(js.read_text())
    assert result["n_tests"] == 2 and result["tests"] == ["univar_pvq_eng:d_Q", "univar_pvq_eng:d_S"]
    assert result["max_distance"] >= max(result["per_rerun"]) > 0
    assert f"--max-distance {result['max_distance']:.4f}" in out
    assert main(["calibrate", *runs[:2], "--bank", str(bank.path), "--against", "base"]) == 2
    assert "at least 3 reruns" in capsys.readouterr().err
