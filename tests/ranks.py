"""Start real ranks (subprocesses joined by a gloo group on 127.0.0.1) as torchrun would: RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each one's environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from conftest import OFFLINE_ENV

WORKER = Path(__file__).parent / "shard_worker.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args_of_rank, size: int, *, env_of_rank=None, cwd=None, timeout: int = 600) -> list[tuple[int, str, str]]:
    """Run ``shard_worker.py ARGS`` as ``size`` ranks; (exit code, stdout, stderr) of each, in rank order."""
    port = free_port()
    procs = []
    for rank in range(size):
        env = {
            **os.environ,
            **OFFLINE_ENV,
            "PYTHONUNBUFFERED": "1",
            "RANK": str(rank),
            "WORLD_SIZE": str(size),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            **((env_of_rank or {}).get(rank, {}) if isinstance(env_of_rank, dict) else {}),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), *args_of_rank(rank)],
                env=env,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    out = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            out.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return out
