"""Step: HVAE report. The four SVO targets side by side, one row per run and task form, from lm-eval's results."""

from __future__ import annotations

from univar_eval.harness.results import read_results
from univar_eval.hvae.svo import TARGETS
from univar_eval.reports.compare import _fmt

HVAE_FORMS = {"hvae_svo_mc_": "mc", "hvae_svo_nogoal_": "nogoal", "hvae_svo_": "goal"}


def hvae_table(runs: dict[str, str], select: str | None = None) -> list[dict]:
    """The four HVAE targets side by side, one row per run and task form (from lm-eval's results)."""
    rows = []
    for label, path in runs.items():
        tasks = read_results(path, select)["tasks"]
        for prefix, form in HVAE_FORMS.items():
            targets = {t: tasks[prefix + t] for t in TARGETS if prefix + t in tasks}
            if targets:
                rows.append({"run": label, "form": form, "targets": targets})
    return rows


def format_hvae(rows: list[dict], markdown: bool = False) -> str:
    def cell(m: dict) -> str:
        if not m:
            return "-"
        return (f"{_fmt(m.get('svo_angle'), 1)}° {m.get('category', '?')} "
                f"VR {_fmt(m.get('value_rationality'), 2)}")

    headers = ["run", "form", *TARGETS]
    table = [[r["run"], r["form"], *(cell(r["targets"].get(t, {})) for t in TARGETS)] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in table])
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    lines = ["HVAE: SVO angle, category and value rationality (VR) per target value"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
    return "\n".join(lines)
