"""Run settings against what lm-eval hands the tasks: metadata = model arguments merged with --metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from univar_eval.errors import UserError
from univar_eval.harness import task_base
from univar_eval.harness.task_base import artifact_dir, run_model_name
from univar_eval.settings import RunSettings, edit_distance, model_name, near_setting, resolve

LM_EVAL = "/venv/bin/lm_eval"


def test_model_arguments_do_not_set_the_encoders_device_or_batch_size(caplog):
    # what lm-eval passes for --model_args pretrained=X,device=cpu,batch_size=8 --metadata '{"encoder": "minilm"}'
    merged = {"pretrained": "org/model-7b", "device": "cpu", "batch_size": 8, "encoder": "minilm"}
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        s = resolve(merged, environ={})
    assert (s.encoder_device, s.encoder_batch_size, s.encoder, s.model) == (None, 32, "minilm", "org/model-7b")
    assert not caplog.text


def test_encoder_names_and_environment_variables():
    s = resolve({"encoder_device": "cuda:1", "encoder_batch_size": "4", "device": "cpu", "batch_size": 8}, environ={})
    assert (s.encoder_device, s.encoder_batch_size) == ("cuda:1", 4)
    s = resolve(
        {"device": "cpu", "batch_size": 8}, environ={"UNIVAR_EVAL_DEVICE": "cuda:2", "UNIVAR_EVAL_BATCH_SIZE": "16"}
    )
    assert (s.encoder_device, s.encoder_batch_size) == ("cuda:2", 16)
    assert not hasattr(s, "device") and not hasattr(s, "batch_size")  # the 0.1 aliases are gone


def test_edit_distance_counts_a_swap_as_one_edit():
    assert edit_distance("encodr", "encoder") == 1
    assert edit_distance("encdoer", "encoder") == 1
    assert edit_distance("translater", "translator") == 1
    assert edit_distance("min_answer", "min_answers") == 1
    assert edit_distance("kitten", "sitting") == 3


@pytest.mark.parametrize(
    "key, meant",
    [("encodr", "encoder"), ("translater", "translator"), ("min_answer", "min_answers"), ("repeat", "repeats"),
     ("Encoder", "encoder"), ("encoder_devic", "encoder_device"), ("banks", "bank")],
)  # fmt: skip
def test_a_misspelt_setting_is_refused_with_did_you_mean(key, meant):
    with pytest.raises(UserError) as err:
        resolve({key: "x", "pretrained": "org/m"}, environ={})
    message = str(err.value)
    assert f"metadata key {key!r} is not a univar-eval setting; did you mean {meant!r}?" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "key",
    # lm-eval model arguments of the hf, vllm and API backends: the model's, never refused
    ["pretrained", "revision", "dtype", "device", "batch_size", "max_batch_size", "trust_remote_code", "parallelize",
     "max_length", "tokenizer", "backend", "add_bos_token", "peft", "delta", "base_url", "num_concurrent",
     "max_retries", "tokenized_requests", "max_gen_toks", "seed", "path", "engine", "tensor_parallel_size",
     "data_parallel_size", "gpu_memory_utilization", "max_model_len", "timeout", "think_end_token",
     "enable_thinking", "name", "base", "config_source", "version", "univar_artifacts"],
)  # fmt: skip
def test_model_arguments_are_not_taken_for_misspelt_settings(key):
    assert near_setting(key) is None
    resolve({key: "x"}, environ={})


def test_an_unknown_variable_with_our_prefix_is_refused():
    with pytest.raises(
        UserError, match=r"UNIVAR_EVAL_ENCODR is not a univar-eval setting; did you mean UNIVAR_EVAL_ENCODER\?"
    ):
        resolve({}, environ={"UNIVAR_EVAL_ENCODR": "minilm"})
    with pytest.raises(UserError, match=r"UNIVAR_EVAL_SOMETHING_ELSE is not a univar-eval setting; \(known: "):
        resolve({}, environ={"UNIVAR_EVAL_SOMETHING_ELSE": "1"})
    env = {"UNIVAR_EVAL_NO_AUTOLOAD": "1", "UNIVAR_EVAL_CACHE": "/c", "UNIVAR_EVAL_CARDS": "/k", "OTHER_ENCODR": "x"}
    assert resolve({}, environ=env) == RunSettings()  # the variables we read elsewhere, and other prefixes


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
    stamp = "univar_S"
    s = RunSettings(model="org/m")
    # lm_eval CLI: beside --output_path, in lm-eval's model folder (unchanged)
    cli = [LM_EVAL, "--model", "hf", "--model_args", "pretrained=org/m", "--output_path", "runs"]
    assert artifact_dir("t", s, cli, stamp="S") == Path("runs/org__m") / stamp / "t"
    assert artifact_dir("t", s, [*cli[:-1], "runs/r.json"], stamp="S") == Path("runs") / stamp / "t"
    # the Python API: a script's --output_path means nothing; ./univar-runs/<model>/ unless `output` is set
    notebook = ["notebook.py", "--output_path", "elsewhere"]
    assert artifact_dir("t", s, notebook, stamp="S") == Path("univar-runs/org__m") / stamp / "t"
    out = RunSettings(model="org/m", output=str(tmp_path))
    assert artifact_dir("t", out, ["x.py"], stamp="S") == tmp_path / stamp / "t"
    assert artifact_dir("t", RunSettings(), ["x.py"], stamp="S") == Path("univar-runs/model") / stamp / "t"
    # the model name is the `model` setting: lm-eval merges --model_args into the metadata
    assert run_model_name(resolve({"pretrained": "p/q"}, environ={})) == "p/q"


def test_unknown_model_name_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(task_base, "_warned_unknown_model", False)
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
