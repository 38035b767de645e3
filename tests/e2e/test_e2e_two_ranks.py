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


def launch(root: Path, size: int, tasks: str, limit: int, options_of_rank=lambda rank: []):
    """``size`` ranks of the worker, each in its own working directory ``root/rank<r>`` (where the default
    artifacts go) with its own cache outside it; (working directories, reports, logs) in rank order."""
    port = free_port()
    procs, dirs, reports = [], [], []
    for rank in range(size):
        cwd = root / f"rank{rank}"
        cwd.mkdir(parents=True)
        report = root / f"report{rank}.json"
        env = {
            **os.environ,
            **OFFLINE_ENV,
            "PYTHONUNBUFFERED": "1",
            "UNIVAR_EVAL_CACHE": str(root / f"cache{rank}"),
            "RANK": str(rank),
            "WORLD_SIZE": str(size),
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        env.pop("UNIVAR_EVAL_OUTPUT", None)
        args = [str(rank), str(size), str(port), str(report), tasks, str(limit), *options_of_rank(rank)]
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), *args],
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


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("two-ranks"), 2, TASKS, LIMIT)


def test_rank1_returns_nothing_and_writes_nothing(two_ranks):
    dirs, reports, logs = two_ranks
    assert reports[1]["results"] is None and reports[0]["results"] is not None
    assert [p for p in dirs[1].rglob("*")] == []  # its cache lies outside its working directory
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


# -- the post-processing shared by the ranks: a two-language group, translated by a tiny seq2seq model ------
GROUP = """group: univar_two_languages
task:
  - univar_pvq_eng
  - univar_pvq_zho
aggregate_metric_list:
  - metric: value_dispersion
    aggregation: mean
    weight_by_size: false
metadata:
  version: 1.0
"""
LANGUAGES = ("univar_pvq_eng", "univar_pvq_zho")
PER_TASK = 8  # eng: 7 answers (one empty), zho: 8; blocks of 4 (encoder_batch_size 1): ranks embed 4+3 and 4+4


@pytest.fixture(scope="module")
def group_runs(tmp_path_factory, tiny_translator):
    """The same two-language run in one process, on two ranks, and on two ranks whose rank 1 crashes while
    embedding; the TableLM answers every question (the Chinese ones with replies made from the prompt)."""
    root = tmp_path_factory.mktemp("two-languages")
    include = root / "tasks"
    include.mkdir()
    (include / "univar_two_languages.yaml").write_text(GROUP)
    metadata = {
        "model": "table-lm",
        "encoder": "minilm",
        "translator": str(tiny_translator),
        "encoder_batch_size": 1,
        "min_answers": 1,
    }

    def run(name: str, size: int, fail_rank: int = -1):
        def options(rank: int) -> list[str]:
            record = ["--record", str(root / name / f"embedded{rank}.jsonl")]
            return ["--metadata", json.dumps(metadata), "--include", str(include), "--varied", *record] + (
                ["--fail"] if rank == fail_rank else []
            )

        return launch(root / name, size, "univar_two_languages", PER_TASK, options)

    return {
        "one": run("one", 1),
        "two": run("two", 2),
        "failed": run("failed", 2, fail_rank=1),
        "metadata": metadata,
        "root": root,
    }


def task_folders(cwd: Path) -> dict[str, Path]:
    found = sorted(cwd.glob("univar-runs/table-lm/univar_*/*"))
    assert len({f.parent for f in found}) == 1, found  # one run folder
    return {f.name: f for f in found}


def test_two_ranks_write_what_one_process_writes(group_runs):
    import numpy as np

    (one_dirs, one_reports, _), (dirs, reports, logs) = group_runs["one"], group_runs["two"]
    one, two = task_folders(one_dirs[0]), task_folders(dirs[0])
    assert set(one) == set(two) == set(LANGUAGES)
    assert [p for p in dirs[1].rglob("*")] == []  # rank 1 writes nothing
    for task in LANGUAGES:
        a, b = ValueDistribution.load(one[task]), ValueDistribution.load(two[task])
        assert a.records == b.records  # the same answers and translations, in the same order
        assert np.abs(a.embeddings - b.embeddings).max() <= 1e-6
        ma, mb = dict(a.manifest), dict(b.manifest)
        for m in (ma, mb):
            m.pop("created")
        assert "sharding" not in ma
        assert mb.pop("sharding") == {"world_size": 2, "answers_per_rank": [4, len(a) - 4]}
        assert ma == mb
        assert logs[0].count(f"value embeddings of {task} written to") == 1
    assert "written to" not in logs[1]
    zho = ValueDistribution.load(two["univar_pvq_zho"])
    assert zho.manifest["translator"]["name"].startswith("local:") and len(zho) == PER_TASK
    # the same metrics, the group's included
    assert reports[0]["results"] == one_reports[0]["results"] and reports[1]["results"] is None


def test_each_rank_embedded_its_share_and_the_log_says_how(group_runs):
    dirs, _, logs = group_runs["two"]
    root = dirs[0].parent
    two = task_folders(dirs[0])
    embedded = [[json.loads(line) for line in (root / f"embedded{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    shares: list[list[str]] = [[], []]
    for task in LANGUAGES:
        dist = ValueDistribution.load(two[task])
        n0 = dist.manifest["sharding"]["answers_per_rank"][0]
        texts = [r["text"] for r in dist.records]
        shares[0] += texts[:n0]
        shares[1] += texts[n0:]
    assert sorted(embedded[0]) == sorted(shares[0]) and sorted(embedded[1]) == sorted(shares[1])
    assert len(embedded[1]) == 7  # eng answers 4-6 and zho answers 4-7, on rank 1
    assert (
        "embedding univar_pvq_zho: 8 answers in 2 blocks of 4 over 2 ranks; "
        "rank 0: answers 0-3 (4), rank 1: answers 4-7 (4)" in logs[0]
    )
    assert "over 2 ranks" not in logs[1]  # the split is logged once, by rank 0


def test_a_crash_on_rank_1_keeps_every_answer(group_runs, tmp_path, monkeypatch):
    import numpy as np

    from univar_eval.cli import main
    from univar_eval.storage.distribution import PENDING_FORMAT

    one = task_folders(group_runs["one"][0][0])
    dirs, reports, logs = group_runs["failed"]
    kept = task_folders(dirs[0])
    assert [p for p in dirs[1].rglob("*")] == []
    for task in LANGUAGES:
        manifest = json.loads((kept[task] / "manifest.json").read_text())
        assert manifest["format"] == PENDING_FORMAT
        assert manifest["error"] == (
            f"embedding {task}: rank 1 of 2 failed (OSError: simulated crash of this rank's encoder)"
        )
        assert manifest["sharding"] == {"world_size": 2}
        rows = [json.loads(line) for line in (kept[task] / "answers.jsonl").read_text().splitlines()]
        expected = ValueDistribution.load(one[task])
        # every answer of both ranks, the empty one included, in document order
        assert [r for r in rows if r["answer"]] == [
            {k: v for k, v in r.items() if k != "text"} for r in expected.records
        ]
        assert len(rows) == PER_TASK
        assert math.isnan(reports[0]["results"][task]["n_answers,none"])
        assert f"{task}: metrics not computed (embedding {task}: rank 1 of 2 failed" in logs[0]
    # finished later in one process: what the one-process run wrote
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "cache"))
    assert main(["embed", str(kept["univar_pvq_eng"].parent)]) == 0
    for task in LANGUAGES:
        a, b = ValueDistribution.load(one[task]), ValueDistribution.load(kept[task])
        assert a.records == b.records and np.abs(a.embeddings - b.embeddings).max() <= 1e-6


def test_through_accelerate_launch(group_runs):
    """``accelerate launch`` starts the ranks and ``Accelerator()`` their process group, as for lm-eval's hf model
    (which itself shares the documents only over several GPUs, so the table model stands in for it on CPU)."""
    import numpy as np

    root = group_runs["root"] / "accelerate"
    root.mkdir()
    launcher = Path(sys.executable).with_name("accelerate")
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "ACCELERATE_USE_CPU": "true",  # a gloo group on CPU
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "UNIVAR_EVAL_CACHE": str(root / "cache"),  # one cache, two writers
    }
    env.pop("UNIVAR_EVAL_OUTPUT", None)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    launch_args = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch_args += ["--dynamo_backend", "no", "--main_process_port", str(free_port())]
    worker_args = ["0", "2", "accelerate", str(root / "report{rank}.json"), "univar_pvq_zho", str(PER_TASK)]
    worker_args += ["--metadata", json.dumps(group_runs["metadata"]), "--varied"]
    proc = subprocess.run(
        [str(launcher), "launch", *launch_args, str(WORKER), *worker_args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    reports = [json.loads((root / f"report{r}.json").read_text()) for r in (0, 1)]
    assert reports[1]["results"] is None and reports[0]["results"]["univar_pvq_zho"]["n_answers,none"] == PER_TASK
    assert log.count("value embeddings of univar_pvq_zho written to") == 1
    assert "8 answers in 2 blocks of 4 over 2 ranks" in log
    (folder,) = root.glob("univar-runs/table-lm/univar_*/univar_pvq_zho")
    a = ValueDistribution.load(task_folders(group_runs["one"][0][0])["univar_pvq_zho"])
    b = ValueDistribution.load(folder)
    assert a.records == b.records and np.abs(a.embeddings - b.embeddings).max() <= 1e-6
    assert b.manifest["sharding"] == {"world_size": 2, "answers_per_rank": [4, 4]}
