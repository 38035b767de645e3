"""THE schema checker of stored artifacts: run manifests (:mod:`univar_eval.storage.distribution`) and bank
entries (:mod:`univar_eval.storage.bank`) are both checked by :func:`find_problem` against a schema written as data:
``{key: (REQUIRED | OPTIONAL, check)}``, a check being a function that returns None when the value is fine, else
what is wrong with it in a few words (starting with ``.key`` when it is about one key of an object), or a
:class:`Nested` schema. Unknown keys are allowed: later releases may add some.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from univar_eval.storage.identity import SHA256

#: A task name: it becomes part of file names (bank entries, ``gate --plot`` files), so no path separators
TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


# Each check returns None when the value is fine, else what is wrong with it (a few words; starting with
# ``.key`` when it is about one key of an object).
def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def nonempty_text(v):
    return None if isinstance(v, str) and v.strip() else f"{shown(v)} is not a non-empty text"


def text_or_null(v):
    return None if v is None or isinstance(v, str) else f"{shown(v)} is not text or null"


def bool_or_null(v):
    return None if v is None or isinstance(v, bool) else f"{shown(v)} is not true, false or null"


def whole(v, low: int):
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= low
    return None if ok else f"{shown(v)} is not a whole number >= {low}"


def count(v):
    return whole(v, 0)


def positive_or_null(v):
    return None if v is None else whole(v, 1)


def sha256(v):
    return None if isinstance(v, str) and SHA256.fullmatch(v) else f"{shown(v)} is not a sha256 (64 hex digits)"


def task_name(v):
    if isinstance(v, str) and TASK_NAME.fullmatch(v):
        return None
    return f"{shown(v)} is not a task name (letters, digits, '_', '-', '.'; no path separators)"


def fingerprint(v):
    ok = (
        isinstance(v, list)
        and v
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    )
    return None if ok else f"{shown(v)} is not a list of finite numbers"


def counts(v):
    if not isinstance(v, dict):
        return f"{shown(v)} is not an object"
    for key, n in v.items():
        problem = count(n)
        if problem:
            return f".{key} {problem}"
    return None


def scalars(v):
    if not isinstance(v, dict):
        return f"{shown(v)} is not an object"
    for key, x in v.items():
        if x is not None and not isinstance(x, (str, int, float, bool)):
            return f".{key} {shown(x)} is not text, a number or null"
    return None


REQUIRED, OPTIONAL = True, False


@dataclass(frozen=True)
class Nested:
    """An object inside a manifest, with its own schema (``nullable``: null is allowed too)."""

    schema: dict
    nullable: bool = False


def find_problem(data: dict, schema: dict, prefix: str = "") -> str | None:
    """What is wrong with ``data`` under ``schema`` (the first problem, keys named ``encoder.name``), or None."""
    missing = [f"{prefix}{k}" for k, (required, _) in schema.items() if required and k not in data]
    if missing:
        return f"{', '.join(missing)} missing"
    for key, (_, check) in schema.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(check, Nested):
            if value is None and check.nullable:
                continue
            if not isinstance(value, dict):
                return f"{prefix}{key} {shown(value)} is not an object"
            problem = find_problem(value, check.schema, f"{prefix}{key}.")
            if problem:
                return problem
        elif (problem := check(value)) is not None:
            return f"{prefix}{key}{'' if problem.startswith('.') else ' '}{problem}"
    return None
