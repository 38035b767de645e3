"""Step: translation. Bring every question-answer pair into English before embedding.

UniVaR translates each QA pair back to English with NLLB-200 so that the encoder
sees values rather than language. English text is never sent through a
translator. ``none`` keeps the original text (for multilingual encoders).
"""

from __future__ import annotations

from typing import Sequence

from univar_eval.errors import UserError


class Translator:
    """Interface: ``translate(texts, src_lang)`` returns English texts, same order."""

    name = "abstract"

    def translate(self, texts: Sequence[str], src_lang: str) -> list[str]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


class NoTranslation(Translator):
    name = "none"

    def translate(self, texts: Sequence[str], src_lang: str) -> list[str]:
        return list(texts)


def get_translator(name: str) -> Translator:
    if name == "none":
        return NoTranslation()
    raise UserError(f"unknown translator {name!r}; use 'none'")


def to_english(questions: Sequence[str], answers: Sequence[str], lang: str, translator: Translator) -> tuple[list[str], list[str]]:
    """Translate questions and answers of language ``lang`` into English (English passes through)."""
    if lang == "eng" or isinstance(translator, NoTranslation):
        return list(questions), list(answers)
    unique_q = list(dict.fromkeys(questions))
    q_map = dict(zip(unique_q, translator.translate(unique_q, lang)))
    return [q_map[q] for q in questions], translator.translate(answers, lang)
