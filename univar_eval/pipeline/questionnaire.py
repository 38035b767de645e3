"""Step: questionnaire. The value-eliciting questions, their schema and versions.

Each questionnaire is a folder ``tasks/univar/data/<name>/`` with one JSONL file
per language (``eng.jsonl``, ``zho.jsonl``, ...). One record per question:

``id``            stable identifier, identical across languages (``pvq-sd_thought-01``)
``value``         the construct the question probes (a Schwartz value, a WVS theme, ...)
``higher_order``  the broader grouping of that construct
``lang``          ISO 639-3 code, as in UniVaR
``question``      the text put to the model

A questionnaire's *version* is a hash of the language file's content, so a
bank entry and a run are only compared when they asked the same questions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.resources import data_dir
from univar_eval.storage.files import read_jsonl

#: UniVaR's 25 languages (ISO 639-3) and their NLLB-200 codes.
LANGUAGES: dict[str, str] = {
    "eng": "eng_Latn",
    "zho": "zho_Hans",
    "kor": "kor_Hang",
    "jpn": "jpn_Jpan",
    "deu": "deu_Latn",
    "fin": "fin_Latn",
    "swe": "swe_Latn",
    "fra": "fra_Latn",
    "ita": "ita_Latn",
    "por": "por_Latn",
    "spa": "spa_Latn",
    "tha": "tha_Thai",
    "vie": "vie_Latn",
    "zsm": "zsm_Latn",
    "tgl": "tgl_Latn",
    "hat": "hat_Latn",
    "quy": "quy_Latn",
    "rus": "rus_Cyrl",
    "ron": "ron_Latn",
    "bul": "bul_Cyrl",
    "ind": "ind_Latn",
    "arb": "arb_Arab",
    "hin": "hin_Deva",
    "swh": "swh_Latn",
    "pes": "pes_Arab",
}

#: The questionnaires shipped, with a one-line description. ``control`` is not a value set.
QUESTIONNAIRES: dict[str, str] = {
    "pvq": "situations for the 19 values of Schwartz's refined theory (PVQ-RR)",
    "wvs": "World Values Survey themes and the Inglehart-Welzel axes",
    "globe": "GLOBE's nine cultural dimensions",
    "situations": "everyday moral situations ('should I ...?')",
    "control": "value-neutral requests (non-value control)",
}
VALUE_SETS = ("pvq", "wvs", "globe", "situations")
REQUIRED_FIELDS = ("id", "value", "higher_order", "lang", "question")


@dataclass(frozen=True)
class Questionnaire:
    name: str
    lang: str
    path: Path
    records: tuple[dict, ...]
    version: str

    def __len__(self) -> int:
        return len(self.records)


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise UserError(f"unknown language {lang!r}; use one of UniVaR's ISO 639-3 codes: {', '.join(LANGUAGES)}")
    return lang


def questionnaire_path(name: str, lang: str) -> Path:
    if name not in QUESTIONNAIRES:
        raise UserError(f"unknown questionnaire {name!r}; choose one of {', '.join(QUESTIONNAIRES)}")
    check_language(lang)
    return data_dir() / name / f"{lang}.jsonl"


def questionnaire_of_task(task: str | None) -> str | None:
    """THE rule for which questionnaire a task asks: ``<q>`` of a task named ``univar_<q>_<lang>`` (``lang`` one of
    :data:`LANGUAGES`), shipped or external; None for any other name (callers say what they show instead)."""
    if not isinstance(task, str):
        return None
    parts = task.split("_")
    if len(parts) == 3 and parts[0] == "univar" and parts[1] and parts[2] in LANGUAGES:
        return parts[1]
    return None


def available_languages(name: str) -> list[str]:
    folder = data_dir() / name
    return [lang for lang in LANGUAGES if (folder / f"{lang}.jsonl").exists()]


def validate_records(records: list[dict], *, lang: str, source: str) -> None:
    """Schema check: required fields, non-empty text, unique ids, language tag."""
    seen: set[str] = set()
    for i, r in enumerate(records, 1):
        for key in REQUIRED_FIELDS:
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise UserError(f"{source}:{i}: field {key!r} is missing or empty")
        if r["lang"] != lang:
            raise UserError(f"{source}:{i}: lang is {r['lang']!r}, expected {lang!r}")
        if r["id"] in seen:
            raise UserError(f"{source}:{i}: duplicate id {r['id']!r}")
        seen.add(r["id"])


def load(name: str, lang: str) -> Questionnaire:
    path = questionnaire_path(name, lang)
    if not path.exists():
        have = ", ".join(available_languages(name)) or "none"
        raise UserError(f"questionnaire {name!r} has no {lang!r} file ({path}); available languages: {have}")
    records = read_jsonl(path)
    validate_records(records, lang=lang, source=str(path))
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Questionnaire(name=name, lang=lang, path=path, records=tuple(records), version=version)
