"""Re-export only (kept for user YAMLs written against 0.1): the UniVaR task moved to
:mod:`univar_eval.harness.univar_task`, ``keep_all_repeats`` to :mod:`univar_eval.harness.task_base`."""

from univar_eval.harness.task_base import keep_all_repeats  # noqa: F401
from univar_eval.harness.univar_task import UniVaRTask, load_dataset  # noqa: F401
