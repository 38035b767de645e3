"""The SQLite caches under several writers at once (the ranks of one node share one cache folder)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WRITER = textwrap.dedent(
    """
    import logging, sys
    from univar_eval.pipeline.cache import KeyValueCache
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    path, who = sys.argv[1], sys.argv[2]
    cache = KeyValueCache(path)
    assert cache.enabled, "cache not opened"
    for i in range(150):  # one transaction each: the writers interleave
        cache.put_many("ns", [(f"{who}-{i}", f"{who}:{i}".encode()), (f"shared-{i}", f"shared:{i}".encode())])
        assert cache.get_many("ns", [f"{who}-{i}"]) == {f"{who}-{i}": f"{who}:{i}".encode()}
    print("done")
    """
)


def test_three_processes_write_one_fresh_cache_at_once(tmp_path):
    path = tmp_path / "cache" / "embeddings.sqlite"  # created by whichever writer comes first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for (out, err), p in zip(outs, procs):
        assert (p.returncode, out, err) == (0, "done\n", "")  # no "unusable", no "write failed"
    from univar_eval.pipeline.cache import KeyValueCache

    cache = KeyValueCache(path)
    keys = [f"w{k}-{i}" for k in range(3) for i in range(150)] + [f"shared-{i}" for i in range(150)]
    found = cache.get_many("ns", keys)
    assert len(found) == 600 and cache.count("ns") == 600
    assert found["w2-149"] == b"w2:149" and found["shared-7"] == b"shared:7"
