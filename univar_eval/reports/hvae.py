"""Step: HVAE report. The four SVO targets side by side, and ``steering``, from lm-eval's results.

``steering`` needs two tasks' results (the induced target and the no-value baseline of the same
form), so it is computed here, where runs are read, not as an lm-eval metric. The helpers below are
what ``compare`` (this table), ``leaderboard`` and ``gate`` call.
"""

from __future__ import annotations

import math

from univar_eval.hvae.svo import TARGETS, steering
from univar_eval.hvae.task import why_no_score
from univar_eval.reports.table import Table, fmt_number, render
from univar_eval.runs.folders import read_results

HVAE_FORMS = {"hvae_svo_mc_": "mc", "hvae_svo_nogoal_": "nogoal", "hvae_svo_": "goal"}
#: The no-value baseline of each form: the goal and no-goal forms share the generated one.
BASELINES = {"mc": "hvae_svo_mc_novalue", "nogoal": "hvae_svo_novalue", "goal": "hvae_svo_novalue"}


def split_task(task: str) -> tuple[str, str] | None:
    """``(form, target)`` of an induced HVAE task name (``hvae_svo_mc_prosocial`` -> ``("mc", "prosocial")``),
    else None (baselines and other tasks)."""
    for prefix, form in HVAE_FORMS.items():
        if task.startswith(prefix) and task[len(prefix) :] in TARGETS:
            return form, task[len(prefix) :]
    return None


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def steering_by_task(tasks: dict[str, dict]) -> dict[str, float]:
    """``{induced task: steering}`` for the induced HVAE tasks of one run's results (``read_results()["tasks"]``)
    whose no-value baseline is in the same results: degrees the induced angle moved toward the target
    from the baseline's angle (NaN when either angle is missing)."""
    out = {}
    for task, metrics in tasks.items():
        parsed = split_task(task)
        if parsed is None or BASELINES[parsed[0]] not in tasks:
            continue
        baseline = _number(tasks[BASELINES[parsed[0]]].get("svo_angle"))
        out[task] = steering(_number(metrics.get("svo_angle")), baseline, parsed[1])
    return out


def leaderboard_cells(tasks: dict[str, dict]) -> dict[str, float]:
    """Leaderboard columns of one run: per induced HVAE task its angle error, value rationality and
    (with the baseline in the run) steering."""
    cells: dict[str, float] = {}
    steer = steering_by_task(tasks)
    for task, metrics in sorted(tasks.items()):
        if split_task(task) is None:
            continue
        for name in ("angle_error", "value_rationality"):
            if name in metrics:
                cells[f"{task} {name}"] = metrics[name]
        if task in steer:
            cells[f"{task} steering"] = steer[task]
    return cells


def floor_checks(tasks: dict[str, dict], floor: float) -> list[tuple[str, bool | None, str, float | None]]:
    """``(task, passed, reason, value)`` per induced HVAE task against a value-rationality floor on the
    chance-corrected scale; ``passed`` is None when there is no value rationality (the reason says why)."""
    steer = steering_by_task(tasks)
    checks = []
    for task, metrics in sorted(tasks.items()):
        if split_task(task) is None or "value_rationality" not in metrics:
            continue
        vr = _number(metrics["value_rationality"])
        extra = f"; steering {steer[task]:+.1f} deg" if task in steer and not math.isnan(steer[task]) else ""
        if math.isnan(vr):
            checks.append((task, None, f"no value rationality ({why_no_score(metrics)})", None))
        else:
            passed = vr >= floor
            checks.append(
                (
                    task,
                    passed,
                    f"value rationality {fmt_number(vr)} {'>=' if passed else '<'} {floor} "
                    f"(0 = chance, 1 = ideal){extra}",
                    vr,
                )
            )
    return checks


def hvae_table(runs: dict[str, str], select: str | None = None) -> list[dict]:
    """The four HVAE targets side by side, one row per run and task form (from lm-eval's results),
    each target with its ``steering`` added when the form's baseline was run."""
    rows = []
    for label, path in runs.items():
        tasks = read_results(path, select)["tasks"]
        steer = steering_by_task(tasks)
        for prefix, form in HVAE_FORMS.items():
            targets = {
                t: {**tasks[prefix + t], **({"steering": steer[prefix + t]} if prefix + t in steer else {})}
                for t in TARGETS
                if prefix + t in tasks
            }
            if targets:
                baseline = tasks.get(BASELINES[form], {}).get("svo_angle")
                rows.append({"run": label, "form": form, "targets": targets, "baseline_angle": baseline})
    return rows


def hvae_cell(m: dict) -> str:
    """One target's result: ``37.5° prosocial VR 0.83 err 12.3° steer 4.0°``."""
    if not m:
        return "-"
    text = (
        f"{fmt_number(m.get('svo_angle'), 1)}° {m.get('category', '?')} "
        f"VR {fmt_number(m.get('value_rationality'), 2)} err {fmt_number(m.get('angle_error'), 1)}°"
    )
    return text + (f" steer {fmt_number(m['steering'], 1)}°" if "steering" in m else "")


def format_hvae(rows: list[dict], markdown: bool = False) -> str:
    table = Table(
        ["run", "form", *TARGETS, "own angle"],
        [
            [
                r["run"],
                r["form"],
                *(hvae_cell(r["targets"].get(t, {})) for t in TARGETS),
                None if r.get("baseline_angle") is None else f"{fmt_number(r['baseline_angle'], 1)}°",
            ]
            for r in rows
        ],
        title="HVAE per target value: SVO angle, category, angle error (err, degrees from the ideal), "
        "value rationality (VR: 1 ideal, 0 chance, < 0 worse than chance) and steering (degrees "
        "moved toward the target from the no-value angle, 'own angle')",
    )
    return render(table, "md" if markdown else "text").rstrip("\n")
