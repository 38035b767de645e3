"""One path for repeats: lm-eval's task ``repeats`` (the YAML key, or the ``repeats`` metadata key that sets it),
every repeat kept, and decoding never switched behind the user's back: greedy repeats are refused before generation."""

from __future__ import annotations

import pytest

from univar_eval.errors import UserError
from univar_eval.harness.task_base import SAMPLING_HINT, apply_repeats, check_repeats, samples


def test_the_metadata_key_sets_lm_evals_repeats_and_nothing_else():
    config = {"generation_kwargs": {"do_sample": False, "temperature": 0.0, "max_gen_toks": 128}}
    apply_repeats(config, {"repeats": "3"})
    assert config == {"repeats": 3, "generation_kwargs": {"do_sample": False, "temperature": 0.0, "max_gen_toks": 128}}
    untouched = {"repeats": 2}
    apply_repeats(untouched, {})
    assert untouched == {"repeats": 2}  # the YAML's own repeats stand


@pytest.mark.parametrize("bad", [0, -1, "two", 2.5])
def test_bad_repeats_are_one_line_errors(bad):
    with pytest.raises(UserError, match="is not a whole number >= 1"):
        apply_repeats({}, {"repeats": bad})


@pytest.mark.parametrize(
    "kwargs, sampled",
    [
        ({"do_sample": False, "temperature": 0.0}, False),
        ({"do_sample": False, "temperature": 1.0}, False),  # hf decodes greedily with do_sample off
        ({"do_sample": True, "temperature": 0.0}, False),  # temperature 0 is greedy (API backends)
        ({"do_sample": True, "temperature": 0.7, "top_p": 0.95}, True),
        ({}, False),
    ],
)
def test_what_counts_as_sampling(kwargs, sampled):
    assert samples(kwargs) is sampled


def test_greedy_repeats_are_refused_in_one_line_naming_the_sampling_settings():
    with pytest.raises(UserError) as err:
        check_repeats("univar_pvq_eng", 4, "generate_until", {"do_sample": False, "temperature": 0.0})
    assert str(err.value) == (
        "repeats=4 with greedy decoding gives 4 identical answers per question; sample with "
        f"{SAMPLING_HINT} (UniVaR's sampling), or drop repeats"
    )
    with pytest.raises(UserError, match="log-likelihood task"):
        check_repeats("hvae_svo_mc_prosocial", 2, "multiple_choice", None)
    check_repeats("t", 4, "generate_until", {"do_sample": True, "temperature": 1.0})  # sampled: fine
    check_repeats("t", 1, "generate_until", {"do_sample": False})  # one answer: fine


def test_lm_eval_task_gets_the_repeats_and_keeps_its_decoding():
    from lm_eval.tasks import TaskManager

    task = TaskManager(metadata={"encoder": "minilm", "repeats": 3}).load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    assert task.config.repeats == 3 and task.config.generation_kwargs["do_sample"] is False
    with pytest.raises(SystemExit) as exit_:  # greedy: refused when lm-eval builds the requests
        task.build_all_requests(limit=2)
    assert exit_.value.code == 2
    task.set_config(key="generation_kwargs", value={"do_sample": True, "temperature": 1.0}, update=True)
    task.build_all_requests(limit=2)  # what --gen_kwargs do: now sampled, so accepted
    assert len(task.instances) == 2 and task.instances[0].repeats == 3
