"""Benchmark: ``univar-eval embed`` on a run of 2,000 kept answers, one process vs two ranks (torchrun).

    python benchmarks/bench_sharded_embed.py [--answers 2000] [--encoder minilm] [--repeats 1]

Like with like on a 2-core machine: (a) one process of one thread, (b) two ranks of one thread each
(``torchrun --nproc_per_node 2``, gloo), and beside them (c) one process of two threads. Each run
starts from the same folder of kept answers with the cache off (``UNIVAR_EVAL_CACHE=off``), so every
answer is embedded. Prints the wall time of the whole command (start-up and model loading included)
and of the embedding phase alone (the ranks' own "did answers ... in N s" log lines; for one process
the bar's phase), the CPU seconds of all processes of each command, the speed-up of (b) over (a) (aim:
>= 1.7x), the same less the start-up and teardown of ``torchrun`` itself (timed on ranks that run ``true``)
and for the embedding phase alone, whether (b) wrote exactly what (a) wrote, and the load average beside every
figure: on a shared machine the wall times move with the load, the CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAMP = "univar_2026-12-06T00-00-00"
TASK = "univar_pvq_eng"


def load_average() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_run(folder: Path, n: int, encoder: str) -> Path:
    from univar_eval.harness.task_base import write_pending
    from univar_eval.pipeline.questionnaire import load

    questions = load("pvq", "eng").records
    rng = np.random.default_rng(0)
    words = (
        "I would help my family first because loyalty care tradition and fairness for others matter more "
        "than money status or winning and I want to decide things for myself"
    ).split()
    rows = []
    for i in range(n):
        q = questions[i % len(questions)]
        answer = " ".join(rng.choice(words, size=int(rng.integers(15, 60))))
        rows.append(
            {"doc_index": i % len(questions), "id": q["id"], "lang": "eng", "question": q["question"],
             "repeat": i // len(questions), "answer": answer.capitalize() + "."}
        )  # fmt: skip
    write_pending(
        folder / STAMP / TASK,
        rows,
        {"questionnaire": "pvq", "lang": "eng", "model": "bench", "task": TASK, "error": "benchmark",
         "settings": {"encoder": encoder, "translator": "none", "encoder_batch_size": 32}},
    )  # fmt: skip
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(kind: str, kept: Path, work: Path) -> dict:
    """One timed ``univar-eval embed`` of a fresh copy of ``kept``; returns times and the folder."""
    target = work / kind
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(kept, target)
    threads = "2" if kind == "one process, 2 threads" else "1"
    env = {
        **os.environ,
        "UNIVAR_EVAL_CACHE": "off",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(v, None)
    exe = shutil.which("univar-eval") or str(Path(sys.executable).with_name("univar-eval"))
    if kind == "two ranks, 1 thread each":
        torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
        cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "--no-python", exe]
    else:
        cmd = [exe]
    cmd += ["-v", "embed", str(target)]
    load_before = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    phases = [float(x) for x in re.findall(r"did answers \d+-\d+ in ([0-9.]+) s", proc.stderr)]
    return {
        "kind": kind,
        "wall": wall,
        "cpu": cpu,
        "embed": max(phases) if phases else None,
        "folder": target / STAMP / TASK,
        "load": f"{load_before} before, {load_average()} after",
    }


def launcher_overhead(repeats: int = 3) -> float:
    """Wall seconds of ``torchrun --nproc_per_node 2`` running ``true`` on both ranks (best of ``repeats``): the
    launcher's own start-up and teardown (importing torch, its rendezvous, watching the workers), which every
    sharded command pays once, whatever it runs."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "--no-python", "true"]
        subprocess.run(cmd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - began)
    return best


def same_output(a: Path, b: Path) -> str:
    from univar_eval.storage.distribution import ValueDistribution

    da, db = ValueDistribution.load(a), ValueDistribution.load(b)
    same_answers = (a / "answers.jsonl").read_bytes() == (b / "answers.jsonl").read_bytes()
    diff = float(np.abs(da.embeddings - db.embeddings).max())
    ma = {k: v for k, v in da.manifest.items() if k not in ("created", "sharding")}
    mb = {k: v for k, v in db.manifest.items() if k not in ("created", "sharding")}
    return (
        f"answers.jsonl {'identical' if same_answers else 'DIFFERENT'}, embeddings max |diff| {diff:.1e}, "
        f"manifests {'identical' if ma == mb else 'DIFFERENT'} apart from created and "
        f"sharding={json.dumps(db.manifest.get('sharding'))}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=2000)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each kind (best kept)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="univar-bench-shard-"))
    kept = make_run(work / "kept", args.answers, args.encoder)
    print(f"univar-eval embed, {args.answers} answers, encoder {args.encoder}, cache off; {os.cpu_count()} CPUs")
    kinds = ["one process, 1 thread", "two ranks, 1 thread each", "one process, 2 threads"]
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for kind in kinds:  # interleaved, so a change of load hits every kind alike
            r = run(kind, kept, work)
            if kind not in best or r["wall"] < best[kind]["wall"]:
                best[kind] = r
    for kind in kinds:
        r = best[kind]
        phase = f", embedding phase {r['embed']:.1f} s" if r["embed"] else ""
        print(f"  {kind:26s} {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU (all processes){phase}   ({r['load']})")
    one, two = best[kinds[0]], best[kinds[1]]
    print(
        f"  speed-up of two ranks over one process of one thread: {one['wall'] / two['wall']:.2f}x wall (aim >= 1.7x)"
    )
    print(
        f"  CPU seconds, one process of one thread / two ranks: {one['cpu'] / two['cpu']:.2f} (1.00 = no work "
        "added by sharding; on two free cores the speed-up approaches 2x this, less the start-up each rank repeats)"
    )
    launcher = launcher_overhead()
    print(
        f"  torchrun's own start-up and teardown (two ranks running `true`): {launcher:.1f} s ({load_average()}); "
        f"speed-up without it: {one['wall'] / (two['wall'] - launcher):.2f}x; embedding phase alone: "
        f"{one['embed'] / two['embed']:.2f}x"
    )
    print(f"  two ranks vs one process: {same_output(one['folder'], two['folder'])}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
