"""Step: calibrate. Propose the gate's ``--max-distance`` from reruns of the baseline model.

Every rerun is gated against the baseline's bank entry as a candidate would be (the same comparison, alpha and
bootstrap: :func:`univar_eval.stats.references.gate_comparison`); the upper bound of every tested quantity of every
task and language is kept, and :func:`univar_eval.stats.calibration.propose` turns them into the smallest D at
which the whole gate passes for a rerun with the stated probability. The report says how D was found.
"""

from __future__ import annotations

import json

import numpy as np

from univar_eval.errors import UserError
from univar_eval.reports.table import fmt_number
from univar_eval.runs.folders import load_run
from univar_eval.stats import calibration
from univar_eval.stats.references import check_comparable, gate_comparison
from univar_eval.storage.bank import Bank


def calibrate(
    runs: list[str],
    bank: Bank,
    against: str,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    seed: int = 0,
    probability: float = calibration.DEFAULT_PROBABILITY,
    tasks: list[str] | None = None,
    langs: list[str] | None = None,
) -> dict:
    if len(runs) < calibration.MIN_RERUNS:
        raise UserError(f"calibrate needs at least {calibration.MIN_RERUNS} reruns of the baseline, got {len(runs)}")
    if not 0.5 <= probability < 1:
        raise UserError(f"--probability must be in [0.5, 1), got {probability}")
    if against not in bank.models():
        raise UserError(f"bank {bank.path} has no model {against!r}; it has: {', '.join(bank.models()) or 'none'}")
    entries = {
        e["task"]: e
        for e in bank.entries(model=against)
        if (not tasks or any(e["task"] == t or e["task"].startswith(t + "_") for t in tasks))
        and (not langs or e["lang"] in langs)
    }
    if not entries:
        raise UserError(f"bank {bank.path} has no entries of {against} that match --tasks/--langs")
    refs = {task: bank.load(e, with_answers=True) for task, e in entries.items()}
    names: list[str] = []
    rows = []
    for run in runs:
        dists = {d.task: d for d in load_run(run)}
        missing = sorted(set(entries) - set(dists))
        if missing:
            raise UserError(f"{run}: the rerun lacks {', '.join(missing)} (the baseline has them); rerun every task")
        row = {}
        for task in sorted(entries):
            check_comparable(dists[task], entries[task])
            r = gate_comparison(
                dists[task], refs[task], "mmd", alpha=alpha, n_bootstrap=n_bootstrap, n_permutations=0, seed=seed
            )
            if r.get("problem") or not r.get("tests"):
                raise UserError(f"{run} / {task}: no bound: {r.get('problem') or 'no tested quantity'}")
            for t in r["tests"]:
                if not t.get("enough_to_pass", True):  # no D can make it pass: say so, do not propose the ceiling
                    raise UserError(
                        f"{run} / {task}: {t.get('n_questions')} questions are too few for a {t['quantity']} pass "
                        f"with one answer a question (needs {t.get('min_questions_pass')}): rerun the baseline with "
                        "repeats (lm-eval `repeats: N`, sampling) on both sides"
                    )
                row[f"{task}:{t['quantity']}"] = t["upper"]
        if names and sorted(row) != names:
            raise UserError(f"{run}: its tests differ from the first rerun's (repeats differ?); rerun alike")
        names = sorted(row)
        rows.append([row[n] for n in names])
    uppers = np.array(rows)
    out = calibration.propose(uppers, probability=probability, seed=seed)
    worst = int(np.argmax(uppers.max(0)))
    out.update(
        against=against,
        runs=runs,
        probability=probability,
        alpha=alpha,
        bootstrap=n_bootstrap,
        seed=seed,
        n_tests=len(names),
        tests=names,
        widest_test=names[worst],
        method=(
            f"each of the {len(names)} tested quantities' upper bounds over {len(runs)} reruns modelled by its mean "
            "and spread (Student-t predictive draws); D = the "
            f"{probability:.0%} quantile of the largest bound of a simulated rerun's whole gate"
        ),
    )
    return out


def to_text(result: dict) -> str:
    lines = [f"calibrate: {len(result['runs'])} reruns of {result['against']} against its bank entry"]
    lines.append(
        "smallest D at which each rerun's whole gate passes: " + ", ".join(fmt_number(v) for v in result["per_rerun"])
    )
    if result["no_spread"]:
        lines.append(f"no proposal: {result['note']}")
        return "\n".join(lines) + "\n"
    lines.append(f"method: {result['method']} (widest: {result['widest_test']})")
    d = fmt_number(result["max_distance"])
    lines.append(
        f"proposed --max-distance {d}: the whole gate ({result['n_tests']} tests, alpha {result['alpha']}, "
        f"{result['bootstrap']} bootstrap resamples) passes for a rerun with probability about "
        f"{result['probability']:.0%}"
    )
    if result.get("note"):
        lines.append(f"note: {result['note']}")
    lines.append(
        f"use: univar-eval gate CANDIDATE --bank BANK --against {result['against']} --max-distance {d} "
        f"--alpha {result['alpha']} --bootstrap {result['bootstrap']}"
    )
    return "\n".join(lines) + "\n"


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2, allow_nan=False) + "\n"
