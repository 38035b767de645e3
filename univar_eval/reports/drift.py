"""Step: drift report. Which values moved between a candidate run and a baseline, rendered for people.

:func:`breakdown` labels each answer through its questionnaire (question id -> value, higher-order
group) and calls :func:`univar_eval.stats.drift.value_drift`; :func:`run_drift` does it for every
task and language of a run against one bank model. The result is rendered as a terminal table,
Markdown (for a pull-request comment) or JSON, with the questions that moved most beside it:
the question and both models' answers, shortened to one line (control characters dropped) and
rendered by :mod:`univar_eval.reports.table` (which escapes for the terminal and for Markdown).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.pipeline import questionnaire as questionnaire_mod
from univar_eval.reports.table import (
    Table,
    fmt_number,
    markdown_text,
    render,
    terminal_text,
)
from univar_eval.runs.folders import load_run
from univar_eval.stats import drift as drift_mod
from univar_eval.stats.references import question_ids
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution, comparability_problem

ANSWER_CHARS = 140
QUESTION_CHARS = 110


# -- labels and the breakdown ----------------------------------------------------------------------------
def labels_of(dist: ValueDistribution) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Question id -> (value, higher-order group), and id -> question text: from the questionnaire named in
    the manifest, else from the answers' own ``value`` / ``higher_order`` fields."""
    labels: dict[str, tuple[str, str]] = {}
    texts: dict[str, str] = {}
    name, lang = dist.manifest.get("questionnaire"), dist.lang
    try:
        q = questionnaire_mod.load(name, lang) if name in questionnaire_mod.QUESTIONNAIRES and lang else None
    except UserError:
        q = None
    if q is not None:
        for r in q.records:
            labels[r["id"]] = (r["value"], r["higher_order"])
    for r in dist.records:
        rid = r.get("id")
        if not isinstance(rid, str):
            continue
        if rid not in labels and isinstance(r.get("value"), str):
            labels[rid] = (r["value"], str(r.get("higher_order") or r["value"]))
        if isinstance(r.get("question"), str) and rid not in texts:
            texts[rid] = r["question"]
    if q is not None:
        for r in q.records:
            texts.setdefault(r["id"], r["question"])
    return labels, texts


def breakdown(candidate: ValueDistribution, baseline: ValueDistribution, **kwargs) -> drift_mod.DriftResult:
    """The per-value drift of ``candidate`` from ``baseline`` (both with their answer records)."""
    problem = comparability_problem(candidate.manifest, baseline.manifest)
    if problem:
        raise UserError(f"{candidate.task}: the candidate and the baseline are not comparable: {problem}")
    ids_x, ids_y = question_ids(candidate), question_ids(baseline)
    if not ids_x or not ids_y:
        raise UserError(
            f"{candidate.task}: the answers carry no question ids, so no per-value breakdown is "
            "possible; rebuild the run (or bank entry) with this version"
        )
    labels, texts = labels_of(candidate)
    for k, v in labels_of(baseline)[0].items():
        labels.setdefault(k, v)
    if not labels:
        raise UserError(
            f"{candidate.task}: no value labels for its questions (questionnaire "
            f"{candidate.manifest.get('questionnaire')!r})"
        )
    grouped = candidate.manifest.get("questionnaire") in drift_mod.GROUPED_QUESTIONNAIRES
    answers = {
        "question": texts,
        "answer_x": [r.get("answer", "") for r in candidate.records],
        "answer_y": [r.get("answer", "") for r in baseline.records],
    }
    return drift_mod.value_drift(
        candidate.embeddings, baseline.embeddings, ids_x, ids_y, labels, grouped=grouped, texts=answers, **kwargs
    )


def run_drift(
    run: str, bank: Bank, against: str, *, tasks: list[str] | None = None, langs: list[str] | None = None, **kwargs
) -> list[dict]:
    """One breakdown per task and language of ``run`` that the bank holds for ``against``:
    ``[{"task", "lang", "questionnaire", "candidate", "baseline", "result": DriftResult}]``."""
    if against not in bank.models():
        raise UserError(f"bank {bank.path} has no model {against!r}; it has: {', '.join(bank.models()) or 'none'}")
    dists = [d for d in load_run(run) if d.manifest.get("questionnaire") in questionnaire_mod.VALUE_SETS]
    if langs:
        dists = [d for d in dists if d.lang in langs]
    if tasks:
        dists = [d for d in dists if d.task in tasks or any(d.task.startswith(t + "_") for t in tasks)]
    if not dists:
        raise UserError(f"{run}: no value-set distributions (pvq, wvs, globe, situations) match --tasks/--langs")
    out = []
    for d in sorted(dists, key=lambda d: d.task):
        entries = bank.entries(model=against, task=d.task)
        if not entries:
            raise UserError(f"bank {bank.path} has no {d.task} entry for {against}; add it or pick --tasks")
        ref = bank.load(entries[0], with_answers=True)
        out.append(
            {
                "task": d.task,
                "lang": d.lang,
                "questionnaire": d.manifest.get("questionnaire"),
                "candidate": d.manifest.get("model") or run,
                "baseline": against,
                "result": breakdown(d, ref, **kwargs),
            }
        )
    return out


def compare_breakdowns(
    runs: dict[str, list[ValueDistribution]], rows: list[dict], *, bank: Bank | None = None, **kwargs
) -> list[dict]:
    """The breakdown behind every scored row of ``univar-eval compare`` (a value set, status ok): the run's
    distribution against the bank entry or the other run named in the row's ``reference``."""
    out = []
    for row in rows:
        if row["status"] != "ok" or row["questionnaire"] not in questionnaire_mod.VALUE_SETS:
            continue
        dist = next(d for d in runs[row["run"]] if d.task == row["task"])
        if bank is not None:
            ref = bank.load(bank.entry(row["reference"], row["task"]), with_answers=True)
        else:
            ref = next(d for d in runs[row["reference"]] if d.task == row["task"])
        item = {
            "task": row["task"],
            "lang": row["lang"],
            "questionnaire": row["questionnaire"],
            "candidate": row["run"],
            "baseline": row["reference"],
            "result": None,
        }
        try:
            item["result"] = breakdown(dist, ref, **kwargs)
        except UserError as e:  # e.g. an entry that asked other questions: no question-by-question breakdown
            item["error"] = str(e)
        out.append(item)
    return out


def moved_most(result: drift_mod.DriftResult, n: int = 3) -> str:
    """``"moved most: security_personal 0.12, benevolence_caring 0.08"`` (significant values first)."""
    top = result.top_values(n)
    if result.design == drift_mod.PER_QUESTION:
        top = [v for v in top if v.significant] or top[:1]
    return "moved most: " + ", ".join(f"{v.label} {fmt_number(v.distance)}" for v in top) if top else ""


# -- text helpers -----------------------------------------------------------------------------------------
def clean(text, limit: int) -> str:
    """One line, printable characters only, at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text or "")).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _ci(v) -> str:
    return "-" if v.ci_low is None else f"[{fmt_number(v.ci_low)}, {fmt_number(v.ci_high)}]"


def _share(v) -> str:
    if v.share is None:
        return "-"

    def pct(x):
        return f"{round(100 * x) + 0:d}"  # + 0: no "-0"

    return f"{pct(v.share)}%" + (f" [{pct(v.share_low)}, {pct(v.share_high)}]" if v.share_low is not None else "")


def _p(v) -> str:
    return "-" if v.p_adjusted is None else fmt_number(v.p_adjusted) + (" *" if v.significant else "")


def label_table(rows: list[drift_mod.LabelDrift], tested: bool, what: str = "value") -> Table:
    if tested:
        headers = [what, "distance", "95% CI", "share of shift", "p (BH)", "questions", "n", "n_ref", "status"]
        body = [[v.label, v.distance, _ci(v), _share(v), _p(v), v.n_questions, v.n_x, v.n_y, v.status] for v in rows]
    else:
        headers = [what, "mean answer distance", "share", "questions", "n", "n_ref", "status"]
        body = [[v.label, v.distance, _share(v), v.n_questions, v.n_x, v.n_y, v.status] for v in rows]
    return Table(headers, body)


def moved_table(result: drift_mod.DriftResult, top: int) -> Table:
    """The questions that moved most, with the question and a typical answer of each side (shortened)."""
    tested = result.design == drift_mod.PER_QUESTION
    return Table(
        ["question", "value", "moved", "candidate", "baseline"],
        [
            [
                f"{clean(mv.id, 80)}: {clean(mv.question, QUESTION_CHARS)}",
                mv.value,
                mv.score,
                clean(mv.answer_x, ANSWER_CHARS),
                clean(mv.answer_y, ANSWER_CHARS),
            ]
            for mv in result.questions[:top]
        ],
        title=(
            "questions that moved most (distance to the baseline's answers / the baseline's spread)"
            if tested
            else "questions that moved most (distance between the answers)"
        ),
    )


def _heading(item: dict) -> str:
    r = item["result"]
    line = f"{item['task']} ({item['lang']}): {item['candidate']} vs {item['baseline']}"
    if r is None:
        return f"{line}: no per-value breakdown: {item.get('error')}"
    line += f", design {r.design}, {r.n_questions} questions"
    if r.total_statistic is not None and r.total_p_value is not None:
        line += f"; whole task {fmt_number(math.sqrt(max(r.total_statistic, 0.0)))} (p {fmt_number(r.total_p_value)})"
    return clean(line, 600)


def _tables(item: dict, top: int) -> list[Table]:
    r = item["result"]
    tested = r.design == drift_mod.PER_QUESTION
    values = label_table(r.values, tested)
    values.notes = (
        [
            (
                f"* significant after Benjamini-Hochberg across the {len(r.values)} values at alpha {r.alpha}; "
                "share: the value's part of the sum of per-question MMD² over the task"
            )
        ]
        if tested
        else [f"note: {r.note}"]
    )
    out = [values]
    if r.groups:
        out.append(label_table(r.groups, tested, "group"))
    return out


# -- renderers ----------------------------------------------------------------------------------------------
def to_text(items: list[dict], top: int = 5) -> str:
    out = []
    for item in items:
        out.append(terminal_text(_heading(item)))
        if item["result"] is not None:
            out += [render(t, "text") + "\n" for t in _tables(item, top)]
            moved = moved_table(item["result"], top)  # stacked: a terminal is too narrow for three texts a row
            out.append(terminal_text(moved.title) + ":")
            for question, value, score, answer_x, answer_y in moved.rows:
                out.append(terminal_text(f"  {question} [{value}] moved {fmt_number(score)}"))
                out.append(terminal_text(f"    candidate: {answer_x}"))
                out.append(terminal_text(f"    baseline:  {answer_y}"))
        out.append("")
    return "\n".join(out)


def to_markdown(items: list[dict], top: int = 5) -> str:
    out = ["### univar-eval drift: what moved", ""]
    for item in items:
        out += [f"#### {markdown_text(_heading(item))}", ""]
        if item["result"] is not None:
            out += [render(t, "md") for t in _tables(item, top) + [moved_table(item["result"], top)]]
    return "\n".join(out)


def to_json(items: list[dict]) -> str:
    payload = []
    for item in items:
        if item["result"] is None:
            payload.append({k: v for k, v in item.items() if k != "result"})
            continue
        body = item["result"].to_dict()
        for mv in body["questions"]:
            mv.update(
                question=clean(mv["question"], 4 * QUESTION_CHARS),
                answer_x=clean(mv["answer_x"], 4 * ANSWER_CHARS),
                answer_y=clean(mv["answer_y"], 4 * ANSWER_CHARS),
            )
        payload.append({k: v for k, v in item.items() if k != "result"} | body)
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


RENDERERS = {"text": to_text, "md": to_markdown, "json": to_json}


# -- the gate's hooks ---------------------------------------------------------------------------------------
@dataclass
class GateItem:
    """One candidate distribution the gate's hooks look at: ``result`` is its breakdown against ``ref``, the
    baseline's distribution of the task (both None when it could not be made: ``error`` says why)."""

    task: str
    lang: str | None
    questionnaire: str | None
    candidate: str
    baseline: str
    dist: ValueDistribution
    ref: ValueDistribution | None = None
    result: drift_mod.DriftResult | None = None
    error: str | None = None


def gate_hooks(
    checks: list,
    run: str,
    bank: Bank,
    against: str,
    *,
    alpha: float,
    max_distance: float | None,
    correction: str = "holm",
    fail_on_value: list[str] | None = None,
    plot: str | None = None,
    langs: list[str] | None = None,
    tasks: list[str] | None = None,
    seed: int = 0,
    n_permutations: int = drift_mod.DEFAULT_PERMUTATIONS,
    n_bootstrap: int = 200,
    min_value_answers: int = drift_mod.DEFAULT_MIN_VALUE_ANSWERS,
    dists: list | None = None,
    max_question_distance: float | None = None,
) -> list:
    """What ``gate`` adds from the breakdown: a failing (or inconclusive) value check's reason names the values
    that moved most; ``fail_on_value`` adds one check per task and language for each named value
    (:func:`value_check`: the value's questions tested like a task, at the gate's alpha, bootstrap and
    permutations), and the whole gate is decided again by :func:`univar_eval.reports.gate.decide`, so the value
    checks join the task checks' correction family; ``plot`` draws each task's value circle or bars. Returns the
    checks, the added ones last."""
    from univar_eval.reports import gate as gate_mod
    from univar_eval.reports import plot as plot_mod

    if plot:
        plot_mod.output_format(plot)
    wanted = {(c.name, c.lang) for c in checks if c.kind == "values" and not c.passed}
    items: list[GateItem] = []
    for d in dists if dists is not None else load_run(run):
        questionnaire = d.manifest.get("questionnaire")
        if questionnaire not in questionnaire_mod.VALUE_SETS:
            continue
        if langs and d.lang not in langs:
            continue
        task = d.task
        if task is None:  # a manifest's task is required: only a distribution built in memory can lack one
            raise UserError(f"a {questionnaire} distribution of {run} names no task")
        if tasks and not any(task == t or task.startswith(t + "_") for t in tasks):
            continue
        if not (fail_on_value or plot or (task, d.lang) in wanted):
            continue
        entries = bank.entries(model=against, task=task)
        item = GateItem(
            task=task,
            lang=d.lang,
            questionnaire=questionnaire,
            candidate=d.manifest.get("model") or run,
            baseline=against,
            dist=d,
        )
        try:
            if not entries:
                raise UserError(f"no baseline entry for {against} / {task}")
            item.ref = ref = bank.load(entries[0], with_answers=True)
            item.result = breakdown(
                d,
                ref,
                n_permutations=n_permutations,
                n_bootstrap=drift_mod.DEFAULT_BOOTSTRAP,
                seed=seed,
                alpha=alpha,
                min_value_answers=min_value_answers,
                top=5,
            )
        except UserError as e:
            item.error = str(e)
        items.append(item)
    by_key = {(i.task, i.lang): i for i in items}
    for c in checks:
        found = by_key.get((c.name, c.lang))
        if c.kind == "values" and not c.passed and found is not None and found.result is not None:
            moved = moved_most(found.result)
            if moved:
                c.reason = f"{c.reason}; {moved}"
    results = [(i, i.result) for i in items if i.result is not None]
    added = []
    for label in fail_on_value or []:
        known = [i for i, result in results if any(v.label == label for v in result.values)]
        if not known:
            have = sorted({v.label for _, result in results for v in result.values})
            raise UserError(
                f"--fail-on-value {label}: no task of the run has that value; values: {', '.join(have) or 'none'}"
            )
        for i in known:
            added.append(
                value_check(
                    i,
                    label,
                    alpha=alpha,
                    n_bootstrap=n_bootstrap,
                    n_permutations=n_permutations,
                    seed=seed,
                    min_value_answers=min_value_answers,
                    max_distance=max_distance,
                )
            )
    if added:  # one family with the task checks: the whole gate is decided again, by the same function
        gate_mod.decide(
            checks + added,
            alpha=alpha,
            max_distance=max_distance,
            max_question_distance=max_question_distance,
            correction=correction,
        )
    if plot:
        for (i, result), path in zip(results, plot_paths(plot, [i.task for i, _ in results])):
            plot_mod.draw_drift(
                result,
                path,
                questionnaire=i.questionnaire,
                title=f"{i.task}: {i.candidate} vs {i.baseline}",
            )
    return checks + added


def value_check(
    item: GateItem,
    label: str,
    *,
    alpha: float,
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    min_value_answers: int,
    max_distance: float | None,
):
    """One ``--fail-on-value`` check: the candidate's and the baseline's answers to the questions of ``label``,
    compared as a whole task is (:func:`univar_eval.stats.equivalence.evaluate`: d_S, and d_Q with repeats), the
    tests named ``d_S[label]`` / ``d_Q[label]``; decided by the gate's one decision function in the gate's family."""
    from univar_eval.reports import gate as gate_mod
    from univar_eval.stats import equivalence

    cand, base = item.dist, item.ref
    if base is None:  # gate_hooks checks only the items it could break down, which have the baseline's answers
        raise ValueError(f"{item.task}: a value check needs the baseline's distribution")
    labels, _ = labels_of(cand)
    for k, v in labels_of(base)[0].items():
        labels.setdefault(k, v)
    ids_x, ids_y = question_ids(cand) or [], question_ids(base) or []
    rows_x = [i for i, q in enumerate(ids_x) if labels.get(q, (None,))[0] == label]
    rows_y = [i for i, q in enumerate(ids_y) if labels.get(q, (None,))[0] == label]
    name = f"{item.task}:{label}"
    if min(len(rows_x), len(rows_y)) < min_value_answers:
        return gate_mod.Check(
            name,
            "values",
            item.lang,
            gate_mod.FAIL,
            f"insufficient answers for {label} ({len(rows_x)} vs baseline {len(rows_y)}; need {min_value_answers})",
            n=len(rows_x),
            n_baseline=len(rows_y),
            threshold=max_distance,
            rule="insufficient",
        )
    ev = equivalence.evaluate(
        cand.embeddings[rows_x],
        base.embeddings[rows_y],
        [ids_x[i] for i in rows_x],
        [ids_y[i] for i in rows_y],
        alpha=alpha,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        seed=seed,
    )
    tests = []
    for b in ev.bounds:
        t = b.to_dict()
        t.update(quantity=f"{b.quantity}[{label}]", squared=True, enough=b.enough)
        t["details"] = {k: v for k, v in t["details"].items() if k != "per_question"}
        tests.append(t)
    check = gate_mod.Check(
        name,
        "values",
        item.lang,
        gate_mod.FAIL,
        "",
        threshold=max_distance,
        n=len(rows_x),
        n_baseline=len(rows_y),
        n_questions=ev.n_questions,
        design="per_question" if len(tests) > 1 else "shared_shift",
        tests=tests,
        n_copies=ev.n_copies,
    )
    problem = ev.problem or (None if tests else "no tested quantity")
    problem = problem or next(
        (p for t in tests if (p := gate_mod.not_finite(t, need_upper=max_distance is not None))), None
    )
    if problem:
        check.reason, check.rule, check.tests = f"{label}: not a finite result: {problem}", "not finite", []
    return check


def plot_paths(plot: str, tasks: list[str]) -> list[str]:
    """``plot`` itself for one task, ``<stem>_<task><suffix>`` for several."""
    if len(tasks) == 1:
        return [plot]
    path = Path(plot)
    return [str(path.with_name(f"{path.stem}_{t}{path.suffix}")) for t in tasks]
