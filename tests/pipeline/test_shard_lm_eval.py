"""The ranks of an lm-eval run: when the post-processing is shared (:func:`lm_eval_world`) and how the ranks stay
in step between its stages (:func:`together`), in one process and with two real CPU ranks (gloo)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import OFFLINE_ENV
from ranks import free_port

from univar_eval.pipeline.shard import SINGLE, ShardFailed, lm_eval_world, together


def test_one_rank_and_tensor_parallel_stay_in_one_process(caplog):
    assert lm_eval_world(0, 1) is None  # also tensor parallelism: every process is rank 0 of 1
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        assert lm_eval_world(1, 2) is None  # lm-eval says 2 ranks, but there is no torch.distributed group
    assert "2 lm-eval ranks but no torch.distributed group: rank 0 embeds every answer" in caplog.text


def test_together_in_one_process_is_the_step_itself():
    assert together(lambda: 41 + 1, SINGLE) == 42
    with pytest.raises(OSError, match="disk full"):
        together(lambda: (_ for _ in ()).throw(OSError("disk full")), SINGLE)


RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from univar_eval.pipeline.shard import ShardFailed, lm_eval_world, run_blocks, together

    rank, port, lm_ranks, nccl = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == "nccl"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    if nccl:  # the default group as on GPUs: univar-eval must use a gloo group of its own beside it
        dist.get_backend = lambda group=None: "nccl"
    out = {}
    world = lm_eval_world(*lm_ranks[rank])
    out["world"] = None if world is None else [world.rank, world.size]
    out["own_group"] = world is not None and world.group is not None
    if world is not None:
        def step():  # rank 1 fails outside any sharded loop (a model that does not load on its node)
            if rank == 1:
                raise OSError("no translator on this node")
            return "loaded"
        try:
            together(step, world)
        except ShardFailed as e:
            out["step"] = str(e)
        def blocks():  # a failure inside the loop already names its rank
            return run_blocks(list(range(8)), lambda b: 1 / (b[0] - 4), block=2, world=world, label="inverse")
        try:
            together(blocks, world)
        except ShardFailed as e:
            out["blocks"] = str(e)
        out["after"] = together(lambda: rank * 10, world)  # both ranks still in step
    print(json.dumps(out))
    dist.barrier()  # neither rank tears the group down while the other still talks to it (gloo aborts the peer)
    dist.destroy_process_group()
    """
)


def two_ranks(lm_ranks: list[list[int]], backend: str = "gloo") -> list[dict]:
    port = free_port()
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT, str(r), str(port), json.dumps(lm_ranks), backend],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    out = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            assert p.returncode == 0, stderr[-3000:]
            out.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return out


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_two_ranks_fail_together_and_stay_in_step(backend):
    r0, r1 = two_ranks([[0, 2], [1, 2]], backend)
    assert r0["world"] == [0, 2] and r1["world"] == [1, 2]
    assert r0["own_group"] is r1["own_group"] is (backend == "nccl")
    expected = "rank 1 of 2 failed (OSError: no translator on this node)"
    assert r0["step"] == r1["step"] == expected
    # blocks (0,1) (2,3) on rank 0, (4,5) (6,7) on rank 1: 1/(4-4) fails on rank 1, named by the loop itself
    assert r0["blocks"] == r1["blocks"] == "inverse: rank 1 of 2 failed (ZeroDivisionError: division by zero)"
    assert r0["after"] == 0 and r1["after"] == 10


def test_ranks_numbered_otherwise_than_torch_distributed_do_not_share():
    # lm-eval's hf model numbers its ranks within a node: two nodes of one process each both say rank 0
    r0, r1 = two_ranks([[0, 2], [0, 2]])
    assert r0 == r1 == {"world": None, "own_group": False}


def test_shard_failed_is_a_user_error():
    from univar_eval.errors import UserError

    assert issubclass(ShardFailed, UserError)
