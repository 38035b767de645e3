"""Every numeric option of every sub-command takes its bounds from ``univar_eval/cli/options.py``: a value
outside them is one ``error: --OPTION must be ..., got VALUE`` line and exit code 2, before any work starts."""

from __future__ import annotations

import argparse

import pytest

from univar_eval.cli import _subcommands, build_parser, main, options

DRIFT = ["drift", "run", "--bank", "b", "--against", "r"]
JUDGE = ["valuelex-judge", "s", "--base-url", "u", "--model", "m"]

# (command line up to the option, the option, its value(s), the message after "error: OPTION ")
BAD = [
    (["compare", "run"], "--permutations", "98", "must be at least 99, got 98"),
    (["compare", "run"], "--bootstrap", "-1", "must be at least 0, got -1"),
    (["compare", "run"], "--seed", "-3", "must be at least 0, got -3"),
    (["compare", "run"], "--min-answers", "1", "must be at least 2, got 1"),
    (["compare", "run"], "--batch-size", "0", "must be at least 1, got 0"),
    (["gate", "run"], "--alpha", "0", "must be between 0 and 1 (exclusive), got 0.0"),
    (["gate", "run"], "--alpha", "nan", "must be between 0 and 1 (exclusive), got nan"),
    (["gate", "run"], "--max-distance", "-0.1", "must be a finite number >= 0, got -0.1"),
    (["gate", "run"], "--max-distance", "inf", "must be a finite number >= 0, got inf"),
    (["gate", "run"], "--permutations", "0", "must be at least 99, got 0"),
    (["gate", "run"], "--permutations", "1e3", "must be a whole number, got '1e3'"),
    (["gate", "run"], "--min-answers", "1", "must be at least 2, got 1"),
    (
        ["gate", "run"],
        "--min-value-rationality",
        "1.2",
        "must be a finite number <= 1 (1 = the ideal chooser), got 1.2",
    ),
    (["gate", "run"], "--min-coverage", "1.5", "must be above 0 and at most 1, got 1.5"),
    (["gate", "run"], "--max-question-distance", "-1", "must be a finite number >= 0, got -1.0"),
    (["leaderboard", "run"], "--min-answers", "0", "must be at least 2, got 0"),
    (["gate", "run"], "--verify", "-1", "must be at least 0, got -1"),
    (["compare", "run"], "--verify", "some", "must be a whole number, got 'some'"),
    (DRIFT, "--alpha", "1", "must be between 0 and 1 (exclusive), got 1.0"),
    (DRIFT, "--permutations", "50", "must be at least 99, got 50"),
    (DRIFT, "--top", "-1", "must be at least 0, got -1"),
    (DRIFT, "--min-value-answers", "1", "must be at least 2, got 1"),
    (["identify", "src"], "--k", "0", "must be at least 1, got 0"),
    (["identify", "src"], "--test-size", "1.5", "must be between 0 and 1 (exclusive), got 1.5"),
    (["identify", "src"], "--epochs", "-1", "must be at least 0, got -1"),
    (["identify", "src"], "--lr", "0", "must be a finite number > 0, got 0.0"),
    (["identify", "src"], "--probe-batch-size", "0", "must be at least 1, got 0"),
    (["map", "run", "-o", "m.png"], "--dpi", "0", "must be a finite number > 0, got 0.0"),
    (["map", "run", "-o", "m.png"], "--size", "8 -6", "must be a finite number > 0, got -6.0"),
    (["map", "run", "-o", "m.png"], "--seed", "x", "must be a whole number, got 'x'"),
    (JUDGE, "--timeout", "0", "must be a finite number > 0, got 0.0"),
    (JUDGE, "--retries", "-1", "must be at least 0, got -1"),
    (["embed", "run"], "--batch-size", "-8", "must be at least 1, got -8"),
    (["tiny-model", "folder"], "--seed", "-1", "must be at least 0, got -1"),
    (["bank", "add", "src", "--bank", "b"], "--batch-size", "0", "must be at least 1, got 0"),
]


@pytest.mark.parametrize("before, option, value, message", BAD, ids=[f"{b[0]} {o} {v}" for b, o, v, _ in BAD])
def test_a_value_outside_its_bounds_is_one_line_and_exit_2(capsys, before, option, value, message):
    assert main([*before, option, *value.split()]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [f"error: {option} {message}"])


@pytest.mark.parametrize(
    "argv, dest, expected",
    [
        (["gate", "run", "--permutations", "99"], "permutations", 99),
        (["gate", "run", "--min-value-rationality", "-0.5"], "min_value_rationality", -0.5),
        (["gate", "run", "--alpha", "0.01", "--max-distance", "0"], "max_distance", 0.0),
        (["compare", "run", "--bootstrap", "0"], "bootstrap", 0),
        (["gate", "run", "--min-coverage", "1"], "min_coverage", 1.0),
        (["gate", "run", "--verify", "ALL"], "verify", -1),
        (["gate", "run", "--verify", "0"], "verify", 0),
        (["identify", "src", "--test-size", "0.25"], "test_size", 0.25),
        (["map", "run", "-o", "m.png", "--size", "6", "4.5"], "size", [6.0, 4.5]),
        (["drift", "run", "--bank", "b", "--against", "r", "--top", "0"], "top", 0),
    ],
)
def test_values_within_bounds_are_converted(argv, dest, expected):
    assert getattr(build_parser().parse_args(argv), dest) == expected


def test_every_numeric_option_uses_a_shared_rule():
    """No sub-command declares a bare ``type=int`` or ``type=float``: each number has its bounds here."""
    shared = {
        options.count,
        options.positive_int,
        options.permutations,
        options.min_answers,
        options.probability,
        options.share,
        options.verify_sample,
        options.positive_float,
        options.non_negative_float,
        options.rationality_floor,
    }
    seen = []
    for command in _subcommands(build_parser()):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction) or action.type is None:
                continue
            seen.append((command.prog, action.dest))
            assert action.type in shared, f"{command.prog} {action.option_strings}: type={action.type!r}"
    assert len(seen) >= 30  # the walk really reached the sub-commands


def test_other_usage_errors_keep_argparse_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gate", "run", "--no-such-option"])
    assert exc.value.code == 2 and "unrecognized arguments: --no-such-option" in capsys.readouterr().err
