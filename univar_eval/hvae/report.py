"""Step: HVAE report. The four SVO targets side by side, one row per run and task form, from lm-eval's results."""

from __future__ import annotations

from univar_eval.harness.results import read_results
from univar_eval.hvae.svo import TARGETS
from univar_eval.reports.table import Table, fmt_number, render

HVAE_FORMS = {"hvae_svo_mc_": "mc", "hvae_svo_nogoal_": "nogoal", "hvae_svo_": "goal"}


def hvae_table(runs: dict[str, str]) -> list[dict]:
    """The four HVAE targets side by side, one row per run and task form (from lm-eval's results)."""
    rows = []
    for label, path in runs.items():
        tasks = read_results(path)["tasks"]
        for prefix, form in HVAE_FORMS.items():
            targets = {t: tasks[prefix + t] for t in TARGETS if prefix + t in tasks}
            if targets:
                rows.append({"run": label, "form": form, "targets": targets})
    return rows


def hvae_cell(m: dict) -> str:
    """One target's result: ``37.5° prosocial VR 0.83``."""
    if not m:
        return "-"
    return f"{fmt_number(m.get('svo_angle'), 1)}° {m.get('category', '?')} VR {fmt_number(m.get('value_rationality'), 2)}"


def format_hvae(rows: list[dict], markdown: bool = False) -> str:
    table = Table(["run", "form", *TARGETS],
                  [[r["run"], r["form"], *(hvae_cell(r["targets"].get(t, {})) for t in TARGETS)] for r in rows],
                  title="HVAE: SVO angle, category and value rationality (VR) per target value")
    return render(table, "md" if markdown else "text").rstrip("\n")
