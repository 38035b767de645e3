"""The one rule for "same encoder", encoder-card validation, and what it means for compare and the leaderboard."""

from __future__ import annotations

import math

import numpy as np
import pytest

from univar_eval.errors import UserError
from univar_eval.pipeline import encoders
from univar_eval.pipeline.encoders import (
    Encoder,
    EncoderCard,
    check_dimension,
    fingerprint_id,
    read_card,
)
from univar_eval.reports import leaderboard
from univar_eval.reports.compare import cross_language
from univar_eval.storage.distribution import ValueDistribution, comparability_problem
from univar_eval.storage.identity import encoder_difference, same_encoder


def enc(fp: float, name: str = "minilm", revision: str | None = "r1") -> dict:
    fingerprint = [fp] * 8
    return {
        "name": name,
        "revision": revision,
        "fingerprint": fingerprint,
        "fingerprint_id": fingerprint_id(fingerprint),
    }


def test_fingerprints_within_tolerance_are_one_encoder_even_when_their_ids_differ():
    a, b = enc(0.049), enc(0.051)
    assert a["fingerprint_id"] != b["fingerprint_id"]  # 0.0 vs 0.1 after rounding: the id is a label only
    assert same_encoder(a, b) and encoder_difference(a, b) is None
    assert comparability_problem({"encoder": a}, {"encoder": b}) is None


def test_fingerprints_beyond_tolerance_names_or_revisions_differ():
    assert encoder_difference(enc(0.05), enc(0.075)).startswith("encoder fingerprint differs")  # 0.025 > 0.02
    assert encoder_difference(enc(0.05), enc(0.05, name="labse")) == "encoder differs (minilm vs labse)"
    assert encoder_difference(enc(0.05), enc(0.05, revision="r2")) == "encoder revision differs (r1 vs r2)"
    assert not same_encoder(enc(0.05), None)
    # before a run has loaded its encoder, only name and revision can be checked
    assert encoder_difference(enc(0.05), enc(0.5), fingerprint=False) is None


def _dist(lang: str, rows: list[list[float]], encoder: dict, model: str = "m") -> ValueDistribution:
    e = np.asarray(rows, dtype=np.float32)
    return ValueDistribution(
        e,
        [{"id": i} for i in range(len(e))],
        {
            "format": "univar-eval/value-distribution/1",
            "created": "2026-01-01T00:00:00",
            "task": f"univar_pvq_{lang}",
            "lang": lang,
            "questionnaire": "pvq",
            "questionnaire_version": "v1",
            "encoder": encoder,
            "model": model,
            "translator": {"name": "none"},
        },
    )


S60 = math.sqrt(3) / 2


def test_cross_language_values_by_hand_and_the_049_051_pair_is_kept():
    # centroid distance is 1 - cos(mean_a, mean_b): eng along e1, fra along e2, zho at 60 degrees from e1
    dists = [
        _dist("eng", [[1, 0, 0]] * 2, enc(0.049)),
        _dist("fra", [[0, 1, 0]] * 2, enc(0.051)),
        _dist("zho", [[0.5, S60, 0]] * 2, enc(0.05)),
    ]
    out = cross_language(dists, metric="centroid", min_answers=2)["pvq"]
    assert out["languages"] == ["eng", "fra", "zho"]
    assert out["pairs"]["eng-fra"] == pytest.approx(1.0, abs=1e-6)
    assert out["pairs"]["eng-zho"] == pytest.approx(0.5, abs=1e-6)
    assert out["pairs"]["fra-zho"] == pytest.approx(1 - S60, abs=1e-6)
    assert out["spread"] == pytest.approx((1.0 + 0.5 + 1 - S60) / 3, abs=1e-6)


def test_cross_language_leaves_out_a_language_embedded_with_another_encoder():
    dists = [_dist("eng", [[1, 0, 0]] * 2, enc(0.05)), _dist("fra", [[0, 1, 0]] * 2, enc(0.05, name="labse"))]
    assert cross_language(dists, metric="centroid", min_answers=2) == {}


def _run(root, model: str, encoder: dict):
    d = _dist("eng", [[1, 0, 0], [0.8, 0.6, 0]], encoder, model=model)
    d.manifest["model"] = model
    d.save(root / model / "univar_2026-01-01T00-00-00" / "univar_pvq_eng")
    return str(root / model)


def test_leaderboard_takes_fingerprints_within_tolerance_as_one_encoder(tmp_path):
    runs = [_run(tmp_path, "a", enc(0.049)), _run(tmp_path, "b", enc(0.051))]
    board = leaderboard.build(runs, min_answers=2)
    assert not board["settings"]["mixed"] and len(board["settings"]["encoders"]) == 1
    other = _run(tmp_path, "c", enc(0.2))
    with pytest.raises(UserError, match="encoders differ"):
        leaderboard.build(runs + [other], min_answers=2)


# -- cards -------------------------------------------------------------------------------------------------
def test_shipped_cards_are_valid():
    cards = encoders.list_cards()
    assert {"minilm", "univar-lambda-5"} <= set(cards)
    assert cards["minilm"].dimension == 384 and cards["univar-lambda-5"].dimension == 768


def test_card_with_unknown_key_is_refused_in_one_line(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nmodel_id: org/model\ndimensions: 768\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        read_card(path)
    assert "\n" not in str(err.value)
    assert "unknown key(s) dimensions" in str(err.value) and "allowed: name" in str(err.value)


def test_card_dimension_must_be_a_positive_integer(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmodel_id: org/model\ndimension: '768'\n", encoding="utf-8")
    with pytest.raises(UserError, match="dimension must be a positive integer"):
        read_card(path)


class _Model:
    def __init__(self, dim: int):
        self.dim = dim

    def get_embedding_dimension(self) -> int:
        return self.dim


def test_card_dimension_is_checked_against_the_loaded_model():
    check_dimension(Encoder(EncoderCard(name="x", model_id="org/x", dimension=384), _Model(384)))
    check_dimension(Encoder(EncoderCard(name="x", model_id="org/x"), _Model(5)))  # no dimension: nothing to check
    with pytest.raises(UserError, match="card says dimension 768 but the loaded model gives 384"):
        check_dimension(Encoder(EncoderCard(name="x", model_id="org/x", dimension=768), _Model(384)))


def test_bank_and_identification_apply_the_same_rule(tmp_path):
    from univar_eval.stats.identify import LabelledSet, check_one_encoder
    from univar_eval.storage.bank import Bank

    bank = Bank(tmp_path / "bank", create=True)
    bank.add(_dist("eng", [[1, 0, 0], [0, 1, 0]], enc(0.049), model="a"), model="a", source="t")
    bank.add(_dist("eng", [[1, 0, 0], [0, 1, 0]], enc(0.051), model="b"), model="b", source="t")  # accepted
    with pytest.raises(UserError, match="holds minilm embeddings"):
        bank.add(_dist("eng", [[1, 0, 0], [0, 1, 0]], enc(0.08), model="c"), model="c", source="t")
    assert bank.models() == ["a", "b"]

    def lset(fp):
        return LabelledSet("m", "eng", "t", "pvq", np.eye(2, dtype=np.float32), enc(fp), f"fp {fp}")

    assert check_one_encoder([lset(0.049), lset(0.051)])["name"] == "minilm"
    with pytest.raises(UserError, match="fp 0.08 was embedded with minilm"):
        check_one_encoder([lset(0.049), lset(0.08)])
