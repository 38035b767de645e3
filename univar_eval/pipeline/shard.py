"""Step: sharding. Spread translation and embedding over the processes of a distributed launch.

Under ``accelerate launch`` or ``torchrun`` every process runs the same command; each gets a
*world*: its rank, the number of processes, its rank on its node. :func:`current_world` reads it
from torch.distributed when a process group is already up, else from the environment those
launchers set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and
then starts a gloo group (CPU collectives; the tensors exchanged are counts and finished rows).

:func:`run_blocks` cuts a list into blocks on one fixed grid (the same blocks whatever the
number of processes, so every block is computed exactly as one process would compute it), gives
each rank a contiguous run of blocks, and lets every rank work through its own. After each
block the ranks add up, with one ``all_reduce``, how many items are done and whether any rank
failed: rank 0 shows one progress bar for all ranks, and a failure stops every rank at the same
step (rank 0 then raises :class:`ShardFailed` naming the rank and its error; nothing is
written). At the end ``gather_object`` brings every rank's results to rank 0 in rank order,
which is the original order. Ranks other than 0 get ``None``.

The commands opt in with :func:`sharded`: inside ``with sharded(world):`` the embedding step
(:func:`univar_eval.pipeline.embed.build_distribution`) shards its work; outside it it runs in one
process as before. Inside an lm-eval run of several ranks the tasks pass the world explicitly
(:func:`lm_eval_world`, the process group lm-eval's model already started) from a step every rank
takes (``TaskLevelTask.apply_filters``); :func:`together` keeps the ranks in step between stages.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

from univar_eval.errors import UserError

log = logging.getLogger("univar_eval")

T = TypeVar("T")
R = TypeVar("R")

#: Environment variables the launchers set (torchrun, accelerate launch, SLURM wrappers around them)
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one launch."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: this module started the process group (and :func:`shutdown` ends it)
    owned: bool = field(default=False, compare=False)
    #: the process group of the collectives (None: the default group); a gloo group beside an NCCL one
    group: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def _env_int(environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a whole number; launch with torchrun or accelerate launch") from None


def current_world(environ=None, *, init: bool = True) -> World:
    """The world of this process: torch.distributed's when initialised, else the launcher's environment.

    With ``WORLD_SIZE`` > 1 and no process group yet, ``init`` starts a gloo group from the
    environment (``MASTER_ADDR``/``MASTER_PORT``); without them the launch is incomplete and the
    error says which variables are missing.
    """
    environ = os.environ if environ is None else environ
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        local = _env_int(environ, "LOCAL_RANK", dist.get_rank())
        return World(dist.get_rank(), dist.get_world_size(), local)
    size = _env_int(environ, "WORLD_SIZE", 1)
    if size <= 1:
        return SINGLE
    rank = _env_int(environ, "RANK", -1)
    if not 0 <= rank < size:
        raise UserError(
            f"WORLD_SIZE={size} but RANK={environ.get('RANK')!r}; launch with torchrun or accelerate launch"
        )
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not environ.get(v)]
    if missing:
        raise UserError(
            f"WORLD_SIZE={size} but {' and '.join(missing)} not set; launch with torchrun or accelerate launch, "
            "or unset WORLD_SIZE to run in one process"
        )
    world = World(rank, size, _env_int(environ, "LOCAL_RANK", rank), owned=init)
    if init:
        if not dist.is_available():
            raise UserError("WORLD_SIZE > 1 but this torch has no torch.distributed; run in one process")
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://{environ['MASTER_ADDR']}:{environ['MASTER_PORT']}",
            rank=rank,
            world_size=size,
        )
    return world


def lm_eval_world(rank: int, size: int, environ=None) -> World | None:
    """The world of an lm-eval run that lm-eval sees as ``size`` ranks (``rank`` is this one), for the
    post-processing to shard over; None when it must stay in one process (rank 0, after the gather).

    None for one rank, which includes tensor parallelism (every process reports rank 0 of 1), and when
    lm-eval's ranks are not torch.distributed's (no group: a model with a transport of its own; or
    another numbering: the processes compare their ranks in one ``all_gather_object`` and decide
    together): then rank 0 embeds everything, as before. The collectives go through the group lm-eval's model
    started (``accelerate`` or torchrun); when its backend is not gloo (NCCL on GPUs), through one gloo
    group beside it, made once (the exchanged objects are CPU tensors and pickled rows).
    """
    if size <= 1:
        return None
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        log.warning("univar-eval: %d lm-eval ranks but no torch.distributed group: rank 0 embeds every answer", size)
        return None
    # decided together: a rank that went its own way would leave the others waiting in a collective
    group = _cpu_group()
    ranks: list = [None] * dist.get_world_size()
    dist.all_gather_object(ranks, (rank, size), group=group)
    if ranks != [(r, size) for r in range(size)]:
        if dist.get_rank() == 0:
            log.warning(
                "univar-eval: lm-eval's ranks (rank, world size) %s are not torch.distributed's ranks 0-%d: "
                "rank 0 embeds every answer",
                ranks,
                len(ranks) - 1,
            )
        return None
    environ = os.environ if environ is None else environ
    return World(rank, size, _env_int(environ, "LOCAL_RANK", rank), group=group)


_GLOO: dict = {}


def _cpu_group():
    """None when the default group is gloo; else a gloo group of every rank (made once per default group,
    on every rank)."""
    import torch.distributed as dist

    if dist.get_backend() == "gloo":
        return None
    default = dist.group.WORLD
    if _GLOO.get("of") is not default:
        _GLOO.update(of=default, group=dist.new_group(backend="gloo"))
    return _GLOO["group"]


def shutdown(world: World) -> None:
    """End the process group this module started (a no-op in one process or a group someone else owns)."""
    if world.owned:
        end_group()


def end_group() -> None:
    """Destroy the default process group once every rank has reached this point (a no-op without one).

    A rank that destroys the group while a peer still talks to it can make the peer's gloo threads abort the
    process ("terminate called without an active exception", seen once in 3 fresh-clone suites), hence the
    barrier; it is bounded, so a rank that died cannot hang the others, and reported, not raised."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=120), wait_all_ranks=True)
    except Exception as e:  # noqa: BLE001 - a missing peer is reported, the group is ended all the same
        log.warning("univar-eval: ranks did not all reach the end together (%s)", str(e).splitlines()[0])
    dist.destroy_process_group()


_ACTIVE: contextvars.ContextVar[World] = contextvars.ContextVar("univar_eval_world", default=SINGLE)


@contextlib.contextmanager
def sharded(world: World) -> Iterator[World]:
    """Within the block, the embedding step spreads its work over ``world``."""
    token = _ACTIVE.set(world)
    try:
        yield world
    finally:
        _ACTIVE.reset(token)


def active_world() -> World:
    """The world the embedding step shards over now (one process unless inside :func:`sharded`)."""
    return _ACTIVE.get()


def rank_device(device: str | None, world: World) -> str | None:
    """The device of this rank: a bare ``cuda`` (or no device, with GPUs present) becomes ``cuda:<LOCAL_RANK>``
    in a distributed launch, so that the processes of one node do not share the first GPU."""
    if not world.distributed:
        return device
    if device not in (None, "cuda"):
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{world.local_rank % max(1, torch.cuda.device_count())}"
    return device


# -- splitting ------------------------------------------------------------------------------------------
def grid(n: int, block: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the blocks of ``block`` items that cover ``range(n)`` (the last may be shorter)."""
    block = max(1, int(block))
    return [(s, min(s + block, n)) for s in range(0, n, block)]


def assign(n_blocks: int, size: int) -> list[range]:
    """Block indices of each rank: contiguous runs, as even as whole blocks allow, in rank order."""
    return [range(r * n_blocks // size, (r + 1) * n_blocks // size) for r in range(size)]


def split(items: Sequence[T], size: int, block: int = 1) -> list[list[T]]:
    """``items`` as ``size`` contiguous shards on the grid of ``block`` items; concatenated they are ``items``."""
    blocks = grid(len(items), block)
    return [
        list(items[blocks[b.start][0] : blocks[b.stop - 1][1]]) if len(b) else [] for b in assign(len(blocks), size)
    ]


def describe_split(n: int, block: int, world: World, what: str = "answers") -> str:
    """One line for the log: how ``n`` items are split over the ranks."""
    blocks = grid(n, block)
    parts = []
    for r, b in enumerate(assign(len(blocks), world.size)):
        if len(b):
            start, stop = blocks[b.start][0], blocks[b.stop - 1][1]
            parts.append(f"rank {r}: {what} {start}-{stop - 1} ({stop - start})")
        else:
            parts.append(f"rank {r}: none")
    return f"{n} {what} in {len(blocks)} blocks of {max(1, block)} over {world.size} ranks; " + ", ".join(parts)


# -- working through the blocks -------------------------------------------------------------------------
class ShardFailed(UserError):
    """A rank failed while the ranks worked through their blocks; every rank stopped, nothing was gathered."""


@dataclass
class Share:
    """What one rank did: its rank, the items it was given ``[start, stop)`` and how long it took."""

    rank: int
    start: int
    stop: int
    seconds: float


def run_blocks(
    items: Sequence[T],
    work: Callable[[list[T]], R],
    *,
    block: int,
    world: World = SINGLE,
    label: str = "",
    unit: str = "answer",
    progress: bool | None = None,
) -> tuple[list[R], list[Share]] | None:
    """``work`` on every block of ``items`` (the grid of ``block`` items), blocks spread over ``world``.

    Returns, on rank 0, the results of all blocks in order and each rank's :class:`Share`; ``None``
    on the other ranks. In one process (``world.size == 1``) no collective is used. ``progress``:
    None shows the bar on a terminal (rank 0 only), False never.
    """
    from tqdm.auto import tqdm

    blocks = grid(len(items), block)
    mine = assign(len(blocks), world.size)[world.rank]
    steps = -(-len(blocks) // world.size) if blocks else 0
    if world.distributed and world.is_main:
        log.info("univar-eval: %s: %s", label or "sharded work", describe_split(len(items), block, world, unit + "s"))
    results: list[R] = []
    error: str | None = None
    began = time.perf_counter()
    show = world.is_main and progress is not False and bool(items)
    bar = tqdm(total=len(items), desc=label or None, unit=unit, disable=None if show else True)
    try:
        for step in range(steps):
            done = 0
            if error is None and step < len(mine):
                start, stop = blocks[mine[step]]
                try:
                    results.append(work(list(items[start:stop])))
                    done = stop - start
                except Exception as e:  # noqa: BLE001 - every rank must hear of it, or they wait forever
                    error = f"{type(e).__name__}: {e}" if not isinstance(e, UserError) else str(e)
                    log.error("univar-eval: rank %d of %d failed on %s: %s", world.rank, world.size, label, error)
            total, failed = _sum_counts(done, error is not None, world)
            bar.update(total)
            if failed:
                break
    finally:
        bar.close()
    seconds = time.perf_counter() - began
    share = Share(
        world.rank,
        blocks[mine.start][0] if len(mine) else 0,
        blocks[mine.stop - 1][1] if len(mine) else 0,
        seconds,
    )
    if world.distributed:
        gathered = _gather((error, share, results if error is None else None), world)
    else:
        gathered = [(error, share, results)]
    errors = None
    if world.distributed:
        errors = _all_errors(error, world)
    elif error is not None:
        errors = [(0, error)]
    if errors:
        first_rank, first = errors[0]
        raise ShardFailed(
            f"{label}: rank {first_rank} of {world.size} failed ({first})" if world.distributed else f"{label}: {first}"
        )
    if items:
        log.info(
            "univar-eval: %s: rank %d did %ss %d-%d in %.1f s",
            label,
            world.rank,
            unit,
            share.start,
            share.stop - 1,
            seconds,
        )
    if not world.is_main:
        return None
    assert gathered is not None
    out: list[R] = []
    shares = []
    for _, s, part in gathered:
        out.extend(part)
        shares.append(s)
    return out, shares


def _sum_counts(done: int, failed: bool, world: World) -> tuple[int, bool]:
    if not world.distributed:
        return done, failed
    import torch
    import torch.distributed as dist

    t = torch.tensor([done, int(failed)], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=world.group)
    return int(t[0]), bool(t[1])


def _gather(obj, world: World):
    import torch.distributed as dist

    out = [None] * world.size if world.is_main else None
    dist.gather_object(obj, out, dst=0, group=world.group)
    return out


def _all_errors(error: Any, world: World) -> list[tuple[int, Any]]:
    """Every rank's ``error`` that is not None, with its rank, on every rank (``all_gather_object``)."""
    import torch.distributed as dist

    out: list = [None] * world.size
    dist.all_gather_object(out, error, group=world.group)
    return [(r, e) for r, e in enumerate(out) if e is not None]


def from_main(value, world: World):
    """Rank 0's ``value`` on every rank (``broadcast_object_list``): settings read from rank 0's disk."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0, group=world.group)
    return box[0]


def agree(value, world: World, what: str) -> None:
    """Stop every rank unless all ranks hold the same ``value`` (e.g. the encoder's fingerprint: a node
    with another revision in its hub cache or cards file would mix two encoders in one distribution)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    values: list = [None] * world.size
    dist.all_gather_object(values, value, group=world.group)
    other = next((r for r, v in enumerate(values) if v != values[0]), None)
    if other is not None:
        raise UserError(
            f"rank {other} of {world.size} has another {what} than rank 0 ({values[other]!r} vs {values[0]!r}); "
            "give every node the same models and cards file (univar-eval pin), then rerun"
        )


def every_rank(items: list[T], world: World) -> list[T]:
    """The concatenation, in rank order, of every rank's ``items`` (``all_gather_object``), on every rank."""
    if not world.distributed:
        return list(items)
    import torch.distributed as dist

    parts: list = [None] * world.size
    dist.all_gather_object(parts, list(items), group=world.group)
    return [x for part in parts for x in part]


def together(step: Callable[[], R], world: World) -> R:
    """``step()`` on every rank; then every rank learns whether any rank failed, so that all go on to the
    next collective or all stop (each raising :class:`ShardFailed` that names the first failed rank).

    A step that fails on some ranks only (a model that does not load on one node, a write on rank 0)
    would otherwise leave the others waiting in the next collective. In one process ``step()`` runs
    as it is and its own exception comes through."""
    if not world.distributed:
        return step()
    value = None
    error: tuple[bool, str] | None = None
    try:
        value = step()
    except ShardFailed as e:  # a sharded step already names the failed rank
        error = (True, str(e))
    except Exception as e:  # noqa: BLE001 - every rank must hear of it
        error = (False, f"{type(e).__name__}: {e}" if not isinstance(e, UserError) else str(e))
    failed = _all_errors(error, world)
    if failed:
        rank, (named, message) = failed[0]
        raise ShardFailed(message if named else f"rank {rank} of {world.size} failed ({message})")
    return value  # type: ignore[return-value]
