"""The coupling to lm-eval: everything univar-eval relies on from lm-evaluation-harness, in one module.

No other module of the package imports ``lm_eval`` (``tests/harness/test_lm_eval_contract.py`` checks
that, and checks each item below against the pinned lm-eval, so an lm-eval upgrade that breaks one fails
there first):

* **Task API.** Our tasks subclass :data:`Task` (lm-eval's ``ConfigurableTask``) and are named in the
  YAML with ``class: !function ...``; lm-eval builds them as ``cls(config=<the YAML as a dict>)``, then
  calls ``process_results`` per document and ``aggregation()`` per metric. Our metrics are task-level
  (one analysis of all answers), so the YAML's ``metric_list`` names the aggregation :data:`TASK_LEVEL`,
  registered here in lm-eval's aggregation registry; the task serves the values itself.
* **Settings reach a task as metadata.** ``config["metadata"]`` is the YAML's ``metadata`` merged with
  what the caller passed: on the command line ``--model_args`` merged with ``--metadata``; in
  ``simple_evaluate`` its ``model_args`` merged with ``metadata``; a hand-built
  ``TaskManager(metadata=...)`` passes its own. So the model's arguments and our settings share one
  namespace (:func:`task_metadata`).
* **What lm-eval hands a task later**: ``build_all_requests(limit=..., apply_chat_template=...)`` gets the
  number of documents ``--limit`` leaves (a fraction already turned into a count) and the chat mode, and
  ``generation_kwargs`` hold ``--gen_kwargs`` by then.
* **What lm-eval never hands a task**: ``--output_path``. :func:`command_line` reads it (also from a
  ``--config`` file) with lm-eval's own parser, and only when this process is the ``lm_eval`` command line.
* **Task discovery** is :mod:`univar_eval._autoload` (a startup hook that must not import lm-eval): it
  wraps ``TaskManager.__init__`` so that every manager also scans our task folder.
* **Ending the process.** :func:`preflight` is the only place in the package that ends an lm-eval run:
  a :class:`~univar_eval.errors.UserError` found before generation becomes one ``error: <task>: ...``
  line on stderr and exit code 2. Library classes only raise.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import lm_eval.api.metrics  # noqa: F401 - fills lm-eval's registries (it does so lazily when they are empty)
from lm_eval.api.registry import aggregation_registry
from lm_eval.api.task import ConfigurableTask
from lm_eval.utils import sanitize_model_name

from univar_eval.errors import UserError

log = logging.getLogger("univar_eval")
T = TypeVar("T")

#: The base class of every univar-eval task.
Task = ConfigurableTask

#: Metadata keys lm-eval itself puts in every task's metadata (the YAML's version, where the YAML came from).
LM_EVAL_METADATA_KEYS = frozenset({"version", "config_source", "_metadata"})

#: Name of the aggregation of task-level metrics in the YAML's ``metric_list``.
TASK_LEVEL = "task_level"


def _task_level(items):  # pragma: no cover - never called: TaskLevelTask.aggregation serves the values
    raise RuntimeError("univar-eval metrics are aggregated by their task (TaskLevelTask.aggregation)")


if TASK_LEVEL not in aggregation_registry:
    aggregation_registry.register(TASK_LEVEL)(_task_level)


def keep_all_repeats(resps, docs):
    """lm-eval filter: keep every repeat of every answer (lm-eval's default filter keeps the first only)."""
    return [list(r) for r in resps]


def task_metadata(config: dict) -> dict[str, Any]:
    """What the caller handed a task: its metadata without lm-eval's own keys (model arguments and
    ``--metadata``/``metadata=`` merged, see the module docstring)."""
    metadata = config.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if k not in LM_EVAL_METADATA_KEYS}


# -- the lm_eval command line -------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandLine:
    """What the ``lm_eval`` command line says that lm-eval does not hand the tasks."""

    output_path: str | None = None


def is_lm_eval_command(argv: list[str] | None = None) -> bool:
    """True when this process is the ``lm_eval`` command line (also ``python -m lm_eval`` and
    ``accelerate launch -m lm_eval``); a script's own arguments mean nothing to us."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    exe = Path(argv[0])
    return exe.name in ("lm_eval", "lm-eval") or (exe.name == "__main__.py" and exe.parent.name == "lm_eval")


def command_line(argv: list[str] | None = None) -> CommandLine:
    """``--output_path`` of the ``lm_eval`` command line (also from its ``--config`` file), read with
    lm-eval's own parser; empty when this process is not that command line."""
    argv = sys.argv if argv is None else argv
    if not is_lm_eval_command(argv):
        return CommandLine()
    return _parse(tuple(argv[1:]))


@functools.lru_cache(maxsize=8)
def _parse(args: tuple[str, ...]) -> CommandLine:
    from lm_eval._cli.harness import HarnessCLI

    cli = HarnessCLI()
    words = list(args)
    if not words or words[0] not in cli._subparsers.choices:
        words.insert(0, "run")  # lm-eval's own legacy rule: no subcommand means run
    if words[0] != "run":
        return CommandLine()
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            ns, _ = cli._parser.parse_known_args(words)
        except SystemExit:  # lm-eval itself parsed this command line already; nothing to add here
            return CommandLine()
    from_file: dict = {}
    if getattr(ns, "config", None):
        from lm_eval.config.evaluate_config import EvaluatorConfig

        with contextlib.suppress(Exception):
            from_file = EvaluatorConfig.load_yaml_config(ns.config)
    output = ns.output_path or from_file.get("output_path")
    return CommandLine(output_path=str(output) if output else None)


def output_base(output: str | None, model: str | None, argv: list[str] | None = None) -> Path:
    """Where a run's ``univar_<stamp>`` folder goes: the ``output`` setting when set; else, on the
    command line, beside lm-eval's results (``--output_path/<model>/``, lm-eval's own layout, or the
    folder of a results file); else ``./univar-runs/<model>/`` (the Python API's default)."""
    name = sanitize_model_name(model or "model")
    if output:
        return Path(output)
    out = command_line(argv).output_path
    if out:
        path = Path(out)
        return path.parent if path.suffix == ".json" else path / name
    return Path("univar-runs") / name


# -- ending the process --------------------------------------------------------------------------------
def preflight(task: str | None, check: Callable[[], T]) -> T:
    """Run ``check`` (settings, models, bank: whatever can fail before generation) for one task.

    A :class:`UserError` ends the process here, and only here: one ``error: <task>: <message>`` line on
    stderr and exit code 2, before any answer is generated (not a traceback after hours of generation).
    """
    try:
        return check()
    except UserError as e:
        print(f"error: {task}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


# -- logging -------------------------------------------------------------------------------------------
def follow_lm_eval_logging() -> None:
    """Show our log lines the way lm_eval shows its own (its CLI configures only the ``lm_eval`` logger)."""
    ours, theirs = log, logging.getLogger("lm_eval")
    if ours.handlers or logging.getLogger().handlers or not theirs.handlers:
        return  # someone configured logging (a CLI, pytest) or lm_eval did not: leave it alone
    for handler in theirs.handlers:
        ours.addHandler(handler)
    ours.setLevel(theirs.level or logging.INFO)
    ours.propagate = False
