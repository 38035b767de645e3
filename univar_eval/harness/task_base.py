"""The lm-eval task class shared by every family here: metrics computed once per task, from all answers.

lm-eval computes metrics per document and aggregates them per metric. Value
measures need all answers of a task at once (a distribution, an angle over six
items, a profile), so :class:`TaskLevelTask`

* names its metrics itself (``metric_names``), so lm-eval never looks them up in its registry;
* in ``process_results`` hands the whole per-document record (``document_record``) to the
  first metric and only the document index to the others (lm-eval logs every value);
* at aggregation time calls ``analyse(records)`` once and serves every metric from its result.
  If that fails (a missing encoder, a full disk, ...), the answers are kept: the records are written
  as ``answers.jsonl`` in the task's artifact folder with an ``error`` in its manifest, the task's
  metrics are NaN, one error line is logged, and lm-eval goes on to write its results and samples.
  ``univar-eval embed RUN`` finishes the job later.

Settings errors found while the task is built (before any answer is generated) end the run with
one ``error: ...`` line and exit code 2.

Subclasses (``UniVaRTask``, ``HVAETask``, ``ValueLexTask``) set ``HIGHER_IS_BETTER`` and
implement ``metric_names``, ``document_record`` and ``analyse``. The YAML names the subclass
with ``class: !function univar_eval.<module>.<Class>``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from lm_eval.api.task import ConfigurableTask
from lm_eval.utils import sanitize_model_name

from univar_eval.errors import UserError
from univar_eval.pipeline.answers import flatten_responses
from univar_eval.settings import RunSettings, model_name, resolve
from univar_eval.storage.distribution import PENDING_FORMAT

log = logging.getLogger("univar_eval")

PROCESS_RESULTS_NOTE = "univar_eval: TaskLevelTask.process_results (metrics computed once per task)"


class TaskLevelTask(ConfigurableTask):
    HIGHER_IS_BETTER: dict[str, bool] = {}

    def __init__(self, config: dict | None = None, **kwargs):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        self._chat = False
        self._analysis: dict | None = None
        _follow_lm_eval_logging()
        self.run_stamp = RUN_STAMPS.for_new_task()  # names this run's univar_<stamp> folder (artifact_dir)
        try:
            self.settings: RunSettings = resolve(metadata, user_keys=_cli_metadata_keys())
            _warn_if_model_unknown(self.settings)
            # where this run's artifacts go, recorded in lm-eval's results (its configs keep the metadata)
            folder = artifact_dir(config.get("task", "task"), self.settings, stamp=self.run_stamp).parent
            config["metadata"] = {**metadata, ARTIFACTS_KEY: str(folder)}
            self.configure(config)
        except UserError as e:
            # before any answer is generated: one line and exit 2, not a traceback after hours of generation
            print(f"error: {config.get('task')}: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        self._metric_names = list(self.metric_names(config))
        config["metric_list"] = [
            {"metric": n, "aggregation": "mean", "higher_is_better": self.is_higher_better(n)}
            for n in self._metric_names
        ]
        # Any non-None process_results keeps lm-eval from looking each metric name up in its registry and
        # in HF evaluate (an error line per metric and task otherwise); our process_results method is used.
        config["process_results"] = PROCESS_RESULTS_NOTE
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

    def kept_answers(self, records: list[dict]) -> list[dict]:
        """What to keep when ``analyse`` fails (one row per answer; the records themselves by default)."""
        return records

    def pending_manifest(self) -> dict:
        """What the kept answers' manifest says besides the error (enough for ``univar-eval embed``)."""
        return {}

    # -- lm-eval hooks -----------------------------------------------------------------------------
    def fewshot_context(self, doc, num_fewshot, *args, apply_chat_template: bool = False, **kwargs):
        self._chat = bool(apply_chat_template)
        return super().fewshot_context(doc, num_fewshot, *args, apply_chat_template=apply_chat_template, **kwargs)

    def record_of(self, doc: dict, results: list) -> dict:
        """The per-document record from lm-eval's raw results (generated texts by default)."""
        return self.document_record(doc, flatten_responses(self._without_padding(results)))

    def _without_padding(self, results: list) -> list:
        """At most ``repeats`` responses per request. In a run of several processes lm-eval evens out
        the ranks by answering a rank's last request again and appends that answer to the request's
        responses; ``keep_all_repeats`` would keep the copy, so it is dropped here."""
        n = int(self.config.repeats or 1)
        return [r[:n] if isinstance(r, list) else r for r in results]

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        # lm-eval's own download() warns "Custom kwargs can be passed to --metadata" once per task for
        # every custom_dataset; our loaders take their arguments from dataset_kwargs, so call them directly.
        loader = self.config.custom_dataset
        if callable(loader):
            self.dataset = loader(**(self.config.metadata or {}), **(self.config.dataset_kwargs or {}))
        else:
            super().download(dataset_kwargs, **kwargs)

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
            RUN_STAMPS.mark_aggregated()  # a task built from now on belongs to a later run
            records = sorted(items, key=lambda r: r.get("doc_index", 0))
            if int(os.environ.get("LOCAL_RANK") or 0) != 0:
                # Tensor parallel under torchrun: every process reports rank 0 and aggregates, but lm-eval
                # keeps only LOCAL_RANK 0's results; the others neither embed nor write anything.
                self._analysis = {}
            else:
                try:
                    self._analysis = self.analyse(records)
                except (Exception, SystemExit) as e:  # keep the answers: generation may have taken hours
                    self._analysis = {}
                    self._keep_answers(records, e)
        if self._analysis is None:
            raise RuntimeError(f"{self.config.task}: metric {name} aggregated before the answers were analysed")
        return self._analysis.get(name, float("nan"))

    def _keep_answers(self, records: list[dict], error: BaseException) -> None:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        folder = artifact_dir(self.config.task, self.settings, stamp=self.run_stamp)
        try:
            write_pending(
                folder,
                self.kept_answers(records),
                {
                    **self.pending_manifest(),
                    "task": self.config.task,
                    "error": message,
                    "settings": self.settings.to_dict(),
                },
            )
            where = f"answers kept in {folder}; finish with: univar-eval embed {folder.parent}"
        except Exception as e2:  # noqa: BLE001 - nothing more can be done; lm-eval's samples still have them
            where = f"the answers could not be written either ({e2}); lm-eval's --log_samples file has them"
        log.error("univar-eval: %s: metrics not computed (%s); %s", self.config.task, message, where)


def write_pending(folder: Path, rows: list[dict], manifest: dict) -> Path:
    """Answers whose embedding failed: ``answers.jsonl`` first, then the manifest naming the error."""
    from univar_eval.errors import UserError
    from univar_eval.storage.distribution import ANSWERS_FILE, MANIFEST_FILE, manifest_problem
    from univar_eval.storage.files import write_json, write_jsonl

    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    manifest = {"format": PENDING_FORMAT, "created": created, "n_answers": len(rows), **manifest}
    problem = manifest_problem(manifest)  # never write what univar-eval embed would refuse to read
    if problem:
        raise UserError(f"cannot keep the answers in {folder}: their manifest's {problem}")
    write_jsonl(folder / ANSWERS_FILE, rows)
    write_json(folder / MANIFEST_FILE, manifest)
    return folder


# -- shared plumbing of every task family -------------------------------------------------------
class _RunStamps:
    """One timestamp per run (the ``univar_<stamp>`` folder), not per process.

    lm-eval builds all task objects of a run before it evaluates any; so the tasks built
    until one of them aggregates share a stamp, and a task built after that (a second
    ``simple_evaluate`` in the same process) starts a new run with a new stamp. Two runs
    within one second get ``-2``, ``-3``... so they never share a folder."""

    def __init__(self):
        self.current: str | None = None
        self.aggregated = False
        self.issued: set[str] = set()

    def for_new_task(self) -> str:
        if self.current is None or self.aggregated:
            stamp = base = _dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
            n = 1
            while stamp in self.issued:
                n += 1
                stamp = f"{base}-{n}"
            self.issued.add(stamp)
            self.current, self.aggregated = stamp, False
        return self.current

    def mark_aggregated(self) -> None:
        self.aggregated = True

    def current_stamp(self) -> str:
        """The stamp of the run under way (a new one when none has started)."""
        return self.current if self.current is not None else self.for_new_task()


RUN_STAMPS = _RunStamps()


def __getattr__(name: str):
    # Thin re-export, marked as such: ``RUN_STAMP`` (one stamp per process before 0.2) now names the
    # stamp of the run under way; new code uses a task's ``run_stamp``.
    if name == "RUN_STAMP":
        return RUN_STAMPS.current_stamp()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def keep_all_repeats(resps, docs):
    """lm-eval filter: keep every repeat of every answer (the default filter keeps the first only)."""
    return [list(r) for r in resps]


# -- where artifacts go ---------------------------------------------------------------------------
#: metadata key under which each task records its run's artifact folder (lm-eval copies it to results' configs)
ARTIFACTS_KEY = "univar_artifacts"
_ANNOUNCED: set[str] = set()


def _follow_lm_eval_logging() -> None:
    """Show our log lines the way lm_eval shows its own (its CLI configures only the ``lm_eval`` logger)."""
    ours, theirs = log, logging.getLogger("lm_eval")
    if ours.handlers or logging.getLogger().handlers or not theirs.handlers:
        return  # someone configured logging (a CLI, pytest) or lm_eval did not: leave it alone
    for handler in theirs.handlers:
        ours.addHandler(handler)
    ours.setLevel(theirs.level or logging.INFO)
    ours.propagate = False


def announce_artifacts(folder: Path) -> None:
    """Log once per run where the value distributions will be written."""
    if str(folder) not in _ANNOUNCED:
        _ANNOUNCED.add(str(folder))
        log.info("univar-eval: value distributions of this run go to %s", folder)


def _cli_argv(argv: list[str] | None = None) -> list[str]:
    """``sys.argv`` when this process is the ``lm_eval`` command line (also ``python -m lm_eval`` and
    ``accelerate launch -m lm_eval``), else ``[]``: a script's own arguments mean nothing here."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return []
    exe = Path(argv[0])
    if exe.name in ("lm_eval", "lm-eval") or (exe.name == "__main__.py" and exe.parent.name == "lm_eval"):
        return argv
    return []


def _argv_value(flags: tuple[str, ...], argv: list[str]) -> list[str] | None:
    for i, a in enumerate(argv):
        for f in flags:
            if a == f:
                vals = []
                for b in argv[i + 1 :]:
                    if b.startswith("-"):
                        break
                    vals.append(b)
                return vals
            if a.startswith(f + "="):
                return [a[len(f) + 1 :]]
    return None


def _keys_of(vals: list[str]) -> dict[str, str]:
    """``key=value`` pairs (comma or space separated) or a JSON object, as lm-eval's CLI reads them."""
    text = " ".join(vals)
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            return {str(k): str(v) for k, v in parsed.items()}
    except ValueError:
        pass
    return dict(kv.split("=", 1) for kv in re.split(r"[,\s]+", text) if "=" in kv)


def _cli_metadata_keys(argv: list[str] | None = None) -> set[str]:
    """The keys the user typed in ``lm_eval ... --metadata`` (empty outside the command line)."""
    vals = _argv_value(("--metadata",), _cli_argv(argv))
    return set(_keys_of(vals)) if vals else set()


def _model_name_from_argv(argv: list[str] | None = None) -> str | None:
    argv = sys.argv if argv is None else argv
    vals = _argv_value(("--model_args", "-a"), argv)
    if not vals:
        return None
    return model_name(_keys_of(vals))


_warned_unknown_model = False


def _warn_if_model_unknown(settings: RunSettings) -> None:
    global _warned_unknown_model
    if settings.model is None and not _warned_unknown_model and not _model_name_from_argv(_cli_argv()):
        _warned_unknown_model = True
        log.warning(
            "univar-eval: the evaluated model's name is unknown (no pretrained/model among the model "
            'arguments); the artifacts will say model: null. Name it with metadata {"model": "<name>"} '
            "or UNIVAR_EVAL_MODEL"
        )


def run_model_name(settings: RunSettings, argv: list[str] | None = None) -> str | None:
    """The evaluated model's name: the ``model`` setting (lm-eval merges the model arguments into the
    metadata), else ``--model_args`` on the lm_eval command line."""
    return settings.model or _model_name_from_argv(_cli_argv(argv))


def artifact_dir(task: str, settings: RunSettings, argv: list[str] | None = None, *, stamp: str | None = None) -> Path:
    """``<output>/univar_<stamp>/<task>``: under UNIVAR_EVAL_OUTPUT / metadata ``output`` when set,
    else (the lm_eval command line) beside lm-eval's results (``--output_path/<model>/``),
    else ``./univar-runs/<model>/`` (also the default of the Python API, ``simple_evaluate``).
    ``stamp`` is the task's ``run_stamp`` (one per run; default: the run under way)."""
    stamp = stamp or RUN_STAMPS.current_stamp()

    argv = _cli_argv(argv)
    model = sanitize_model_name(run_model_name(settings, argv) or "model")
    if settings.output:
        base = Path(settings.output)
    else:
        out = _argv_value(("--output_path", "-o"), argv)
        if out:
            path = Path(out[0])
            base = path.parent if path.suffix == ".json" else path / model
        else:
            base = Path("univar-runs") / model
    return base / f"univar_{stamp}" / task
