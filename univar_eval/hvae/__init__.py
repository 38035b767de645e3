"""HVAE (Zhang et al., 2023): social value orientation on the SVO slider measure.

``svo`` scores choices (angle, category, value rationality); ``task`` holds the prompts, the letter
parser and the lm-eval task class.

Re-export (kept for user YAMLs written against 0.1): ``univar_eval.hvae.HVAETask``,
``univar_eval.hvae.load_dataset`` and ``univar_eval.hvae.parse_choice`` resolve to ``univar_eval.hvae.task``.
"""


def __getattr__(name: str):
    # lazy, so that importing the scorer never imports lm-eval
    if name in {"HVAETask", "load_dataset", "parse_choice", "build_prompt"}:
        from univar_eval.hvae import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
