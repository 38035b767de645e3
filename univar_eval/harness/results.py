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


def read_results(path: str | Path) -> dict:
    """``{"model": name or None, "tasks": {task: {metric: value}}}`` merged over the run's results files,
    newer files winning (lm-eval writes one per invocation)."""
    tasks: dict[str, dict] = {}
    model = None
    for file in sorted(results_files(path), key=lambda p: p.name):
        data = read_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise UserError(f"{file}: not an lm-eval results file (no 'results' object)")
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

