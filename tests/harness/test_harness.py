"""The lm-eval plumbing shared by every task family: settings, where artifacts go, one run stamp per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from univar_eval.errors import UserError
from univar_eval.harness import task_base
from univar_eval.harness.task_base import _RunStamps, artifact_dir
from univar_eval.settings import DEFAULT_ENCODER, RunSettings, resolve


# -- settings.resolve ----------------------------------------------------------------------------------------
def test_metadata_beats_environment_beats_default():
    env = {"UNIVAR_EVAL_ENCODER": "labse", "UNIVAR_EVAL_MIN_ANSWERS": "7", "UNIVAR_EVAL_BANK": "/env/bank"}
    s = resolve({"encoder": "minilm"}, environ=env)
    assert s.encoder == "minilm"  # metadata
    assert s.min_answers == 7  # environment, as an integer
    assert s.bank == "/env/bank"  # environment
    assert s.translator == "nllb-600m"  # default
    assert resolve({}, environ={}).encoder == DEFAULT_ENCODER == "univar-lambda-5"
    # an empty environment variable counts as unset; metadata numbers given as text are converted
    assert resolve({"encoder_batch_size": "8"}, environ={"UNIVAR_EVAL_ENCODER": ""}) == RunSettings(
        encoder_batch_size=8
    )


@pytest.mark.parametrize(
    "metadata, env, name",
    [
        ({"min_answers": "ten"}, {}, "min_answers"),
        ({}, {"UNIVAR_EVAL_BATCH_SIZE": "3.5"}, "encoder_batch_size"),
    ],
)
def test_integer_settings_refuse_non_integers_in_one_line(metadata, env, name):
    with pytest.raises(UserError) as err:
        resolve(metadata, environ=env)
    assert str(err.value).startswith(f"setting {name}=") and "is not an integer" in str(err.value)
    assert "\n" not in str(err.value)


# -- artifact_dir ------------------------------------------------------------------------------------------
ARGV = ["lm_eval", "--model", "hf", "--model_args", "pretrained=org/Model-7B,dtype=float16", "--tasks", "univar_pvq"]


def test_artifact_dir_beside_lm_eval_output_under_the_model_name():
    # the model's name is the `model` setting: lm-eval merges --model_args pretrained=... into the metadata
    settings = resolve({"pretrained": "org/Model-7B", "dtype": "float16"}, environ={})
    path = artifact_dir("univar_pvq_eng", settings, ARGV + ["--output_path", "runs"], stamp="S")
    assert path == Path("runs") / "org__Model-7B" / "univar_S" / "univar_pvq_eng"


def test_artifact_dir_beside_a_results_file_and_with_json_model_args():
    argv = ["lm_eval", "--model_args", '{"pretrained": "org/m"}', "--output_path=out/results.json"]
    assert artifact_dir("t", RunSettings(), argv, stamp="S") == Path("out") / "univar_S" / "t"


def test_artifact_dir_output_setting_wins_and_default_folder():
    assert (
        artifact_dir("t", RunSettings(output="/data/u"), ARGV + ["-o", "runs"], stamp="S")
        == Path("/data/u") / "univar_S" / "t"
    )
    assert artifact_dir("t", RunSettings(), ["lm_eval"], stamp="S") == Path("univar-runs") / "model" / "univar_S" / "t"


# -- one stamp per run ---------------------------------------------------------------------------------------
def test_tasks_built_before_aggregation_share_a_stamp_and_a_later_run_gets_its_own():
    stamps = _RunStamps()
    first = stamps.for_new_task()
    assert stamps.for_new_task() == first  # a group's tasks are all built before any is evaluated
    stamps.mark_aggregated()
    second = stamps.for_new_task()
    assert second != first  # even within the same second
    assert stamps.for_new_task() == second == stamps.current_stamp()
    assert _RunStamps().current_stamp()  # before any task: a stamp all the same


def _hvae_task():
    from univar_eval.hvae.task import HVAETask, load_dataset

    return HVAETask(
        config={
            "task": "hvae_svo_altruistic",
            "custom_dataset": load_dataset,
            "dataset_path": None,
            "test_split": "test",
            "output_type": "generate_until",
            "num_fewshot": 0,
            "doc_to_target": "",
            "dataset_kwargs": {"target": "altruistic", "variant": "goal"},
            "generation_kwargs": {"until": ["\n\n"]},
            "metric_list": [
                {"metric": m, "aggregation": "task_level", "higher_is_better": None} for m in ("svo_angle", "category")
            ],
        }
    )


def test_two_runs_in_one_process_write_to_two_folders(monkeypatch):
    monkeypatch.setattr(task_base, "RUN_STAMPS", _RunStamps())
    a, b = _hvae_task(), _hvae_task()
    assert a.run_stamp == b.run_stamp
    # run 1 aggregates: the altruist's ideal letters give the published angle
    records = [a.record_of(doc, [["Goal: give.\nAnswer: " + doc["ideal"]]]) for doc in a.dataset["test"]]
    assert a._aggregate("svo_angle", records) == pytest.approx(61.39, abs=0.01)
    c = _hvae_task()  # run 2, same process
    assert c.run_stamp != a.run_stamp
    settings = RunSettings(output="out")
    assert artifact_dir("t", settings, stamp=a.run_stamp) != artifact_dir("t", settings, stamp=c.run_stamp)
    # without a stamp: the run under way
    assert artifact_dir("t", settings) == artifact_dir("t", settings, stamp=c.run_stamp)
    assert not hasattr(task_base, "RUN_STAMP")  # the 0.1 name is gone
