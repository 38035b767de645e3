"""Safe files: a verified array is hashed once per process per (path, size, mtime); strict JSON values."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest

from univar_eval.errors import UserError
from univar_eval.storage import files


def test_verified_load_hashes_an_unchanged_file_once_and_a_changed_one_again(tmp_path, monkeypatch):
    path = tmp_path / "a.safetensors"
    digest = files.save_array(path, np.eye(3, dtype=np.float32))
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    calls = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        assert np.array_equal(files.load_array(path, expected_sha256=digest), np.eye(3))
    assert len(calls) == 1
    # same size, new bytes, new mtime: hashed again and refused
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(UserError, match="sha256 does not match"):
        files.load_array(path, expected_sha256=digest)
    assert len(calls) == 2


def test_a_truncated_file_is_hashed_again_even_with_its_old_mtime(tmp_path):
    path = tmp_path / "a.safetensors"
    digest = files.save_array(path, np.ones((4, 2), dtype=np.float32))
    files.load_array(path, expected_sha256=digest)
    st = os.stat(path)
    with open(path, "r+b") as fh:
        fh.truncate(st.st_size - 2)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size alone tells
    with pytest.raises(UserError, match="sha256 does not match"):
        files.load_array(path, expected_sha256=digest)


def test_jsonable_gives_strict_json():
    value = {
        "nan": float("nan"),
        "inf": -math.inf,
        "np": np.float32(0.5),
        "n": np.int64(3),
        "nested": [np.array(2.0), (1, float("inf"))],
        "text": "x",
    }
    out = files.jsonable(value)
    assert out == {"nan": None, "inf": None, "np": 0.5, "n": 3, "nested": [2.0, [1, None]], "text": "x"}
    assert type(out["n"]) is int and type(out["np"]) is float
    json.dumps(out, allow_nan=False)  # strict JSON: raises on NaN/inf
