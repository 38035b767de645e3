"""Run settings against what lm-eval hands the tasks: metadata = model arguments merged with --metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from univar_eval import settings as settings_mod
from univar_eval.harness import task_base
from univar_eval.harness.task_base import _cli_metadata_keys, artifact_dir, run_model_name
from univar_eval.settings import RunSettings, model_name, resolve

LM_EVAL = "/venv/bin/lm_eval"


def test_model_arguments_do_not_set_the_encoders_device_or_batch_size(caplog):
    # what lm-eval passes for --model_args pretrained=X,device=cpu,batch_size=8 --metadata '{"encoder": "minilm"}'
    merged = {"pretrained": "org/model-7b", "device": "cpu", "batch_size": 8, "encoder": "minilm"}
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        s = resolve(merged, environ={})
    assert (s.encoder_device, s.encoder_batch_size, s.encoder, s.model) == (None, 32, "minilm", "org/model-7b")
    assert "deprecated" not in caplog.text


def test_new_names_and_environment_variables():
    s = resolve({"encoder_device": "cuda:1", "encoder_batch_size": "4", "device": "cpu", "batch_size": 8}, environ={})
    assert (s.encoder_device, s.encoder_batch_size) == ("cuda:1", 4)
    s = resolve(
        {"device": "cpu", "batch_size": 8}, environ={"UNIVAR_EVAL_DEVICE": "cuda:2", "UNIVAR_EVAL_BATCH_SIZE": "16"}
    )
    assert (s.encoder_device, s.encoder_batch_size) == ("cuda:2", 16)
    assert (s.device, s.batch_size) == ("cuda:2", 16)  # read-only aliases for older code


def test_old_names_from_metadata_still_work_with_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(settings_mod, "_warned", set())
    argv = [
        LM_EVAL,
        "--model",
        "hf",
        "--model_args",
        "pretrained=x",
        "--metadata",
        '{"encoder": "minilm", "device": "cuda:3", "batch_size": 5}',
    ]
    keys = _cli_metadata_keys(argv)
    assert keys == {"encoder", "device", "batch_size"}
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        for _ in range(3):  # one task each: one warning per name and process
            s = resolve(
                {"pretrained": "x", "encoder": "minilm", "device": "cuda:3", "batch_size": 5},
                environ={},
                user_keys=keys,
            )
            assert (s.encoder_device, s.encoder_batch_size) == ("cuda:3", 5)
    assert caplog.text.count("'device' is deprecated") == 1 and caplog.text.count("'encoder_batch_size'") == 1
    # key=value form of --metadata, and python -m lm_eval
    assert _cli_metadata_keys(["/x/lm_eval/__main__.py", "--metadata", "device=cpu", "bank=refs/"]) == {
        "device",
        "bank",
    }
    assert _cli_metadata_keys([LM_EVAL, '--metadata={"batch_size": 2}']) == {"batch_size"}
    # a script's own arguments are not lm_eval's: nothing counts as typed in --metadata
    assert _cli_metadata_keys(["train.py", "--metadata", '{"device": "cpu"}']) == set()


def test_model_name_from_merged_model_arguments():
    assert model_name({"pretrained": "base", "peft": "adapter"}) == "adapter"
    assert model_name({"model": "gpt-4o-mini", "base_url": "http://x"}) == "gpt-4o-mini"
    assert model_name({"encoder": "minilm"}) is None

    class Loaded:  # simple_evaluate(model_args={"pretrained": <a loaded transformers model>})
        class config:
            name_or_path = "org/loaded"

    assert model_name({"pretrained": Loaded()}) == "org/loaded"
    assert resolve({}, environ={"UNIVAR_EVAL_MODEL": "from-env"}).model == "from-env"


def test_artifact_dir_cli_and_python_api(tmp_path):
    stamp = f"univar_{task_base.RUN_STAMP}"
    s = RunSettings(model="org/m")
    # lm_eval CLI: beside --output_path, in lm-eval's model folder (unchanged)
    cli = [LM_EVAL, "--model", "hf", "--model_args", "pretrained=org/m", "--output_path", "runs"]
    assert artifact_dir("t", s, cli) == Path("runs/org__m") / stamp / "t"
    assert artifact_dir("t", s, [*cli[:-1], "runs/r.json"]) == Path("runs") / stamp / "t"
    # the Python API: a script's --output_path means nothing; ./univar-runs/<model>/ unless `output` is set
    notebook = ["notebook.py", "--output_path", "elsewhere"]
    assert artifact_dir("t", s, notebook) == Path("univar-runs/org__m") / stamp / "t"
    assert artifact_dir("t", RunSettings(model="org/m", output=str(tmp_path)), ["x.py"]) == tmp_path / stamp / "t"
    assert artifact_dir("t", RunSettings(), ["x.py"]) == Path("univar-runs/model") / stamp / "t"
    # model name: the setting first, else --model_args of the command line
    assert run_model_name(RunSettings(), [LM_EVAL, "-a", '{"pretrained": "p/q"}']) == "p/q"
    assert run_model_name(RunSettings(), ["x.py", "-a", "pretrained=p/q"]) is None


def test_unknown_model_name_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(task_base, "_warned_unknown_model", False)
    monkeypatch.setattr(task_base.sys, "argv", ["notebook.py"])
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        task_base._warn_if_model_unknown(RunSettings(model="named"))
        assert not caplog.text
        for _ in range(3):  # one call per task
            task_base._warn_if_model_unknown(RunSettings())
    assert caplog.text.count("model's name is unknown") == 1


def test_task_manager_passes_the_model_setting(caplog, monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setattr(task_base, "_warned_unknown_model", False)
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        tasks = TaskManager(metadata={"encoder": "minilm", "model": "my-model"}).load(["univar_pvq_eng"])["tasks"]
    assert "unknown" not in caplog.text
    assert tasks["univar_pvq_eng"].settings.model == "my-model"


@pytest.mark.parametrize("argv0", ["/usr/bin/lm_eval", "/usr/bin/lm-eval", "/site/lm_eval/__main__.py"])
def test_cli_detection(argv0):
    assert task_base._cli_argv([argv0, "--tasks", "x"]) == [argv0, "--tasks", "x"]
    assert task_base._cli_argv(["/usr/bin/pytest", "--tasks"]) == []
