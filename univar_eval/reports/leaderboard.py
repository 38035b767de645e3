"""Step: leaderboard. One row per evaluated model, one column per task and language.

Columns, in a stable order:

* per univar task (one language each): the distance to each chosen reference model
  (``<task> d(<ref>)``) and the nearest reference, with a bank; the value dispersion
  without one;
* per questionnaire: the cross-language spread (mean distance between the model's
  languages);
* per HVAE task: angle error, value rationality and steering (from lm-eval's results);
* the ValueLex profile: the six subdimension orientations (from lm-eval's results).

The header records the encoder, translator and questionnaire versions; runs made with
different settings are refused unless ``allow_mixed`` (numbers from different encoders
are not on one scale).
"""

from __future__ import annotations

import json
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.pipeline.questionnaire import questionnaire_of_task
from univar_eval.reports.compare import cross_language
from univar_eval.reports.hvae import leaderboard_cells as hvae_leaderboard_cells
from univar_eval.reports.table import Table, render
from univar_eval.reports.table import to_html as to_html_table
from univar_eval.runs.folders import Candidate, load_run, read_results, run_label, summarise_versions
from univar_eval.stats.dispersion import dispersion
from univar_eval.stats.references import reference_distances
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import translator_label
from univar_eval.storage.files import jsonable
from univar_eval.storage.identity import same_encoder

VALUELEX_TASK = "valuelex_projective"


def build(
    runs: list[str],
    *,
    bank: Bank | None = None,
    against: list[str] | None = None,
    min_answers: int = 10,
    metric: str = "mmd",
    allow_mixed: bool = False,
    candidates: list[Candidate] | None = None,
) -> dict:
    """``candidates``: the models read already from any source (see
    :func:`univar_eval.runs.folders.read_candidates`); else each of ``runs`` is read as a run folder."""
    if candidates is None:
        candidates = [
            Candidate(run_label(d, ""), str(p), d, True) for p in runs for d in [load_run(p, missing_ok=True)]
        ]
    rows, settings = [], []
    for cand in candidates:
        path, dists = cand.path, cand.distributions
        results = (
            {"model": None, "tasks": {}}
            if not cand.is_run
            else read_results(path, files=cand.results)
            if cand.results is not None
            else read_results(path)
        )
        if not dists and not results["tasks"]:
            raise UserError(f"{path}: neither univar-eval artifacts nor lm-eval results found")
        model = (
            cand.model
            if not cand.is_run
            else ((run_label(dists, "") if dists else "") or results["model"] or Path(path).name)
        )
        cells: dict[str, object] = {}
        for d in sorted(dists, key=lambda d: d.task):
            if bank is not None:
                refs = None if not against else [a for a in against if bank.entries(model=a, task=d.task)]
                if refs == []:
                    continue
                res = reference_distances(
                    d, bank, min_answers=min_answers, metric=metric, n_permutations=0, against=refs
                )
                for ref, r in sorted(res["references"].items()):
                    cells[f"{d.task} {metric}({ref})"] = r["distance"] if r["status"] == "ok" else None
                cells[f"{d.task} nearest"] = res["nearest"] or res["status"]
            else:
                cells[f"{d.task} dispersion"] = dispersion(d.embeddings) if len(d) >= 2 else None
        for q, info in cross_language(dists, metric=metric, min_answers=min_answers).items():
            cells[f"{q} cross-language spread"] = info["spread"]
        cells.update(hvae_leaderboard_cells(results["tasks"]))  # angle error, value rationality, steering
        for name, value in sorted(results["tasks"].get(VALUELEX_TASK, {}).items()):
            if name.startswith("orientation_"):
                cells[f"valuelex {name}"] = value
        rows.append({"model": model, "run": str(path), "cells": cells})
        settings.append(_settings(dists))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["model"]] = counts.get(r["model"], 0) + 1
    for r in rows:  # several runs of one model: tell them apart by their folder
        if counts[r["model"]] > 1:
            r["model"] = f"{r['model']} ({r['run']})"
    merged = _merge_settings(settings, allow_mixed)
    columns = sorted({c for r in rows for c in r["cells"]}, key=_column_key)
    rows.sort(key=lambda r: (r["model"], r["run"]))
    return {"settings": merged, "metric": metric, "columns": columns, "rows": rows}


def _column_key(col: str) -> tuple:
    kind = 0 if col.startswith("univar_") else 1 if "spread" in col else 2 if col.startswith("hvae_") else 3
    return (kind, col)


def _settings(dists) -> dict:
    return {
        "encoder": [d.manifest.get("encoder") or {} for d in dists],
        "translator": sorted({translator_label(d.manifest) for d in dists if d.lang != "eng"}),
        "questionnaire": {d.task: d.manifest.get("questionnaire_version") for d in dists},
    }


def _merge_settings(settings: list[dict], allow_mixed: bool) -> dict:
    distinct: list[dict] = []  # one record per encoder, by the one rule of storage.identity.same_encoder
    for e in (e for s in settings for e in s["encoder"]):
        if not any(same_encoder(e, d) for d in distinct):
            distinct.append(e)
    encoders = sorted(f"{e.get('name')}@{e.get('fingerprint_id')}" for e in distinct)
    translators = sorted({t for s in settings for t in s["translator"]})
    versions: dict[str, set] = {}
    for s in settings:
        for task, v in s["questionnaire"].items():
            versions.setdefault(task, set()).add(v)
    problems = []
    if len(encoders) > 1:
        problems.append(f"encoders differ ({', '.join(encoders)})")
    if len(translators) > 1:
        problems.append(f"translators differ ({', '.join(translators)})")
    mixed_q = sorted(t for t, v in versions.items() if len(v) > 1)
    if mixed_q:
        problems.append(f"questionnaire versions differ on {', '.join(mixed_q)}")
    if problems and not allow_mixed:
        raise UserError(
            f"the runs were made with different settings: {'; '.join(problems)}; "
            "re-run them alike, or pass --allow-mixed to build the table anyway"
        )
    return {
        "encoders": encoders,
        "translators": translators or ["none"],
        "questionnaire_versions": {t: sorted(map(str, v)) for t, v in sorted(versions.items())},
        "mixed": bool(problems),
        "problems": problems,
    }


# -- rendering ---------------------------------------------------------------------------------------------------
def _questionnaire_of(task: str) -> str:
    return questionnaire_of_task(task) or task


def _header_line(board: dict) -> str:
    s = board["settings"]
    versions = [(_questionnaire_of(task), v) for task, vs in s.get("questionnaire_versions", {}).items() for v in vs]
    line = (
        f"encoder {', '.join(s['encoders']) or '-'}; translator {', '.join(s['translators'])}; "
        f"questionnaires {summarise_versions(versions)}; distance {board['metric']}"
    )
    if s["mixed"]:
        line += f"; MIXED SETTINGS: {'; '.join(s['problems'])}"
    return line


def board_table(board: dict) -> Table:
    rows = [[r["model"], *(r["cells"].get(c) for c in board["columns"])] for r in board["rows"]]
    return Table(["model", *board["columns"]], rows, title=_header_line(board))


def to_markdown(board: dict) -> str:
    return render(board_table(board), "md")


def to_csv(board: dict) -> str:
    return render(board_table(board), "csv")


def to_json(board: dict) -> str:
    return json.dumps(jsonable(board), indent=2, ensure_ascii=False) + "\n"


def to_html(board: dict, title: str = "univar-eval leaderboard") -> str:
    return to_html_table(board_table(board), page_title=title)


RENDERERS = {"md": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
