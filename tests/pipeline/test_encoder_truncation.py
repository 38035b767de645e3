"""Encoder truncation is counted, and a text too long for the encoder loses the middle of its question, never the
answer; the embedded text's format is versioned and checked before any comparison."""

from __future__ import annotations

from univar_eval.pipeline.answers import TEXT_FORMAT, cut_middle, fit_qa, format_qa
from univar_eval.pipeline.embed import build_distribution, fit_to_encoder
from univar_eval.settings import resolve
from univar_eval.storage.distribution import comparability_problem

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def test_cut_middle_by_hand():
    assert cut_middle("abcdefghij", 4) == "ab … ij"
    assert cut_middle("abcdefghij", 5) == "abc … ij"
    assert cut_middle("abcdefghij", 10) == "abcdefghij"
    assert cut_middle("abcdefghij", 0) == "…"


def test_fit_qa_keeps_the_answer_and_as_much_question_as_fits():
    fits = lambda text: len(text) <= 30  # noqa: E731  (a character "tokenizer")
    # "Q: " + 26 + " A: yes." is 37 characters; keeping k question characters costs 3 + k + 3 + 8 -> k = 16
    assert fit_qa(ALPHABET, "yes.", fits) == "Q: abcdefgh … stuvwxyz A: yes."
    assert fit_qa("short?", "yes.", fits) == "Q: short? A: yes."
    # an answer that cannot fit even without a question: the question shrinks to the ellipsis, the answer stays whole
    long_answer = "no " * 20
    assert fit_qa(ALPHABET, long_answer, fits) == format_qa("…", long_answer)


def test_minilm_texts_over_256_tokens_are_counted_and_keep_their_answer(minilm):
    answer = "Yes, always, because kindness matters more than comfort."
    questions = ["Should " + "really " * 300 + "people help strangers?", "Should people help strangers?"]
    texts, n_cut = fit_to_encoder(questions, [answer, answer], minilm)
    assert n_cut == 1
    assert texts[1] == format_qa(questions[1], answer)
    assert texts[0].startswith("Q: Should really") and texts[0].endswith(f"strangers? A: {answer}")
    assert " … " in texts[0] and minilm.token_lengths([texts[0]])[0] <= minilm.max_length == 256


def test_manifest_records_the_count_and_the_text_format(minilm):
    answer = "I would help them."
    records = [
        {"id": f"q{i}", "question": ("Why " + "indeed " * 400 if i < 3 else "Why?"), "answer": answer, "lang": "eng"}
        for i in range(10)
    ]
    dist, counts = build_distribution(
        records,
        task="univar_custom_eng",
        questionnaire=None,
        lang="eng",
        settings=resolve({"encoder": "minilm", "device": "cpu"}),
        model="m",
    )
    assert counts["n_encoder_truncated"] == 3 and dist.manifest["counts"]["n_encoder_truncated"] == 3
    assert dist.manifest["text_format"] == TEXT_FORMAT
    assert all(r["text"].endswith(f"A: {answer}") for r in dist.records)


def test_text_format_is_part_of_comparability():
    a = {"encoder": {"name": "e"}, "lang": "eng", "text_format": TEXT_FORMAT}
    assert comparability_problem(a, dict(a), fingerprint=False) is None
    assert comparability_problem(a, {**a, "text_format": None}, fingerprint=False) == (
        "embedded text format differs (qa/2 vs unversioned; made by another univar-eval version)"
    )


def test_bank_add_re_embeds_a_run_made_with_an_older_text_format(tmp_path, minilm):
    from univar_eval.runs.sources import Group, to_distribution

    records = [{"id": f"q{i}", "question": f"Question {i}?", "answer": "Yes.", "lang": "eng"} for i in range(5)]
    settings = resolve({"encoder": "minilm", "device": "cpu"})
    dist, _ = build_distribution(
        records, task="univar_custom_eng", questionnaire=None, lang="eng", settings=settings, model="m"
    )
    dist.manifest["text_format"] = None  # as written by a version before the text format was versioned
    folder = dist.save(tmp_path / "old")
    group = Group(
        model="m", task="univar_custom_eng", questionnaire=None, lang="eng", records=records, artifacts=folder
    )
    fresh, reused = to_distribution(group, settings)
    assert not reused and fresh.manifest["text_format"] == TEXT_FORMAT
    dist.manifest["text_format"] = TEXT_FORMAT
    dist.save(folder)
    assert to_distribution(group, settings)[1] is True
