"""Step: comparison. Distances between a run's value distributions and reference models, per task and language.

The distances themselves are :func:`univar_eval.stats.references.reference_distances`; this module reports them:

* :func:`compare_runs`: every task of one or more runs against a bank or against each
  other, plus the cross-language spread of each run, with the non-value control
  reported beside the value sets so a reader can tell values from style.

Which comparison (the rule lives in :func:`univar_eval.stats.distance.compare_sets`): paired by
question id, on the questions both sides answered (answers to other questions are left out and
counted); per question when both sides have two answers or more per question, else a shift
shared across questions only (``design`` says which, ``note`` says what that cannot see).
``allow_other_questions`` switches to an explicitly unpaired comparison (``design`` "unpaired").

A distribution with fewer than ``min_answers`` answers is reported as
``insufficient`` rather than given a distance. A bank entry that differs in encoder,
fingerprint, questionnaire version, translation setting or embedded-text format is refused with a
one-line message; it is never compared silently.
"""

from __future__ import annotations

import itertools
import math

from univar_eval.errors import UserError
from univar_eval.reports.table import Table, fmt_number, fmt_ratio, plural, render
from univar_eval.runs.folders import summarise_versions
from univar_eval.stats import distance as distance_mod
from univar_eval.stats.references import (
    baseline_noise,
    compare_one,
    insufficient,
    pairing_keys,
    reference_distances,
    truncation_warnings,
)
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import (
    ValueDistribution,
    comparability_problem,
    translator_label,
)
from univar_eval.storage.identity import same_encoder

CONTROL = "control"


def compare_runs(
    runs: dict[str, list[ValueDistribution]],
    *,
    bank: Bank | None = None,
    against: list[str] | None = None,
    metric: str = "mmd",
    min_answers: int = 10,
    n_permutations: int = distance_mod.DEFAULT_PERMUTATIONS,
    n_bootstrap: int = distance_mod.DEFAULT_BOOTSTRAP,
    seed: int = 0,
    allow_other_questions: bool = False,
) -> dict:
    """Rows ``{run, task, questionnaire, lang, reference, distance, p_value, ci_low, ci_high, n, n_ref, status,
    design, note, noise, control_distance, ratio_to_control}`` and the cross-language spread of each run."""
    rows: list[dict] = []
    if bank is not None:
        for label, dists in runs.items():
            for d in dists:
                res = reference_distances(
                    d,
                    bank,
                    min_answers=min_answers,
                    metric=metric,
                    n_permutations=n_permutations,
                    n_bootstrap=n_bootstrap,
                    seed=seed,
                    against=against,
                    allow_other_questions=allow_other_questions,
                    noise=True,
                )
                for ref, r in res["references"].items():
                    rows.append(_row(label, d, ref, r))
    else:
        if len(runs) < 2:
            raise UserError("nothing to compare against: give --bank DIR, or two runs or more")
        labels = list(runs)
        for a, b in itertools.combinations(labels, 2):
            by_task = {d.task: d for d in runs[b]}
            for d in runs[a]:
                other = by_task.get(d.task)
                if other is None:
                    continue
                problem = comparability_problem(d.manifest, other.manifest)
                if problem and allow_other_questions and problem.startswith("questionnaire version"):
                    problem = None
                if problem:
                    raise UserError(f"{a} and {b} are not comparable on {d.task}: {problem}")
                if min(len(d), len(other)) < min_answers:
                    rows.append(_row(a, d, b, insufficient(len(d), len(other))))
                    continue
                r = compare_one(
                    d,
                    other,
                    metric,
                    n_permutations=n_permutations,
                    n_bootstrap=n_bootstrap,
                    seed=seed,
                    alpha=0.05,
                    paired=not allow_other_questions,
                )
                r["noise"], r["noise_upper"] = baseline_noise(other, metric, seed)
                r["warnings"] = truncation_warnings(d.manifest, a) + truncation_warnings(other.manifest, b)
                rows.append(_row(a, d, b, r))
    _attach_control(rows)
    spread = {label: cross_language(dists, metric=metric, min_answers=min_answers) for label, dists in runs.items()}
    warnings = sorted({w for r in rows for w in r.get("warnings", [])})
    return {
        "metric": metric,
        "rows": rows,
        "cross_language": spread,
        "settings": _settings_of(runs),
        "warnings": warnings,
        "unpaired": allow_other_questions,
    }


def _row(label: str, d: ValueDistribution, reference: str, r: dict) -> dict:
    return {
        "run": label,
        "task": d.task,
        "questionnaire": d.manifest.get("questionnaire"),
        "lang": d.lang,
        "reference": reference,
        "distance": r["distance"],
        "p_value": r.get("p_value"),
        "ci_low": r.get("ci_low"),
        "ci_high": r.get("ci_high"),
        "upper": r.get("upper"),
        "n": r.get("n_x"),
        "n_ref": r.get("n_y"),
        "design": r.get("design"),
        "note": r.get("note"),
        "n_questions": r.get("n_questions"),
        "n_left_out": r.get("n_left_out_x"),
        "n_left_out_ref": r.get("n_left_out_y"),
        "problem": r.get("problem"),
        "noise": r.get("noise"),
        "noise_upper": r.get("noise_upper"),
        "warnings": r.get("warnings", []),
        "status": r["status"],
        "paired_questions": _paired_questions(r),
    }


def _paired_questions(r: dict) -> int | None:
    """How many questions the comparison paired (0: compared as independent samples)."""
    if r["status"] != "ok":
        return None
    if r.get("design"):
        return 0 if r["design"] == "unpaired" else int(r.get("n_questions") or 0)
    return (r.get("details") or {}).get("paired_questions", 0)


def _attach_control(rows: list[dict]) -> None:
    """Beside each value-set row, the control's distance for the same run, reference and language."""
    control = {(r["run"], r["reference"], r["lang"]): r["distance"] for r in rows if r["questionnaire"] == CONTROL}
    for r in rows:
        c = control.get((r["run"], r["reference"], r["lang"]))
        r["control_distance"] = c
        ok = c is not None and r["questionnaire"] != CONTROL and _finite(c) and _finite(r["distance"]) and c > 0
        r["ratio_to_control"] = r["distance"] / c if ok else None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def cross_language(dists: list[ValueDistribution], *, metric: str = "mmd", min_answers: int = 10) -> dict:
    """Per questionnaire: the distance between every pair of languages of one run, and its mean (the spread).

    Languages of one questionnaire ask the same questions (shared ids), so each pair is compared
    like any other comparison (:func:`pairing_keys`, then the paired design of
    :func:`univar_eval.stats.distance.compare_sets`, distance only); ``design`` names the designs used,
    and a pair that cannot be compared is listed under ``skipped`` with the reason.
    """
    by_q: dict[str, list[ValueDistribution]] = {}
    for d in dists:
        if len(d) >= min_answers:
            by_q.setdefault(d.manifest.get("questionnaire") or d.task, []).append(d)
    out: dict = {}
    for q, ds in sorted(by_q.items()):
        if len(ds) < 2:
            continue
        ds = sorted(ds, key=lambda d: d.lang)
        pairs, skipped, design_names = {}, {}, set()
        for a, b in itertools.combinations(ds, 2):
            # languages differ in questions by design; the encoder must not
            if not same_encoder(a.manifest.get("encoder"), b.manifest.get("encoder")):
                continue
            r = distance_mod.compare_sets(
                a.embeddings, b.embeddings, metric, n_permutations=0, n_bootstrap=0, **pairing_keys(a, b)
            )
            if r.problem:
                skipped[f"{a.lang}-{b.lang}"] = r.problem
                continue
            pairs[f"{a.lang}-{b.lang}"] = r.distance
            design_names.add(r.design)
        if pairs:
            out[q] = {
                "pairs": pairs,
                "spread": sum(pairs.values()) / len(pairs),
                "languages": [d.lang for d in ds],
                "design": ", ".join(sorted(design_names)),
                "skipped": skipped,
            }
    return out


def _settings_of(runs: dict[str, list[ValueDistribution]]) -> dict:
    encoders = sorted({(d.manifest.get("encoder") or {}).get("name") or "?" for ds in runs.values() for d in ds})
    translators = sorted({translator_label(d.manifest) for ds in runs.values() for d in ds if d.lang != "eng"})
    versions = sorted(
        {
            f"{d.manifest.get('questionnaire')}@{d.manifest.get('questionnaire_version')}"
            for ds in runs.values()
            for d in ds
        }
    )
    return {"encoders": encoders, "translators": translators, "questionnaires": versions}


# -- presentation ---------------------------------------------------------------------------------------
CONTROL_NOTE = (
    "vs control: the value-set distance as a multiple of the non-value control's distance to the same "
    "reference (1.80× = 1.8 times as far); well above 1× means the models differ in values, not only "
    "in style."
)


def _ratio_cell(r: dict) -> str:
    if r["ratio_to_control"] is not None:
        return fmt_ratio(r["ratio_to_control"])
    if r["questionnaire"] != CONTROL and _finite(r.get("control_distance")):
        return f"n/a (control {fmt_number(r['control_distance'])})"  # a zero control distance has no ratio
    return "-"


def comparison_table(report: dict) -> Table:
    """The rows as a :class:`~univar_eval.reports.table.Table`, value sets first and the control after."""
    headers = [
        "run",
        "task",
        "reference",
        report["metric"],
        "p",
        "95% CI",
        "noise",
        "design",
        "n",
        "n_ref",
        "vs control",
        "status",
    ]
    rows = sorted(report["rows"], key=lambda r: (r["run"], r["questionnaire"] == CONTROL, r["task"], r["reference"]))
    cells = []
    for r in rows:
        ci = None if r["ci_low"] is None else f"[{fmt_number(r['ci_low'])}, {fmt_number(r['ci_high'])}]"
        # answers left out because the other side did not answer their question: "200 (-3)"
        n = r["n"] if not r.get("n_left_out") else f"{fmt_number(r['n'])} (-{r['n_left_out']})"
        n_ref = r["n_ref"] if not r.get("n_left_out_ref") else f"{fmt_number(r['n_ref'])} (-{r['n_left_out_ref']})"
        status = r["status"] if not r.get("problem") else f"{r['status']}: {r['problem']}"
        cells.append(
            [
                r["run"],
                r["task"],
                r["reference"],
                r["distance"],
                r["p_value"],
                ci,
                _noise(r),
                r.get("design"),
                n,
                n_ref,
                _ratio_cell(r),
                status,
            ]
        )
    s = report.get("settings", {})
    title = (
        f"encoder {', '.join(s.get('encoders', []))}; translator {', '.join(s.get('translators', [])) or 'none'}; "
        f"questionnaires {summarise_versions(tuple(qv.split('@', 1)) for qv in s.get('questionnaires', []))}"
    )
    if report.get("unpaired"):
        title += "; UNPAIRED comparison (--allow-other-questions): answers are not matched by question"
    notes = design_notes(rows)
    for label, per_q in report.get("cross_language", {}).items():
        for q, info in per_q.items():
            notes.append(
                f"{label} {q}: cross-language spread {fmt_number(info['spread'])} over "
                f"{plural(len(info['languages']), 'language')} ({', '.join(info['languages'])})"
            )
    unpaired = [f"{r['run']} / {r['task']} vs {r['reference']}" for r in rows if r.get("paired_questions") == 0]
    if unpaired and not report.get("unpaired"):  # with --allow-other-questions the title says it already
        notes.append(
            f"unpaired: {'; '.join(unpaired)}: no question ids or question texts in common, so the answers "
            "were compared as independent samples."
        )
    if any(r["questionnaire"] == CONTROL for r in rows):
        notes.append(CONTROL_NOTE)
    notes += [f"warning: {w}" for w in report.get("warnings", [])]
    return Table(headers, cells, title=title, notes=notes)


def format_table(report: dict, markdown: bool = False) -> str:
    """The comparison as terminal text (or Markdown)."""
    return render(comparison_table(report), "md" if markdown else "text").rstrip("\n")


def _noise(r: dict) -> str:
    if r.get("noise") is None:
        return "-"
    return fmt_number(r["noise"]) + (f" (<{fmt_number(r['noise_upper'])})" if r.get("noise_upper") is not None else "")


def design_notes(rows: list[dict]) -> list[str]:
    """One line per kind of comparison that the rows used, saying what it can and cannot see."""
    lines = []
    notes = sorted({r["note"] for r in rows if r.get("note")})
    lines += [f"note: {n}" for n in notes]
    if any(r.get("design") == "shared_shift" for r in rows) and not any("repeats" in n for n in notes):
        lines.append("note: " + SHARED_SHIFT_HINT)
    if any(r.get("noise") is not None for r in rows):
        lines.append(
            "noise: the distance a rerun of the reference, with as many answers, would show (<that rerun's "
            "upper bound>), measured on halves of its repeats; a distance within it is within the "
            "reference's own variation."
        )
    return lines


SHARED_SHIFT_HINT = (
    "one answer per question: only shifts shared across questions are testable; ask each question "
    "several times (lm-eval --metadata '{\"repeats\": 3}', or 'bank add --as-repeats' for the "
    "reference) to see per-question changes"
)
