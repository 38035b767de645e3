"""Step: coverage. How much of the baseline's questionnaire a candidate answered, and how much it copied.

A comparison only says something about the questions both sides answered. :func:`coverage` counts, for one
task and language, from the answers themselves (never from what a statistic chose to use):

* the baseline's questions, and those the candidate answered too (*used*);
* the shared questions answered at least twice on both sides (*repeated*: the per-question design needs them);
* the answers each side gave to questions the other did not answer (*left out*);
* the candidate's answers identical, after whitespace normalisation, to a baseline answer of the same
  question (*copies*: a greedy rerun of the approved model reproduces them; a vendor can paste them).

A question is its id and its text together (whitespace normalised) when both sides carry ids, else its text:
an answer filed under a baseline question's id with another question's text does not cover that question.

:func:`incomplete` is the gate's rule on these counts: fewer than ``min_coverage`` of the baseline's questions
answered, or, where the comparison uses the per-question design, fewer than that share repeated.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from univar_eval.stats.designs import MIN_REPEATS, PER_QUESTION, choose_design
from univar_eval.stats.references import pairing_keys
from univar_eval.storage.distribution import ValueDistribution

#: The default share of the baseline's questions a candidate must answer (``--min-coverage``).
DEFAULT_MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class Coverage:
    n_questions_baseline: int  # distinct questions the baseline answered
    n_questions_used: int  # of those, answered by the candidate too
    n_questions_repeated: int  # of those, answered at least MIN_REPEATS times on both sides
    n_left_out: int  # candidate answers to questions the baseline did not answer (or without a question)
    n_left_out_baseline: int  # baseline answers to questions the candidate did not answer
    n_copies: int  # candidate answers identical to a baseline answer of the same question
    n_answers: int  # candidate answers
    per_question_design: bool  # the comparison of these answers uses the per-question design

    @property
    def share_used(self) -> float:
        return self.n_questions_used / self.n_questions_baseline if self.n_questions_baseline else 0.0

    @property
    def share_repeated(self) -> float:
        return self.n_questions_repeated / self.n_questions_baseline if self.n_questions_baseline else 0.0

    @property
    def copy_share(self) -> float:
        return self.n_copies / self.n_answers if self.n_answers else 0.0

    def as_dict(self) -> dict:
        return {
            "n_questions_baseline": self.n_questions_baseline,
            "n_questions_used": self.n_questions_used,
            "n_questions_repeated": self.n_questions_repeated,
            "n_left_out": self.n_left_out,
            "n_left_out_baseline": self.n_left_out_baseline,
            "n_copies": self.n_copies,
            "copy_share": self.copy_share,
            "per_question_design": self.per_question_design,
        }


def _norm(text) -> str | None:
    return " ".join(text.split()) if isinstance(text, str) and text.strip() else None


#: A question as :func:`coverage` tells questions apart: (id, normalised text or None) when both sides carry ids,
#: else the normalised text.
QuestionKey = tuple[str | int, str | None] | str


def _question_keys(records: list[dict], by_id: bool, with_text: bool) -> list[QuestionKey | None]:
    """Each record's question (None when it has none to go by)."""
    keys: list[QuestionKey | None] = []
    for r in records:
        text = _norm(r.get("question"))
        rid = r.get("id")
        rid = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
        if by_id:
            keys.append(None if rid is None or (with_text and text is None) else (rid, text if with_text else None))
        else:
            keys.append(text)
    return keys


def _has(records: list[dict], key: str) -> bool:
    if key == "question":
        return any(_norm(r.get("question")) for r in records)
    return any(isinstance(r.get(key), (str, int)) and not isinstance(r.get(key), bool) for r in records)


def coverage(candidate: ValueDistribution, baseline: ValueDistribution) -> Coverage:
    """The counts above for ``candidate`` against ``baseline`` (both with their answer records). The answers left
    out are those the comparison does not use: to questions the other side did not answer, and, in the
    per-question design, to questions without repeats on both sides."""
    cx, by = candidate.records, baseline.records
    by_id = _has(cx, "id") and _has(by, "id")
    with_text = _has(cx, "question") and _has(by, "question")
    kx, ky = _question_keys(cx, by_id, with_text), _question_keys(by, by_id, with_text)
    nx, ny = Counter(k for k in kx if k is not None), Counter(k for k in ky if k is not None)
    shared = set(nx) & set(ny)
    repeated = {k for k in shared if nx[k] >= MIN_REPEATS and ny[k] >= MIN_REPEATS}
    baseline_answers: defaultdict[QuestionKey, set[str]] = defaultdict(set)
    for k, r in zip(ky, by):
        if k is not None and (a := _norm(r.get("answer"))) is not None:
            baseline_answers[k].add(a)
    copies = sum(
        1
        for k, r in zip(kx, cx)
        if k is not None and k in baseline_answers and _norm(r.get("answer")) in baseline_answers[k]
    )
    left_x = sum(1 for k in kx if k not in shared)
    left_y = sum(1 for k in ky if k not in shared)
    # the design the statistic will use on these answers (its own rule, from stats.designs)
    keys = pairing_keys(candidate, baseline)
    per_question = False
    if keys["groups_x"] is not None:
        design = choose_design(keys["groups_x"], keys["groups_y"], len(cx), len(by))
        per_question = design.name == PER_QUESTION
        if design.problem is None:
            left_x = max(left_x, len(cx) - len(design.x_index))
            left_y = max(left_y, len(by) - len(design.y_index))
    return Coverage(
        n_questions_baseline=len(ny),
        n_questions_used=len(shared),
        n_questions_repeated=len(repeated),
        n_left_out=left_x,
        n_left_out_baseline=left_y,
        n_copies=copies,
        n_answers=len(cx),
        per_question_design=per_question,
    )


def incomplete(cov: Coverage, min_coverage: float) -> str | None:
    """Why the candidate's answers are too few to judge (a few words), or None when they cover enough."""
    if cov.n_questions_baseline == 0:
        return (
            "incomplete: the baseline's answers carry no question id or text, so which questions the candidate "
            "covered cannot be checked (compare unpaired with --allow-other-questions)"
        )
    if cov.share_used < min_coverage:
        return (
            f"incomplete: the candidate answered {cov.n_questions_used} of the baseline's "
            f"{cov.n_questions_baseline} questions ({cov.share_used:.0%} < --min-coverage {min_coverage:.0%})"
        )
    if cov.per_question_design and cov.share_repeated < min_coverage:
        return (
            f"incomplete: the per-question comparison needs {MIN_REPEATS} answers a question on both sides; "
            f"{cov.n_questions_repeated} of the baseline's {cov.n_questions_baseline} questions have them "
            f"({cov.share_repeated:.0%} < --min-coverage {min_coverage:.0%})"
        )
    return None
