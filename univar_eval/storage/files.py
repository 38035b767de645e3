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
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from univar_eval.errors import UserError


class DamagedFile(UserError):
    """A file that cannot be read as what it should be: ``<where>: <what>; <hint>``.

    ``where`` is the path (``path:line`` for a line of a text file). Callers that own a file format
    (run artifacts, banks) catch it and give their own hint, keeping ``where`` and ``what``."""

    def __init__(self, path: str | os.PathLike, what: str, hint: str = "", *, line: int | None = None):
        self.path = Path(path)
        self.where = f"{path}:{line}" if line is not None else str(path)
        self.what = what
        self.hint = hint
        super().__init__(f"{self.where}: {what}" + (f"; {hint}" if hint else ""))


#: Temporary files are named ``.<target name>.<random hex>.tmp`` (what orphan cleaning looks for).
TMP_SUFFIX = ".tmp"


def _create_temp(folder: Path, name: str) -> Path:
    """A new empty file ``.<name>.<hex>.tmp`` in ``folder``, created with the umask's permissions
    (as ``open()`` would; ``mkstemp`` would force 0600)."""
    for _ in range(100):
        path = folder / f".{name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise OSError(f"cannot create a temporary file in {folder}")


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(target.parent, target.name)
    mode = tmp_path.stat().st_mode & 0o777  # what the umask allows; a writer may have re-created the file
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
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


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    """One line of UTF-8 text (a byte-order mark at the start of the file is dropped)."""
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DamagedFile(
            path, f"not valid UTF-8 (byte {e.start + 1} of the line)", "save the file as UTF-8", line=lineno
        ) from None


def check_utf8(path: str | os.PathLike) -> None:
    """Raise the UserError naming the first line of ``path`` that is not valid UTF-8 (if any)."""
    path = Path(path)
    with _open_lines(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            _decode(raw, path, lineno)


def _open_lines(path: Path):
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise DamagedFile(path, "file not found") from None
    except IsADirectoryError:
        raise DamagedFile(path, "is a folder, not a file") from None


def read_json(path: str | os.PathLike, *, finite: bool = False) -> Any:
    """Read a JSON file (UTF-8, a BOM allowed). ``finite``: refuse NaN and Infinity (stored data)."""
    path = Path(path)
    with _open_lines(path) as fh:
        text = "".join(_decode(raw, path, lineno) for lineno, raw in enumerate(fh, 1))
    try:
        return json.loads(text, parse_constant=_no_constant if finite else None)
    except json.JSONDecodeError as e:
        raise DamagedFile(path, f"not valid JSON (line {e.lineno}: {e.msg})", "restore it or rebuild it") from None
    except RecursionError:
        raise DamagedFile(path, "JSON nested too deeply", "restore it or rebuild it") from None
    except ValueError as e:
        raise DamagedFile(path, str(e), "restore it or rebuild it") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file (UTF-8, a BOM allowed); a malformed line raises a UserError naming file and line."""
    path = Path(path)
    records = []
    with _open_lines(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DamagedFile(path, f"malformed JSON line ({e.msg})", line=lineno) from None
            except RecursionError:
                raise DamagedFile(path, "JSON nested too deeply", line=lineno) from None
            if not isinstance(record, dict):
                raise DamagedFile(path, f"expected a JSON object, got {type(record).__name__}", line=lineno)
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
        raise DamagedFile(path, "array file is missing", "rebuild it (univar-eval bank add ...)")
    if expected_sha256 is not None and verified_sha256(path) != expected_sha256:
        raise DamagedFile(
            path, "sha256 does not match the manifest (file truncated or modified)", "remove the entry and add it again"
        )
    try:
        return _mmap_safetensors(path)
    except UserError:
        raise
    except Exception as e:  # safetensors raises several types for corrupt files
        raise DamagedFile(path, f"not a readable safetensors file ({e})", "rebuild it") from None


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": None}


def _mmap_safetensors(path: Path) -> np.ndarray:
    """Memory-map the ``embeddings`` tensor of a safetensors file (its layout is documented and simple)."""
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or n > 100_000_000:
            raise DamagedFile(path, "corrupt safetensors header", "rebuild it")
        try:
            header = json.loads(fh.read(n))
        except (ValueError, RecursionError):
            raise DamagedFile(path, "corrupt safetensors header", "rebuild it") from None
    info = header.get("embeddings") if isinstance(header, dict) else None
    if info is None:
        raise DamagedFile(path, "no 'embeddings' tensor in the file")
    try:
        dtype_name, (start, end), shape = info["dtype"], info["data_offsets"], tuple(info["shape"])
        if not all(isinstance(v, int) and v >= 0 for v in (start, end, *shape)):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise DamagedFile(path, "corrupt safetensors header", "rebuild it") from None
    dtype = _ST_DTYPES.get(dtype_name)
    if dtype is None:
        raise DamagedFile(path, f"unsupported dtype {dtype_name}")
    if len(shape) != 2:
        raise DamagedFile(
            path, f"embeddings have shape {list(shape)}; expected 2-D (answers x dimensions)", "rebuild it"
        )
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if end - start != expected or path.stat().st_size < 8 + n + end:
        raise DamagedFile(path, "file is truncated", "rebuild it")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + n + start, shape=shape)
