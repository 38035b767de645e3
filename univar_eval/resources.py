"""Where things live on disk: the shipped lm-eval task folders and encoder cards, and the cache folder.

In an installed package they sit inside ``univar_eval/`` (``univar_eval/tasks``,
``univar_eval/encoders``); in a source checkout they are the top-level ``tasks/``
and ``encoders/`` folders beside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    beside = _PACKAGE.parent / name
    if beside.is_dir():
        return beside
    return inside


def tasks_dir() -> Path:
    """The folder lm-eval should scan for univar-eval's task YAMLs."""
    return _locate("tasks")


def encoders_dir() -> Path:
    """The folder of encoder cards (one YAML per supported encoder)."""
    return _locate("encoders")


def data_dir() -> Path:
    """Questionnaire data: ``<tasks>/univar/data/<questionnaire>/<lang>.jsonl``."""
    return tasks_dir() / "univar" / "data"


def cache_dir() -> Path | None:
    """univar-eval's cache folder (embeddings, translations, pulled banks); None when ``UNIVAR_EVAL_CACHE=off``."""
    env = os.environ.get("UNIVAR_EVAL_CACHE")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "univar-eval"
