"""Several processes: two real ranks (torch.distributed, gloo, CPU) run lm-eval's own evaluation loop.

lm-eval gives rank r the documents r, r+2, ...; pads the shorter rank by answering its last request
again; gathers every rank's per-document results to rank 0; aggregates there. Our metrics and
artifacts must then be computed once, on rank 0, from all documents, none twice; rank 1 writes nothing.
PVQ with 7 documents splits 4/3, so rank 1 is padded; HVAE's angle needs all six items, three per rank.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import fixed_answers as fixed
import pytest
from conftest import OFFLINE_ENV

from univar_eval.storage.distribution import ValueDistribution

pytestmark = pytest.mark.e2e

LIMIT = 7
TASKS = "hvae_svo_nogoal_prosocial,univar_pvq_eng"
WORKER = Path(__file__).parents[1] / "two_ranks_worker.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-ranks")
    port = free_port()
    procs, dirs, reports = [], [], []
    for rank in range(2):
        cwd = root / f"rank{rank}"  # each rank's working directory: default artifacts and the cache go here
        cwd.mkdir()
        report = root / f"report{rank}.json"
        env = {
            **os.environ,
            **OFFLINE_ENV,
            "PYTHONUNBUFFERED": "1",
            "UNIVAR_EVAL_CACHE": str(cwd / "cache"),
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": str(rank),
        }
        env.pop("UNIVAR_EVAL_OUTPUT", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(rank), "2", str(port), str(report), TASKS, str(LIMIT)],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        dirs.append(cwd)
        reports.append(report)
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=900)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for rank, p in enumerate(procs):
        assert p.returncode == 0, f"rank {rank} failed:\n{logs[rank][-6000:]}"
    return dirs, [json.loads(r.read_text()) for r in reports], logs


def test_rank1_returns_nothing_and_writes_nothing(two_ranks):
    dirs, reports, logs = two_ranks
    assert reports[1]["results"] is None and reports[0]["results"] is not None
    assert [p for p in dirs[1].rglob("*")] == []
    assert "value embeddings of" not in logs[1] and "written to" not in logs[1]
    # lm-eval evened the ranks out: 4 + 3 PVQ documents and 3 + 3 HVAE items, one padding request on rank 1
    assert reports[0]["n_prompts"] == reports[1]["n_prompts"] == 7


def test_pvq_distribution_built_once_from_all_documents(two_ranks):
    dirs, reports, logs = two_ranks
    folders = sorted(dirs[0].glob("univar-runs/table-lm/univar_*/univar_pvq_eng"))
    assert len(folders) == 1, folders
    assert logs[0].count("value embeddings of univar_pvq_eng written to") == 1
    dist = ValueDistribution.load(folders[0])
    answered = [(i, a) for i, a in enumerate(fixed.PVQ_ANSWERS[:LIMIT]) if a]
    # every document once (the padded copy of rank 1's last answer is not embedded again), in document order
    assert [(r["doc_index"], r["repeat"]) for r in dist.records] == [(i, 0) for i, _ in answered]
    assert [r["answer"] for r in dist.records] == [a for _, a in answered]
    assert dist.manifest["model"] == "table-lm" and dist.manifest["counts"]["n_answers"] == len(answered)
    res = reports[0]["results"]["univar_pvq_eng"]
    assert res["n_answers,none"] == len(answered) and res["n_empty,none"] == 1
    assert res["refusal_rate,none"] == pytest.approx(1 / len(answered))


def test_hvae_angle_from_both_ranks_items(two_ranks):
    _, reports, _ = two_ranks
    res = reports[0]["results"]["hvae_svo_nogoal_prosocial"]
    # items 1, 3, 5 were answered on rank 0 and 2, 4, 6 on rank 1: the angle needs all six
    assert res["n_complete,none"] == 1 and res["unparsed_rate,none"] == 0.0
    assert res["svo_angle,none"] == pytest.approx(37.48, abs=0.01)
    assert res["category,none"] == "prosocial"


def test_tensor_parallel_processes_other_than_local_rank_0_do_not_analyse(tmp_path, monkeypatch):
    """Under torchrun tensor parallelism every process reports rank 0 and aggregates; lm-eval keeps
    LOCAL_RANK 0's results only, so the others must not embed or write."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(metadata={"encoder": "minilm", "output": str(tmp_path), "model": "tp-model"})
    task = tm.load(["univar_pvq_eng"])["tasks"]["univar_pvq_eng"]
    docs = list(task.test_docs())[:2]
    per_doc = [task.process_results(d, [[a]]) for d, a in zip(docs, fixed.PVQ_ANSWERS)]
    raw = {name: [d[name] for d in per_doc] for name in per_doc[0]}
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert math.isnan(task.aggregation()["n_answers"](raw["n_answers"]))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert task.aggregation()["n_answers"](raw["n_answers"]) == 2
    assert len(list(tmp_path.glob("univar_*/univar_pvq_eng"))) == 1
