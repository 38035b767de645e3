"""lm-eval integration: the task base every family builds on, the UniVaR questionnaire task, and
reading lm-eval's own results files. Task discovery lives in ``univar_eval._autoload`` (it must stay
importable without this package's dependencies)."""
