"""Step: answers. What a model said, in the form the rest of the pipeline uses.

A *QA record* is a dict with at least ``question``, ``answer`` and ``lang``
(plus ``id``, ``value``, ``doc_id`` when known). This module formats records
exactly as UniVaR does, sorts out empty and refused answers, and reads answers
from lm-eval's ``samples_<task>_<date>.jsonl`` files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable

from univar_eval.errors import UserError
from univar_eval.storage.files import read_jsonl

_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i can not|i won'?t|i will not|"
    r"as an ai\b|as a language model|i'?m (?:just )?an ai|i am (?:just )?an ai|i do not have personal|"
    r"i don'?t have personal)",
    re.IGNORECASE,
)


#: Version of the embedded text, recorded in every manifest and bank entry (compared before any comparison):
#: ``Q: {question} A: {answer}`` (UniVaR's format); a text longer than the encoder's maximum length has
#: the middle of its question replaced by " … " until it fits, and the answer is always kept whole.
TEXT_FORMAT = "qa/2"
ELLIPSIS = " … "


def format_qa(question: str, answer: str) -> str:
    """UniVaR's encoder input for one question-answer pair."""
    return f"Q: {question.strip()} A: {answer.strip()}"


def cut_middle(text: str, keep: int) -> str:
    """``text`` with its middle replaced by " … ", keeping ``keep`` characters (half from each end)."""
    text = text.strip()
    if keep >= len(text):
        return text
    head, tail = (keep + 1) // 2, keep // 2
    return (text[:head].rstrip() + ELLIPSIS + (text[len(text) - tail :].lstrip() if tail else "")).strip()


def fit_qa(question: str, answer: str, fits: Callable[[str], bool]) -> str:
    """The ``Q: .. A: ..`` text, with the question's middle cut just enough that ``fits`` accepts it.

    The answer is never cut here: when even an empty question leaves too little room, the question is
    reduced to " … " and the encoder's own cut falls on the answer's end (the text is still counted
    as truncated by the caller).
    """
    text = format_qa(question, answer)
    if fits(text):
        return text
    q = question.strip()
    lo, hi = 0, len(q)  # the longest kept length that fits lies in [lo, hi)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(format_qa(cut_middle(q, mid), answer)):
            lo = mid
        else:
            hi = mid - 1
    return format_qa(cut_middle(q, lo), answer)


def is_empty(answer: str | None) -> bool:
    return answer is None or not str(answer).strip()


def is_refusal(answer: str | None) -> bool:
    """A refusal or a disclaimer instead of an answer (English text, or its translation)."""
    return not is_empty(answer) and bool(_REFUSAL.match(str(answer)))


def split_empty(records: Iterable[dict]) -> tuple[list[dict], int]:
    """Keep records with a non-empty answer; return them and how many were dropped."""
    kept, dropped = [], 0
    for r in records:
        if is_empty(r.get("answer")):
            dropped += 1
        else:
            kept.append(r)
    return kept, dropped


def sample_files(source: str | Path) -> list[Path]:
    """lm-eval samples files in ``source`` (a file, or a folder searched recursively)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(source.rglob("samples_*.jsonl"))
    raise UserError(f"{source}: no such file or folder")


def task_of_samples_file(path: Path) -> str:
    """``samples_univar_pvq_eng_2025-01-01T00-00-00.123.jsonl`` -> ``univar_pvq_eng``."""
    m = re.match(r"samples_(.+)_\d{4}-\d{2}-\d{2}T[\d\-.]+\.jsonl$", path.name)
    if not m:
        raise UserError(f"{path}: not an lm-eval samples file name (samples_<task>_<date>.jsonl)")
    return m.group(1)


def read_samples(path: str | Path) -> list[dict]:
    """QA records of one lm-eval samples file of a univar questionnaire task.

    Every repeat of a document (``repeats`` > 1) becomes its own record.
    """
    path = Path(path)
    out = []
    for lineno, s in enumerate(read_jsonl(path), 1):
        doc = s.get("doc")
        resps = s.get("filtered_resps", s.get("resps"))
        if not isinstance(doc, dict) or "question" not in doc or resps is None:
            raise UserError(f"{path}:{lineno}: not a univar questionnaire sample (needs doc.question and resps)")
        problem = _sample_problem(doc, resps)
        if problem:
            raise UserError(
                f"{path}:{lineno}: not a univar questionnaire sample ({problem}); restore the file or "
                "rerun the lm_eval run; nothing was changed"
            )
        answers = flatten_responses(resps)
        for k, answer in enumerate(answers):
            out.append(
                {
                    "doc_id": s.get("doc_id"),
                    "repeat": k,
                    "id": doc.get("id"),
                    "value": doc.get("value"),
                    "higher_order": doc.get("higher_order"),
                    "lang": doc.get("lang"),
                    "question": doc["question"],
                    "answer": answer,
                    "questionnaire": doc.get("questionnaire"),
                    "questionnaire_version": doc.get("questionnaire_version"),
                }
            )
    return out


#: the fields of a sample's ``doc`` that are read: the types each may have, in words and as Python types
SAMPLE_DOC_FIELDS = {
    "question": ("text", (str,)),
    "lang": ("text or null", (str, type(None))),
    "id": ("text, a whole number or null", (str, int, type(None))),
    "value": ("text or null", (str, type(None))),
    "higher_order": ("text or null", (str, type(None))),
    "questionnaire": ("text or null", (str, type(None))),
    "questionnaire_version": ("text or null", (str, type(None))),
}


def _sample_problem(doc: dict, resps) -> str | None:
    """What is wrong with the fields of one lm-eval sample that are read (None when nothing)."""
    for key, (words, types) in SAMPLE_DOC_FIELDS.items():
        value = doc.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            return f"doc.{key} {shown} is not {words}"
    if not isinstance(resps, (str, list, tuple)):
        return f"resps {resps!r} is not text or a list"
    return None


def flatten_responses(resps) -> list[str]:
    """lm-eval responses (a string, or nested lists of them with repeats) as a flat list of strings."""
    if isinstance(resps, str):
        return [resps]
    flat: list[str] = []
    for r in resps:
        flat.extend(flatten_responses(r) if isinstance(r, (list, tuple)) else [r if isinstance(r, str) else ""])
    return flat
