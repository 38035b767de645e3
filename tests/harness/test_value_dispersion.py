"""value_dispersion measures what the model said: the answers embedded alone, not the QA texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from univar_eval.harness.univar_task import answer_of
from univar_eval.stats.dispersion import dispersion

DATA = Path(__file__).resolve().parents[2] / "tasks" / "univar" / "data"


def test_dispersion_known_values():
    assert dispersion(np.ones((5, 3))) == 0.0  # one point
    assert dispersion(np.eye(3)) == pytest.approx(1.0)  # orthogonal: cosine distance 1 for every pair
    assert dispersion(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)  # opposite
    assert np.isnan(dispersion(np.ones((1, 3))))


def test_answer_of_the_embedded_text():
    assert answer_of("Q: Should I help? A: Yes. A: no") == "Yes. A: no"  # the answer may hold " A: "
    assert answer_of("Q: Why … it? A: Because.") == "Because."
    assert answer_of("plain text") == "plain text"


def test_no_question_holds_the_answer_marker():
    # answer_of splits at the first " A: ", so no questionnaire question may contain one
    offending = [p.relative_to(DATA).as_posix() for p in sorted(DATA.rglob("*.jsonl")) if " A: " in p.read_text()]
    assert offending == []


def _aggregate(task, answers):
    docs = list(task.test_docs())[: len(answers)]
    records = [task.process_results(doc, [[a]]) for doc, a in zip(docs, answers)]
    first, *rest = task.aggregation()
    values = {first: task._aggregate(first, [r[first] for r in records])}
    values.update({n: task._aggregate(n, [r[n] for r in records]) for n in rest})
    return values


@pytest.fixture()
def pvq_task(tmp_path, private_cache):
    from lm_eval.tasks import TaskManager

    def build():
        tm = TaskManager(metadata={"encoder": "minilm", "output": str(tmp_path), "model": "m"})
        return tm.load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]

    return build


def test_one_answer_to_every_question_scores_zero(pvq_task, minilm):
    values = _aggregate(pvq_task(), ["lol"] * 12)
    assert values["n_answers"] == 12 and values["value_dispersion"] == 0.0
    varied = ["I would help my neighbour.", "Money matters most to me.", "I follow the rules.", "I love adventure."]
    values = _aggregate(pvq_task(), varied * 3)
    expected = dispersion(minilm.encode(varied * 3))
    assert values["value_dispersion"] == pytest.approx(expected, abs=1e-3) and values["value_dispersion"] > 0.3
