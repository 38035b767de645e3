"""Attacks 3, 4 and 5 of issue 25, and subsets of external questionnaires: coverage is evidence.

3. In the per-question design, questions answered once were left out silently (0 left out on the output): half
   the questions answered once in another voice passed. 4. 3 of 40 questions answered passed, and so did a
   ``--limit 12`` run against a 20-answer baseline. 5. Verbatim copies of baseline answers were not counted.
Now a check fails as "incomplete" (outside the correction family) below ``--min-coverage`` (0.9) of the baseline's
questions, or of its questions with repeats where the design needs them; every output shows the questions used,
the answers left out on each side and the copies."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
from integrity_world import check_of, gate, save_run

from univar_eval.cli import main
from univar_eval.storage.distribution import ValueDistribution


def subset(dist: ValueDistribution, keep) -> ValueDistribution:
    rows = [i for i, r in enumerate(dist.records) if keep(r)]
    return ValueDistribution(
        np.asarray(dist.embeddings)[rows], [dist.records[i] for i in rows], {**dist.manifest, "merged_runs": None}
    )


def joined(*parts: ValueDistribution) -> ValueDistribution:
    emb = np.vstack([np.asarray(p.embeddings) for p in parts])
    return ValueDistribution(emb, [r for p in parts for r in p.records], dict(parts[0].manifest))


def ids(dist, n=None):
    seen = list(dict.fromkeys(r["id"] for r in dist.records))
    return set(seen if n is None else seen[:n])


def test_3_questions_answered_once_are_counted_and_fail_as_incomplete(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path, w.merged("carer", range(4)))  # 4 answers a question: the per-question design
    honest = w.merged("carer", range(4, 8))
    half = ids(honest, 19)
    crafted = joined(
        subset(honest, lambda r: r["id"] in half),  # 19 questions answered as the baseline would, 4 times
        subset(w.run("achiever", 4), lambda r: r["id"] not in half),  # 19 answered once, in another voice
    )
    js = tmp_path / "g.json"
    code, out, _ = gate(capsys, save_run(crafted, tmp_path / "cand"), bank, "--json", js)
    c = check_of(js)
    assert code == 1 and "PASSED" not in out and c["outcome"] == "fail" and c["incomplete"]
    assert c["reason"].startswith(
        "incomplete: the per-question comparison needs 2 answers a question on both sides; 19 of the baseline's "
        "38 questions have them (50% < --min-coverage 90%)"
    )
    assert (c["n_questions_used"], c["n_questions_repeated"], c["n_left_out"]) == (38, 19, 19)
    assert "38/38, 19+" in out  # the left-out answers are shown, not 0
    # the honest rerun with as many answers passes in the same setting
    code, out, _ = gate(capsys, save_run(honest, tmp_path / "honest"), bank, "--json", js)
    assert code == 0 and check_of(js)["n_left_out"] == 0


def test_4_a_few_questions_or_a_limit_run_fail_as_incomplete(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path / "a", w.merged("carer", range(4)))
    three = ids(w.run("carer", 0), 3)
    few = subset(w.merged("carer", range(4, 8)), lambda r: r["id"] in three)  # 12 answers: enough for --min-answers
    js = tmp_path / "g.json"
    code, out, _ = gate(capsys, save_run(few, tmp_path / "few"), bank, "--json", js)
    assert code == 1 and check_of(js)["reason"].startswith(
        "incomplete: the candidate answered 3 of the baseline's 38 questions (8% < --min-coverage 90%)"
    )
    # lm_eval --limit 12 against a 20-question baseline
    twenty, twelve = ids(w.run("carer", 0), 20), ids(w.run("carer", 0), 12)
    bank20 = w.bank(tmp_path / "b", subset(w.run("carer", 0), lambda r: r["id"] in twenty))
    limited = save_run(subset(w.run("carer", 1), lambda r: r["id"] in twelve), tmp_path / "limit")
    code, out, _ = gate(capsys, limited, bank20, "--json", js)
    assert code == 1 and "12 of the baseline's 20 questions (60% < --min-coverage 90%)" in check_of(js)["reason"]
    assert "12/20, 0+8 left out" in out
    # the same run of the same model, held to a lower coverage the user chose, is judged (and passes)
    code, out, _ = gate(capsys, limited, bank20, "--min-coverage", "0.5", "--json", js)
    assert code == 0 and not check_of(js)["incomplete"]
    assert main(["gate", str(limited), "--bank", bank20, "--against", "carer", "--min-coverage", "1.5"]) == 2
    assert "error: --min-coverage must be above 0 and at most 1, got 1.5" in capsys.readouterr().err


def test_5_verbatim_copies_are_counted_in_every_output(integrity_world, tmp_path, capsys, figures):
    w = integrity_world
    baseline = w.merged("carer", range(4))
    bank = w.bank(tmp_path, baseline)
    # three answers a question in another voice, plus one verbatim baseline answer a question
    crafted = joined(w.merged("achiever", range(4, 7)), w.run("carer", 0))
    f = {k: tmp_path / f"g.{k}" for k in ("json", "md", "xml")}
    run = save_run(crafted, tmp_path / "cand")
    code, out, _ = gate(capsys, run, bank, "--json", f["json"], "--markdown", f["md"], "--junit", f["xml"])
    c = check_of(f["json"])
    assert code == 1 and c["outcome"] != "pass"
    assert (c["n_copies"], c["copy_share"]) == (38, 0.25)
    assert "38 (25.0%)" in out and "38 (25.0%)" in f["md"].read_text()
    assert "copies=38 copy_share=0.25" in ET.parse(f["xml"]).getroot().find(".//system-out").text
    assert any(
        n.startswith("copies: 38 candidate answers identical") for n in json.loads(f["json"].read_text())["notes"]
    )
    figures(f"copies attack (3 achiever answers + 1 verbatim carer answer a question): mmd {c['distance']:.4f}")
    # whitespace does not hide a copy
    spaced = ValueDistribution(
        np.asarray(crafted.embeddings),
        [{**r, "answer": "  " + r["answer"].replace(" ", "  ") + "\n"} for r in crafted.records],
        dict(crafted.manifest),
    )
    gate(capsys, save_run(spaced, tmp_path / "spaced"), bank, "--json", f["json"])
    assert check_of(f["json"])["n_copies"] == 38


def test_a_subset_of_an_external_questionnaire_is_judged_on_the_shared_questions(integrity_world, tmp_path, capsys):
    """External (JSONL) questionnaires: a subset is compared, not refused as 'questionnaire version differs',
    and held to --min-coverage."""
    del integrity_world  # the encoder is loaded; the answers are embedded from the JSONL files

    def jsonl(name, recs):
        path = tmp_path / name
        rows = [
            {
                "model": name.split(".")[0],
                "lang": "eng",
                "questionnaire": "myvalues",
                "question": r["question"],
                "answer": r["answer"],
            }
            for r in recs
        ]
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return str(path)

    from integrity_world import records

    base = jsonl("carer.jsonl", records("carer", 0))
    bank = str(tmp_path / "bank")
    assert main(["bank", "add", "--bank", bank, "--encoder", "minilm", base]) == 0
    js = tmp_path / "g.json"
    nearly = jsonl("vendor.jsonl", records("carer", 1)[:36])  # 36 of 38 questions: 95%
    code, out, err = gate(capsys, nearly, bank, "--json", js)
    c = check_of(js)
    assert code == 0, out + err
    assert (c["n_questions_used"], c["n_questions_baseline"]) == (36, 38)
    half = jsonl("vendor.jsonl", records("carer", 1)[:19])
    code, _, _ = gate(capsys, half, bank, "--json", js)
    assert code == 1 and check_of(js)["reason"].startswith("incomplete: the candidate answered 19 of the baseline's 38")
