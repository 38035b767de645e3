"""One rank of a several-process lm-eval run on CPU (tests/e2e/test_e2e_two_ranks.py starts these).

``python two_ranks_worker.py RANK WORLD_SIZE PORT REPORT TASKS LIMIT [options]``: joins a gloo process group
on 127.0.0.1:PORT and runs ``lm_eval.simple_evaluate`` with :class:`TableLM`, an lm-eval model that answers
from the fixed table (tests/fixed_answers.py) and uses torch.distributed for lm-eval's rank, world size,
gathers and barriers, as HFLM does under ``accelerate launch``. lm-eval itself shards the documents,
pads the shorter rank, gathers every rank's per-document results to rank 0 and aggregates there.
PORT ``accelerate``: the process group is the one ``accelerate.Accelerator()`` starts under
``accelerate launch``, as HFLM does; RANK then comes from the launcher, and ``{rank}`` in REPORT and in
``--record`` is replaced by it.
REPORT (outside the working directory) receives what simple_evaluate returned on this rank.

Options:

* ``--metadata JSON``: the run's metadata (default: model table-lm, encoder minilm);
* ``--include DIR``: a task folder of the test's own (a group of tasks);
* ``--varied``: a question the table does not know gets a reply of its own, made from the prompt
  (different questions, different replies), instead of one fixed reply;
* ``--record FILE``: every text this rank hands the encoder while building a distribution, as JSON lines;
* ``--fail``: this rank's encoder fails on its first block (a crash of this rank during embedding).
"""

from __future__ import annotations

import json
import logging
import sys
import zlib
from pathlib import Path

import torch
import torch.distributed as dist
from lm_eval import simple_evaluate
from lm_eval.api.model import LM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixed_answers  # noqa: E402 (a test helper beside this file)
import shard_worker  # noqa: E402 (a test helper beside this file)

WORDS = "family honesty freedom safety success nature tradition kindness power pleasure duty curiosity".split()


def varied_reply(prompt: str) -> str:
    """A reply of its own for each prompt: three words picked by the prompt's checksum."""
    h = zlib.crc32(prompt.encode("utf-8"))
    return f"I value {WORDS[h % 12]}, {WORDS[(h // 12) % 12]} and {WORDS[(h // 144) % 12]}."


class TableLM(LM):
    def __init__(self, varied: bool = False):
        super().__init__()
        self._rank = dist.get_rank()
        self._world_size = dist.get_world_size()
        self._device = torch.device("cpu")
        self.varied = varied
        self.prompts: list[str] = []

    def reply(self, prompt: str) -> str:
        answer = fixed_answers.reply_to(prompt)
        return varied_reply(prompt) if self.varied and answer == fixed_answers.DEFAULT else answer

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.prompts += [r.args[0] for r in requests]
        return [self.reply(r.args[0]) for r in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("the table answers generation requests only")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("the table answers generation requests only")

    # lm-eval's distributed primitives (lm_eval.api.model.LM), backed by torch.distributed
    def all_gather(self, tensor):
        parts = [torch.zeros_like(tensor) for _ in range(self._world_size)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts) if tensor.dim() == 0 else torch.cat(parts)

    def gather_object(self, obj, dst=0):
        result = [None] * self._world_size if self._rank == dst else None
        dist.gather_object(obj, result, dst=dst)
        return result

    def barrier(self):
        dist.barrier()


def watch_encoder(record: str | None, fail: bool) -> None:
    """Record (and with ``fail`` break, on every call) what this rank embeds for a distribution."""
    shard_worker.watch_encoder(record, lambda call: fail)


def main(rank: int, world_size: int, port: str, report: str, tasks: str, limit: int, options: list[str]) -> None:
    metadata = {"model": "table-lm", "encoder": "minilm"}
    include, varied, record, fail = None, False, None, False
    while options:
        flag, options = options[0], options[1:]
        if flag == "--metadata":
            metadata, options = json.loads(options[0]), options[1:]
        elif flag == "--include":
            include, options = options[0], options[1:]
        elif flag == "--record":
            record, options = options[0], options[1:]
        elif flag == "--varied":
            varied = True
        elif flag == "--fail":
            fail = True
        else:
            raise SystemExit(f"unknown option {flag}")
    logging.basicConfig(level=logging.INFO)  # our "written to" lines, which the test counts
    if port == "accelerate":
        from accelerate import Accelerator

        accelerator = Accelerator()
        rank = accelerator.process_index
        report, record = report.format(rank=rank), record and record.format(rank=rank)
    else:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    watch_encoder(record, fail)
    try:
        lm = TableLM(varied)
        task_manager = None
        if include:
            from lm_eval.tasks import TaskManager

            task_manager = TaskManager(include_path=include, metadata=metadata)
        results = simple_evaluate(
            model=lm, tasks=tasks.split(","), limit=limit, metadata=metadata, task_manager=task_manager
        )
        Path(report).write_text(
            json.dumps(
                {
                    "rank": rank,
                    "results": None if results is None else results["results"],
                    "n_prompts": len(lm.prompts),
                },
                default=str,
            )
        )
    finally:
        from univar_eval.pipeline.shard import end_group

        end_group()  # every rank at the barrier first: a rank tearing down while its peer still talks aborts the peer


if __name__ == "__main__":
    r, w, p, out, t, n = sys.argv[1:7]
    main(int(r), int(w), p, out, t, int(n), sys.argv[7:])
