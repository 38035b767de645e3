"""Issue 25, "embeddings checked against their answers", for other languages than English: the stored text of a
non-English answer is its English translation, so re-embedding the stored text alone let a forged translation (an
English text that is not a translation of the answer, with its own consistent embedding) pass. Now the sampled
answers are translated again with the recorded translator, past the translation cache, and compared with the
stored text (word for word, else the re-translation's embedding within TRANSLATION_TOLERANCE of the stored row);
the recorded translator must be the one loaded."""

from __future__ import annotations

import re

import numpy as np
import pytest
from integrity_world import one_error_line, records, save_run

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.pipeline import verify as check
from univar_eval.pipeline.embed import build_distribution
from univar_eval.pipeline.questionnaire import load
from univar_eval.runs import verify
from univar_eval.settings import resolve
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

TASK = "univar_pvq_zho"
ANSWERS = ["我会帮助他们，因为公平很重要。", "我会先考虑自己的成功。", "我愿意保护自然。", "我会听从专家的意见。"]


def zho_records(k: int, n: int = 8) -> list[dict]:
    qs = load("pvq", "zho").records[:n]
    return [
        {
            "id": q["id"],
            "value": q["value"],
            "lang": "zho",
            "question": q["question"],
            "answer": f"{ANSWERS[(i + k) % 4]} ({i})",
        }
        for i, q in enumerate(qs)
    ]


def embed_zho(recs, translator_folder, model="ref") -> ValueDistribution:
    settings = resolve({"encoder": "minilm", "translator": str(translator_folder)}, environ={})
    dist, _ = build_distribution(recs, task=TASK, questionnaire="pvq", lang="zho", settings=settings, model=model)
    return dist


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    """Two tiny translators with other weights, in folders of the same name (so the same name ``local:tiny-nllb``).
    Each is cut at 16 input tokens, so it writes at most 24: random weights never end a text, and 384 tokens a
    text (the real limit) take minutes on a shared CPU. The cut is part of the recorded translator, as always."""
    from univar_eval.demo.tiny_models import build_tiny_translator
    from univar_eval.pipeline import translate

    folders = [build_tiny_translator(tmp_path_factory.mktemp(f"t{seed}") / "tiny-nllb", seed=seed) for seed in (0, 1)]
    with pytest.MonkeyPatch.context() as mp:
        for f in folders:
            t = translate.NllbTranslator(name=f"local:{f.name}", model_id=str(f.resolve()), max_input_tokens=16)
            for key in {(str(f), None), (str(f.resolve()), None), (str(f), "cpu"), (str(f.resolve()), "cpu")}:
                mp.setitem(translate._LOADED, key, t)
        yield folders


@pytest.fixture(scope="module")
def tiny(translators):
    return translators[0]


@pytest.fixture(scope="module")
def honest(tiny, minilm) -> ValueDistribution:
    return embed_zho(zho_records(0), tiny)


def forged_translations(dist: ValueDistribution, minilm) -> ValueDistribution:
    """Every stored translation replaced by an English QA text of the carer (not a translation of the answer),
    with its own embedding, so that re-embedding the stored text finds nothing."""
    english = records("carer", 1)[: len(dist)]
    texts = [f"Q: {e['question']} A: {e['answer']}" for e in english]
    emb = np.asarray(minilm.encode(texts, batch_size=32, progress=False), dtype=np.float32)
    recs = [{**r, "text": t} for r, t in zip(dist.records, texts)]
    return ValueDistribution(emb, recs, dict(dist.manifest))


def test_an_honest_translation_is_translated_again_word_for_word(honest, figures):
    result = check.verify_distribution(honest, check.ALL, where="run", device="cpu")
    assert result.checked == 8 and result.translation == "8 translated again, 8 word for word"
    assert "8 translated again, 8 word for word" in result.line("run")
    figures("verify (tiny seq2seq translator, CPU): 8 of 8 re-translations equal the stored text word for word")


def test_a_forged_translation_is_refused_where_re_embedding_alone_passed(honest, minilm, figures):
    forged = forged_translations(honest, minilm)
    # the re-embedding check alone passes it: each stored text matches its stored row
    fresh = np.asarray(minilm.encode([r["text"] for r in forged.records], batch_size=32, progress=False))
    assert check._cosines(fresh, forged.embeddings).min() > 1 - check.COSINE_TOLERANCE
    with pytest.raises(check.VerificationFailed) as caught:
        check.verify_distribution(forged, check.ALL, where="run", device="cpu", seed=7)
    message = str(caught.value)
    assert "translations do not match their answers" in message and "seed 7" in message
    worst = float(re.search(r"has cosine (-?[0-9.]+)", message).group(1))
    assert worst < 1 - check.TRANSLATION_TOLERANCE
    figures(f"verify: a forged translation's re-translation has cosine {worst:.4f} with the stored row (need >= 0.97)")


def test_one_forged_row_is_found_by_a_sample_that_holds_it(honest, minilm):
    forged = forged_translations(honest, minilm)
    one = ValueDistribution(
        np.vstack([forged.embeddings[:1], honest.embeddings[1:]]),
        [forged.records[0], *honest.records[1:]],
        dict(honest.manifest),
    )
    with pytest.raises(check.VerificationFailed, match=r"answer 1 \(id "):
        check.verify_distribution(one, check.ALL, where="run", device="cpu")


def test_a_translation_by_another_translator_than_recorded_fails(tiny, translators, minilm):
    """Translated with other weights, recorded as the suite's translator (same folder name, its path)."""
    made = embed_zho(zho_records(0), translators[1])
    claimed = dict(made.manifest)
    claimed["translator"] = {**made.manifest["translator"], "model_id": str(tiny)}
    with pytest.raises(check.VerificationFailed, match="translations do not match their answers"):
        check.verify_distribution(ValueDistribution(made.embeddings, made.records, claimed), 4, where="run")


@pytest.mark.parametrize(
    "change,said",
    [({"num_beams": 4}, "num_beams 4 recorded, 1 here"), ({"name": "local:elsewhere"}, "name 'local:elsewhere'")],
)
def test_a_recorded_translator_unlike_the_loaded_one_is_refused(honest, tiny, change, said):
    from univar_eval.pipeline.translate import get_translator

    manifest = {**honest.manifest, "translator": {**honest.manifest["translator"], **change}}
    dist = ValueDistribution(honest.embeddings, honest.records, manifest)
    with pytest.raises(check.VerificationFailed, match="recorded translator is not the one loaded here") as caught:
        check.verify_distribution(dist, 2, where="run", translator=get_translator(str(tiny)))
    assert said in str(caught.value)


def test_a_translator_that_cannot_be_loaded_is_an_error_not_a_skip(honest, tmp_path):
    manifest = {**honest.manifest, "translator": {**honest.manifest["translator"], "model_id": str(tmp_path / "x")}}
    with pytest.raises(UserError, match="cannot verify run: its translator .* cannot be loaded here"):
        check.verify_distribution(ValueDistribution(honest.embeddings, honest.records, manifest), 2, where="run")


def test_translations_made_before_univar_eval_read_them_are_said_not_redone(honest):
    manifest = {**honest.manifest, "translator": {"name": "nllb-3.3b", "applied_by": "source"}}
    result = check.verify_distribution(ValueDistribution(honest.embeddings, honest.records, manifest), 3, where="r")
    assert "translations not redone: made by nllb-3.3b before univar-eval read them" in result.line("r")


def test_the_translation_cache_is_bypassed(honest, tiny, monkeypatch):
    from univar_eval.pipeline import translate

    monkeypatch.setattr(translate, "open_cache", lambda *a: pytest.fail("the translation cache was read"))
    check.verify_distribution(honest, 3, where="run", translator=translate.get_translator(str(tiny)))


def test_gate_refuses_a_run_folder_with_forged_translations(honest, minilm, tiny, tmp_path, capsys):
    bank = Bank(tmp_path / "bank", create=True)
    bank.add(embed_zho(zho_records(1), tiny), model="carer", source="runs of the carer")
    forged = save_run(forged_translations(honest, minilm), tmp_path / "cand", name=TASK)
    honest_run = save_run(honest, tmp_path / "honest", name=TASK)
    base = ["gate", "--bank", str(bank.path), "--against", "carer", "--max-distance", "1", "--min-answers", "5"]
    code = main([base[0], str(forged), *base[1:], "--verify", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "translations do not match their answers" in one_error_line(err)
    code = main([base[0], str(honest_run), *base[1:], "--verify", "all"])
    out, err = capsys.readouterr()
    assert code != 2 and "error:" not in err, err  # the honest run is read and judged (not refused)
    assert "8 translated again, 8 word for word" in err
    assert verify.TRANSLATION_TOLERANCE == check.TRANSLATION_TOLERANCE


def test_an_lm_eval_run_refuses_a_bank_entry_with_forged_translations(
    honest, minilm, tiny, tmp_path, capsys, monkeypatch
):
    """In a run, the bank's non-English entries are translated again with the run's translator (the recorded one)
    before generation: a forged translation stops the run (exit 2, one line); the honest entry is used."""
    from lm_eval.tasks import TaskManager

    monkeypatch.setattr(check, "_VERIFIED_ENTRIES", {})
    good, bad = Bank(tmp_path / "good", create=True), Bank(tmp_path / "bad", create=True)
    good.add(honest, model="ref", source="a")
    bad.add(forged_translations(honest, minilm), model="ref", source="a")
    meta = {"encoder": "minilm", "translator": str(tiny), "verify": 3}
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        TaskManager(metadata={**meta, "bank": str(bad.path)}).load([TASK])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "translations do not match their answers" in one_error_line(err)
    tasks = TaskManager(metadata={**meta, "bank": str(good.path)}).load([TASK])["tasks"]
    assert "mmd@ref" in tasks[TASK].aggregation()
