"""Safe file writing and integrity checks shared by every step that stores data.

Everything is written to a temporary file in the target folder and renamed into
place, so a crash or a bad input never leaves a half-written file where a good
one was. Arrays are stored as safetensors, metadata as JSON/JSONL; never pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from univar_eval.errors import UserError


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return jsonable(obj.item())
    return obj


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(target: str | os.PathLike, records: Iterable[dict]) -> None:
    write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); restore it or rebuild it") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file; a malformed line raises a UserError naming file and line."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from None
            if not isinstance(record, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: sha256 of files already hashed in this process, by (resolved path, size, mtime in ns).
_DIGESTS: dict[tuple[str, int, int], str] = {}


def verified_sha256(path: str | os.PathLike) -> str:
    """:func:`sha256_file`, computed once per process per (path, size, modification time): a
    rewritten, truncated or touched file is hashed again; an unchanged one is not re-read."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def save_array(target: str | os.PathLike, array: np.ndarray, *, dtype=np.float16) -> str:
    """Store one 2-D array as safetensors (key ``embeddings``) atomically; return its sha256."""
    from safetensors.numpy import save_file

    array = np.ascontiguousarray(np.asarray(array, dtype=dtype))
    with atomic_path(target) as tmp:
        save_file({"embeddings": array}, str(tmp))
        digest = sha256_file(tmp)
    return digest


def load_array(path: str | os.PathLike, *, expected_sha256: str | None = None) -> np.ndarray:
    """Load the ``embeddings`` array of a safetensors file, memory-mapped.

    With ``expected_sha256`` the file is checked first (once per process while its size and
    modification time stay the same, see :func:`verified_sha256`); a mismatch (truncated,
    tampered) raises a UserError.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: array file is missing; rebuild it (univar-eval bank add ...)")
    if expected_sha256 is not None and verified_sha256(path) != expected_sha256:
        raise UserError(
            f"{path}: sha256 does not match the manifest (file truncated or modified); "
            "remove the entry and add it again"
        )
    try:
        return _mmap_safetensors(path)
    except UserError:
        raise
    except Exception as e:  # safetensors raises several types for corrupt files
        raise UserError(f"{path}: not a readable safetensors file ({e}); rebuild it") from None


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": None}


def _mmap_safetensors(path: Path) -> np.ndarray:
    """Memory-map the ``embeddings`` tensor of a safetensors file (its layout is documented and simple)."""
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or n > 100_000_000:
            raise UserError(f"{path}: corrupt safetensors header; rebuild it")
        header = json.loads(fh.read(n))
    info = header.get("embeddings")
    if info is None:
        raise UserError(f"{path}: no 'embeddings' tensor in the file")
    dtype = _ST_DTYPES.get(info["dtype"])
    if dtype is None:
        raise UserError(f"{path}: unsupported dtype {info['dtype']}")
    start, end = info["data_offsets"]
    shape = tuple(info["shape"])
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if end - start != expected or path.stat().st_size < 8 + n + end:
        raise UserError(f"{path}: file is truncated; rebuild it")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + n + start, shape=shape)
