"""Translation to English through the real NLLB code path, on a tiny random-weight NLLB-architecture model."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import hf_args, read_results, run_lm_eval

from univar_eval.errors import UserError
from univar_eval.pipeline.embed import build_distribution
from univar_eval.pipeline.translate import NllbTranslator, get_translator, to_english
from univar_eval.settings import RunSettings
from univar_eval.storage.distribution import ValueDistribution

ZHO = [
    "你会帮助邻居吗？",
    "我会先和家人商量，然后再决定。",
    "当然。",
    "这取决于情况，但我通常会遵守规则，因为秩序很重要。",
    "不会。",
]


@pytest.fixture()
def translator(tiny_translator, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "cache"))
    return NllbTranslator(name="tiny", model_id=str(tiny_translator), device="cpu", batch_size=2)


def echo_generate(calls):
    """Stand-in for model.generate that records its inputs and 'translates' by echoing the input ids."""

    def generate(input_ids=None, attention_mask=None, forced_bos_token_id=None, **kw):
        calls.append({"input_ids": input_ids.clone(), "forced_bos": forced_bos_token_id})
        return input_ids

    return generate


def test_language_codes_batches_and_order(translator, monkeypatch):
    model, tok = translator._load()
    calls: list = []
    monkeypatch.setattr(model, "generate", echo_generate(calls))
    out = translator.translate(ZHO, "zho")
    # echo: the decoded source comes back, in the caller's order, though batches were sorted by length
    assert [o.replace(" ", "") for o in out] == [
        t.replace(" ", "") for t in tok.batch_decode(tok(ZHO)["input_ids"], skip_special_tokens=True)
    ]
    assert len(calls) == 3  # 5 texts, batches of 2
    zho_id, eng_id = tok.convert_tokens_to_ids("zho_Hans"), tok.convert_tokens_to_ids("eng_Latn")
    for c in calls:
        assert c["forced_bos"] == eng_id
        assert (c["input_ids"][:, 0] == zho_id).all()  # NLLB puts the source-language code first
    lengths = [c["input_ids"].shape[1] for c in calls]
    assert lengths == sorted(lengths, reverse=True)


def test_real_generation_cache_hits_and_stats(translator, monkeypatch):
    out = translator.translate(ZHO[:3], "zho")
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    assert translator.stats.n_translated == 3 and translator.stats.n_cached == 0
    model, _ = translator._load()

    def boom(**kw):
        raise AssertionError("cached texts must not be translated again")

    monkeypatch.setattr(model, "generate", boom)
    again = translator.translate(ZHO[:3], "zho")
    assert again == out
    assert translator.stats.n_cached == 3
    # the same text in another source language is another translation
    with pytest.raises(AssertionError, match="cached texts"):
        translator.translate(ZHO[:1], "jpn")


def test_truncation_is_counted_and_reported(translator, caplog):
    translator.max_input_tokens = 12
    long = "我认为" * 40
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        translator.translate([long, "当然。"], "zho")
    assert translator.stats.n_truncated == 1
    assert "1 of 2 zho texts were longer than 12 tokens" in caplog.text


def test_english_is_never_translated(translator, monkeypatch):
    monkeypatch.setattr(translator, "_generate", lambda *a: pytest.fail("English sent to the translator"))
    q, a = to_english(["Would you help?"], ["Yes."], "eng", translator)
    assert (q, a) == (["Would you help?"], ["Yes."])
    assert translator.translate(["Yes."], "eng") == ["Yes."]


def test_pipeline_records_translator_and_truncation(tiny_translator, minilm, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "cache"))
    settings = RunSettings(encoder="minilm", translator=str(tiny_translator), encoder_device="cpu")
    records = [{"question": "你会帮助邻居吗？", "answer": a, "lang": "zho"} for a in ZHO[1:] + ["  "]]
    dist, counts = build_distribution(
        records, task="univar_pvq_zho", questionnaire=None, lang="zho", settings=settings, model="m"
    )
    assert counts["n_answers"] == 4 and counts["n_empty"] == 1 and counts["n_truncated"] == 0
    assert dist.manifest["translator"]["name"] == f"local:{tiny_translator.name}"
    assert dist.manifest["translator"]["max_input_tokens"] == 256
    assert all(r["text"].startswith("Q: ") for r in dist.records)
    eng, _ = build_distribution(
        [{"question": "Q?", "answer": "Yes.", "lang": "eng"}],
        task="univar_pvq_eng",
        questionnaire=None,
        lang="eng",
        settings=settings,
        model="m",
    )
    assert eng.manifest["translator"] == {"name": "none"}


def test_unknown_translator_is_explained():
    with pytest.raises(UserError, match="unknown translator 'nllb-9b'"):
        get_translator("nllb-9b")
    assert get_translator("nllb-3.3b").describe()["model_id"] == "facebook/nllb-200-3.3B"


@pytest.mark.e2e
def test_two_languages_through_lm_eval(tiny_lm, tiny_translator, tmp_path):
    out = tmp_path / "runs"
    run_lm_eval(
        [
            *hf_args(tiny_lm),
            "--tasks",
            "univar_pvq_eng,univar_pvq_zho",
            "--limit",
            "4",
            "--output_path",
            str(out),
            "--metadata",
            json.dumps({"encoder": "minilm", "translator": str(tiny_translator), "min_answers": 1}),
        ],
        cwd=tmp_path,
    )
    results = read_results(out)["results"]
    for task in ("univar_pvq_eng", "univar_pvq_zho"):
        assert results[task]["n_answers,none"] + results[task]["n_empty,none"] == 4
    folders = {p.parent.name: p.parent for p in out.rglob("univar_*/*/manifest.json")}
    assert set(folders) == {"univar_pvq_eng", "univar_pvq_zho"}
    zho = ValueDistribution.load(folders["univar_pvq_zho"])
    assert zho.manifest["lang"] == "zho" and zho.manifest["translator"]["name"].startswith("local:")
    assert ValueDistribution.load(folders["univar_pvq_eng"]).manifest["translator"] == {"name": "none"}
    assert "n_truncated" in zho.manifest["counts"]
