"""Sharding: the grid of blocks, the world from the launcher's environment, and two real CPU ranks (gloo)."""

from __future__ import annotations

import json

import pytest
from ranks import launch

from univar_eval.errors import UserError
from univar_eval.pipeline.shard import SINGLE, World, assign, current_world, describe_split, grid, run_blocks, split


def test_grid_and_assignment_by_hand():
    assert grid(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert grid(0, 4) == []
    # 3 blocks over 2 ranks: rank 0 gets block 0, rank 1 blocks 1 and 2
    assert assign(3, 2) == [range(0, 1), range(1, 3)]
    assert assign(1, 3) == [range(0, 0), range(0, 0), range(0, 1)]
    assert split(list("abcdefghij"), 2, block=4) == [list("abcd"), list("efghij")]
    assert split(list("abc"), 3, block=4) == [[], [], list("abc")]
    assert sum(split(list(range(1001)), 7, block=32), []) == list(range(1001))


def test_the_log_line_says_how_the_work_is_split():
    line = describe_split(10, 4, World(0, 2, 0))
    assert line == "10 answers in 3 blocks of 4 over 2 ranks; rank 0: answers 0-3 (4), rank 1: answers 4-9 (6)"
    assert describe_split(3, 4, World(0, 2, 0)).endswith("rank 0: none, rank 1: answers 0-2 (3)")


def test_world_from_the_launchers_environment():
    assert current_world({}, init=False) == SINGLE
    assert current_world({"WORLD_SIZE": "1", "RANK": "0"}, init=False) == SINGLE
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert current_world(env, init=False) == World(3, 4, 1)
    with pytest.raises(UserError) as e:
        current_world({"WORLD_SIZE": "2", "RANK": "1"}, init=False)
    assert str(e.value) == (
        "WORLD_SIZE=2 but MASTER_ADDR and MASTER_PORT not set; launch with torchrun or accelerate launch, "
        "or unset WORLD_SIZE to run in one process"
    )
    with pytest.raises(UserError, match="RANK='2'"):
        current_world({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, init=False)


def test_one_process_runs_every_block_in_order_without_collectives():
    seen = []

    def work(items):
        seen.append(items)
        return sum(items)

    blocks, shares = run_blocks(list(range(10)), work, block=4, label="sums")
    assert blocks == [6, 22, 17] and seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [(s.rank, s.start, s.stop) for s in shares] == [(0, 0, 10)]


def test_one_process_failure_is_one_line():
    def work(items):
        raise OSError("disk quota exceeded")

    with pytest.raises(UserError, match=r"^sums: OSError: disk quota exceeded$"):
        run_blocks([1, 2], work, block=4, label="sums")


def two_ranks(tmp_path, n, block, fail_rank=-1):
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    procs = launch(lambda r: ["--blocks", str(n), str(block), str(fail_rank), str(outs[r])], 2)
    for rank, (code, _, err) in enumerate(procs):
        assert code == 0, f"rank {rank}: {err[-3000:]}"
    return [json.loads(o.read_text()) for o in outs], procs


def test_two_ranks_each_work_their_share_and_rank_0_gathers_in_order(tmp_path):
    # 11 items in blocks of 2: 6 blocks, 3 per rank; rank 0 items 0-5, rank 1 items 6-10
    (r0, r1), procs = two_ranks(tmp_path, 11, 2)
    assert r0["seen"] == [[0, 1], [2, 3], [4, 5]]
    assert r1["seen"] == [[6, 7], [8, 9], [10]]
    assert r0["blocks"] == [[0, 1], [4, 9], [16, 25], [36, 49], [64, 81], [100]]
    assert r0["shares"] == [[0, 0, 6], [1, 6, 11]]
    assert "blocks" not in r1  # only rank 0 holds the result


def test_a_failure_on_rank_1_stops_both_ranks_at_the_same_step(tmp_path):
    (r0, r1), _ = two_ranks(tmp_path, 12, 2, fail_rank=1)
    message = "squares: rank 1 of 2 failed (ValueError: second block refused)"
    assert r0 == {"rank": 0, "seen": [[0, 1], [2, 3]], "error": message, "type": "ShardFailed"}
    assert r1 == {"rank": 1, "seen": [[6, 7], [8, 9]], "error": message, "type": "ShardFailed"}
