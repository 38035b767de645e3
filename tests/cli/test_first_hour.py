"""The first hour of a new user (issue 16): nothing lost, runs that know who they are, honest reasons, little noise."""

from __future__ import annotations

import json
import logging
import math
import warnings

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.errors import UserError
from univar_eval.runs.folders import find_runs, load_run
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

ENC = {"name": "minilm", "revision": None, "dimension": 8, "fingerprint": [0.1] * 8, "fingerprint_id": "fp"}


def unit(rng, n, d=8, shift=0.0):
    x = rng.normal(size=(n, d))
    x[:, 0] += shift
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def save_run(model_dir, stamp, n, rng, model="ckpt", with_results=True):
    """One lm_eval run as it lands on disk: univar_<stamp>/<task>/ and a results file written after it."""
    m = {
        "format": "univar-eval/value-distribution/1",
        "model": model,
        "task": "univar_pvq_eng",
        "lang": "eng",
        "questionnaire": "pvq",
        "questionnaire_version": "v1",
        "encoder": ENC,
        "translator": {"name": "none"},
        "created": stamp,
    }
    folder = model_dir / f"univar_{stamp}"
    ValueDistribution(unit(rng, n), [{"id": f"q{i}"} for i in range(n)], m).save(folder / "univar_pvq_eng")
    if with_results:
        results = {
            "model_name": model,
            "results": {"univar_pvq_eng": {"n_answers,none": n}},
            "configs": {"univar_pvq_eng": {"metadata": {"univar_artifacts": str(folder)}}},
        }
        (model_dir / f"results_{stamp}.123456.json").write_text(json.dumps(results))
    return folder


# -- item 3: several runs of one model are never merged or silently replaced ----------------------------
@pytest.fixture()
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    model_dir = tmp_path / "runs" / "ckpt"
    save_run(model_dir, "2026-11-29T01-00-00", 20, rng)
    save_run(model_dir, "2026-11-29T02-00-00", 3, rng)
    bank = Bank(tmp_path / "bank", create=True)
    m = {
        "format": "univar-eval/value-distribution/1",
        "model": "base",
        "task": "univar_pvq_eng",
        "lang": "eng",
        "questionnaire": "pvq",
        "questionnaire_version": "v1",
        "encoder": ENC,
        "translator": {"name": "none"},
    }
    bank.add(ValueDistribution(unit(rng, 20), [{"id": f"q{i}"} for i in range(20)], m), model="base", source="t")
    return tmp_path, model_dir, bank


def test_runs_pair_results_with_their_artifacts(two_runs):
    _, model_dir, _ = two_runs
    runs = find_runs(model_dir)
    assert [(r.stamp, len(r.distributions), len(r.results)) for r in runs] == [
        ("2026-11-29T01-00-00", 1, 1),
        ("2026-11-29T02-00-00", 1, 1),
    ]
    assert all(r.results[0].name.startswith(f"results_{r.stamp}") for r in runs)


def test_several_runs_of_one_model_are_refused_and_listed(two_runs, capsys):
    tmp, model_dir, bank = two_runs
    with pytest.raises(
        UserError, match=r"holds 2 runs of ckpt .*2026-11-29T01-00-00.*2026-11-29T02-00-00.*--run latest"
    ):
        load_run(model_dir)
    for argv in (
        ["gate", str(model_dir), "--bank", str(bank.path), "--against", "base"],
        ["compare", str(model_dir), "--bank", str(bank.path)],
        ["leaderboard", str(model_dir)],
        ["bank", "add", "--bank", str(tmp / "b2"), "--name", "x", str(model_dir)],
        ["map", str(model_dir), "--bank", str(bank.path), "-o", str(tmp / "m.png")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "holds 2 runs of ckpt" in err and "--run latest" in err and len(err.strip().splitlines()) == 1


def test_run_latest_or_stamp_picks_one_and_says_which(two_runs, capsys):
    tmp, model_dir, bank = two_runs
    assert [len(d) for d in load_run(model_dir, run="latest")] == [3]
    assert [len(d) for d in load_run(model_dir, run="2026-11-29T01-00-00")] == [20]
    assert [len(d) for d in load_run(model_dir, run="univar_2026-11-29T01")] == [20]  # a unique prefix is enough
    with pytest.raises(UserError, match="no run '2025' of ckpt"):
        load_run(model_dir, run="2025")
    capsys.readouterr()
    code = main(
        [
            "gate",
            str(model_dir),
            "--run",
            "2026-11-29T01-00-00",
            "--bank",
            str(bank.path),
            "--against",
            "base",
            "--permutations",
            "99",
        ]
    )
    out, err = capsys.readouterr()
    assert code in (0, 1) and "insufficient" not in out  # the 20-answer run, not the newest 3-answer one
    # one line for the one candidate read: where, which run, how many answers, how they were embedded
    assert err.splitlines() == [
        (
            f"read {model_dir / 'univar_2026-11-29T01-00-00'} (run 2026-11-29T01-00-00): "
            "univar-eval run artifacts; ckpt: 20 answers in univar_pvq_eng; embedded by the run "
            "with minilm@None (fingerprint fp)"
        )
    ]
    assert main(["leaderboard", str(model_dir), "--run", "latest", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)["rows"]
    assert len(rows) == 1
    assert [ln for ln in err.splitlines() if ln.startswith("read")] == [
        (
            f"read {model_dir / 'univar_2026-11-29T02-00-00'} (run 2026-11-29T02-00-00): univar-eval run artifacts; "
            "ckpt: 3 answers in univar_pvq_eng; embedded by the run with minilm@None (fingerprint fp)"
        )
    ]


def test_one_run_is_read_without_asking_and_named(tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = save_run(tmp_path / "runs" / "ckpt", "2026-11-29T01-00-00", 12, rng)
    assert [len(d) for d in load_run(tmp_path / "runs")] == [12]
    assert (
        capsys.readouterr().err == f"read {folder} (run 2026-11-29T01-00-00): 1 value distribution, lm-eval results\n"
    )


def test_gate_says_in_one_line_what_it_read_and_warns_of_answers_not_embedded(two_runs, capsys):
    _, model_dir, bank = two_runs
    pending = model_dir / "univar_2026-11-29T02-00-00" / "univar_pvq_deu"
    pending.mkdir()
    (pending / "manifest.json").write_text(
        json.dumps(
            {"format": "univar-eval/pending-answers/1", "task": "univar_pvq_deu", "n_answers": 0, "error": "oom"}
        )
    )
    assert main(
        [
            "gate",
            str(model_dir),
            "--run",
            "latest",
            "--bank",
            str(bank.path),
            "--against",
            "base",
            "--permutations",
            "99",
            "--bootstrap",
            "9",
        ]
    ) in (0, 1)
    folder = model_dir / "univar_2026-11-29T02-00-00"
    assert capsys.readouterr().err.splitlines() == [
        (
            f"read {folder} (run 2026-11-29T02-00-00): univar-eval run artifacts; ckpt: 3 answers in univar_pvq_eng; "
            "embedded by the run with minilm@None (fingerprint fp)"
        ),
        f"warning: univar_pvq_deu: answers kept but not embedded (oom); finish with `univar-eval embed {folder}`",
    ]


def test_two_models_in_one_path_are_two_rows_never_one(tmp_path, capsys):
    rng = np.random.default_rng(2)
    save_run(tmp_path / "runs" / "a", "2026-11-29T01-00-00", 12, rng, model="a")
    save_run(tmp_path / "runs" / "b", "2026-11-29T01-00-00", 12, rng, model="b")
    assert main(["leaderboard", str(tmp_path / "runs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(r["model"] for r in rows) == ["a", "b"]


def test_bank_add_takes_the_samples_and_artifacts_of_the_chosen_run(tmp_path, capsys):
    from univar_eval.runs.folders import run_sources
    from univar_eval.runs.results import artifacts_for_samples

    rng = np.random.default_rng(3)
    d = tmp_path / "runs" / "ckpt"
    first = save_run(d, "2026-11-29T01-00-00", 5, rng)
    second = save_run(d, "2026-11-29T02-00-00", 5, rng)
    for stamp in ("2026-11-29T01-00-00", "2026-11-29T02-00-00"):
        (d / f"samples_univar_pvq_eng_{stamp}.5.jsonl").write_text("")
    assert (
        artifacts_for_samples(d / "samples_univar_pvq_eng_2026-11-29T01-00-00.5.jsonl", "univar_pvq_eng")
        == first / "univar_pvq_eng"
    )
    assert (
        artifacts_for_samples(d / "samples_univar_pvq_eng_2026-11-29T02-00-00.5.jsonl", "univar_pvq_eng")
        == second / "univar_pvq_eng"
    )
    assert run_sources([str(d)], "2026-11-29T01-00-00") == [
        str(d / "samples_univar_pvq_eng_2026-11-29T01-00-00.5.jsonl")
    ]
    with pytest.raises(UserError, match="holds 2 runs"):
        run_sources([str(d)])


# -- item 1: answers are kept when aggregation fails; `univar-eval embed` finishes the job ---------------
def test_failed_embedding_keeps_answers_and_embed_finishes(tmp_path, monkeypatch, caplog, capsys):
    from lm_eval.tasks import TaskManager

    import univar_eval.harness.univar_task as task_mod

    tm = TaskManager(metadata={"encoder": "minilm", "output": str(tmp_path)})
    task = tm.load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    docs = list(task.test_docs())[:3]
    per_doc = [
        task.process_results(doc, [[f"I would help, reason {i}.", f"No, reason {i}."]]) for i, doc in enumerate(docs)
    ]

    def broken(*a, **k):
        raise OSError("disk quota exceeded\nsecond line of a long traceback")

    monkeypatch.setattr(task_mod, "build_distribution", broken)
    agg = task.aggregation()
    raw = {name: [d[name] for d in per_doc] for name in per_doc[0]}
    with caplog.at_level(logging.ERROR, logger="univar_eval"):
        values = [agg[name](raw[name]) for name in raw]
    assert all(isinstance(v, float) and math.isnan(v) for v in values)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "disk quota exceeded" in errors[0].getMessage()
    assert "univar-eval embed" in errors[0].getMessage()
    folder = next(tmp_path.glob("univar_*/univar_pvq_eng"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["error"] == "disk quota exceeded" and manifest["format"] == "univar-eval/pending-answers/1"
    rows = [json.loads(line) for line in (folder / "answers.jsonl").read_text().splitlines()]
    assert [(r["doc_index"], r["answer"]) for r in rows] == [(i, f"I would help, reason {i}.") for i in range(3)]
    with pytest.raises(UserError, match="no univar-eval artifacts"):
        load_run(tmp_path)  # nothing embedded yet: never an empty pass
    assert "answers kept but not embedded (disk quota exceeded)" in capsys.readouterr().err

    monkeypatch.undo()
    assert main(["embed", str(tmp_path)]) == 0
    assert "embedded univar_pvq_eng: 3 answers with minilm" in capsys.readouterr().out
    [dist] = load_run(tmp_path)
    assert len(dist) == 3 and dist.manifest["encoder"]["name"] == "minilm" and "error" not in dist.manifest
    assert main(["embed", str(tmp_path)]) == 2  # nothing left to do


def test_missing_encoder_fails_before_generation_in_one_line(tmp_path, capsys):
    from lm_eval.tasks import TaskManager

    with pytest.raises(SystemExit) as exc:
        TaskManager(metadata={"encoder": str(tmp_path / "no-such-encoder")}).load(["univar_pvq_eng"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: univar_pvq_eng: ")


def test_missing_translator_names_the_none_option(tmp_path, capsys):
    from lm_eval.tasks import TaskManager

    empty = tmp_path / "not-a-translator"
    empty.mkdir()
    with pytest.raises(SystemExit):
        TaskManager(metadata={"encoder": "minilm", "translator": str(empty)}).load(["univar_pvq_deu"])
    err = capsys.readouterr().err
    assert "non-English tasks need a translator" in err and '"translator": "none"' in err


def test_artifact_folder_recorded_in_task_metadata(tmp_path):
    from lm_eval.tasks import TaskManager

    task = TaskManager(metadata={"encoder": "minilm", "output": str(tmp_path)}).load(["univar_pvq_eng"])["tasks"][
        "univar_pvq_eng"
    ]
    where = task.dump_config()["metadata"]["univar_artifacts"]
    assert where.startswith(str(tmp_path)) and "/univar_" in where


# -- item 6: no per-task "Custom kwargs" warning ----------------------------------------------------------
def test_no_custom_kwargs_warning_per_task(caplog):
    from lm_eval.tasks import TaskManager

    with caplog.at_level(logging.WARNING):
        tasks = TaskManager(metadata={"encoder": "minilm", "translator": "none"}).load(
            ["univar_pvq_eng", "univar_pvq_deu", "hvae_svo_altruistic"]
        )["tasks"]
    assert len(list(tasks["univar_pvq_deu"].test_docs())) > 10
    assert not [r for r in caplog.records if "Custom kwargs" in r.getMessage()]
    assert not [
        r
        for r in caplog.records
        if "not found in the evaluate library" in r.getMessage() or "Could not find registered metric" in r.getMessage()
    ]


# -- item 5: --limit below min_answers is said before generation -------------------------------------------
def test_limit_below_min_answers_warns(caplog):
    from lm_eval.tasks import TaskManager

    task = TaskManager(metadata={"encoder": "minilm"}).load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        task.build_all_requests(limit=3)  # lm-eval hands the task what --limit 3 leaves, before generation
    assert any("--limit leaves 3 answers, fewer than min_answers (10)" in r.getMessage() for r in caplog.records)


# -- item 9: reasons name the real cause ---------------------------------------------------------------------
def test_hvae_reasons_name_the_cause():
    from univar_eval.hvae.task import why_no_score

    nan = float("nan")
    assert "SVO items missing" in why_no_score({"value_rationality": nan, "unparsed_rate": nan, "n_complete": 0})
    assert "--limit" in why_no_score({"unparsed_rate": nan})
    assert "50% of the answers had no parsable letter" in why_no_score({"unparsed_rate": 0.5, "n_complete": 0})


def test_gate_says_items_missing_for_a_limited_mc_run(tmp_path, capsys):
    nan = float("nan")
    run = tmp_path / "run"
    run.mkdir()
    metrics = {"svo_angle,none": nan, "value_rationality,none": nan, "unparsed_rate,none": nan, "n_complete,none": 0}
    (run / "results_2026-11-29T01-00-00.1.json").write_text(
        json.dumps({"model_name": "m", "results": {"hvae_svo_mc_altruistic": metrics}})
    )
    assert main(["gate", str(run), "--min-value-rationality", "0.5"]) == 1
    out = capsys.readouterr().out
    assert "SVO items missing" in out and "no parsable answers" not in out


# -- item 2: the persona models really differ, and a rebuild matches ----------------------------------------
def test_persona_models_differ_and_rebuild_matches(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from univar_eval.demo.personas import PERSONAS
    from univar_eval.demo.tiny_models import build_persona_lm
    from univar_eval.pipeline import questionnaire

    question = questionnaire.load("pvq", "eng").records[130]["question"]  # not among the training questions

    def answer(folder):
        model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        ids = tok(f"Question: {question}\nAnswer:", return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=30, do_sample=False)
        return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

    carer, achiever = (answer(build_persona_lm(tmp_path / p, p)) for p in ("carer", "achiever"))
    again = answer(build_persona_lm(tmp_path / "carer-again", "carer"))
    assert again == carer != achiever
    words = lambda persona: {w for a in PERSONAS[persona] for w in a.lower().split()}  # noqa: E731
    own = set(carer.lower().split())
    assert len(own & words("carer")) > len(own & words("achiever"))
    with pytest.raises(UserError, match="unknown persona"):
        build_persona_lm(tmp_path / "x", "villain")


# -- items 6 and 11: questionnaire versions summarised in compare's and the leaderboard's headers -----------
def test_versions_are_summarised_per_questionnaire():
    from univar_eval.runs.folders import summarise_versions

    many = [("pvq", f"hash{i}") for i in range(25)] + [("wvs", "w1"), ("wvs", "w1")]
    text = summarise_versions(many)
    assert text.startswith("pvq@") and text.endswith("(25 language versions), wvs@w1")
    assert summarise_versions(reversed(many)) == text  # order does not matter
    assert summarise_versions([("pvq", f"hash{i}") for i in range(24)] + [("pvq", "other")]) != text.split(", ")[0]


def test_leaderboard_header_names_questionnaire_versions(tmp_path, capsys):
    rng = np.random.default_rng(4)
    save_run(tmp_path / "runs" / "a", "2026-11-29T01-00-00", 12, rng, model="a")
    assert main(["leaderboard", str(tmp_path / "runs" / "a")]) == 0
    assert "questionnaires pvq@v1; distance mmd" in capsys.readouterr().out


# -- item 6: no raw numpy RuntimeWarning from the statistics ----------------------------------------------
def test_small_paired_sets_give_no_runtime_warning():
    from univar_eval.stats.distance import compare_sets

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = compare_sets(unit(rng, 2), unit(rng, 2), n_permutations=20, n_bootstrap=50)
        assert math.isfinite(r.distance) and r.p_value is not None
        r = compare_sets(
            unit(rng, 3),
            unit(rng, 3),
            groups_x=["a", "b", "c"],
            groups_y=["a", "b", "c"],
            n_permutations=50,
            n_bootstrap=50,
        )
        assert math.isfinite(r.distance)  # an interval that cannot be had is NaN with a reason, never a warning
        r = compare_sets(
            unit(rng, 2), unit(rng, 2), groups_x=["a", "a"], groups_y=["a", "a"], n_permutations=20, n_bootstrap=20
        )
        assert r.distance == r.distance or r.problem  # NaN only with a stated problem


# -- item 11: the README's download hint is the error message's ---------------------------------------------
def test_readme_download_hint_is_the_error_message(monkeypatch):
    from pathlib import Path

    from univar_eval.pipeline.encoders import get_card
    from univar_eval.pipeline.nomic import resolve_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = get_card("univar-lambda-5")
    try:
        resolve_checkpoint(card.model_id, revision=card.revision)
    except UserError as e:
        hint = str(e).split("`")[1]
    else:
        pytest.skip("the encoder is in the local hub cache: no error to compare")
    assert hint == f"hf download {card.model_id} --revision {card.revision}"
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"`{hint}`" in readme and "huggingface-cli" not in readme
