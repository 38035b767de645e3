"""The lm-eval task class shared by every family here: metrics computed once per task, from all answers.

lm-eval computes metrics per document and aggregates them per metric. Value
measures need all answers of a task at once (a distribution, an angle over six
items, a profile), so :class:`TaskLevelTask`

* names its metrics itself (``metric_names``), so lm-eval never looks them up in its registry;
* in ``process_results`` hands the whole per-document record (``document_record``) to the
  first metric and only the document index to the others (lm-eval logs every value);
* at aggregation time calls ``analyse(records)`` once and serves every metric from its result.

Subclasses (``UniVaRTask``, ``HVAETask``, ``ValueLexTask``) set ``HIGHER_IS_BETTER`` and
implement ``metric_names``, ``document_record`` and ``analyse``. The YAML names the subclass
with ``class: !function univar_eval.<module>.<Class>``.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.task import ConfigurableTask

from univar_eval.answers import flatten_responses
from univar_eval.settings import RunSettings, resolve


class TaskLevelTask(ConfigurableTask):
    HIGHER_IS_BETTER: dict[str, bool] = {}

    def __init__(self, config: dict | None = None, **kwargs):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        metadata = config.get("metadata")
        self.settings: RunSettings = resolve(metadata if isinstance(metadata, dict) else {})
        self._chat = False
        self._analysis: dict | None = None
        self.configure(config)
        self._metric_names = list(self.metric_names(config))
        config["metric_list"] = [{"metric": n, "aggregation": "mean", "higher_is_better": self.is_higher_better(n)}
                                 for n in self._metric_names]
        config["process_results"] = _computed_by_task
        super().__init__(config=config, **kwargs)

    # -- to implement ------------------------------------------------------------------------------
    def configure(self, config: dict) -> None:
        """Read what the subclass needs from the config, before the metrics are named."""

    def metric_names(self, config: dict) -> list[str]:
        raise NotImplementedError

    def is_higher_better(self, name: str) -> bool:
        return self.HIGHER_IS_BETTER.get(name, False)

    def document_record(self, doc: dict, responses: list[str]) -> dict:
        return {**doc, "responses": responses}

    def analyse(self, records: list[dict]) -> dict[str, Any]:
        """All records of the task -> ``{metric name: value}``."""
        raise NotImplementedError

    # -- lm-eval hooks -----------------------------------------------------------------------------
    def fewshot_context(self, doc, num_fewshot, *args, apply_chat_template: bool = False, **kwargs):
        self._chat = bool(apply_chat_template)
        return super().fewshot_context(doc, num_fewshot, *args, apply_chat_template=apply_chat_template, **kwargs)

    def record_of(self, doc: dict, results: list) -> dict:
        """The per-document record from lm-eval's raw results (generated texts by default)."""
        return self.document_record(doc, flatten_responses(results))

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        out: dict[str, Any] = {self._metric_names[0]: self.record_of(doc, results)}
        for name in self._metric_names[1:]:
            out[name] = doc.get("doc_index", 0)
        return out

    def aggregation(self) -> dict:
        return {name: (lambda items, _n=name: self._aggregate(_n, items)) for name in self._metric_names}

    def higher_is_better(self) -> dict:
        return {name: self.is_higher_better(name) for name in self._metric_names}

    def _aggregate(self, name: str, items: list):
        if items and isinstance(items[0], dict):
            self._analysis = self.analyse(sorted(items, key=lambda r: r.get("doc_index", 0)))
        if self._analysis is None:
            raise RuntimeError(f"{self.config.task}: metric {name} aggregated before the answers were analysed")
        return self._analysis.get(name, float("nan"))


def _computed_by_task(doc, results):  # pragma: no cover - TaskLevelTask.process_results replaces it
    raise RuntimeError("this task computes its metrics itself")
