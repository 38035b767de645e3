"""``--metadata '{"repeats": N}'`` asks every questionnaire question N times with UniVaR's sampling."""

from __future__ import annotations

import pytest

from univar_eval.errors import UserError
from univar_eval.harness.univar_task import SAMPLING, apply_repeats


def test_repeats_turn_on_sampling_unless_the_task_samples_already():
    config = {
        "metadata": {"repeats": 3},
        "generation_kwargs": {"do_sample": False, "temperature": 0.0, "max_gen_toks": 128},
    }
    apply_repeats(config)
    assert config["repeats"] == 3
    assert config["generation_kwargs"] == {**SAMPLING, "max_gen_toks": 128}
    sampled = {"metadata": {"repeats": "2"}, "generation_kwargs": {"do_sample": True, "temperature": 0.7}}
    apply_repeats(sampled)
    assert sampled["repeats"] == 2 and sampled["generation_kwargs"] == {"do_sample": True, "temperature": 0.7}
    untouched = {"metadata": {}, "generation_kwargs": {"do_sample": False}}
    apply_repeats(untouched)
    assert "repeats" not in untouched and untouched["generation_kwargs"] == {"do_sample": False}


@pytest.mark.parametrize("bad", [0, -1, "two", 2.5])
def test_bad_repeats_are_one_line_errors(bad):
    with pytest.raises(UserError, match="is not a whole number >= 1"):
        apply_repeats({"metadata": {"repeats": bad}})


def test_lm_eval_task_gets_the_repeats():
    from lm_eval.tasks import TaskManager

    task = TaskManager(metadata={"encoder": "minilm", "repeats": 3}).load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    assert task.config.repeats == 3 and task.config.generation_kwargs["do_sample"] is True
