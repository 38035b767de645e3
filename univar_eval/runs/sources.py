"""Step: answers from elsewhere. Turn answers stored in other places into value distributions.

``univar-eval bank add`` accepts three kinds of source:

* lm-eval output: ``samples_<task>_<date>.jsonl`` files from ``--log_samples`` (or a folder
  holding them). When the run's own artifacts (``univar_<time>/<task>/``) were made with
  the wanted encoder they are reused as they are; otherwise the answers are embedded.
* UniVaR's released QA data: ``<model>.csv`` files with ``question,answer,lang`` columns,
  as in ``{source}/qa_translated/<model>.csv`` of the UniVaR repository; the text is
  already in English (translated by NLLB-200 3.3B), so nothing is translated again.
* plain JSONL with ``{model, lang, question, answer}`` records (``task`` or
  ``questionnaire`` optional).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.pipeline import answers as answers_mod
from univar_eval.pipeline import questionnaire as questionnaire_mod
from univar_eval.pipeline.embed import build_distribution
from univar_eval.runs.results import artifacts_for_samples
from univar_eval.settings import RunSettings
from univar_eval.storage.bank import check_model, check_task
from univar_eval.storage.distribution import (
    DISTRIBUTION_FORMAT,
    EXTERNAL_VERSION_PREFIX,
    MANIFEST_FILE,
    ValueDistribution,
    read_manifest,
)
from univar_eval.storage.files import check_utf8, read_jsonl

log = logging.getLogger("univar_eval")

#: UniVaR's source folders and the questionnaire of ours that asks about the same construct.
UNIVAR_SOURCES = {
    "pvq": "pvq",
    "pvq_rr": "pvq",
    "wvs": "wvs",
    "globe": "globe",
    "valueprism": "situations",
    "value_prism": "situations",
    "situations": "situations",
    "lima": "control",
    "control": "control",
}
#: Two-letter and NLLB language codes accepted in external data, mapped to ours.
ALIASES = {
    "en": "eng",
    "zh": "zho",
    "ko": "kor",
    "ja": "jpn",
    "de": "deu",
    "fi": "fin",
    "sv": "swe",
    "fr": "fra",
    "it": "ita",
    "pt": "por",
    "es": "spa",
    "th": "tha",
    "vi": "vie",
    "ms": "zsm",
    "tl": "tgl",
    "ht": "hat",
    "qu": "quy",
    "ru": "rus",
    "ro": "ron",
    "bg": "bul",
    "id": "ind",
    "ar": "arb",
    "hi": "hin",
    "sw": "swh",
    "fa": "pes",
    "zsm": "zsm",
    "msa": "zsm",
    "ara": "arb",
    "fas": "pes",
    "per": "pes",
    "swa": "swh",
}
#: English names of the languages, as some datasets write them.
NAMES = {
    "english": "eng",
    "chinese": "zho",
    "mandarin": "zho",
    "korean": "kor",
    "japanese": "jpn",
    "german": "deu",
    "finnish": "fin",
    "swedish": "swe",
    "french": "fra",
    "italian": "ita",
    "portuguese": "por",
    "spanish": "spa",
    "thai": "tha",
    "vietnamese": "vie",
    "malay": "zsm",
    "tagalog": "tgl",
    "filipino": "tgl",
    "haitian": "hat",
    "haitian creole": "hat",
    "quechua": "quy",
    "russian": "rus",
    "romanian": "ron",
    "bulgarian": "bul",
    "indonesian": "ind",
    "arabic": "arb",
    "hindi": "hin",
    "swahili": "swh",
    "persian": "pes",
    "farsi": "pes",
}
UNIVAR_TRANSLATOR = "nllb-3.3b"


@dataclass
class Group:
    """The answers of one model to one task (one questionnaire in one language)."""

    model: str
    task: str
    questionnaire: str | None
    lang: str
    records: list[dict] = field(default_factory=list)
    questionnaire_version: str | None = None
    translated_by: str | None = None
    artifacts: Path | None = None
    source: str = ""


def normalise_lang(code: str, where: str) -> str:
    code = (code or "").strip()
    lang = code.split("_")[0].lower() if "_" in code else code.lower()
    lang = NAMES.get(code.lower(), ALIASES.get(lang, lang))
    if lang not in questionnaire_mod.LANGUAGES:
        raise UserError(
            f"{where}: unknown language {code!r}; use one of UniVaR's ISO 639-3 codes "
            f"({', '.join(questionnaire_mod.LANGUAGES)})"
        )
    return lang


def external_version(questionnaire: str | None, lang: str, questions: list[str]) -> str:
    """Our questionnaire's version when these are its questions, else a hash of the questions asked."""
    if questionnaire and lang in questionnaire_mod.available_languages(questionnaire):
        ours = questionnaire_mod.load(questionnaire, lang)
        if set(questions) <= {r["question"] for r in ours.records}:
            return ours.version
    digest = hashlib.sha256("\n".join(sorted(set(questions))).encode()).hexdigest()[:16]
    return f"{EXTERNAL_VERSION_PREFIX}{digest}"


# -- lm-eval output ---------------------------------------------------------------------------------------
def from_lm_eval(path: Path, model: str) -> list[Group]:
    groups = []
    for file in answers_mod.sample_files(path):
        task = answers_mod.task_of_samples_file(file)
        records = answers_mod.read_samples(file)
        if not records:
            continue
        langs = {r["lang"] for r in records}
        if len(langs) != 1:
            raise UserError(
                f"{file}: answers in several languages ({', '.join(sorted(map(str, langs)))}); "
                "expected one univar task per file"
            )
        lang = normalise_lang(langs.pop(), str(file))
        q = records[0].get("questionnaire") or _questionnaire_of_task(task)
        version = records[0].get("questionnaire_version")
        groups.append(
            Group(
                model=model,
                task=task,
                questionnaire=q,
                lang=lang,
                records=records,
                questionnaire_version=version,
                artifacts=_artifacts_for(file, task),
                source=str(file),
            )
        )
    return groups


def _questionnaire_of_task(task: str) -> str | None:
    return questionnaire_mod.questionnaire_of_task(task)


def _artifacts_for(samples_file: Path, task: str) -> Path | None:
    """The ``univar_<time>/<task>`` folder of the run that wrote this samples file, if any."""
    return artifacts_for_samples(samples_file, task)


# -- UniVaR CSV -----------------------------------------------------------------------------------------------
def from_univar_csv(file: Path, model: str | None, questionnaire: str | None) -> list[Group]:
    model = model or file.stem
    if questionnaire is None:
        folder = file.parent.parent.name if file.parent.name == "qa_translated" else file.parent.name
        questionnaire = UNIVAR_SOURCES.get(folder.lower())
        if questionnaire is None:
            raise UserError(
                f"{file}: cannot tell which questionnaire the folder {folder!r} holds; "
                f"pass --questionnaire ({', '.join(questionnaire_mod.QUESTIONNAIRES)})"
            )
    by_lang: dict[str, list[dict]] = {}
    with open(file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            missing = {"question", "answer", "lang"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(
                    f"{file}: missing column(s) {', '.join(sorted(missing))}; UniVaR QA files have question,answer,lang"
                )
            for row in reader:
                where = f"{file}:{reader.line_num}"
                if None in row or any(row[k] is None for k in ("question", "answer", "lang")):
                    raise UserError(f"{where}: wrong number of columns")
                lang = normalise_lang(row["lang"], where)
                # no id: answers pair by their question's text, never by the file's name or line
                by_lang.setdefault(lang, []).append(
                    {"lang": lang, "question": row["question"], "answer": row["answer"]}
                )
        except UnicodeDecodeError:
            check_utf8(file)  # names the line
            raise
        except csv.Error as e:
            raise UserError(f"{file}:{reader.line_num}: not a readable CSV row ({e})") from None
    return [
        Group(
            model=model,
            task=f"univar_{questionnaire}_{lang}",
            questionnaire=questionnaire,
            lang=lang,
            records=recs,
            questionnaire_version=external_version(None, lang, [r["question"] for r in recs]),
            translated_by=UNIVAR_TRANSLATOR if lang != "eng" else None,
            source=str(file),
        )
        for lang, recs in sorted(by_lang.items())
    ]


# -- plain JSONL ------------------------------------------------------------------------------------------------
def from_jsonl(file: Path, model: str | None, questionnaire: str | None, translated_by: str | None) -> list[Group]:
    by_key: dict[tuple, list[dict]] = {}
    for lineno, r in enumerate(read_jsonl(file), 1):
        where = f"{file}:{lineno}"
        for key in ("question", "answer", "lang"):
            if not isinstance(r.get(key), str):
                raise UserError(f"{where}: needs a text field {key!r} (records are {{model, lang, question, answer}})")
        for key in ("model", "task", "questionnaire"):
            if r.get(key) is not None and not isinstance(r[key], str):
                raise UserError(f"{where}: {key!r} must be text, not {type(r[key]).__name__}")
        rid = r.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))):
            raise UserError(f"{where}: 'id' must be text or a whole number, not {type(rid).__name__}")
        name = model or r.get("model")
        if not name:
            raise UserError(f"{where}: no 'model' field; add one or pass --name")
        check_model(name, where)
        lang = normalise_lang(r["lang"], where)
        q = r.get("questionnaire") or questionnaire or _questionnaire_of_task(r.get("task") or "") or "custom"
        check_task(q, f"{where}: questionnaire")
        task = check_task(r.get("task") or f"univar_{q}_{lang}", where)
        # without an id, answers pair by their question's text, never by the file's name or line
        by_key.setdefault((name, task, q, lang), []).append({**r, "lang": lang})
    return [
        Group(
            model=name,
            task=task,
            questionnaire=q,
            lang=lang,
            records=recs,
            questionnaire_version=external_version(q, lang, [r["question"] for r in recs]),
            translated_by=translated_by if lang != "eng" else None,
            source=str(file),
        )
        for (name, task, q, lang), recs in sorted(by_key.items())
    ]


def collect(
    sources: list[str],
    *,
    model: str | None,
    questionnaire: str | None = None,
    translated_by: str | None = None,
    as_repeats: bool = False,
) -> list[Group]:
    """Every (model, task) group of answers in ``sources``. Two groups for one (model, task, language) are
    refused (naming both sources) unless ``as_repeats`` says they are repeats of one model."""
    groups: list[Group] = []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise UserError(f"{src}: no such file or folder")
        csvs = [path] if path.suffix == ".csv" else sorted(path.rglob("*.csv")) if path.is_dir() else []
        samples = answers_mod.sample_files(path) if (path.is_dir() or path.name.startswith("samples_")) else []
        if samples:
            if not model:
                raise UserError(f"{src}: lm-eval output does not say which model it is; pass --name MODEL")
            groups += from_lm_eval(path, model)
        elif csvs:
            for file in csvs:
                groups += from_univar_csv(file, model if len(csvs) == 1 else None, questionnaire)
        elif path.suffix in (".jsonl", ".json"):
            groups += from_jsonl(path, model, questionnaire, translated_by)
        else:
            raise UserError(f"{src}: not lm-eval samples, UniVaR CSV files or a JSONL of QA records")
    if not groups:
        raise UserError(f"no answers found in {', '.join(sources)}")
    if not as_repeats:
        first: dict[tuple, str] = {}
        for g in groups:
            key = (g.model, g.task, g.lang)
            if key in first:
                raise duplicate_task(key, first[key], g.source)
            first[key] = g.source
    langs: dict[tuple, set] = {}
    for g in groups:
        langs.setdefault((g.model, g.task), set()).add(g.lang)
    for (name, task), ls in langs.items():
        if len(ls) > 1:
            raise UserError(
                f"{name} / {task} comes in {len(ls)} languages ({', '.join(sorted(ls))}) but a bank "
                "entry holds one language: give each language its own task (or leave 'task' out: "
                "it defaults to univar_<questionnaire>_<lang>)"
            )
    return groups


def duplicate_task(key: tuple, first, second) -> UserError:
    """The one-line refusal of two sets of answers for one task and language where one is expected."""
    task, lang = key[-2], key[-1]
    who = f"{key[0]} / " if len(key) > 2 and key[0] else ""
    return UserError(
        f"two sets of answers for {who}{task} ({lang or 'no language'}) in one read: {first} and {second}; "
        "a run holds one folder per task and language: remove the one that does not belong (or, for "
        "`bank add`, pass --as-repeats when they are repeats of one model)"
    )


def to_distribution(
    group: Group,
    settings: RunSettings,
    *,
    reuse: bool = True,
    encoder: str | None = None,
    translator: str | None = None,
) -> tuple[ValueDistribution, bool]:
    """The group's value distribution: the run's own artifacts when they match the wanted ``encoder`` and
    ``translator`` (None: whatever the run used), else embedded with ``settings``.

    Returns the distribution and whether it was reused.
    """

    if reuse and group.artifacts is not None:
        manifest = read_manifest(group.artifacts / MANIFEST_FILE, ours=True)  # checked: damaged is an error
        built = manifest["format"] == DISTRIBUTION_FORMAT  # not kept answers whose embedding failed
        encoder_ok = encoder is None or (manifest.get("encoder") or {}).get("name") == encoder
        translator_ok = (
            group.lang == "eng" or translator is None or (manifest.get("translator") or {}).get("name") == translator
        )
        current = manifest.get("text_format") == answers_mod.TEXT_FORMAT  # older runs embedded another text
        if built and encoder_ok and translator_ok and current:
            return ValueDistribution.load(group.artifacts), True
    dist, _ = build_distribution(
        group.records,
        task=group.task,
        questionnaire=group.questionnaire,
        lang=group.lang,
        settings=settings,
        model=group.model,
        questionnaire_version=group.questionnaire_version,
        translated_by=group.translated_by,
    )
    return dist, False
