"""Attack 1 of issue 25: two task folders for one task and language in one run. The gate kept the one whose name
sorted last; a copy of the baseline's own folder beside an honest, failing one passed (PASS 0.0000). Now any
two sets of answers for one (model, task, language) in one read are refused, naming both."""

from __future__ import annotations

import json

from integrity_world import STAMP, TASK, gate, one_error_line, save_run

from univar_eval.cli import main


def test_a_copied_baseline_folder_beside_the_real_one_is_refused(integrity_world, tmp_path, capsys):
    w = integrity_world
    baseline = w.run("carer", 0)
    bank = w.bank(tmp_path, baseline)
    # the vendor's honest run fails (the achiever), so they add the baseline's own folder under another name
    run = save_run(w.run("achiever", 1), tmp_path / "cand")
    assert gate(capsys, run, bank)[0] == 1
    baseline.save(run / STAMP / "zz_univar_pvq_eng_copy")
    code, out, err = gate(capsys, run, bank)
    line = one_error_line(err)
    assert code == 2 and "PASS" not in out
    assert f"two sets of answers for {TASK} (eng) in one read" in line
    assert f"{STAMP}/{TASK}" in line and f"{STAMP}/zz_univar_pvq_eng_copy" in line
    # the same in the other direction of sorting, and for compare and leaderboard
    assert main(["compare", str(run), "--bank", bank]) == 2
    assert main(["leaderboard", str(run), "--bank", bank]) == 2
    capsys.readouterr()


def test_an_honest_rerun_still_passes(integrity_world, tmp_path, capsys):
    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    run = save_run(w.run("carer", 1), tmp_path / "cand")
    code, out, _ = gate(capsys, run, bank, "--json", tmp_path / "g.json")
    assert code == 0 and "PASSED" in out
    c = json.loads((tmp_path / "g.json").read_text())["checks"][0]
    assert (c["n_questions_used"], c["n_questions_baseline"], c["n_left_out"], c["n_copies"]) == (38, 38, 0, 0)


def test_two_answer_files_for_one_task_are_refused_unless_as_repeats(integrity_world, tmp_path, capsys):
    w = integrity_world
    w.bank(tmp_path, w.run("carer", 0))
    folder = tmp_path / "answers"
    folder.mkdir()
    for k, stance in ((1, "carer"), (2, "achiever")):
        lines = [json.dumps({**r, "model": "vendor"}) for r in w.run(stance, k).records]
        (folder / f"part{k}.jsonl").write_text("\n".join(lines) + "\n")
    # one source per file: a folder of two JSONL files is read file by file by `bank add`
    srcs = [str(folder / "part1.jsonl"), str(folder / "part2.jsonl")]
    assert main(["bank", "add", "--bank", str(tmp_path / "b2"), "--encoder", "minilm", *srcs]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert (
        "vendor / univar_" in line and "comes from 2 runs" in line and "part1.jsonl" in line and "part2.jsonl" in line
    )
    assert main(["bank", "add", "--bank", str(tmp_path / "b2"), "--encoder", "minilm", "--as-repeats", *srcs]) == 0
    capsys.readouterr()
