"""ValueLex (Biedma et al., 2024): the LLM value lexicon and the projective sentence-completion test.

Re-export (kept for user YAMLs written against 0.1): ``univar_eval.valuelex.ValueLexTask``,
``univar_eval.valuelex.load_dataset`` and ``univar_eval.valuelex.PROJECTIVE_INSTRUCTION`` resolve to
``univar_eval.valuelex.task``.
"""


def __getattr__(name: str):
    # lazy, so that importing the scorer never imports lm-eval
    if name in {"ValueLexTask", "load_dataset", "PROJECTIVE_INSTRUCTION"}:
        from univar_eval.valuelex import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
