"""The lm-eval task class shared by every family here: metrics computed once per task, from all answers.

lm-eval computes metrics per document and aggregates them per metric. Value
measures need all answers of a task at once (a distribution, an angle over six
items, a profile), so :class:`TaskLevelTask`

* serves the metrics its YAML lists (checked against ``metric_names``, what ``analyse`` computes), with
  a ``process_results`` of its own, so lm-eval never looks them up in its metric registry;
* in ``process_results`` hands the whole per-document record (``document_record``) to the
  first metric and only the document index to the others (lm-eval logs every value);
* at aggregation time calls ``analyse(records)`` once and serves every metric from its result.
  If that fails (a missing encoder, a full disk, ...), the answers are kept: the records are written
  as ``answers.jsonl`` in the task's artifact folder with an ``error`` in its manifest, the task's
  metrics are NaN, one error line is logged, and lm-eval goes on to write its results and samples.
  ``univar-eval embed RUN`` finishes the job later.
* in a run of several ranks (``accelerate launch``, torchrun data parallel), shares the heavy part of
  ``analyse`` among the ranks before lm-eval gathers the results to rank 0 (``apply_filters``, which
  lm-eval calls on every rank, task by task, in the same order): the ranks exchange their documents'
  records, each does its share (``prepare``), rank 0 keeps the result and its ``analyse`` uses it
  (``prepared``). A failure on any rank stops the step on every rank, never leaves one waiting, and
  rank 0 keeps the answers as above. One rank (tensor parallel included): ``analyse`` does it all.

The YAML states the task's metrics (``metric_list``, aggregation ``task_level``, each metric's
direction; a YAML without one is refused before generation); a subclass may add metrics that depend
on the run (``extra_metrics``: UniVaR's distances to the models of a reference bank). Every lm-eval
specific is in :mod:`univar_eval.harness.lm_eval_api`.

Settings errors, and anything else that can be found before an answer is generated, are raised as
:class:`~univar_eval.errors.UserError` and turned into one ``error: ...`` line and exit code 2 by
:func:`~univar_eval.harness.lm_eval_api.preflight`, the one place that may end the run.

Repeats: lm-eval's own task ``repeats`` (in the YAML, or the ``repeats`` metadata key, which sets it)
asks every question N times and every answer is kept. Decoding is never switched behind the user's back:
repeats with greedy decoding (N identical answers) are refused before generation, naming the
``--gen_kwargs`` that sample.

Subclasses (``UniVaRTask``, ``HVAETask``, ``ValueLexTask``) implement ``metric_names`` (every metric
``analyse`` computes), ``document_record`` and ``analyse``. The YAML names the subclass with
``class: !function univar_eval.<module>.<Class>``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any

from univar_eval.errors import UserError
from univar_eval.harness import lm_eval_api
from univar_eval.harness.lm_eval_api import TASK_LEVEL, Task, preflight
from univar_eval.pipeline.answers import flatten_responses
from univar_eval.pipeline.shard import ShardFailed, World, every_rank, lm_eval_world
from univar_eval.settings import RunSettings, resolve
from univar_eval.storage.distribution import PENDING_FORMAT

log = logging.getLogger("univar_eval")

PROCESS_RESULTS_NOTE = "univar_eval: TaskLevelTask.process_results (metrics computed once per task)"


#: What sampling looks like, named in the refusal of greedy repeats (UniVaR's sampling).
SAMPLING_HINT = "--gen_kwargs do_sample=True,temperature=1.0,top_p=0.95,top_k=50"


class TaskLevelTask(Task):
    def __init__(self, config: dict | None = None, **kwargs):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self._chat = False
        self._analysis: dict | None = None
        self._shared: _Shared | None = None
        self.settings = RunSettings()
        lm_eval_api.follow_lm_eval_logging()
        self.run_stamp = RUN_STAMPS.for_new_task()  # names this run's univar_<stamp> folder (artifact_dir)
        preflight(config.get("task"), lambda: self._prepare(config))
        # Any non-None process_results keeps lm-eval from looking each metric name up in its registry and
        # in HF evaluate (an error line per metric and task otherwise); our process_results method is used.
        config["process_results"] = PROCESS_RESULTS_NOTE
        super().__init__(config=config, **kwargs)

    def _prepare(self, config: dict) -> None:
        """Everything that can fail before generation; raises :class:`UserError`."""
        metadata = lm_eval_api.task_metadata(config)
        self.settings = resolve(metadata)
        _warn_if_model_unknown(self.settings)
        apply_repeats(config, metadata)
        # where this run's artifacts go, recorded in lm-eval's results (its configs keep the metadata)
        folder = artifact_dir(config.get("task", "task"), self.settings, stamp=self.run_stamp).parent
        config["metadata"] = {**(config.get("metadata") or {}), ARTIFACTS_KEY: str(folder)}
        self.configure(config)
        declared = declared_metrics(config, self.metric_names(config))
        extra = [m for m in self.extra_metrics(config) if m["metric"] not in {d["metric"] for d in declared}]
        config["metric_list"] = declared + [{"aggregation": TASK_LEVEL, **m} for m in extra]
        self._metric_names = [m["metric"] for m in config["metric_list"]]

    # -- to implement ------------------------------------------------------------------------------
    def configure(self, config: dict) -> None:
        """Read what the subclass needs from the config, before the metrics are named."""

    def metric_names(self, config: dict) -> list[str]:
        """Every fixed metric ``analyse`` computes (the YAML's ``metric_list`` names them, or some of them)."""
        raise NotImplementedError

    def extra_metrics(self, config: dict) -> list[dict]:
        """Metrics that depend on the run, not stated in the YAML: ``{"metric": .., "higher_is_better": ..}``."""
        return []

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

    #: ``prepare`` does work worth spreading over the ranks of a run (translation, embedding)
    shares_work = False

    def prepare(self, records: list[dict], world: World) -> Any:
        """Called on every rank of a run of several ranks with all records of the task (in document order):
        each rank does its share of what ``analyse`` needs and rank 0 returns it (``prepared`` hands it to
        ``analyse``). Every rank must reach the same collectives (see :func:`~univar_eval.pipeline.shard.together`)."""
        return None

    def prepared(self, records: list[dict]) -> Any:
        """What ``prepare`` returned on rank 0 for exactly these ``records``; None when nothing was prepared
        (one rank) or for other records. A failure of the shared step is raised here, so that ``analyse``
        fails and the answers are kept."""
        shared = self._shared
        if shared is None:
            return None
        if shared.records != records:  # not expected: lm-eval gathers the same records
            log.warning("univar-eval: %s: the shared step saw other answers; rank 0 does it again", self.config.task)
            return None
        if shared.error is not None:
            raise ShardFailed(shared.error)
        return shared.value

    # -- lm-eval hooks -----------------------------------------------------------------------------
    def build_all_requests(self, *args, limit: int | None = None, **kwargs):
        # called by lm-eval for every task before any request runs, with --gen_kwargs already applied
        preflight(self.config.task, lambda: self.check_before_generation(limit))
        # lm-eval's view of the ranks (its model's rank and world size; 0 of 1 under tensor parallelism)
        self._lm_ranks = (int(kwargs.get("rank") or 0), int(kwargs.get("world_size") or 1))
        return super().build_all_requests(*args, limit=limit, **kwargs)

    def apply_filters(self):
        # lm-eval calls this on every rank for every task, in the same order, after generation and before
        # process_results and the gather to rank 0: the one step where every rank holds its own answers.
        out = super().apply_filters()
        self._shared = None
        rank, size = getattr(self, "_lm_ranks", (0, 1))
        if self.shares_work and size > 1:
            world = lm_eval_world(rank, size)
            if world is not None:
                self._shared = self._share(world)
        return out

    def _share(self, world: World) -> _Shared:
        records = sorted(every_rank(self._records_of_this_rank(), world), key=lambda r: r.get("doc_index", 0))
        try:
            return _Shared(records, self.prepare(records, world), None, world.size)
        except Exception as e:  # noqa: BLE001 - every rank got here (together/run_blocks); rank 0 keeps the answers
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            return _Shared(records, None, message, world.size)

    def _records_of_this_rank(self) -> list[dict]:
        """The records ``process_results`` will make of this rank's documents (the first filter's answers)."""
        instances = self.instances
        if not instances:
            return []
        key = next(iter(instances[0].filtered_resps))
        by_doc: dict[int, list] = {}
        for instance in instances:
            by_doc.setdefault(instance.doc_id, []).append(instance)
        records = []
        for doc_id in sorted(by_doc):
            requests = sorted(by_doc[doc_id], key=lambda x: x.idx)
            records.append(self.record_of(requests[0].doc, [r.filtered_resps[key] for r in requests]))
        return records

    def check_before_generation(self, limit: int | None) -> None:
        """The last checks before generation, on the final config; ``limit``: the documents --limit leaves."""
        check_repeats(self.config.task, int(self.config.repeats or 1), self.OUTPUT_TYPE, self.config.generation_kwargs)

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
                except Exception as e:  # keep the answers: generation may have taken hours
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
                    **({"sharding": {"world_size": self._shared.world_size}} if self._shared else {}),
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


@dataclasses.dataclass
class _Shared:
    """What the ranks did together for one task: the records (all ranks', in document order), what
    ``prepare`` returned on this rank, or the error that stopped the ranks."""

    records: list[dict]
    value: Any
    error: str | None
    world_size: int


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


def declared_metrics(config: dict, computed: list[str]) -> list[dict]:
    """The YAML's ``metric_list``, checked: each entry names a metric ``analyse`` computes (``computed``),
    with aggregation ``task_level`` and a ``higher_is_better`` (None where a metric has no direction)."""
    task = config.get("task")
    listed = config.get("metric_list")
    if not isinstance(listed, list) or not listed:
        raise UserError(
            f"the task YAML has no metric_list; name the metrics ({', '.join(computed)}) with "
            f"aggregation: {TASK_LEVEL} (see the shipped YAMLs of {task})"
        )
    out = []
    for entry in listed:
        name = entry.get("metric") if isinstance(entry, dict) else None
        if name not in computed:
            raise UserError(f"metric_list names {name!r}, which {task} does not compute ({', '.join(computed)})")
        if entry.get("aggregation") != TASK_LEVEL or "higher_is_better" not in entry:
            raise UserError(
                f"metric_list entry {name!r} needs aggregation: {TASK_LEVEL} and higher_is_better "
                "(the metrics are computed once per task from all answers)"
            )
        out.append(dict(entry))
    return out


def apply_repeats(config: dict, metadata: dict) -> None:
    """The ``repeats`` metadata key sets lm-eval's task ``repeats`` (the command line has no other way to);
    decoding is left as configured (see :func:`check_repeats`)."""
    raw = metadata.get("repeats")
    if raw is None:
        return
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(n) != str(raw).strip():
        raise UserError(
            f"setting repeats={raw!r} is not a whole number >= 1; pass e.g. --metadata '{{\"repeats\": 3}}'"
        )
    config["repeats"] = n


def samples(generation_kwargs: dict | None) -> bool:
    """Whether these generation settings sample: ``do_sample`` on and a positive temperature (lm-eval's
    hf backend decodes greedily otherwise; API backends at temperature 0)."""
    kw = generation_kwargs or {}
    try:
        temperature = float(kw.get("temperature", 0.0) or 0.0)
    except (TypeError, ValueError):
        temperature = 0.0
    return bool(kw.get("do_sample")) and temperature > 0


def check_repeats(task: str, repeats: int, output_type: str | None, generation_kwargs: dict | None) -> None:
    """Refuse repeats that would repeat the same answer: greedy generation, or a log-likelihood task."""
    if repeats <= 1:
        return
    if output_type != "generate_until":
        raise UserError(
            f"repeats={repeats} gives {repeats} identical scores on a log-likelihood task ({output_type}); "
            "drop repeats for this task"
        )
    if not samples(generation_kwargs):
        raise UserError(
            f"repeats={repeats} with greedy decoding gives {repeats} identical answers per question; "
            f"sample with {SAMPLING_HINT} (UniVaR's sampling), or drop repeats"
        )


# -- where artifacts go ---------------------------------------------------------------------------
#: metadata key under which each task records its run's artifact folder (lm-eval copies it to results' configs)
ARTIFACTS_KEY = "univar_artifacts"
_ANNOUNCED: set[str] = set()


def announce_artifacts(folder: Path) -> None:
    """Log once per run where the value distributions will be written."""
    if str(folder) not in _ANNOUNCED:
        _ANNOUNCED.add(str(folder))
        log.info("univar-eval: value distributions of this run go to %s", folder)


_warned_unknown_model = False


def _warn_if_model_unknown(settings: RunSettings) -> None:
    global _warned_unknown_model
    if settings.model is None and not _warned_unknown_model:
        _warned_unknown_model = True
        log.warning(
            "univar-eval: the evaluated model's name is unknown (no pretrained/model among the model "
            'arguments); the artifacts will say model: null. Name it with metadata {"model": "<name>"} '
            "or UNIVAR_EVAL_MODEL"
        )


def run_model_name(settings: RunSettings) -> str | None:
    """The evaluated model's name: the ``model`` setting (lm-eval merges the model arguments into the
    metadata, so on the command line it is the model's ``pretrained``/``model`` argument)."""
    return settings.model


def artifact_dir(task: str, settings: RunSettings, argv: list[str] | None = None, *, stamp: str | None = None) -> Path:
    """``<output>/univar_<stamp>/<task>``: under UNIVAR_EVAL_OUTPUT / metadata ``output`` when set,
    else (the lm_eval command line) beside lm-eval's results (``--output_path/<model>/``),
    else ``./univar-runs/<model>/`` (also the default of the Python API, ``simple_evaluate``).
    ``stamp`` is the task's ``run_stamp`` (one per run; default: the run under way); ``argv``: the
    command line (default: this process's; see :func:`~univar_eval.harness.lm_eval_api.command_line`)."""
    stamp = stamp or RUN_STAMPS.current_stamp()
    base = lm_eval_api.output_base(settings.output, run_model_name(settings), argv)
    return base / f"univar_{stamp}" / task
