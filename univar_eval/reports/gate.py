"""Step: gate. The release check of a candidate model against an approved baseline.

For each task and language of the candidate's run, the candidate's value distribution
is compared with the baseline's bank entry. A check

* **fails** when the distance is above ``max_distance`` *and* the permutation test
  says the difference is real (``p < alpha`` after correcting for the number of checks:
  Holm by default, Benjamini-Hochberg or none on request; the number of permutations
  is raised so that the corrected threshold can be reached); without ``max_distance``
  any significant difference fails;
* **fails as insufficient** when either side has fewer than ``min_answers`` answers:
  too little evidence never passes;
* **fails as missing** when the bank has no baseline entry for that task (a gate that
  silently skipped languages would pass anything);
* **passes** otherwise.

HVAE value-rationality floors gate the same way, from lm-eval's results of the run.
The outcome is written as a terminal table, JSON, Markdown (for a pull-request
comment) and JUnit XML (one test case per task and language), and the exit code is
0 when every check passes, 1 when one fails (2 is left to usage and input errors).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

import numpy as np

from univar_eval.errors import UserError
from univar_eval.harness.results import read_results
from univar_eval.hvae.report import floor_checks
from univar_eval.reports.compare import reference_distances
from univar_eval.reports.runs import load_run
from univar_eval.reports.table import (
    Table,
    fmt_number,
    markdown_text,
    plural,
    render,
    xml_text,
)
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

PASS, FAIL = "pass", "fail"


@dataclass
class Check:
    name: str  # task (one language each)
    kind: str  # "values" or "hvae"
    lang: str | None
    outcome: str  # pass / fail
    reason: str
    distance: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    n: int | None = None
    n_baseline: int | None = None
    p_adjusted: float | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == PASS


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


def value_checks(run: str, bank: Bank, against: str, *, max_distance: float | None, alpha: float,
                 min_answers: int, langs: list[str] | None = None, tasks: list[str] | None = None,
                 metric: str = "mmd", n_permutations: int = distance_mod.DEFAULT_PERMUTATIONS,
                 seed: int = 0, correction: str = "holm",
                 dists: list[ValueDistribution] | None = None) -> list[Check]:
    """``dists``: the candidate's distributions when they were read already (from any source, see
    :func:`univar_eval.reports.runs.read_candidates`); else the run folder ``run`` is read."""
    if against not in bank.models():
        raise UserError(f"bank {bank.path} has no model {against!r}; it has: {', '.join(bank.models()) or 'none'}")
    dists = load_run(run) if dists is None else dists
    if langs:
        dists = [d for d in dists if d.lang in langs]
    if tasks:
        dists = [d for d in dists if d.task in tasks or any(d.task.startswith(t + "_") for t in tasks)]
    if not dists:
        raise UserError(f"{run}: no value distributions match --tasks/--langs")
    n_perm = permutations_needed(len(dists), alpha, correction, n_permutations)
    checks, tested = [], []
    for d in sorted(dists, key=lambda d: d.task):
        if not bank.entries(model=against, task=d.task):
            checks.append(Check(d.task, "values", d.lang, FAIL, f"no baseline entry for {against} / {d.task}",
                                n=len(d)))
            continue
        res = reference_distances(d, bank, min_answers=min_answers, metric=metric, n_permutations=n_perm,
                                  seed=seed, against=[against])
        r = res["references"][against]
        if r["status"] == "insufficient":
            checks.append(Check(d.task, "values", d.lang, FAIL,
                                f"insufficient answers ({r['n_x']} vs baseline {r['n_y']}; need {min_answers})",
                                n=r["n_x"], n_baseline=r["n_y"], threshold=max_distance))
            continue
        check = Check(d.task, "values", d.lang, PASS, "", distance=r["distance"], p_value=r["p_value"],
                      threshold=max_distance, n=r["n_x"], n_baseline=r["n_y"])
        checks.append(check)
        tested.append(check)
    # every task and language is one test: the p-values are corrected for their number
    for check, p_adj in zip(tested, adjust_p_values([c.p_value for c in tested], correction)):
        check.p_adjusted = p_adj
        dist = check.distance
        significant = p_adj < alpha
        too_far = max_distance is None or dist > max_distance
        p_text = f"p = {fmt_number(check.p_value)}" + (f", {correction} {fmt_number(p_adj)}" if correction != "none"
                                                        else "")
        if significant and too_far:
            check.outcome = FAIL
            check.reason = (f"{metric} {fmt_number(dist)} > {max_distance} and {p_text} < {alpha}" if max_distance is not None
                            else f"values differ from the baseline ({p_text} < {alpha})")
        else:
            check.reason = (f"{metric} {fmt_number(dist)} within {max_distance}" if max_distance is not None and not too_far
                            else f"no significant difference ({p_text} >= {alpha})")
    return checks


def hvae_checks(run: str, floor: float) -> list[Check]:
    """One check per induced HVAE task: its chance-corrected value rationality (1 ideal, 0 chance) against
    ``floor`` (rows and steering from :func:`univar_eval.hvae.report.floor_checks`)."""
    if not floor <= 1.0:
        raise UserError(f"--min-value-rationality {floor} can never be met: the scale tops at 1 (the ideal "
                        "chooser); 0 is chance")
    checks = [Check(task, "hvae", None, PASS if passed else FAIL, reason, distance=value, threshold=floor)
              for task, passed, reason, value in floor_checks(read_results(run)["tasks"], floor)]
    if not checks:
        raise UserError(f"{run}: --min-value-rationality given but the run has no HVAE results "
                        "(run lm_eval with --tasks hvae_svo and --output_path)")
    return checks


# -- outputs -----------------------------------------------------------------------------------------------
def summary(checks: list[Check]) -> dict:
    failed = [c for c in checks if not c.passed]
    return {"passed": not failed, "n_checks": len(checks), "n_failed": len(failed)}


def to_json(checks: list[Check], settings: dict) -> dict:
    return {**summary(checks), "settings": settings, "checks": [asdict(c) for c in checks]}


def _cells(c: Check) -> list:
    return [c.name, c.lang, c.outcome.upper(), c.distance, c.p_value, c.reason]


HEADERS = ["check", "lang", "result", "value", "p", "why"]


def to_text(checks: list[Check], title: str) -> str:
    s = summary(checks)
    verdict = (f"{'PASSED' if s['passed'] else 'FAILED'}: {s['n_checks'] - s['n_failed']} of "
               f"{plural(s['n_checks'], 'check')} pass")
    return render(Table(HEADERS, [_cells(c) for c in checks], title=title, notes=[verdict]), "text")


def to_markdown(checks: list[Check], title: str) -> str:
    s = summary(checks)
    icon = {PASS: "✅", FAIL: "❌"}
    heading = (f"### univar-eval gate: {'passed' if s['passed'] else 'FAILED'} "
               f"({s['n_checks'] - s['n_failed']}/{s['n_checks']})")
    rows = [[icon[c.outcome], *_cells(c)[:2], *_cells(c)[3:]] for c in sorted(checks, key=lambda c: (c.passed, c.name))]
    table = Table(["", "check", "lang", "value", "p", "why"], rows)
    return f"{heading}\n\n{markdown_text(title)}\n\n{render(table, 'md')}"


def to_junit(checks: list[Check], suite_name: str = "univar-eval gate") -> str:
    """JUnit XML; every name and message passes through :func:`~univar_eval.reports.table.xml_text`, so
    hostile names (control characters) never make the XML ill-formed."""
    suite = ET.Element("testsuite", name=xml_text(suite_name), tests=str(len(checks)),
                       failures=str(sum(not c.passed for c in checks)), errors="0", skipped="0")
    for c in checks:
        family = c.name.rsplit("_", 1)[0] if c.kind == "values" else c.name
        case = ET.SubElement(suite, "testcase", classname=xml_text(f"univar_eval.{c.kind}.{family}"),
                             name=xml_text(c.name))
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=xml_text(c.reason), type=c.kind)
            failure.text = xml_text(c.reason)
        out = ET.SubElement(case, "system-out")
        out.text = (f"value={c.distance} p={c.p_value} p_adjusted={c.p_adjusted} threshold={c.threshold} n={c.n} "
                    f"n_baseline={c.n_baseline}")
    root = ET.Element("testsuites", name=xml_text(suite_name), tests=suite.get("tests"),
                      failures=suite.get("failures"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
