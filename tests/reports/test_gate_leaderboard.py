"""Release gate and leaderboard on constructed runs: exit codes, JUnit XML, table content, refusal of mixed settings."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

LANGS = ("eng", "zho")
ENC = {"name": "minilm", "revision": None, "dimension": 16, "fingerprint": [0.1] * 8, "fingerprint_id": "fp"}


def unit(rng, n, d=16, shift=0.0):
    x = rng.normal(size=(n, d))
    x[:, 0] += shift
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def manifest(model, lang, encoder=ENC, q="pvq"):
    return {
        "format": "univar-eval/value-distribution/1",
        "model": model,
        "task": f"univar_{q}_{lang}",
        "lang": lang,
        "questionnaire": q,
        "questionnaire_version": f"v-{lang}",
        "encoder": encoder,
        "translator": {"name": "none" if lang == "eng" else "nllb-600m"},
        "created": "2026-11-25T00:00:00",
    }


def make_run(root, model, embeddings: dict, encoder=ENC, results: dict | None = None):
    run = root / model
    for (q, lang), emb in embeddings.items():
        ValueDistribution(emb, [{"id": f"q{i}"} for i in range(len(emb))], manifest(model, lang, encoder, q)).save(
            run / "univar_2026-11-25T00-00-00" / f"univar_{q}_{lang}"
        )
    if results:
        (run / "results_2026-11-25T00-00-00.json").write_text(json.dumps({"model_name": model, "results": results}))
    return run


@pytest.fixture()
def world(tmp_path):
    rng = np.random.default_rng(0)
    base = {("pvq", lang): unit(rng, 60) for lang in LANGS}
    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many(
        [
            (
                ValueDistribution(e, [{"id": f"q{i}"} for i in range(len(e))], manifest("baseline", lang)),
                "baseline",
                "test",
            )
            for (_, lang), e in base.items()
        ]
    )
    same = make_run(tmp_path / "runs", "same", base)
    shifted = make_run(
        tmp_path / "runs", "shifted", {("pvq", "eng"): base[("pvq", "eng")], ("pvq", "zho"): unit(rng, 60, shift=1.5)}
    )
    tiny = make_run(tmp_path / "runs", "tiny", {("pvq", lang): base[("pvq", lang)][:5] for lang in LANGS})
    return tmp_path, bank, same, shifted, tiny


def test_identical_run_passes(world, capsys):
    tmp, bank, same, _, _ = world
    junit = tmp / "same.xml"
    assert main(["gate", str(same), "--bank", str(bank.path), "--against", "baseline", "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "PASSED: 2 of 2 checks pass" in out
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert sorted(c.get("name") for c in cases) == ["univar_pvq_eng", "univar_pvq_zho"]
    assert not root.findall(".//failure") and root.find("testsuite").get("failures") == "0"


def test_shifted_language_fails_with_reports(world, capsys):
    tmp, bank, _, shifted, _ = world
    files = {k: tmp / f"shifted.{k}" for k in ("json", "md", "xml")}
    code = main(
        [
            "gate",
            str(shifted),
            "--bank",
            str(bank.path),
            "--against",
            "baseline",
            "--max-distance",
            "0.05",
            "--json",
            str(files["json"]),
            "--markdown",
            str(files["md"]),
            "--junit",
            str(files["xml"]),
        ]
    )
    assert code == 1
    assert "FAILED: 1 of 2 checks pass" in capsys.readouterr().out
    report = json.loads(files["json"].read_text())
    by_task = {c["name"]: c for c in report["checks"]}
    assert by_task["univar_pvq_zho"]["outcome"] == "fail" and by_task["univar_pvq_zho"]["p_value"] < 0.05
    assert by_task["univar_pvq_zho"]["distance"] > 0.05
    assert by_task["univar_pvq_eng"]["outcome"] == "pass"
    failures = ET.parse(files["xml"]).getroot().findall(".//testcase/failure/..")
    assert [c.get("name") for c in failures] == ["univar_pvq_zho"]
    md = files["md"].read_text()
    assert md.startswith("### univar-eval gate: FAILED (1/2 pass, 1 fail, 0 inconclusive)")
    assert "| ❌ | univar_pvq_zho | zho |" in md
    # a generous threshold lets the same shift pass: both conditions are needed to fail
    assert main(["gate", str(shifted), "--bank", str(bank.path), "--against", "baseline", "--max-distance", "5"]) == 0
    # --langs restricts the checks
    assert main(["gate", str(shifted), "--bank", str(bank.path), "--against", "baseline", "--langs", "eng"]) == 0


def test_too_few_answers_fail_as_insufficient(world, capsys):
    tmp, bank, _, _, tiny = world
    assert (
        main(["gate", str(tiny), "--bank", str(bank.path), "--against", "baseline", "--json", str(tmp / "t.json")]) == 1
    )
    checks = json.loads((tmp / "t.json").read_text())["checks"]
    assert all(c["outcome"] == "fail" and c["reason"].startswith("insufficient answers (5") for c in checks)


def test_usage_errors_exit_2(world, capsys):
    tmp, bank, same, _, _ = world
    assert main(["gate", str(same), "--bank", str(bank.path), "--against", "nobody"]) == 2
    assert "has no model 'nobody'" in capsys.readouterr().err
    assert main(["gate", str(same)]) == 2
    assert main(["gate", str(same), "--min-value-rationality", "0.5"]) == 2
    assert "no HVAE results" in capsys.readouterr().err


def test_value_rationality_floor(tmp_path):
    rng = np.random.default_rng(1)
    results = {
        "hvae_svo_altruistic": {"alias": "a", "value_rationality,none": 0.9},
        "hvae_svo_competitive": {"alias": "c", "value_rationality,none": 0.3},
    }
    run = make_run(tmp_path, "m", {("pvq", "eng"): unit(rng, 20)}, results=results)
    junit = tmp_path / "j.xml"
    assert main(["gate", str(run), "--min-value-rationality", "0.5", "--junit", str(junit)]) == 1
    failed = [c.get("name") for c in ET.parse(junit).getroot().findall(".//testcase") if c.find("failure") is not None]
    assert failed == ["hvae_svo_competitive"]
    assert main(["gate", str(run), "--min-value-rationality", "0.2"]) == 0


def test_leaderboard_formats_and_content(world, capsys):
    tmp, bank, same, shifted, _ = world
    results = {
        "valuelex_projective": {"orientation_ethical,none": 0.4, "orientation_social,none": 0.1},
        "hvae_svo_prosocial": {"value_rationality,none": 0.75},
    }
    (shifted / "results_2026-11-25T00-00-00.json").write_text(json.dumps({"model_name": "shifted", "results": results}))
    out = tmp / "board.csv"
    assert (
        main(["leaderboard", str(shifted), str(same), "--bank", str(bank.path), "--format", "csv", "-o", str(out)]) == 0
    )
    assert "wrote" in capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0][0].startswith("# encoder minilm@fp; translator nllb-600m; questionnaires pvq@")
    assert "(2 language versions); distance mmd" in rows[0][0]
    header, body = rows[1], rows[2:]
    assert [r[0] for r in body] == ["same", "shifted"]  # stable order
    assert header[:5] == [
        "model",
        "univar_pvq_eng mmd(baseline)",
        "univar_pvq_eng nearest",
        "univar_pvq_zho mmd(baseline)",
        "univar_pvq_zho nearest",
    ]
    col = {h: i for i, h in enumerate(header)}
    same_row, shifted_row = body
    assert float(same_row[col["univar_pvq_zho mmd(baseline)"]]) == pytest.approx(0, abs=1e-3)
    assert float(shifted_row[col["univar_pvq_zho mmd(baseline)"]]) > 0.1
    assert shifted_row[col["hvae_svo_prosocial value_rationality"]] == "0.75"  # CSV: full precision
    assert shifted_row[col["valuelex orientation_ethical"]] == "0.4"
    assert "pvq cross-language spread" in col

    assert main(["leaderboard", str(same), str(shifted), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "http" not in page.split("<body>")[1]
    table = _html_table(page)  # the table itself, cell by cell
    assert table[0][:3] == ["model", "univar_pvq_eng dispersion", "univar_pvq_zho dispersion"]
    assert [r[0] for r in table[1:]] == ["same", "shifted"]
    assert table[2][table[0].index("hvae_svo_prosocial value_rationality")] == "0.7500"
    assert table[1][table[0].index("hvae_svo_prosocial value_rationality")] == "-"  # the same run has no HVAE
    assert all(len(r) == len(table[0]) for r in table)
    assert main(["leaderboard", str(same), "--bank", str(bank.path), "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["rows"][0]["model"] == "same" and board["settings"]["encoders"] == ["minilm@fp"]
    assert main(["leaderboard", str(same), str(shifted), "--format", "md"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| model | univar_pvq_eng dispersion")


def _html_table(page: str) -> list[list[str]]:
    """The rows (header first) of the one table in an HTML page, as the browser would show them."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Cells()
    parser.feed(page)
    return parser.rows


def test_leaderboard_refuses_mixed_settings(world, tmp_path, capsys):
    _, _, same, _, _ = world
    rng = np.random.default_rng(2)
    other = make_run(
        tmp_path / "o",
        "other",
        {("pvq", "eng"): unit(rng, 20)},
        encoder={**ENC, "name": "labse", "fingerprint_id": "zz"},
    )
    assert main(["leaderboard", str(same), str(other)]) == 2
    assert "encoders differ (labse@zz, minilm@fp)" in capsys.readouterr().err
    assert main(["leaderboard", str(same), str(other), "--allow-mixed"]) == 0
    assert "MIXED SETTINGS" in capsys.readouterr().out


def test_multiple_testing_corrections_by_hand():
    from univar_eval.reports.gate import adjust_p_values, permutations_needed

    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert adjust_p_values([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    # Benjamini-Hochberg: 0.01*3/1, 0.03*3/2, 0.04*3/3 -> 0.03, 0.045, 0.04 -> cumulative min from the top
    assert adjust_p_values([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_p_values([0.01, 0.04], "none") == [0.01, 0.04]
    # the smallest Holm threshold alpha/m must be reachable: 1/(B+1) <= alpha/(10 m)
    assert permutations_needed(50, 0.05, "holm", 1000) == 10000
    assert permutations_needed(1, 0.05, "holm", 1000) == 1000


def test_compare_shows_hvae_targets_side_by_side_and_plots_them(tmp_path, capsys):
    rng = np.random.default_rng(3)
    results = {
        f"hvae_svo_mc_{t}": {"svo_angle,none": a, "category,none": c, "value_rationality,none": vr}
        for t, a, c, vr in [
            ("altruistic", 61.39, "altruistic", 1.0),
            ("prosocial", 37.48, "prosocial", 1.0),
            ("individualistic", 22.93, "prosocial", 0.71),
            ("competitive", 37.48, "prosocial", 0.30),
        ]
    }
    run_a = make_run(tmp_path / "a", "model-a", {("pvq", "eng"): unit(rng, 20)}, results=results)
    run_b = make_run(tmp_path / "b", "model-b", {("pvq", "eng"): unit(rng, 20)})
    png = tmp_path / "vr.png"
    assert (
        main(["compare", str(run_a), str(run_b), "--permutations", "100", "--bootstrap", "0", "--hvae-plot", str(png)])
        == 0
    )
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("run ") and "altruistic" in line)
    assert header.split()[:6] == ["run", "form", "altruistic", "prosocial", "individualistic", "competitive"]
    row = next(line for line in out.splitlines() if line.startswith("model-a") and " mc " in line)
    assert "61.4° altruistic VR 1.00" in row and "37.5° prosocial VR 0.30" in row
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
