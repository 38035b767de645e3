"""End to end: the README's offline persona demo, run verbatim, and a run stopped before generation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import OFFLINE_ENV, hf_args, lm_eval_executable

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"


def demo_script() -> str:
    text = README.read_text()
    section = text.split("## Offline demo", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_readme_persona_demo_passes_the_rerun_and_fails_the_other_persona(tmp_path, figures):
    env = {**os.environ, **OFFLINE_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        ["bash", "-c", demo_script()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-4000:]
    gates = re.findall(r"(candidate \S+ \(demo/runs/candidate-\d/\).*?)\nexit code (\d)", out, flags=re.S)
    assert [code for _, code in gates] == ["0", "1"], out
    rerun, other = (g for g, _ in gates)
    assert "PASS" in rerun and "PASSED: 1 of 1 " in rerun and "FAILED: 0 of 1 " in other
    # a fail is evidence of excess: the lower bound of d_S above D, with the p-value of d_S <= D
    assert re.search(
        r"univar_pvq_eng\s+eng\s+FAIL\b.*d_S exceeds 0.05: lower bound \S+ .*p\(d_S <= 0.05\) = ", other
    ), other
    assert "demo/achiever" in out and "demo/carer" in out  # the leaderboard's rows
    assert (tmp_path / "demo" / "map.png").stat().st_size > 1000
    assert "read demo/runs/candidate-1/" in proc.stderr  # every command names the run it read
    assert "Custom kwargs" not in proc.stderr and "not found in the evaluate library" not in proc.stderr
    assert "univar-eval: value distributions of this run go to" in proc.stderr
    for block in gates:
        figures(block[0])


def test_a_missing_encoder_stops_the_run_before_generation(tmp_path, tiny_lm):
    env = {**os.environ, **OFFLINE_ENV}
    start = time.monotonic()
    proc = subprocess.run(
        [
            lm_eval_executable(),
            *hf_args(tiny_lm),
            "--tasks",
            "univar_pvq_eng",
            "--limit",
            "4",
            "--output_path",
            str(tmp_path / "runs"),
            "--metadata",
            json.dumps({"encoder": str(tmp_path / "no-encoder-here")}),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no-encoder-here" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "Running generate_until requests" not in proc.stderr
    assert not list((tmp_path / "runs").rglob("univar_*")) if (tmp_path / "runs").exists() else True
    assert time.monotonic() - start < 300


FAILING_EMBED = """
import sys
import univar_eval.harness.univar_task as embed  # the task calls build_distribution from here
real = embed.build_distribution
def build_distribution(records, *, task, **kw):
    if task == "univar_wvs_eng":
        raise OSError("encoder crashed (simulated)")
    return real(records, task=task, **kw)
embed.build_distribution = build_distribution
from lm_eval.__main__ import cli_evaluate
sys.argv[0] = "lm_eval"
sys.exit(cli_evaluate())
"""


def test_a_task_whose_embedding_fails_keeps_its_answers_and_the_run_goes_on(tmp_path, tiny_lm, capsys):
    from univar_eval.cli import main
    from univar_eval.runs.folders import load_run

    out = tmp_path / "runs"
    env = {**os.environ, **OFFLINE_ENV}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            FAILING_EMBED,
            *hf_args(tiny_lm),
            "--tasks",
            "univar_pvq_eng,univar_wvs_eng",
            "--limit",
            "10",
            "--log_samples",
            "--output_path",
            str(out),
            "--metadata",
            json.dumps({"encoder": "minilm"}),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if "metrics not computed" in line]
    assert len(errors) == 1 and "univar_wvs_eng" in errors[0] and "encoder crashed (simulated)" in errors[0]
    assert "Traceback" not in proc.stderr
    [results] = out.rglob("results_*.json")
    res = json.loads(results.read_text())["results"]
    assert res["univar_pvq_eng"]["n_answers,none"] == 10  # the other task is complete
    assert res["univar_wvs_eng"]["n_answers,none"] != res["univar_wvs_eng"]["n_answers,none"]  # NaN
    assert len(list(out.rglob("samples_univar_wvs_eng_*.jsonl"))) == 1  # lm-eval's samples are written too
    kept = next(out.rglob("univar_*/univar_wvs_eng"))
    assert json.loads((kept / "manifest.json").read_text())["error"] == "encoder crashed (simulated)"
    assert len((kept / "answers.jsonl").read_text().splitlines()) == 10
    assert main(["embed", str(out)]) == 0
    assert "embedded univar_wvs_eng: " in capsys.readouterr().out
    assert sorted(d.task for d in load_run(out)) == ["univar_pvq_eng", "univar_wvs_eng"]
