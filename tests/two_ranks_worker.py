"""One rank of a two-process lm-eval run on CPU (tests/test_e2e_two_ranks.py starts two of these).

``python two_ranks_worker.py RANK WORLD_SIZE PORT REPORT TASKS LIMIT``: joins a gloo process group on
127.0.0.1:PORT and runs ``lm_eval.simple_evaluate`` with :class:`TableLM`, an lm-eval model that answers
from the fixed table (tests/fixed_answers.py) and uses torch.distributed for lm-eval's rank, world size,
gathers and barriers, as HFLM does under ``accelerate launch``. lm-eval itself shards the documents,
pads the shorter rank, gathers every rank's per-document results to rank 0 and aggregates there.
REPORT (outside the working directory) receives what simple_evaluate returned on this rank.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from lm_eval import simple_evaluate
from lm_eval.api.model import LM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixed_answers  # noqa: E402 (a test helper beside this file)


class TableLM(LM):
    def __init__(self):
        super().__init__()
        self._rank = dist.get_rank()
        self._world_size = dist.get_world_size()
        self._device = torch.device("cpu")
        self.prompts: list[str] = []

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.prompts += [r.args[0] for r in requests]
        return [fixed_answers.reply_to(r.args[0]) for r in requests]

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


def main(rank: int, world_size: int, port: int, report: str, tasks: str, limit: int) -> None:
    logging.basicConfig(level=logging.INFO)  # our "written to" lines, which the test counts
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        lm = TableLM()
        results = simple_evaluate(
            model=lm, tasks=tasks.split(","), limit=limit, metadata={"model": "table-lm", "encoder": "minilm"}
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
        dist.destroy_process_group()


if __name__ == "__main__":
    r, w, p, out, t, n = sys.argv[1:7]
    main(int(r), int(w), int(p), out, t, int(n))
