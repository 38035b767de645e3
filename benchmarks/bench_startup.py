"""What the task-discovery startup hook costs each Python interpreter start.

    python benchmarks/bench_startup.py

Prints the median wall time of ``python -c pass`` with the hook and with
``UNIVAR_EVAL_NO_AUTOLOAD=1``, and the hook's own import time (``-X importtime``).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time


def start_time(env: dict, runs: int = 30) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def hook_import_us() -> int:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
    total = 0
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s+(\S+)", line)
        if m and m.group(3).strip() in ("univar_eval", "univar_eval._autoload"):
            total += int(m.group(1))
    return total


def main() -> None:
    on = start_time(dict(os.environ))
    off = start_time({**os.environ, "UNIVAR_EVAL_NO_AUTOLOAD": "1"})
    print(f"python -c pass, median of 30: with hook {on:.1f} ms, without {off:.1f} ms, difference {on - off:+.1f} ms")
    print(f"hook modules' own import time (-X importtime): {hook_import_us() / 1000:.2f} ms")


if __name__ == "__main__":
    main()
