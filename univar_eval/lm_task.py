"""Step: lm-eval task. Value questionnaires as lm-eval generation tasks.

Every backend lm-eval supports (hf, vllm, OpenAI-compatible APIs, ...) answers
the questions; :class:`UniVaRTask` then turns the answers into a value
distribution at aggregation time, once per task: translate to English, format
``Q: ... A: ...``, embed, store the artifacts next to lm-eval's output, and
report counts, dispersion and (with a bank) distances to reference models.

The task YAMLs (``tasks/univar/``) name this class with
``class: !function univar_eval.lm_task.UniVaRTask`` and load their questions
with ``custom_dataset: !function univar_eval.lm_task.load_dataset``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from univar_eval import questionnaire as questionnaire_mod
from univar_eval.distribution import comparability_problem
from univar_eval.errors import UserError
from univar_eval.settings import RunSettings
from univar_eval.task_base import TaskLevelTask

log = logging.getLogger("univar_eval")

#: One timestamp per process, so all tasks of one lm_eval run share an artifact folder.
RUN_STAMP = _dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")

BASE_METRICS = ("n_answers", "n_empty", "refusal_rate", "n_truncated", "value_dispersion")
HIGHER_IS_BETTER = {"n_answers": True, "n_empty": False, "refusal_rate": False, "n_truncated": False,
                    "value_dispersion": True,
                    "nearest_distance": False}


def load_dataset(questionnaire: str | None = None, lang: str | None = None, **_metadata):
    """``custom_dataset`` for the questionnaire tasks: the questions as a ``test`` split."""
    import datasets

    q = questionnaire_mod.load(questionnaire, lang)
    docs = [{**r, "questionnaire": q.name, "questionnaire_version": q.version, "doc_index": i}
            for i, r in enumerate(q.records)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def keep_all_repeats(resps, docs):
    """lm-eval filter: keep every repeat of every answer (the default filter keeps the first only)."""
    return [list(r) for r in resps]


def metric_name_for(reference: str) -> str:
    """lm-eval metric key for the distance to one reference model."""
    return "mmd@" + re.sub(r"[^\w.\-]+", "_", reference)


class UniVaRTask(TaskLevelTask):
    """A value questionnaire: generation, then a value distribution per task and language."""

    HIGHER_IS_BETTER = HIGHER_IS_BETTER

    def configure(self, config: dict) -> None:
        kw = config.get("dataset_kwargs") or {}
        self.questionnaire = kw.get("questionnaire")
        self.lang = kw.get("lang")
        self._references = self._bank_references(config["task"])

    def metric_names(self, config: dict) -> list[str]:
        names = list(BASE_METRICS)
        if self.settings.bank:
            names += ["nearest_distance", "nearest_reference"] + [metric_name_for(r) for r in self._references]
        return names

    def doc_to_text(self, doc, doc_to_text=None):
        # A chat model gets the question alone (as in UniVaR); a base model gets a QA frame to continue.
        question = doc["question"].strip()
        return question if self._chat else f"Question: {question}\nAnswer:"

    def document_record(self, doc: dict, responses: list[str]) -> dict:
        return {"doc_index": doc["doc_index"], "id": doc["id"], "value": doc["value"],
                "higher_order": doc["higher_order"], "lang": doc["lang"], "question": doc["question"],
                "answers": responses}

    def analyse(self, items: list[dict]) -> dict:
        """Embed every answer once, write the artifacts, compute the metrics."""
        from univar_eval.pipeline import build_distribution

        records = []
        for item in items:
            for k, answer in enumerate(item["answers"]):
                records.append({**{k2: v for k2, v in item.items() if k2 != "answers"}, "repeat": k, "answer": answer})
        dist, counts = build_distribution(
            records,
            task=self.config.task,
            questionnaire=self.questionnaire,
            lang=self.lang,
            settings=self.settings,
            model=_model_name_from_argv(),
        )
        folder = artifact_dir(self.config.task, self.settings)
        dist.save(folder)
        log.info("univar-eval: %d value embeddings of %s written to %s", len(dist), self.config.task, folder)
        metrics: dict[str, Any] = {
            "n_answers": counts["n_answers"],
            "n_empty": counts["n_empty"],
            "refusal_rate": counts["n_refused"] / counts["n_answers"] if counts["n_answers"] else float("nan"),
            "n_truncated": counts.get("n_truncated", 0),
            "value_dispersion": dispersion(dist.embeddings),
        }
        if self.settings.bank:
            metrics.update(self._bank_metrics(dist))
        return metrics

    # -- reference bank ------------------------------------------------------------------------
    def _bank_references(self, task: str) -> list[str]:
        if not self.settings.bank:
            return []
        from univar_eval.bank import Bank

        bank = Bank(self.settings.bank)
        entries = bank.entries(task=task)
        # What can be checked before any answer is generated (a mismatch found only after hours of
        # generation would waste them): the same rule as at aggregation, without the encoder
        # fingerprint, which needs the loaded encoder.
        planned = self._planned_manifest()
        for e in entries:
            problem = comparability_problem(planned, e, fingerprint=False)
            if problem:
                raise UserError(f"bank entry {e['model']} / {task} in {bank.path} is not comparable with this run: "
                                f"{problem}; set the same encoder/translator, or rebuild the entry")
        return sorted({e["model"] for e in entries})

    def _planned_manifest(self) -> dict:
        """What the manifest of this task's distribution will say, as far as it is known before loading models."""
        from univar_eval.encoders import get_card
        from univar_eval.translate import get_translator

        card = get_card(self.settings.encoder)
        return {
            "encoder": {"name": card.name, "revision": card.revision},
            "questionnaire": self.questionnaire,
            "questionnaire_version": questionnaire_mod.load(self.questionnaire, self.lang).version
            if self.questionnaire else None,
            "lang": self.lang,
            "translator": {"name": "none"} if self.lang == "eng" else get_translator(self.settings.translator).describe(),
        }

    def _bank_metrics(self, dist) -> dict[str, Any]:
        from univar_eval.compare import reference_distances

        result = reference_distances(dist, self.settings.bank, min_answers=self.settings.min_answers)
        metrics: dict[str, Any] = {metric_name_for(ref): r["distance"] for ref, r in result["references"].items()}
        metrics["nearest_reference"] = result["nearest"] or result.get("status", "none")
        metrics["nearest_distance"] = (result["references"][result["nearest"]]["distance"]
                                       if result["nearest"] else float("nan"))
        return metrics


def dispersion(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance between the (normalised) embeddings."""
    n = len(embeddings)
    if n < 2:
        return float("nan")
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    s = x.sum(axis=0)
    mean_cos = (float(s @ s) - n) / (n * (n - 1))
    return 1.0 - mean_cos


# -- where artifacts go ---------------------------------------------------------------------------
def _argv_value(flags: tuple[str, ...], argv: list[str]) -> list[str] | None:
    for i, a in enumerate(argv):
        for f in flags:
            if a == f:
                vals = []
                for b in argv[i + 1:]:
                    if b.startswith("-"):
                        break
                    vals.append(b)
                return vals
            if a.startswith(f + "="):
                return [a[len(f) + 1:]]
    return None


def _model_name_from_argv(argv: list[str] | None = None) -> str | None:
    argv = sys.argv if argv is None else argv
    vals = _argv_value(("--model_args", "-a"), argv)
    if not vals:
        return None
    text = " ".join(vals)
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = ",".join(f"{k}={v}" for k, v in parsed.items())
    except ValueError:
        pass
    items = dict(kv.split("=", 1) for kv in re.split(r"[,\s]+", text) if "=" in kv)
    for key in ("peft", "delta", "pretrained", "model", "path", "engine"):
        if key in items:
            return items[key]
    return None


def artifact_dir(task: str, settings: RunSettings, argv: list[str] | None = None) -> Path:
    """``<output>/univar_<stamp>/<task>``: under UNIVAR_EVAL_OUTPUT / metadata ``output`` when set,
    else beside lm-eval's results (``--output_path/<model>/``), else ``./univar-runs/<model>/``."""
    argv = sys.argv if argv is None else argv
    from lm_eval.utils import sanitize_model_name

    model = sanitize_model_name(_model_name_from_argv(argv) or "model")
    if settings.output:
        base = Path(settings.output)
    else:
        out = _argv_value(("--output_path", "-o"), argv)
        if out:
            path = Path(out[0])
            base = path.parent if path.suffix == ".json" else path / model
        else:
            base = Path("univar-runs") / model
    return base / f"univar_{RUN_STAMP}" / task
