"""One rank of a sharded ``univar-eval`` command (tests/pipeline/test_shard.py and tests/e2e start these).

``python shard_worker.py [--fail-on-call K] [--record FILE] -- ARGS...`` runs ``univar-eval ARGS`` in this
process with the launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) as
torchrun sets it. ``--fail-on-call K``: the K-th block this rank embeds raises (a crash on that rank);
``--record FILE``: every text this rank embedded, as JSON lines (which rank did what).
``python shard_worker.py --blocks N BLOCK FAIL_RANK OUT``: only :func:`run_blocks` on ``range(N)``, each
block answered with its items squared; rank FAIL_RANK (-1: none) raises on its second block; OUT receives
what this rank got.
"""

from __future__ import annotations

import json
import sys


def watch_encoder(record: str | None, fails) -> None:
    """Record every text this rank embeds (JSON lines in ``record``), and raise on the calls where
    ``fails(call number, from 1)`` is true (a crash of this rank's encoder)."""
    import univar_eval.pipeline.embed as embed_mod

    real = embed_mod.cached_encode
    calls = [0]

    def watched(encoder, texts, **kw):
        calls[0] += 1
        if fails(calls[0]):
            raise OSError("simulated crash of this rank's encoder")
        if record:
            with open(record, "a", encoding="utf-8") as f:
                for t in texts:
                    f.write(json.dumps(t) + "\n")
        return real(encoder, texts, **kw)

    embed_mod.cached_encode = watched


def embed_command(argv: list[str]) -> int:
    from univar_eval.cli import main

    fail_on, record = None, None
    while argv and argv[0] != "--":
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--fail-on-call":
            fail_on = int(value)
        elif flag == "--record":
            record = value
    watch_encoder(record, lambda call: fail_on is not None and call == fail_on)
    return main(argv[1:])


def blocks_only(n: int, block: int, fail_rank: int, out: str) -> int:
    from univar_eval.errors import UserError
    from univar_eval.pipeline.shard import current_world, run_blocks, shutdown

    world = current_world()
    seen = []

    def work(items):
        seen.append(items)
        if world.rank == fail_rank and len(seen) == 2:
            raise ValueError("second block refused")
        return [i * i for i in items]

    try:
        got = run_blocks(list(range(n)), work, block=block, world=world, label="squares")
        result = {"rank": world.rank, "size": world.size, "seen": seen}
        if got is not None:
            blocks, shares = got
            result.update(blocks=blocks, shares=[[s.rank, s.start, s.stop] for s in shares])
    except UserError as e:
        result = {"rank": world.rank, "seen": seen, "error": str(e), "type": type(e).__name__}
    finally:
        shutdown(world)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--blocks":
        sys.exit(blocks_only(int(args[1]), int(args[2]), int(args[3]), args[4]))
    sys.exit(embed_command(args))
