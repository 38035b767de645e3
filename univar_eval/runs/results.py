"""The files one lm-eval run writes: ``results_<date>.json`` (read and checked here), ``samples_<task>_<date>.jsonl``
and the ``univar_<stamp>/`` artifact folder beside them (which one belongs to which samples file).

The value-distribution steps read our artifacts; the scores that lm-eval computes on its
own (HVAE's value rationality, ValueLex's orientation profile) are read from here.
"""

from __future__ import annotations

import re
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.storage.distribution import MANIFEST_FILE
from univar_eval.storage.files import read_json

RUN_DIR = re.compile(r"^univar_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:-\d+)?)$")  # -2, -3: two runs in one second
LM_EVAL_FILE = re.compile(r"^(results|samples_.+)_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?)\.jsonl?$")


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
        isinstance(data["configs"], dict) and all(isinstance(c, dict) for c in data["configs"].values())
    ):
        problem = "'configs' is not an object of task configs"
    elif data.get("model_name") is not None and not isinstance(data["model_name"], str):
        problem = f"model_name {data['model_name']!r} is not text"
    if problem:
        raise UserError(
            f"{file}: not an lm-eval results file ({problem}); nothing was changed: restore it or rerun the lm_eval run"
        )
    return data


def date_of(file: Path) -> str | None:
    m = LM_EVAL_FILE.match(file.name)
    return m.group(2) if m else None


def artifacts_for_samples(samples_file: Path, task: str) -> Path | None:
    """The ``univar_<stamp>/<task>`` folder of the run that wrote ``samples_file``: the newest artifact folder
    beside it that started before the samples were written."""
    date = date_of(samples_file) or "9999"
    candidates = sorted(
        (
            p.parent
            for p in samples_file.parent.glob(f"univar_*/{task}/{MANIFEST_FILE}")
            if RUN_DIR.match(p.parent.parent.name) and RUN_DIR.match(p.parent.parent.name).group(1) <= date
        ),
        key=lambda p: p.parent.name,
    )
    return candidates[-1] if candidates else None
