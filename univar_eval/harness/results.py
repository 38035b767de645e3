"""Reading lm-eval's own results files (``results_<date>.json``) of a run folder.

The value-distribution steps read our artifacts; the scores that lm-eval computes on its
own (HVAE's value rationality, ValueLex's orientation profile) are read from here.
"""

from __future__ import annotations

from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.storage.files import read_json


def results_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path] if path.name.startswith("results") and path.suffix == ".json" else []
    return sorted(path.rglob("results_*.json"))


def read_results_file(file: str | Path) -> dict:
    """One lm-eval results file, checked for what univar-eval reads from it: an object whose ``results``
    maps each task to an object of metrics, ``configs`` (when present) each task to an object, and
    ``model_name`` is text. Metric values are not checked (lm-eval writes NaN for a metric it could not
    compute). A file that fails is refused in one line; nothing is changed."""
    data = read_json(file)
    problem = None
    if not isinstance(data, dict):
        problem = f"not a JSON object (got {type(data).__name__})"
    elif not isinstance(data.get("results"), dict):
        problem = "no 'results' object"
    elif (bad := next((t for t, m in data["results"].items() if not isinstance(m, dict)), None)) is not None:
        problem = f"results of {bad!r} are not an object of metrics"
    elif data.get("configs") is not None and not (
            isinstance(data["configs"], dict) and all(isinstance(c, dict) for c in data["configs"].values())):
        problem = "'configs' is not an object of task configs"
    elif data.get("model_name") is not None and not isinstance(data["model_name"], str):
        problem = f"model_name {data['model_name']!r} is not text"
    if problem:
        raise UserError(f"{file}: not an lm-eval results file ({problem}); nothing was changed: restore it or "
                        "rerun the lm_eval run")
    return data


def read_results(path: str | Path, run: str | None = None, *, files: list[Path] | None = None) -> dict:
    """``{"model": name or None, "tasks": {task: {metric: value}}}`` of one run per model under ``path``
    (see :func:`univar_eval.reports.runs.select_runs`; ``run``: ``latest`` or a stamp), or of ``files``."""
    from univar_eval.reports.runs import select_runs  # reports builds on harness, not the other way round

    if files is None:
        files = [f for r in select_runs(path, run, announce=False) for f in r.results]
    tasks: dict[str, dict] = {}
    model = None
    for file in sorted(files, key=lambda p: p.name):
        data = read_results_file(file)
        model = data.get("model_name") or model
        for task, metrics in data["results"].items():
            clean = {}
            for key, value in metrics.items():
                if key == "alias" or "_stderr" in key:
                    continue
                name = key.split(",", 1)[0]
                clean[name] = value
            tasks[task] = clean
    return {"model": model, "tasks": tasks}

