"""Real-text runs for the attack tests of issue 25 (tests/*/test_attack_*.py): the stance answers of
tests/reports/test_gate_real_text.py (a carer and an achiever answering 38 PVQ-RR questions, each run a fresh
random draw of paraphrases), embedded with the offline MiniLM encoder. A rerun of the carer passes against the
carer's bank entry there; the achiever fails; every attack starts from that honest setting."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from univar_eval.cli import main
from univar_eval.pipeline.embed import build_distribution
from univar_eval.settings import resolve
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution, merge_as_repeats

HERE = Path(__file__).resolve().parent
STAMP = "univar_2026-12-01T00-00-00"
TASK = "univar_pvq_eng"


def _stances():
    spec = importlib.util.spec_from_file_location("gate_real_text", HERE / "reports" / "test_gate_real_text.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_MOD = _stances()
questions, answer_run = _MOD.questions, _MOD.answer_run


def records(stance: str, k: int, qs=None) -> list[dict]:
    """Run ``k`` of ``stance``: one answer per question (seeded as in test_gate_real_text)."""
    i = list(_MOD.STANCES).index(stance)
    return answer_run(stance, qs or questions(), seed=100 * i + k)


def embed(recs: list[dict], model: str) -> ValueDistribution:
    settings = resolve({"encoder": "minilm", "device": "cpu"})
    dist, _ = build_distribution(recs, task=TASK, questionnaire="pvq", lang="eng", settings=settings, model=model)
    return dist


class World:
    """Embedded runs of the carer (baseline) and the achiever, cached for the test session."""

    def __init__(self, root: Path):
        self.root = root
        self._runs: dict = {}

    def run(self, stance: str, k: int) -> ValueDistribution:
        if (stance, k) not in self._runs:
            self._runs[stance, k] = embed(records(stance, k), stance)
        return self._runs[stance, k]

    def merged(self, stance: str, ks) -> ValueDistribution:
        return merge_as_repeats([self.run(stance, k) for k in ks], [f"run {k}" for k in ks])

    def bank(self, tmp_path: Path, baseline: ValueDistribution) -> str:
        bank = Bank(tmp_path / "bank", create=True)
        bank.add(baseline, model="carer", source="runs of the carer")
        return str(bank.path)


def save_run(dist: ValueDistribution, folder: Path, name: str = TASK) -> Path:
    """``dist`` as one task folder of a run under ``folder`` (the run folder is returned)."""
    dist.save(folder / STAMP / name)
    return folder


def gate(capsys, run, bank, *extra) -> tuple[int, str, str]:
    code = main(["gate", str(run), "--bank", str(bank), "--against", "carer", *map(str, extra)])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The ``error: ...`` line of a refused command (exactly one, and nothing like a traceback)."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def check_of(report: Path) -> dict:
    return json.loads(report.read_text())["checks"][0]


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
