"""Step: drift. Which values moved between a candidate and a baseline, and on which questions.

Both sets answered one questionnaire; every question carries a value label (PVQ's 19 values and
their 4 higher-order groups, WVS themes, GLOBE dimensions, situation domains). The breakdown
works question by question, with the kernel of :mod:`univar_eval.stats.distance` (Gaussian,
sigma = 1 on unit vectors, ``k = exp(cos - 1)``):

**Repeated answers** (the ``per_question`` design: at least 2 answers per question on both sides
for most shared questions). Each question ``q`` gets the unbiased MMD² ``h_q`` between the two
sides' answers to it. A label's statistic is the mean of ``h_q`` over its questions and its
distance ``sqrt(max(mean, 0))``; its p-value comes from permutations that swap answers between
the sides *within* each question (the same permutations for every label), corrected across the
labels of one level with Benjamini-Hochberg; its interval from a bootstrap over the label's
question ids. A label's **share of the task's shift** is ``sum_{q in label} h_q / sum_q h_q``
(additive, because the statistic is a sum over questions), with a stratified bootstrap interval;
no share when that sum is not above zero (the task as a whole did not move).

**One answer per question** (``shared_shift``): within-question variation cannot be estimated,
so there is no test. The ranking is descriptive: a label's score is the mean over its questions
of the distance ``sqrt(2 - 2 k(x, y))`` between the candidate's and the baseline's answer.

**The questions that moved most**: ranked by the mean distance between the candidate's and the
baseline's answers to the question, divided (with repeats) by the baseline's own spread, the mean
distance between its repeats, floored at the median spread over the task's questions (so a question
the baseline happened to answer three times alike does not top the list: only a spread larger than
usual lowers a question's rank).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import false_discovery_control

from univar_eval.errors import UserError
from univar_eval.stats.distance import kernel_from_gram, normalise, question_form, question_mmd2

PER_QUESTION, SHARED_SHIFT = "per_question", "shared_shift"
DEFAULT_PERMUTATIONS = 9999
DEFAULT_BOOTSTRAP = 1000
#: answers on each side below which a label is "insufficient" (a 9-question value has 9 with one answer each)
DEFAULT_MIN_VALUE_ANSWERS = 5
#: questionnaires whose higher-order field is a grouping of the values (the others' is a constant or a tag)
GROUPED_QUESTIONNAIRES = ("pvq",)
NO_TEST_NOTE = (
    "one answer per question: the spread of a model's answers to one question cannot be estimated, "
    "so there is no test and no interval; the ranking is descriptive (mean distance between the "
    "candidate's and the baseline's answer to each question of the value)"
)


@dataclass
class LabelDrift:
    label: str
    level: str  # "value" or "higher_order"
    status: str  # "ok" or "insufficient"
    n_questions: int
    n_x: int
    n_y: int
    distance: float | None = None  # sqrt of the mean per-question MMD² (repeats) or the mean answer distance
    statistic: float | None = None  # mean per-question MMD² (repeats only)
    ci_low: float | None = None
    ci_high: float | None = None
    share: float | None = None
    share_low: float | None = None
    share_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool | None = None


@dataclass
class QuestionMove:
    id: str
    value: str
    score: float  # how far it moved (relative to the baseline's spread where repeats exist)
    cross: float  # mean distance between the candidate's and the baseline's answers
    spread: float | None  # the baseline's mean distance between its own repeats
    mmd2: float | None
    n_x: int
    n_y: int
    question: str = ""
    answer_x: str = ""
    answer_y: str = ""


@dataclass
class DriftResult:
    design: str
    note: str | None
    alpha: float
    n_questions: int
    total_statistic: float | None
    total_p_value: float | None
    values: list[LabelDrift]
    groups: list[LabelDrift]
    questions: list[QuestionMove]
    settings: dict = field(default_factory=dict)
    value_groups: dict = field(default_factory=dict)  # value label -> its higher-order group

    def to_dict(self) -> dict:
        return asdict(self)

    def top_values(self, n: int = 3) -> list[LabelDrift]:
        """The labels ranked by distance (significant first when there is a test)."""
        ok = [v for v in self.values if v.status == "ok" and v.distance is not None]
        return sorted(ok, key=lambda v: (not v.significant, -v.distance, v.label))[:n]


# -- per question --------------------------------------------------------------------------------------
@dataclass
class _Question:
    id: str
    value: str
    group: str
    k: np.ndarray  # pooled kernel, the candidate's m answers first
    m: int
    n: int
    rows_x: list[int]
    rows_y: list[int]

    @property
    def repeated(self) -> bool:
        return self.m >= 2 and self.n >= 2


def _labels(q: _Question, wx: np.ndarray) -> np.ndarray:
    """The unbiased MMD² of question ``q`` for each 0/1 label row of ``wx`` (1 = the candidate's side)."""
    return question_mmd2(wx[:, None, :], question_form(q.k[None], q.m, q.n))[:, 0]


def _observed(q: _Question) -> float:
    w = np.zeros((1, q.m + q.n))
    w[0, : q.m] = 1.0
    return float(_labels(q, w)[0])


def _permuted(q: _Question, b: int, rng: np.random.Generator) -> np.ndarray:
    template = np.zeros(q.m + q.n)
    template[: q.m] = 1.0
    return _labels(q, rng.permuted(np.broadcast_to(template, (b, q.m + q.n)), axis=1))


def _kernel_distance(k: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(2.0 - 2.0 * k, 0.0, None))


def _cross_and_spread(q: _Question) -> tuple[float, float | None]:
    d = _kernel_distance(q.k)
    cross = float(d[: q.m, q.m :].mean())
    if q.n < 2:
        return cross, None
    dy = d[q.m :, q.m :]
    return cross, float(dy.sum() / (q.n * (q.n - 1)))


def _medoid(k: np.ndarray) -> int:
    return int(np.argmax(k.sum(1)))


# -- the breakdown ---------------------------------------------------------------------------------------
def value_drift(
    x: np.ndarray,
    y: np.ndarray,
    ids_x: list,
    ids_y: list,
    labels: dict[str, tuple[str, str]],
    *,
    grouped: bool = False,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    alpha: float = 0.05,
    ci: float = 0.95,
    min_value_answers: int = DEFAULT_MIN_VALUE_ANSWERS,
    top: int = 10,
    texts: dict | None = None,
) -> DriftResult:
    """Per-label drift of ``x`` (candidate) from ``y`` (baseline).

    ``ids_x`` / ``ids_y``: each answer's question id; ``labels``: question id -> (value, higher-order
    group); ``grouped``: also break down by higher-order group; ``texts``: optional
    ``{"question": {id: text}, "answer_x": [..], "answer_y": [..]}`` for the moved-question table.
    """
    x, y = normalise(x), normalise(y)
    if len(ids_x) != len(x) or len(ids_y) != len(y):
        raise ValueError("one question id per embedding is needed")
    by_x: dict[str, list[int]] = {}
    by_y: dict[str, list[int]] = {}
    for i, q in enumerate(ids_x):
        if q in labels:
            by_x.setdefault(q, []).append(i)
    for i, q in enumerate(ids_y):
        if q in labels:
            by_y.setdefault(q, []).append(i)
    shared = sorted(set(by_x) & set(by_y))
    if not shared:
        raise UserError(
            "the candidate and the baseline share no labelled question (compare runs of the same "
            "questionnaire version, with question ids in their answers)"
        )
    questions = []
    for qid in shared:
        rx, ry = by_x[qid], by_y[qid]
        pooled = np.vstack([x[rx], y[ry]])
        questions.append(
            _Question(
                qid, labels[qid][0], labels[qid][1], kernel_from_gram(pooled @ pooled.T), len(rx), len(ry), rx, ry
            )
        )
    n_rep = sum(q.repeated for q in questions)
    design = PER_QUESTION if n_rep and 2 * n_rep >= len(questions) else SHARED_SHIFT
    used = [q for q in questions if q.repeated] if design == PER_QUESTION else questions
    rng = np.random.default_rng(seed)
    level_keys = [("value", lambda q: q.value)] + ([("higher_order", lambda q: q.group)] if grouped else [])
    out: dict[str, list[LabelDrift]] = {}
    total_stat = total_p = None
    if design == PER_QUESTION:
        h = np.array([_observed(q) for q in used])
        perm = np.stack([_permuted(q, n_permutations, rng) for q in used], axis=1) if n_permutations else None
        total_stat = float(h.mean())
        if perm is not None:
            total_p = _p_value(perm.mean(1), total_stat)
        for level, key in level_keys:
            out[level] = _tested_level(
                level, used, key, h, perm, rng, n_bootstrap=n_bootstrap, ci=ci, alpha=alpha, minimum=min_value_answers
            )
    else:
        for level, key in level_keys:
            out[level] = _descriptive_level(level, used, key, minimum=min_value_answers)
    for level, key in level_keys:
        present = {r.label for r in out[level]}
        for label, cols in sorted(_strata(questions, key).items()):
            if label not in present:
                out[level].append(
                    LabelDrift(
                        label,
                        level,
                        "insufficient",
                        0,
                        sum(questions[i].m for i in cols),
                        sum(questions[i].n for i in cols),
                    )
                )
    moves = _moved_questions(used, design, texts or {}, top)
    return DriftResult(
        design=design,
        note=None if design == PER_QUESTION else NO_TEST_NOTE,
        alpha=alpha,
        n_questions=len(used),
        total_statistic=total_stat,
        total_p_value=total_p,
        values=out["value"],
        groups=out.get("higher_order", []),
        questions=moves,
        settings={
            "n_permutations": n_permutations if design == PER_QUESTION else 0,
            "n_bootstrap": n_bootstrap if design == PER_QUESTION else 0,
            "seed": seed,
            "ci": ci,
            "min_value_answers": min_value_answers,
            "correction": "bh",
            "kernel": "gaussian sigma=1 on unit vectors",
        },
        value_groups={q.value: q.group for q in questions},
    )


def _p_value(perm: np.ndarray, observed: float) -> float:
    return float((1 + np.sum(perm >= observed - 1e-9 * max(1.0, abs(observed)))) / (1 + len(perm)))


def _strata(used: list[_Question], key) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, q in enumerate(used):
        out.setdefault(key(q), []).append(i)
    return out


def _tested_level(level, used, key, h, perm, rng, *, n_bootstrap, ci, alpha, minimum) -> list[LabelDrift]:
    strata = _strata(used, key)
    total = float(h.sum())
    rows: list[LabelDrift] = []
    boot_sums: dict[str, np.ndarray] = {}
    tail = (1 - ci) / 2
    for label, cols in sorted(strata.items()):
        n_x, n_y = sum(used[i].m for i in cols), sum(used[i].n for i in cols)
        row = LabelDrift(label, level, "ok", len(cols), n_x, n_y)
        rows.append(row)
        hv = h[cols]
        if n_bootstrap:  # every label's questions resampled within the label (stratified), for the shares too
            boot_sums[label] = hv[rng.integers(0, len(cols), size=(n_bootstrap, len(cols)))].sum(1)
        if min(n_x, n_y) < minimum or len(cols) < 2:
            row.status = "insufficient"
            continue
        row.statistic = float(hv.mean())
        row.distance = math.sqrt(max(row.statistic, 0.0))
        row.share = float(hv.sum() / total) if total > 0 else None
        if perm is not None:
            row.p_value = _p_value(perm[:, cols].mean(1), row.statistic)
        if n_bootstrap:
            lo, hi = np.quantile(boot_sums[label] / len(cols), [tail, 1 - tail])
            row.ci_low, row.ci_high = math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0))
    if boot_sums:
        boot_total = sum(boot_sums.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            for row in rows:
                if row.share is not None:
                    s = boot_sums[row.label] / boot_total
                    s = s[np.isfinite(s) & (boot_total > 0)]
                    if len(s):
                        row.share_low, row.share_high = (float(v) for v in np.quantile(s, [tail, 1 - tail]))
    tested = [r for r in rows if r.p_value is not None]
    if tested:
        adjusted = false_discovery_control([r.p_value for r in tested], method="bh")
        for r, p in zip(tested, adjusted):
            r.p_adjusted = float(p)
            r.significant = bool(p < alpha)
    return sorted(rows, key=_rank)


def _descriptive_level(level, used, key, *, minimum) -> list[LabelDrift]:
    strata = _strata(used, key)
    d2 = np.array(
        [float(np.mean(q.k[: q.m, : q.m]) + np.mean(q.k[q.m :, q.m :]) - 2 * np.mean(q.k[: q.m, q.m :])) for q in used]
    )
    total = float(d2.sum())
    rows = []
    for label, cols in sorted(strata.items()):
        n_x, n_y = sum(used[i].m for i in cols), sum(used[i].n for i in cols)
        row = LabelDrift(label, level, "ok", len(cols), n_x, n_y)
        rows.append(row)
        if min(n_x, n_y) < minimum:
            row.status = "insufficient"
            continue
        row.distance = float(np.mean([_cross_and_spread(used[i])[0] for i in cols]))
        row.share = float(d2[cols].sum() / total) if total > 0 else None
    return sorted(rows, key=_rank)


def _rank(r: LabelDrift):
    return (r.status != "ok", not r.significant, -(r.distance if r.distance is not None else -1.0), r.label)


def _moved_questions(used: list[_Question], design: str, texts: dict, top: int) -> list[QuestionMove]:
    stats = [_cross_and_spread(q) for q in used]
    spreads = [s for _, s in stats if s is not None and s > 0]
    floor = float(np.median(spreads)) if spreads else None
    moves = []
    for q, (cross, spread) in zip(used, stats):
        relative = design == PER_QUESTION and spread is not None and floor
        score = cross / max(spread, floor) if relative else cross
        mx = q.rows_x[_medoid(q.k[: q.m, : q.m])]
        my = q.rows_y[_medoid(q.k[q.m :, q.m :])]
        answers_x, answers_y = texts.get("answer_x") or [], texts.get("answer_y") or []
        moves.append(
            QuestionMove(
                q.id,
                q.value,
                float(score),
                cross,
                spread,
                _observed(q) if q.repeated else None,
                q.m,
                q.n,
                question=str((texts.get("question") or {}).get(q.id, "")),
                answer_x=str(answers_x[mx]) if mx < len(answers_x) else "",
                answer_y=str(answers_y[my]) if my < len(answers_y) else "",
            )
        )
    return sorted(moves, key=lambda mv: (-mv.score, mv.id))[:top]
