"""Where the shipped data lives: lm-eval task folders and encoder cards.

In an installed package they sit inside ``univar_eval/`` (``univar_eval/tasks``,
``univar_eval/encoders``); in a source checkout they are the top-level ``tasks/``
and ``encoders/`` folders beside the package.
"""

from __future__ import annotations

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
