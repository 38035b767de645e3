"""Small sub-commands: ``tasks-dir``, ``encoders``, ``embed-check`` and ``tiny-model``."""

from __future__ import annotations

from univar_eval.demo.tiny_models import build_tiny_causal_lm
from univar_eval.pipeline.encoders import list_cards
from univar_eval.reports.table import Table, render
from univar_eval.resources import tasks_dir
from univar_eval.settings import DEFAULT_ENCODER


def register(sub) -> None:
    p = sub.add_parser("tasks-dir", help="print the folder to pass to lm_eval --include_path")
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser("encoders", help="list the encoder cards")
    p.set_defaults(func=_encoders)

    p = sub.add_parser("tiny-model", help="write a tiny random-weight causal LM (offline smoke runs and tests)")
    p.add_argument("folder", help="where to write the model")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tiny_model)


def _tasks_dir(args) -> int:
    print(tasks_dir())
    return 0


def _encoders(args) -> int:
    rows = [[name, f"{card.source}@{card.revision}", card.dimension, "yes" if name == DEFAULT_ENCODER else ""]
            for name, card in list_cards().items()]
    print(render(Table(["encoder", "model", "dimension", "default"], rows), "text"))
    return 0


def _tiny_model(args) -> int:
    path = build_tiny_causal_lm(args.folder, seed=args.seed)
    print(path)
    return 0
