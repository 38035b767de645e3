"""Attack 8 of issue 25: injection through names. ANSI, OSC-8 and right-to-left-override characters were printed
raw on the stderr "read" lines and by ``bank list``; a leaderboard CSV cell starting with a carriage return became
a formula cell; Markdown links and images in names rendered in gate.md. One test per channel."""

from __future__ import annotations

import csv
import io
import json
import re

from integrity_world import gate, save_run

from univar_eval.cli import main
from univar_eval.storage.bank import MANIFEST

ANSI = "\x1b[31mred\x1b[0m"
OSC8 = "\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07"
RLO = "gpt\u202eevil"
HOSTILE = f"{ANSI} {OSC8} {RLO}"
RAW = ("\x1b", "\x07", "\u202e")


def hostile_run(w, tmp_path, model: str):
    dist = w.run("carer", 1)
    dist = type(dist)(dist.embeddings, dist.records, {**dist.manifest, "model": model})
    return save_run(dist, tmp_path / "cand")


def test_terminal_read_lines_escape_control_and_bidi_characters(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    code, out, err = gate(capsys, hostile_run(w, tmp_path, HOSTILE), bank)
    read = [ln for ln in err.splitlines() if ln.startswith("read ")]
    assert code == 0 and read
    for text in (err, out):
        assert not any(c in text for c in RAW), repr(text)
    assert "\\x1b[31mred" in read[-1] and "\\x1b]8;;https://evil.example/\\x07" in read[-1] and "\\u202e" in read[-1]


def test_bank_list_escapes_names(tmp_path, capsys, integrity_world):
    w = integrity_world
    bank_dir = w.bank(tmp_path, w.run("carer", 0))
    data = json.loads((tmp_path / "bank" / MANIFEST).read_text())
    data["entries"][0]["model"] = HOSTILE  # bank.json written by someone else
    (tmp_path / "bank" / MANIFEST).write_text(json.dumps(data))
    assert main(["bank", "list", "--bank", bank_dir]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in RAW) and "\\x1b[31mred" in out and "\\u202e" in out
    assert main(["bank", "show", "--bank", bank_dir]) == 0
    shown = capsys.readouterr().out
    assert not any(c in shown for c in RAW) and json.loads(shown)["model"] == HOSTILE  # still valid JSON


def test_csv_cells_that_would_be_formulas_are_neutralised(integrity_world, tmp_path, capsys):
    w = integrity_world
    for i, name in enumerate(('\r=HYPERLINK("https://evil")', "\t@SUM(1)", "=1+1", " -2+3")):
        run = hostile_run(w, tmp_path / str(i), name)
        out_file = tmp_path / f"board{i}.csv"
        assert main(["leaderboard", str(run), "--format", "csv", "-o", str(out_file)]) == 0
        with open(out_file, newline="", encoding="utf-8") as fh:  # a CR inside a cell stays a CR
            rows = list(csv.reader(io.StringIO(fh.read())))
        cell = next(r[0] for r in rows[1:] if r and not r[0].startswith("#") and r[0] != "model")
        assert cell.startswith("'") and cell[1:] == name, cell
    capsys.readouterr()


def test_markdown_links_and_images_in_names_do_not_render(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    name = "[click](https://evil.example) ![x](https://evil.example/p.png) <b>x</b> `code` www.evil.example"
    md = tmp_path / "gate.md"
    code, _, _ = gate(capsys, hostile_run(w, tmp_path, name), bank, "--markdown", md)
    text = md.read_text()
    assert code == 0
    for raw in ("![", "<b>", "`code`", "https://", "www.evil"):
        assert raw not in text, raw
    assert not re.search(r"(?<!\\)\]\(", text)  # no unescaped "](" (a link or image target)
    assert "\\[click\\]" in text and "&lt;b>" in text
