"""The one table renderer: one number format, and hostile names that stay inert in every output."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from univar_eval.reports import compare, gate
from univar_eval.reports.table import (
    Table,
    csv_text,
    fmt_number,
    fmt_ratio,
    markdown_text,
    plural,
    render,
    terminal_text,
    xml_text,
)

HOSTILE = "evil|<script>\x1b[31mred\x1b[0m\nnext\r=cmd"


# -- one number format ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, text",
    [
        (1 / 1001, "0.0010"),  # the smallest p-value of 1,000 permutations: compare and gate print it alike
        (0.05, "0.0500"),
        (7.085e-05, "0.0001"),  # rounds to a visible value
        (3e-05, "3e-05"),  # never "0.0000" for a non-zero distance, and no "<" (that means an upper bound)
        (-3e-05, "-3e-05"),
        (4.9e-05, "5e-05"),
        (0.0, "0.0000"),
        (1.03, "1.0300"),
        (-0.25, "-0.2500"),
        (float("nan"), "n/a"),
        (None, "-"),
        (12, "12"),
        (np.int64(3), "3"),
        (np.float32(0.25), "0.2500"),
    ],
)
def test_one_number_format(x, text):
    assert fmt_number(x) == text


def test_ratio_reads_as_a_ratio_and_counts_agree_in_number():
    assert fmt_ratio(1.8) == "1.80×" and fmt_ratio(None) == "-" and fmt_ratio(math.inf) == "-"
    assert plural(1, "model") == "1 model" and plural(2, "model") == "2 models"
    assert plural(1, "entry", "entries") == "1 entry" and plural(0, "entry", "entries") == "0 entries"


def _report(run: str = "m") -> dict:
    row = {
        "run": run,
        "task": "univar_pvq_eng",
        "questionnaire": "pvq",
        "lang": "eng",
        "reference": "ref",
        "distance": 3e-05,
        "p_value": 1 / 1001,
        "ci_low": 0.0,
        "ci_high": 0.0123,
        "n": 20,
        "n_ref": 20,
        "status": "ok",
        "control_distance": 0.01,
        "ratio_to_control": 1.8,
    }
    control = {
        **row,
        "task": "univar_control_eng",
        "questionnaire": "control",
        "distance": 0.01,
        "control_distance": 0.01,
        "ratio_to_control": None,
    }
    return {
        "metric": "mmd",
        "rows": [row, control],
        "cross_language": {run: {"pvq": {"spread": 0.02, "languages": ["eng"], "pairs": {}}}},
        "settings": {"encoders": ["minilm"], "translators": [], "questionnaires": ["pvq@v1"]},
    }


def test_compare_prints_numbers_and_the_ratio_in_the_one_format():
    text = compare.format_table(_report())
    lines = text.splitlines()
    header = lines[1].split()
    assert header[:5] == ["run", "task", "reference", "mmd", "p"]
    value_row = lines[2]
    assert "3e-05" in value_row and "0.0010" in value_row and "[0.0000, 0.0123]" in value_row
    assert "1.80×" in value_row
    assert "over 1 language (eng)" in text and "1 languages" not in text


def test_compare_markdown_footnotes_follow_a_blank_line():
    md = compare.format_table(_report(), markdown=True).splitlines()
    last_row = max(i for i, line in enumerate(md) if line.startswith("|"))
    assert md[last_row + 1] == "" and md[last_row + 2].startswith("m pvq: cross-language spread 0.0200")
    assert md[-2] == "" and md[-1].startswith("vs control:")


def test_gate_prints_p_values_and_distances_as_compare_does():
    check = gate.Check("univar_pvq_eng", "values", "eng", gate.FAIL, "why", distance=3e-05, p_value=1 / 1001)
    row = gate.to_text([check], "title").splitlines()[2]
    assert "3e-05" in row and "0.0010" in row and "<" not in row
    assert gate.to_text([check], "t").splitlines()[-1] == "FAILED: 0 of 1 check pass, 1 fail, 0 inconclusive"


# -- hostile names ---------------------------------------------------------------------------------------
def test_markdown_escapes_pipes_angle_brackets_and_newlines():
    md = render(Table(["model", "score"], [[HOSTILE, 0.5]]), "md").splitlines()
    assert len(md) == 3  # header, rule, one row: the newline did not end the row
    row = md[2]
    assert row.count("|") - row.count("\\|") == 3  # only the table's own separators
    assert "<script>" not in row and "&lt;script>" in row and "<br>" in row and "\x1b" not in row


def test_markdown_leaves_a_bound_readable_in_the_terminal():
    """``<`` before a digit cannot open an HTML tag: an upper bound stays ``<0.0340``, never ``&lt;0.0340``."""
    assert render(Table(["noise"], [["0.0000 (<0.0340)"], ["a<b"], ["</td>"]]), "md").splitlines()[2:] == [
        "| 0.0000 (<0.0340) |",
        "| a&lt;b |",
        "| &lt;/td> |",
    ]


def test_markdown_backslash_cannot_unescape_a_pipe():
    assert markdown_text("a\\|b") == "a\\\\\\|b"


def test_terminal_table_shows_control_characters_as_escapes():
    text = render(Table(["model", "score"], [[HOSTILE, 0.5]]), "text")
    assert "\x1b" not in text and "\r" not in text and "\\x1b[31m" in text
    assert len(text.splitlines()) == 2  # the newline in the name did not start a line
    assert terminal_text("a\u202eb") == "a\\u202eb"  # bidi override


def test_csv_neutralises_formulas_but_never_numbers():
    table = Table(
        ["model", "score", "note"],
        [['=HYPERLINK("x")', -0.25, "-1.5"], ["+cmd", 0.5, "@SUM(A1)"], ["-x", None, "plain"]],
    )
    rows = list(csv.reader(io.StringIO(render(table, "csv"))))
    assert rows[1] == ['\'=HYPERLINK("x")', "-0.25", "-1.5"]  # the negative score stays a number
    assert rows[2] == ["'+cmd", "0.5", "'@SUM(A1)"]
    assert rows[3] == ["'-x", "", "plain"]
    assert csv_text("-0.1234") == "-0.1234" and csv_text("-") == "'-"
    assert render(Table(["n", "x"], [[np.int64(3), np.float32(0.5)]]), "csv").splitlines()[1] == "3,0.5"


def test_html_escapes_every_name():
    page = render(Table(["model"], [[HOSTILE]]), "html")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_junit_stays_well_formed_with_control_characters_in_names():
    checks = [
        gate.Check("univar_\x1b[31m_eng\x00", "values", "eng", gate.FAIL, "bad \x07 reason\x0b"),
        gate.Check("univar_ok_eng", "values", "eng", gate.PASS, "fine"),
    ]
    root = ET.fromstring(gate.to_junit(checks).split("\n", 1)[1])  # parses: the XML is well-formed
    cases = root.findall(".//testcase")
    assert cases[0].get("name") == "univar_\\x1b[31m_eng\\x00"
    assert cases[0].find("failure").get("message") == "bad \\x07 reason\\x0b"
    assert root.get("failures") == "1" and cases[1].find("failure") is None
    assert xml_text("ok\ttab\nline") == "ok\ttab\nline"
