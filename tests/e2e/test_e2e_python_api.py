"""End to end through the Python API: ``lm_eval.simple_evaluate`` with the tiny model, in this process.

Not the command line, so the model name and the output folder come from the settings: lm-eval merges
``model_args`` into every task's metadata; a hand-built ``TaskManager`` passes ``model``/``output``.
The model arguments also carry ``device`` and ``batch_size``: they are the model's, not the encoder's.
"""

from __future__ import annotations

import pytest
from lm_eval.utils import sanitize_model_name

from univar_eval.pipeline import embed
from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.e2e

LIMIT = 4


@pytest.fixture(scope="module")
def api_runs(tiny_lm, tmp_path_factory):
    import lm_eval
    from lm_eval.tasks import TaskManager

    work = tmp_path_factory.mktemp("python-api")
    seen: list[tuple] = []  # (device, batch size) each time the encoder is used
    real_load, real_encode = embed.load_encoder, embed.cached_encode

    def load_encoder(name, device=None):
        seen.append(("device", device))
        return real_load(name, device=device)

    def cached_encode(encoder, texts, *, batch_size=32, progress=None):
        seen.append(("batch_size", batch_size))
        return real_encode(encoder, texts, batch_size=batch_size, progress=progress)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("UNIVAR_EVAL_OUTPUT", raising=False)
        mp.delenv("UNIVAR_EVAL_DEVICE", raising=False)
        mp.delenv("UNIVAR_EVAL_BATCH_SIZE", raising=False)
        mp.setattr(embed, "load_encoder", load_encoder)
        mp.setattr(embed, "cached_encode", cached_encode)
        # 1. simple_evaluate builds its own TaskManager (metadata = model_args | metadata)
        own = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={tiny_lm},dtype=float32,device=cpu,batch_size=8",
            tasks=["univar_pvq_eng"],
            limit=LIMIT,
            metadata={"encoder": "minilm"},
        )
        # 2. the caller passes a TaskManager: the `model` and `output` settings name the model and the folder
        mine = work / "mine"
        passed = lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(tiny_lm), "dtype": "float32"},
            tasks=["univar_pvq_eng"],
            limit=2,
            device="cpu",
            task_manager=TaskManager(metadata={"encoder": "minilm", "model": "my-notebook-model", "output": str(mine)}),
        )
    return work, own, passed, seen


def test_artifacts_in_the_documented_default_folder_with_the_model_name(api_runs, tiny_lm):
    work, own, _, _ = api_runs
    res = own["results"]["univar_pvq_eng"]
    assert res["n_answers,none"] + res["n_empty,none"] == LIMIT
    # ./univar-runs/<model as lm-eval names its folder>/univar_<time>/<task>
    folders = sorted(work.glob("univar-runs/*/univar_*/univar_pvq_eng"))
    assert [f.parent.parent.name for f in folders] == [sanitize_model_name(str(tiny_lm))]
    dist = ValueDistribution.load(folders[0])
    assert dist.manifest["model"] == str(tiny_lm)
    assert dist.manifest["counts"]["n_answers"] == res["n_answers,none"]


def test_a_passed_task_manager_names_model_and_folder(api_runs):
    work, _, passed, _ = api_runs
    folders = sorted((work / "mine").glob("univar_*/univar_pvq_eng"))
    assert len(folders) == 1
    dist = ValueDistribution.load(folders[0])
    assert dist.manifest["model"] == "my-notebook-model"
    res = passed["results"]["univar_pvq_eng"]
    assert res["n_answers,none"] + res["n_empty,none"] == 2
    assert not (work / "univar-runs" / "my-notebook-model").exists()


def test_model_arguments_device_and_batch_size_are_not_the_encoders(api_runs):
    _, _, _, seen = api_runs
    # the encoder ran with its own defaults (device chosen by the encoder, batch 32), not the model's cpu/8
    assert ("batch_size", 8) not in seen and ("batch_size", 32) in seen
    assert ("device", "cpu") not in seen and ("device", None) in seen
