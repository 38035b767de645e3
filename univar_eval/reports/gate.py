"""Step: gate. The release check of a candidate model against an approved baseline.

Every task and language of the baseline and of the candidate (narrowed on both sides by
``tasks`` / ``langs``) is one check. The candidate's value distribution is compared with
the baseline's bank entry, paired by question (:func:`univar_eval.stats.references.gate_comparison`).
With mmd a check tests ``d_S`` (the shift shared across questions, from pairs of answers to
different questions: the same quantity with or without repeats) against ``max_distance`` D and,
where both sides have 2 answers a question or more, ``d_Q`` (the mean per-question change) against
``max_question_distance`` (default D); docs/statistics.md explains both.

With D, each tested quantity has three outcomes, each with its error held at alpha:

* **pass** when the one-sided 1 - alpha upper bound is below the tolerance (an equivalence test;
  "every quantity is equivalent" needs no multiplicity correction: intersection-union);
* **fail** when the p-value of ``H0: distance <= tolerance``, Holm- (or BH-) adjusted over every
  fail test of the gate (all checks, both quantities, the ``--fail-on-value`` checks: one family),
  is below alpha; the Bonferroni 1 - alpha/m lower bound is reported beside it;
* **inconclusive** otherwise; the check says roughly how many more answers would decide it.

A check passes when every quantity it tests passes, fails when one fails. Without D the gate is a
difference test: fail when the permutation p of ``H0: distance = 0``, corrected over the family, is
below alpha, else pass labelled "no significant difference (not a proof of equivalence)".

Checks without a test keep the outcome they were made with, outside the family: too few answers
(**insufficient**), a baseline entry the candidate lacks (**missing in candidate**), a candidate task
without a baseline entry, a language or task named in ``langs`` / ``tasks`` that neither side has, a
NaN or infinite result, and rows other checks add (``rule="incomplete"``: coverage). ``univar_control``
checks are decided in their own family and reported (with each value set's ratio to the control's
distance) but never decide. HVAE value-rationality floors gate from lm-eval's results of the run.

The outcome is written as a terminal table, JSON, Markdown (for a pull-request comment) and JUnit XML
(one test case per task and language), each with the quantity tested and its lower and upper bounds.
Exit code: 0 when every deciding check passes, 1 when one fails or is inconclusive (2: usage errors).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import norm

from univar_eval.errors import UserError
from univar_eval.reports.compare import SHARED_SHIFT_HINT
from univar_eval.reports.hvae import floor_checks
from univar_eval.reports.table import (
    Table,
    fmt_number,
    fmt_ratio,
    markdown_text,
    plural,
    render,
    xml_text,
)
from univar_eval.runs import coverage as coverage_mod
from univar_eval.runs.folders import load_run, read_results
from univar_eval.stats import distance as distance_mod
from univar_eval.stats import equivalence
from univar_eval.stats.references import (
    baseline_noise,
    check_comparable,
    gate_comparison,
    truncation_warnings,
)
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
NO_DIFFERENCE = "no significant difference (not a proof of equivalence)"
CONTROL_PREFIX = "univar_control_"


@dataclass
class Check:
    name: str  # task (one language each)
    kind: str  # "values", "control" (reported, never decides) or "hvae"
    lang: str | None
    outcome: str  # pass / fail / inconclusive
    reason: str
    distance: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    n: int | None = None
    n_baseline: int | None = None
    p_adjusted: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    upper: float | None = None
    design: str | None = None
    note: str | None = None
    noise: float | None = None
    noise_upper: float | None = None  # the upper bound a rerun of the baseline would show: the smallest sensible D
    n_questions: int | None = None
    n_left_out: int | None = None
    n_left_out_baseline: int | None = None
    ratio_to_control: float | None = None
    to_decide: str | None = None  # for an inconclusive check: what evidence would decide it
    warnings: list[str] = field(default_factory=list)
    quantity: str | None = None  # the quantity shown (the deciding test's: d_S, d_Q, d_Q[value], a metric)
    lower: float | None = None  # the Bonferroni 1 - alpha/m lower bound of that quantity (with D)
    p_excess: float | None = None  # p of H0: distance <= tolerance (raw; p_adjusted is its corrected value)
    tests: list[dict] = field(default_factory=list)  # every tested quantity (see decide)
    rule: str | None = None  # a check without a test: why it fails (missing, insufficient, incomplete, ...)
    # coverage (runs.coverage): the baseline's questions, those the candidate answered, and verbatim copies
    n_questions_baseline: int | None = None
    n_questions_used: int | None = None
    n_questions_repeated: int | None = None
    n_copies: int | None = None  # candidate answers equal (whitespace aside) to a baseline answer of their question
    copy_share: float | None = None
    incomplete: bool = False  # failed for coverage (rule "incomplete"): outside the correction family

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    @property
    def decides(self) -> bool:
        return self.kind != "control"


# -- options ------------------------------------------------------------------------------------------------
def validate_options(
    *,
    alpha: float,
    max_distance: float | None,
    permutations: int,
    min_answers: int,
    bootstrap: int = 1,
    min_coverage: float = coverage_mod.DEFAULT_MIN_COVERAGE,
    max_question_distance: float | None = None,
) -> None:
    """One-line usage errors for options a gate cannot work with."""
    if not (isinstance(min_coverage, (int, float)) and math.isfinite(min_coverage) and 0 < min_coverage <= 1):
        raise UserError(f"--min-coverage must be a share above 0 and at most 1 (0.9: 90%), got {min_coverage}")
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 < alpha < 1):
        raise UserError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if max_distance is not None and not (math.isfinite(max_distance) and max_distance >= 0):
        raise UserError(f"--max-distance must be a finite number >= 0, got {max_distance}")
    if max_question_distance is not None and not (math.isfinite(max_question_distance) and max_question_distance >= 0):
        raise UserError(f"--max-question-distance must be a finite number >= 0, got {max_question_distance}")
    if max_question_distance is not None and max_distance is None:
        raise UserError("--max-question-distance needs --max-distance (without it the gate is a difference test)")
    if permutations < 1:
        raise UserError(f"--permutations must be at least 1, got {permutations}")
    if bootstrap < 1:
        raise UserError(f"--bootstrap must be at least 1, got {bootstrap}")
    if min_answers < 2:
        raise UserError(f"--min-answers must be at least 2, got {min_answers}")


def adjust_p_values(p: list[float], method: str = "holm") -> list[float]:
    """Multiple-testing adjusted p-values: ``holm`` (family-wise error, Holm 1979), ``bh`` (false
    discovery rate, Benjamini-Hochberg 1995) or ``none``."""
    if method == "none" or not p:
        return list(p)
    arr = np.asarray(p, dtype=float)
    if method == "bh":
        from scipy.stats import false_discovery_control

        return [float(v) for v in false_discovery_control(arr, method="bh")]
    if method != "holm":
        raise UserError(f"unknown correction {method!r}; use holm, bh or none")
    order = np.argsort(arr)
    m = len(arr)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * arr[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def permutations_needed(n_checks: int, alpha: float, correction: str, minimum: int) -> int:
    """Enough permutations that the smallest corrected threshold (alpha / n_checks) can be reached
    ten times over: a permutation p-value is never below 1 / (permutations + 1)."""
    if correction == "none" or n_checks <= 1:
        return minimum
    return max(minimum, int(math.ceil(10 * n_checks / alpha)))


# -- value checks -------------------------------------------------------------------------------------------
def _named(task: str, tasks: list[str] | None) -> bool:
    return not tasks or any(task == t or task.startswith(t + "_") for t in tasks)


def value_checks(
    run: str,
    bank: Bank,
    against: str,
    *,
    max_distance: float | None,
    alpha: float,
    min_answers: int,
    langs: list[str] | None = None,
    tasks: list[str] | None = None,
    metric: str = "mmd",
    n_permutations: int = distance_mod.DEFAULT_PERMUTATIONS,
    n_bootstrap: int = distance_mod.DEFAULT_BOOTSTRAP,
    seed: int = 0,
    correction: str = "holm",
    allow_other_questions: bool = False,
    dists: list[ValueDistribution] | None = None,
    select: str | None = None,
    min_coverage: float = coverage_mod.DEFAULT_MIN_COVERAGE,
    max_question_distance: float | None = None,
    extra_tests: int = 0,
) -> list[Check]:
    """``dists``: the candidate's distributions when they were read already (from any source, see
    :func:`univar_eval.runs.folders.read_candidates`); else the run folder ``run`` is read (a run without
    any distribution fails every baseline entry as missing)."""
    if against not in bank.models():
        raise UserError(f"bank {bank.path} has no model {against!r}; it has: {', '.join(bank.models()) or 'none'}")
    dists = load_run(run, missing_ok=True, run=select) if dists is None else dists
    candidate = one_per_task([d for d in dists if _named(d.task, tasks) and (not langs or d.lang in langs)])
    baseline = {
        e["task"]: e
        for e in bank.entries(model=against)
        if _named(e["task"], tasks) and (not langs or e["lang"] in langs)
    }
    checks: list[Check] = []
    # a language or task named on the command line that neither side has is missing work, not nothing to do
    for lang in langs or []:
        if not any(d.lang == lang for d in candidate.values()) and not any(
            e["lang"] == lang for e in baseline.values()
        ):
            checks.append(
                Check(
                    f"lang {lang}",
                    "values",
                    lang,
                    FAIL,
                    f"language {lang} (named in --langs) is missing in candidate and baseline",
                    rule="missing",
                )
            )
    for t in tasks or []:
        if not any(_named(k, [t]) for k in {*candidate, *baseline}):
            checks.append(
                Check(
                    t,
                    "values",
                    None,
                    FAIL,
                    f"task {t} (named in --tasks) is missing in candidate and baseline",
                    rule="missing",
                )
            )
    if not candidate and not baseline and not checks:
        raise UserError(f"{run}: no value distributions, and no baseline entries of {against}, match --tasks/--langs")
    # two tests a task at most (d_S and d_Q), plus the --fail-on-value checks: one family
    # (with D the permutation p is reported, not decisive: --permutations as given)
    n_perm = (
        permutations_needed(2 * len({*candidate, *baseline}) + extra_tests, alpha, correction, n_permutations)
        if max_distance is None
        else n_permutations
    )
    for task in sorted({*candidate, *baseline}):
        kind = "control" if task.startswith(CONTROL_PREFIX) else "values"
        d, e = candidate.get(task), baseline.get(task)
        if d is None:
            checks.append(
                Check(
                    task,
                    kind,
                    e["lang"],
                    FAIL,
                    f"missing in candidate (the baseline has {e['n_answers']} answers for it)",
                    n_baseline=e["n_answers"],
                    threshold=max_distance,
                    rule="missing",
                )
            )
            continue
        if e is None:
            checks.append(
                Check(
                    task,
                    kind,
                    d.lang,
                    FAIL,
                    f"no baseline entry for {against} / {task} (a bank built before this task existed, e.g. for a "
                    "1.0 group: gate with --tasks naming the bank's tasks, or add this task's run to the bank)",
                    n=len(d),
                    threshold=max_distance,
                    rule="no baseline",
                )
            )
            continue
        cov = coverage_of(d, bank, e)
        enough = len(d) >= min_answers and e["n_answers"] >= min_answers  # else insufficient, below
        short = coverage_mod.incomplete(cov, min_coverage) if enough and not allow_other_questions else None
        if short:
            checks.append(incomplete_check(task, kind, d, e, cov, short, max_distance))
            continue
        if not enough:
            checks.append(
                Check(
                    task,
                    kind,
                    d.lang,
                    FAIL,
                    f"insufficient answers ({len(d)} vs baseline {e['n_answers']}; need {min_answers})",
                    n=len(d),
                    n_baseline=e["n_answers"],
                    threshold=max_distance,
                    rule="insufficient",
                )
            )
            continue
        check_comparable(d, e, allow_other_questions)
        ref = bank.load(e, with_answers=True)
        r = gate_comparison(
            d,
            ref,
            metric,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            n_permutations=n_perm,
            seed=seed,
            allow_other_questions=allow_other_questions,
        )
        quantity = equivalence.D_S if metric == "mmd" and r["design"] != "unpaired" else None
        noise, noise_upper = baseline_noise(ref, metric, seed, alpha=alpha, n_bootstrap=n_bootstrap, quantity=quantity)
        first = r["tests"][0] if r.get("tests") else {}
        check = Check(
            task,
            kind,
            d.lang,
            FAIL,
            "",
            distance=first.get("distance"),
            p_value=first.get("p_difference"),
            threshold=max_distance,
            n=r.get("n_x"),
            n_baseline=r.get("n_y"),
            upper=first.get("upper"),
            design=r.get("design") or ("unpaired" if allow_other_questions else None),
            note=r.get("note"),
            noise=noise,
            noise_upper=noise_upper,
            n_questions=r.get("n_questions"),
            n_left_out=r.get("n_left_out_x"),
            n_left_out_baseline=r.get("n_left_out_y"),
            warnings=truncation_warnings(d.manifest, "run") + truncation_warnings(e, f"bank entry {against}"),
            quantity=first.get("quantity"),
            tests=list(r.get("tests") or []),
            n_copies=r.get("n_copies"),
        )
        add_coverage(check, cov)
        if r.get("copies_in_excess"):
            check.warnings.append(
                f"{task}: {r['n_copies']} candidate answers equal a baseline answer of the same question, more than "
                "independent answers explain; the bound without them decides a pass"
            )
        checks.append(check)
        problem = r.get("problem") or (None if check.tests else "no tested quantity")
        problem = problem or next(
            (p for t in check.tests if (p := not_finite(t, need_upper=max_distance is not None))), None
        )
        if problem:
            check.reason = f"not a finite result: {problem}"
            check.rule = "not finite"
            check.tests = []
    decide(
        checks,
        alpha=alpha,
        max_distance=max_distance,
        max_question_distance=max_question_distance,
        correction=correction,
        metric=metric,
    )
    _attach_control_ratios(checks)
    return sorted(checks, key=lambda c: (c.kind == "control", c.name))


# -- coverage: what the candidate answered, fed into the checks (counted in runs.coverage) ---------------------
def one_per_task(dists: list[ValueDistribution]) -> dict[str, ValueDistribution]:
    """The candidate's distributions by task; two for one task are refused, never one picked silently."""
    from univar_eval.runs.sources import duplicate_task

    out: dict[str, ValueDistribution] = {}
    for d in dists:
        task = d.task
        if task is None:  # a manifest's task is required: only a distribution built in memory can lack one
            raise UserError(f"the candidate's answers at {_where(d)} name no task")
        if task in out:
            first, second = out[task], d
            raise duplicate_task((task, d.lang), _where(first), _where(second))
        out[task] = d
    return out


def _where(d: ValueDistribution) -> str:
    return str(d.loaded_from) if d.loaded_from is not None else f"{d.manifest.get('model')} / {d.task}"


def coverage_of(d: ValueDistribution, bank: Bank, entry: dict) -> coverage_mod.Coverage:
    """The candidate's coverage of the baseline entry's questions (its answers read from the bank)."""
    return coverage_mod.coverage(d, bank.load(entry, with_answers=True))


def add_coverage(check: Check, cov: coverage_mod.Coverage) -> None:
    """Coverage figures on a check; the answers left out are those the comparison does not use."""
    check.n_questions_baseline = cov.n_questions_baseline
    check.n_questions_used = cov.n_questions_used
    check.n_questions_repeated = cov.n_questions_repeated
    check.n_copies = cov.n_copies
    check.copy_share = cov.copy_share
    check.n_left_out = max(check.n_left_out or 0, cov.n_left_out)
    check.n_left_out_baseline = max(check.n_left_out_baseline or 0, cov.n_left_out_baseline)


def incomplete_check(
    task: str, kind: str, d: ValueDistribution, e: dict, cov: coverage_mod.Coverage, reason: str, max_distance
) -> Check:
    """A FAIL for too little coverage: decided before any test, so it is outside the correction family."""
    check = Check(
        task, kind, d.lang, FAIL, reason, n=len(d), n_baseline=e["n_answers"], threshold=max_distance, rule="incomplete"
    )
    check.incomplete = True
    add_coverage(check, cov)
    return check


def coverage_cell(c: Check) -> str | None:
    """``38/40`` (questions used of the baseline's), with ``, 2+0 left out`` (answers: candidate+baseline)."""
    if c.n_questions_baseline is None:
        return None
    text = f"{c.n_questions_used}/{c.n_questions_baseline}"
    if c.n_left_out or c.n_left_out_baseline:
        text += f", {c.n_left_out or 0}+{c.n_left_out_baseline or 0} left out"
    return text


def copies_cell(c: Check) -> str | None:
    """``3 (7.5%)``: candidate answers identical to a baseline answer of the same question."""
    if c.n_copies is None:
        return None
    return f"{c.n_copies} ({100 * (c.copy_share or 0):.1f}%)"


def not_finite(test: dict, *, need_upper: bool) -> str | None:
    """What is NaN or infinite among the numbers a tested quantity's verdict rests on (None when all are finite)."""
    values = {"distance": test.get("distance")}
    if need_upper:
        values.update({"standard error": test.get("se"), "upper bound": test.get("upper")})
    if not need_upper or test.get("p_difference") is not None:
        values["p-value"] = test.get("p_difference")
    bad = [name for name, v in values.items() if not (isinstance(v, (int, float)) and math.isfinite(v))]
    return f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not finite" if bad else None


def tolerance_of(test: dict, max_distance: float, max_question_distance: float | None) -> float:
    """d_Q quantities (the whole task's or one value's) use ``max_question_distance`` (default D); the rest D."""
    if str(test.get("quantity", "")).startswith(equivalence.D_Q) and max_question_distance is not None:
        return max_question_distance
    return max_distance


def decide(
    checks: list[Check],
    *,
    alpha: float,
    max_distance: float | None,
    max_question_distance: float | None = None,
    correction: str = "holm",
    metric: str = "mmd",
) -> list[Check]:
    """The one decision function of the gate: every check of every path (task values, the control, the
    ``--fail-on-value`` checks) goes through it, and it may be called again when checks are added (it is a pure
    function of the checks' tests).

    Inputs: rows (:class:`Check`). A row with ``tests`` is decided here; each test is one tested quantity
    (a dict: ``quantity``, ``distance``, ``upper``, ``statistic``, ``se``, ``df``, ``squared``, ``enough``,
    ``ceiling``, ``p_difference``). A row without tests keeps the outcome it was made with (FAIL) and its
    ``rule`` says why: ``missing``, ``insufficient``, ``not finite``, ``no baseline``, or ``incomplete`` -- the
    hook for coverage checks (questions answered out of the baseline's, answers left out, verbatim copies): add
    ``Check(name, "values", lang, FAIL, reason, rule="incomplete")`` and it fails outside the family, never
    corrected away and never changed by a pass elsewhere.

    Family: every test of every deciding row (the control's rows form their own family, which never decides).
    With D: per test, ``p_excess`` = p of ``H0: distance <= tolerance``; the family's p-values are adjusted
    (Holm: any wrong fail at most alpha; BH: the expected share of wrong fails); fail when the adjusted p < alpha;
    pass when the one-sided 1 - alpha upper bound < tolerance; else inconclusive. Each test records its Bonferroni
    1 - alpha/m lower bound. Without D: fail when the adjusted permutation p of ``H0: distance = 0`` < alpha, else
    pass (no significant difference). A row fails when a test fails, is inconclusive when one is, else passes;
    its reason names the bound that decided."""
    for family in (
        [c for c in checks if c.tests and c.decides],
        [c for c in checks if c.tests and not c.decides],
    ):
        hyps = [(c, t) for c in family for t in c.tests]
        if not hyps:
            continue
        m = len(hyps)
        if max_distance is None:
            raw = [float(t["p_difference"]) for _, t in hyps]
        else:
            raw = []
            for _, t in hyps:
                t["tolerance"] = tolerance_of(t, max_distance, max_question_distance)
                raw.append(
                    equivalence.p_excess(
                        t["statistic"],
                        t["se"],
                        t.get("df"),
                        t["tolerance"],
                        enough=t.get("enough", True),
                        squared=t.get("squared", True),
                    )
                )
        for (c, t), p, p_adj in zip(hyps, raw, adjust_p_values(raw, correction)):
            t["p_adjusted"] = p_adj
            if max_distance is None:
                t["outcome"] = FAIL if p_adj < alpha else PASS
                continue
            t["p_excess"] = p
            t["lower"] = equivalence.lower_bound(
                t["statistic"],
                t["se"],
                t.get("df"),
                1 - alpha / m,
                enough=t.get("enough", True),
                ceiling=t.get("ceiling", equivalence.MMD2_CEILING),
                squared=t.get("squared", True),
            )
            t["outcome"] = PASS if t["upper"] < t["tolerance"] else FAIL if p_adj < alpha else INCONCLUSIVE
        for c in family:
            _settle(c, alpha=alpha, max_distance=max_distance, correction=correction, m=m)
    return checks


def _settle(c: Check, *, alpha: float, max_distance: float | None, correction: str, m: int) -> None:
    """A row's outcome, shown quantity and reason from its decided tests."""
    order = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}
    shown = min(c.tests, key=lambda t: order[t["outcome"]])
    c.outcome = shown["outcome"]
    c.quantity, c.distance, c.upper = shown["quantity"], shown["distance"], shown.get("upper")
    c.p_value = shown.get("p_difference") if max_distance is None else shown.get("p_excess")
    c.p_adjusted, c.lower, c.p_excess = shown["p_adjusted"], shown.get("lower"), shown.get("p_excess")
    c.threshold = shown.get("tolerance", max_distance)
    noise = f", baseline noise {fmt_number(c.noise)}" if c.noise is not None else ""
    if c.noise is not None and c.noise_upper is not None:
        noise += f" (bound {fmt_number(c.noise_upper)})"
    parts = []
    for t in c.tests:
        q = t["quantity"]
        if max_distance is None:
            p_text = f"p = {fmt_number(t['p_difference'])}" + (
                f", {correction} {fmt_number(t['p_adjusted'])}" if correction != "none" else ""
            )
            if t["outcome"] == FAIL:
                parts.append(f"values differ from the baseline: {q} {fmt_number(t['distance'])} ({p_text} < {alpha})")
            else:
                parts.append(f"{NO_DIFFERENCE}: {q} {fmt_number(t['distance'])} ({p_text})")
            continue
        tol = t["tolerance"]
        p_text = f"p({q} <= {tol}) = {fmt_number(t['p_excess'])}" + (
            f", {correction} {fmt_number(t['p_adjusted'])}" if correction != "none" else ""
        )
        few = "" if t.get("enough", True) else f"; {t.get('n_questions')} questions are too few for a bound"
        if not few and not t.get("enough_to_pass", True):
            few = (
                f"; {t.get('n_questions')} questions are too few for a pass with one answer a question "
                f"(needs {t.get('min_questions_pass')}; ask with repeats)"
            )
        if t["outcome"] == PASS:
            parts.append(
                f"{q} upper bound {fmt_number(t['upper'])} < {tol} ({1 - alpha:.0%} one-sided; "
                f"{q} {fmt_number(t['distance'])})"
            )
        elif t["outcome"] == FAIL:
            parts.append(
                f"{q} exceeds {tol}: lower bound {fmt_number(t['lower'])} ({1 - alpha / m:.4g} one-sided, "
                f"Bonferroni over {m}) and {p_text} < {alpha} ({q} {fmt_number(t['distance'])})"
            )
        else:
            parts.append(
                f"{q} upper bound {fmt_number(t['upper'])} >= {tol} and {p_text} >= {alpha} "
                f"({q} {fmt_number(t['distance'])}{few})"
            )
    c.reason = "; ".join(parts) + noise
    if c.outcome == PASS and max_distance is not None:
        c.reason = f"equivalent: {c.reason}"
    if c.outcome == INCONCLUSIVE and max_distance is not None:
        if c.threshold is None:  # decide() gives every test a tolerance when max_distance is set
            raise ValueError(f"{c.name}: an inconclusive equivalence test carries no tolerance")
        c.to_decide = evidence_needed(c, c.threshold, alpha)
        c.reason = f"inconclusive: {c.reason}; {c.to_decide}"
    else:
        c.to_decide = None


def evidence_needed(check: Check, max_distance: float, alpha: float) -> str:
    """Roughly how many answers would decide an inconclusive check, if the distance stayed where it is.

    The interval's half-width is taken to shrink as 1 / sqrt(answers): to pass, the bound must come
    down from ``upper`` to D; to fail, the difference must reach the (corrected) significance level.
    """
    dist, upper, n = check.distance, check.upper, check.n or 0
    factor = None
    if dist < max_distance and upper > dist:
        factor, goal = ((upper - dist) / (max_distance - dist)) ** 2, f"bring the bound below {max_distance}"
    elif dist > max_distance and check.p_value is not None:
        p_adj = check.p_adjusted or check.p_value
        threshold = alpha * check.p_value / p_adj if p_adj > 0 else alpha  # the raw p the correction needs
        z_now, z_goal = norm.isf(min(check.p_value, 0.5)), norm.isf(threshold)
        if z_now > 0.1:
            factor, goal = (z_goal / z_now) ** 2, f"make a distance above {max_distance} significant"
    if factor is None or not math.isfinite(factor) or n <= 0:
        return "the distance sits at the tolerance: more answers alone may not decide it; reconsider --max-distance"
    factor = max(factor, 1.0)
    total = int(math.ceil(factor * n))
    text = f"about {total} answers per side ({max(total - n, 1)} more) would roughly {goal}"
    if check.n_questions:
        per_q = n / check.n_questions
        text += f", i.e. about {math.ceil(factor * per_q)} answers per question (lm-eval repeats)"
    return text


def _attach_control_ratios(checks: list[Check]) -> None:
    control = {c.lang: c.distance for c in checks if c.kind == "control" and c.distance is not None}
    for c in checks:
        ref = control.get(c.lang)
        if (
            c.kind == "values"
            and c.distance is not None
            and ref is not None
            and math.isfinite(c.distance)
            and math.isfinite(ref)
            and ref > 0
        ):
            c.ratio_to_control = c.distance / ref


def hvae_checks(run: str, floor: float, select: str | None = None) -> list[Check]:
    """One check per induced HVAE task: its chance-corrected value rationality (1 ideal, 0 chance) against
    ``floor`` (rows and steering from :func:`univar_eval.reports.hvae.floor_checks`)."""
    if not floor <= 1.0:
        raise UserError(
            f"--min-value-rationality {floor} can never be met: the scale tops at 1 (the ideal chooser); 0 is chance"
        )
    checks = [
        Check(task, "hvae", None, PASS if passed else FAIL, reason, distance=value, threshold=floor)
        for task, passed, reason, value in floor_checks(read_results(run, select)["tasks"], floor)
    ]
    if not checks:
        raise UserError(
            f"{run}: --min-value-rationality given but the run has no HVAE results "
            "(run lm_eval with --tasks hvae_svo and --output_path)"
        )
    return checks


# -- outputs -----------------------------------------------------------------------------------------------
def summary(checks: list[Check], allow_inconclusive: bool = False) -> dict:
    deciding = [c for c in checks if c.decides]
    failed = [c for c in deciding if c.outcome == FAIL]
    unsure = [c for c in deciding if c.outcome == INCONCLUSIVE]
    passed = not failed and (allow_inconclusive or not unsure)
    verdict = "failed" if failed else "inconclusive" if unsure else "passed"
    return {
        "passed": passed,
        "verdict": verdict,
        "n_checks": len(deciding),
        "n_passed": len(deciding) - len(failed) - len(unsure),
        "n_failed": len(failed),
        "n_inconclusive": len(unsure),
        "n_control": len(checks) - len(deciding),
        "allow_inconclusive": allow_inconclusive,
    }


def exit_code(checks: list[Check], allow_inconclusive: bool = False) -> int:
    return 0 if summary(checks, allow_inconclusive)["passed"] else 1


def notes(checks: list[Check], unpaired: bool = False) -> list[str]:
    """Lines under every output: what the comparison could see, the control's role, warnings."""
    lines = []
    if unpaired:
        lines.append(
            "UNPAIRED comparison (--allow-other-questions): answers are not matched by question, so "
            "question effects count as differences"
        )
    for n in sorted({c.note for c in checks if c.note}):
        lines.append(f"note: {n}")
    if any(c.design == "shared_shift" for c in checks) and not any(c.note and "repeats" in c.note for c in checks):
        lines.append("note: " + SHARED_SHIFT_HINT)
    if any(c.kind == "control" for c in checks):
        lines.append(
            "control: univar_control checks are reported, never decide; '× ctrl' is a value set's distance "
            "over the control's (well above 1: the models differ in values, not only in style)"
        )
    lines += [f"warning: {w}" for w in sorted({w for c in checks for w in c.warnings})]
    return lines + coverage_notes(checks)


def coverage_notes(checks: list[Check]) -> list[str]:
    """What 'questions' and 'copies' mean, once, when a check shows them."""
    lines = []
    if any(c.n_questions_baseline is not None for c in checks):
        lines.append(
            "questions: the baseline's questions the candidate answered too, of all the baseline's; "
            "'a+b left out': candidate and baseline answers the comparison does not use"
        )
    copies = [c.n_copies for c in checks if c.n_copies]
    if copies:
        n = sum(copies)
        lines.append(
            f"copies: {n} candidate answer{'s' if n != 1 else ''} identical to a baseline answer of the same "
            "question (whitespace aside): expected of a greedy rerun of the baseline model, else a sign of pasted "
            "answers"
        )
    return lines


def to_json(checks: list[Check], settings: dict, allow_inconclusive: bool = False) -> dict:
    return {
        **summary(checks, allow_inconclusive),
        "settings": settings,
        "notes": notes(checks, bool(settings.get("allow_other_questions"))),
        "checks": [{**asdict(c), "decides": c.decides} for c in checks],
    }


def _bounds(c: Check) -> str | None:
    """``[lower, upper]`` of the shown quantity (``<upper`` without a lower bound: no D, or not tested)."""
    if c.upper is None:
        return None
    return f"<{fmt_number(c.upper)}" if c.lower is None else f"[{fmt_number(c.lower)}, {fmt_number(c.upper)}]"


def _cells(c: Check) -> list:
    bound = _bounds(c)
    noise = (
        None
        if c.noise is None
        else fmt_number(c.noise) + (f" (<{fmt_number(c.noise_upper)})" if c.noise_upper is not None else "")
    )
    control = None if c.ratio_to_control is None else f"{fmt_ratio(c.ratio_to_control)} ctrl"
    outcome = c.outcome.upper() + ("" if c.decides else " (info)")
    why = c.reason
    if c.n_left_out or c.n_left_out_baseline:
        why += (
            f" [left out: {c.n_left_out or 0} candidate and {c.n_left_out_baseline or 0} baseline answers the "
            "comparison does not use (questions the other side did not answer, or without repeats)]"
        )
    return [
        c.name,
        c.lang,
        outcome,
        c.quantity,
        c.distance,
        bound,
        noise,
        c.p_value,
        c.design,
        control,
        coverage_cell(c),
        copies_cell(c),
        why,
    ]


HEADERS = [
    "check",
    "lang",
    "result",
    "quantity",
    "value",
    "bounds",
    "noise",
    "p",
    "design",
    "control",
    "questions",
    "copies",
    "why",
]


def headline(checks: list[Check], allow_inconclusive: bool = False) -> str:
    s = summary(checks, allow_inconclusive)
    word = {"passed": "PASSED", "failed": "FAILED", "inconclusive": "INCONCLUSIVE"}[s["verdict"]]
    if s["verdict"] == "inconclusive" and allow_inconclusive:
        word += " (allowed)"
    return (
        f"{word}: {s['n_passed']} of {plural(s['n_checks'], 'check')} pass, {s['n_failed']} fail, "
        f"{s['n_inconclusive']} inconclusive"
    )


def to_text(checks: list[Check], title: str, allow_inconclusive: bool = False, unpaired: bool = False) -> str:
    table = Table(
        HEADERS,
        [_cells(c) for c in checks],
        title=title,
        notes=[*notes(checks, unpaired), headline(checks, allow_inconclusive)],
    )
    return render(table, "text")


def to_markdown(checks: list[Check], title: str, allow_inconclusive: bool = False, unpaired: bool = False) -> str:
    s = summary(checks, allow_inconclusive)
    icon = {PASS: "✅", FAIL: "❌", INCONCLUSIVE: "❔"}
    verdict = "FAILED" if s["verdict"] == "failed" else s["verdict"]
    heading = (
        f"### univar-eval gate: {verdict} ({s['n_passed']}/{s['n_checks']} pass, {s['n_failed']} fail, "
        f"{s['n_inconclusive']} inconclusive)"
    )
    order = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}
    rows = [
        [icon[c.outcome] + ("" if c.decides else " (info)"), *_cells(c)[:2], *_cells(c)[3:]]
        for c in sorted(checks, key=lambda c: (not c.decides, order[c.outcome], c.name))
    ]
    table = Table(
        ["", "check", "lang", *HEADERS[3:]],
        rows,
        notes=notes(checks, unpaired),
    )
    return f"{heading}\n\n{markdown_text(title)}\n\n{render(table, 'md')}"


def to_junit(
    checks: list[Check], suite_name: str = "univar-eval gate", allow_inconclusive: bool = False, unpaired: bool = False
) -> str:
    """One test case per check: a failure is a <failure>; an inconclusive check is a <failure> too (it blocks),
    or <skipped> when inconclusive checks are allowed; the control's cases never fail (they do not decide).
    Every name and message passes through :func:`~univar_eval.reports.table.xml_text`, so hostile names
    (control characters) never make the XML ill-formed."""

    def fails(c: Check) -> bool:
        return c.decides and (c.outcome == FAIL or (c.outcome == INCONCLUSIVE and not allow_inconclusive))

    def skipped(c: Check) -> bool:
        return not fails(c) and c.outcome != PASS

    suite = ET.Element(
        "testsuite",
        name=xml_text(suite_name + (" (unpaired)" if unpaired else "")),
        tests=str(len(checks)),
        failures=str(sum(fails(c) for c in checks)),
        errors="0",
        skipped=str(sum(skipped(c) for c in checks)),
    )
    if unpaired:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="design", value="unpaired")
    for c in checks:
        family = c.name.rsplit("_", 1)[0] if c.kind in ("values", "control") else c.name
        case = ET.SubElement(
            suite, "testcase", classname=xml_text(f"univar_eval.{c.kind}.{family}"), name=xml_text(c.name)
        )
        if fails(c):
            failure = ET.SubElement(case, "failure", message=xml_text(c.reason), type=c.outcome)
            failure.text = xml_text(c.reason)
        elif skipped(c):
            ET.SubElement(case, "skipped", message=xml_text(f"{c.outcome} (does not decide): {c.reason}"))
        out = ET.SubElement(case, "system-out")
        out.text = xml_text(
            f"outcome={c.outcome} quantity={c.quantity} value={c.distance} lower={c.lower} upper={c.upper} "
            f"p_excess={c.p_excess} noise={c.noise} noise_upper={c.noise_upper} "
            f"p={c.p_value} p_adjusted={c.p_adjusted} threshold={c.threshold} design={c.design} n={c.n} "
            f"n_baseline={c.n_baseline} n_left_out={c.n_left_out} n_left_out_baseline={c.n_left_out_baseline} "
            f"questions_used={c.n_questions_used} questions_baseline={c.n_questions_baseline} "
            f"copies={c.n_copies} copy_share={c.copy_share} incomplete={c.incomplete}"
            + (f" note={c.note}" if c.note else "")
            + "".join(
                f" | {t.get('quantity')}: value={t.get('distance')} lower={t.get('lower')} upper={t.get('upper')} "
                f"tolerance={t.get('tolerance')} p_excess={t.get('p_excess')} p_adjusted={t.get('p_adjusted')} "
                f"outcome={t.get('outcome')}"
                for t in c.tests
            )
        )
    root = ET.Element("testsuites", name=xml_text(suite_name), tests=suite.get("tests"), failures=suite.get("failures"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
