"""The contract with the pinned lm-eval: what univar-eval relies on, checked against the installed lm-eval.

Each test names one thing ``univar_eval/harness/lm_eval_api.py`` (the only module that imports lm-eval)
relies on. An lm-eval upgrade that changes one of them fails here, before it fails a user's run.
The command-line tests run the real ``lm_eval`` with lm-eval's own ``dummy`` model, which answers "lol"
to every question.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import warnings
from pathlib import Path

import pytest
from conftest import OFFLINE_ENV, lm_eval_executable, read_results

import univar_eval
from univar_eval.harness import lm_eval_api
from univar_eval.harness.lm_eval_api import TASK_LEVEL, CommandLine, command_line

ROOT = Path(__file__).resolve().parents[2]
LM_EVAL = "/venv/bin/lm_eval"


def test_only_the_coupling_module_imports_lm_eval():
    importers = []
    for path in sorted((ROOT / "univar_eval").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "lm_eval" or n.startswith("lm_eval.") for n in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(importers)) == ["univar_eval/harness/lm_eval_api.py"]


# -- task API --------------------------------------------------------------------------------------------------
def test_task_api_our_classes_rely_on():
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._factory import _ctor_accepts_config

    from univar_eval.harness.task_base import TaskLevelTask

    assert lm_eval_api.Task is ConfigurableTask and issubclass(TaskLevelTask, ConfigurableTask)
    assert _ctor_accepts_config(TaskLevelTask)  # lm-eval builds a `class:` task as cls(config=...)
    build = inspect.signature(ConfigurableTask.build_all_requests).parameters
    assert {"limit", "apply_chat_template"} <= set(build) and build["limit"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "apply_chat_template" in inspect.signature(ConfigurableTask.fewshot_context).parameters
    for hook in ("process_results", "aggregation", "higher_is_better", "download", "doc_to_text", "set_config"):
        assert callable(getattr(ConfigurableTask, hook)), hook


def test_task_level_aggregation_is_registered_with_lm_eval():
    from lm_eval.api.registry import get_aggregation

    assert get_aggregation(TASK_LEVEL) is lm_eval_api._task_level
    assert get_aggregation("mean") is not None  # registering ours did not keep lm-eval from filling its own


def test_shipped_tasks_state_their_metrics_and_directions():
    from lm_eval.tasks import TaskManager

    tasks = TaskManager(metadata={"encoder": "minilm"}).load(
        ["univar_pvq_eng", "hvae_svo_competitive", "hvae_svo_mc_novalue", "valuelex_lexicon"]
    )["tasks"]
    pvq, competitive, novalue, lexicon = (tasks[t] for t in sorted(tasks, key=list(tasks).index))
    assert pvq.config.metric_list[-1] == {
        "metric": "value_dispersion",
        "aggregation": TASK_LEVEL,
        "higher_is_better": True,
    }
    assert competitive.higher_is_better()["svo_angle"] is False and competitive.higher_is_better()["category"] is None
    assert "value_rationality" not in novalue.higher_is_better()
    assert lexicon.higher_is_better()["why_unscored"] is None
    assert {t.VERSION for t in (pvq, lexicon)} == {2.0} and competitive.VERSION == 2.1


# -- how settings reach a task ---------------------------------------------------------------------------------
def _cli_config(*args: str):
    """lm-eval's own reading of an ``lm_eval`` command line, as its ``run`` subcommand does it."""
    from lm_eval._cli.harness import HarnessCLI
    from lm_eval.config.evaluate_config import EvaluatorConfig

    ns = HarnessCLI()._parser.parse_args(["run", *args])
    return EvaluatorConfig.from_cli(ns)


def test_command_line_model_args_and_metadata_reach_the_task_merged():
    cfg = _cli_config(
        "--model", "hf", "--model_args", "pretrained=org/m,device=cpu", "--tasks", "univar_pvq_eng",
        "--metadata", '{"encoder": "minilm", "device": "cuda:7"}',
    )  # fmt: skip
    assert cfg.metadata == {"pretrained": "org/m", "device": "cuda:7", "encoder": "minilm"}  # --metadata wins
    task = cfg.process_tasks(cfg.metadata).load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    metadata = task.config.metadata
    assert {k: metadata[k] for k in ("pretrained", "encoder", "version")} == {
        "pretrained": "org/m",
        "encoder": "minilm",
        "version": 2.0,
    }
    assert lm_eval_api.task_metadata({"metadata": metadata}).keys() == {
        "pretrained",
        "device",
        "encoder",
        "univar_artifacts",
    }
    assert task.settings.model == "org/m" and task.settings.encoder_device is None  # device is the model's


def test_simple_evaluate_merges_model_args_into_the_metadata(tmp_path, monkeypatch):
    import lm_eval
    import lm_eval.evaluator as evaluator

    seen = {}

    class Stop(Exception):
        pass

    class Capture:
        def __init__(self, metadata=None, **kw):
            seen["metadata"] = metadata
            raise Stop

    monkeypatch.setattr(evaluator, "TaskManager", Capture)
    with pytest.raises(Stop):
        lm_eval.simple_evaluate(
            model="dummy", model_args="pretrained=org/api", tasks=["univar_pvq_eng"], metadata={"encoder": "minilm"}
        )
    assert seen["metadata"] == {"pretrained": "org/api", "encoder": "minilm"}


# -- what lm-eval does not hand a task: --output_path, read with lm-eval's own parser -----------------------------
@pytest.mark.parametrize(
    "argv, output",
    [
        ([LM_EVAL, "--model", "hf", "--tasks", "t", "--output_path", "runs"], "runs"),
        ([LM_EVAL, "run", "--model", "hf", "--tasks", "t", "-o", "runs/r.json"], "runs/r.json"),
        ([LM_EVAL, "--tasks", "t", "--output_path=o", "--metadata", "encoder=minilm", "bank=refs/"], "o"),
        (["/site/lm_eval/__main__.py", "--model", "hf", "--limit", "4", "-o", "x"], "x"),
        ([LM_EVAL, "--model", "hf", "--tasks", "t"], None),
        ([LM_EVAL, "ls", "tasks"], None),
        (["notebook.py", "--output_path", "elsewhere"], None),  # a script's own arguments are not lm_eval's
        (["/usr/bin/pytest", "-o", "x"], None),
    ],
)
def test_output_path_from_the_command_line(argv, output):
    assert command_line(argv) == CommandLine(output_path=output)
    if output:  # the same answer as lm-eval's own reading
        assert _cli_config(*[a for a in argv[1:] if a != "run"]).output_path == output


def test_output_path_from_a_config_file(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("model: hf\ntasks: [univar_pvq_eng]\noutput_path: from-file/\n")
    assert command_line([LM_EVAL, "--config", str(config)]).output_path == "from-file/"
    assert command_line([LM_EVAL, "--config", str(config), "-o", "cli"]).output_path == "cli"  # the CLI wins


def test_preflight_is_the_one_exit(capsys):
    from univar_eval.errors import UserError

    def bad():
        raise UserError("what is wrong; how to fix it")

    with pytest.raises(SystemExit) as exit_:
        lm_eval_api.preflight("univar_pvq_eng", bad)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: univar_pvq_eng: what is wrong; how to fix it\n"
    assert lm_eval_api.preflight("t", lambda: 7) == 7
    # outside the univar-eval command (cli/), nothing else ends the process
    raisers = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "univar_eval").rglob("*.py")
        if "cli" not in p.parts and ("raise SystemExit" in p.read_text() or "sys.exit(" in p.read_text())
    ]
    assert raisers == ["univar_eval/harness/lm_eval_api.py"]


# -- task discovery --------------------------------------------------------------------------------------------
def test_discovery_relies_on_task_manager_include_path():
    from lm_eval.tasks import TaskManager

    from univar_eval import _autoload
    from univar_eval.resources import tasks_dir

    init = TaskManager.__init__
    original = getattr(init, "__wrapped__", init)
    assert "include_path" in inspect.signature(original).parameters
    assert getattr(init, _autoload._MARK, False)  # the startup hook wrapped it in this process
    manager = TaskManager()
    assert "univar_pvq_eng" in manager.all_tasks and Path(manager.include_path[0]) == tasks_dir()


def test_what_the_plugin_uses_raises_no_lm_eval_deprecation(tmp_path):
    import lm_eval
    import lm_eval.tasks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm_eval.simple_evaluate(
            model="dummy",
            model_args="pretrained=org/contract",
            tasks=["univar_pvq_eng", "hvae_svo_prosocial"],
            limit=2,
            metadata={"encoder": "minilm", "output": str(tmp_path)},
        )
    ours = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning)
        and ("lm_eval" in Path(w.filename).parts or "univar_eval" in Path(w.filename).parts)
    ]
    assert ours == []


# -- the real command line -------------------------------------------------------------------------------------
def _lm_eval(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [lm_eval_executable(), "--model", "dummy", *args],
        cwd=cwd,
        env={**os.environ, **OFFLINE_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.e2e
def test_command_line_run_with_a_one_answer_model(tmp_path):
    proc = _lm_eval(
        [
            "--model_args", "pretrained=org/contract", "--tasks", "univar_pvq_eng", "--limit", "12",
            "--output_path", "runs", "--metadata", json.dumps({"encoder": "minilm"}),
        ],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path / "runs")
    res = results["results"]["univar_pvq_eng"]
    assert res["n_answers,none"] == 12
    assert res["value_dispersion,none"] == 0.0  # "lol" to every question: no spread in what it said
    assert results["versions"]["univar_pvq_eng"] == 2.0
    [folder] = (tmp_path / "runs" / "org__contract").glob("univar_*/univar_pvq_eng")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["univar_eval_version"] == univar_eval.__version__  # the code that wrote it
    assert manifest["model"] == "org/contract"  # from --model_args, merged into the metadata


@pytest.mark.e2e
@pytest.mark.parametrize(
    "metadata, env, message",
    [
        ({"encodr": "minilm"}, {}, "metadata key 'encodr' is not a univar-eval setting; did you mean 'encoder'?"),
        ({"encoder": "minilm"}, {"UNIVAR_EVAL_TRANSLATER": "none"}, "did you mean UNIVAR_EVAL_TRANSLATOR?"),
        ({"encoder": "minilm", "repeats": 3}, {}, "repeats=3 with greedy decoding gives 3 identical answers"),
    ],
)
def test_command_line_stops_before_generation_in_one_line(tmp_path, metadata, env, message, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    proc = _lm_eval(
        ["--tasks", "univar_pvq_eng", "--limit", "2", "--output_path", "runs", "--metadata", json.dumps(metadata)],
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: univar_pvq_eng: ") and message in errors[0]
    assert "Traceback" not in proc.stderr and "Running generate_until requests" not in proc.stderr
