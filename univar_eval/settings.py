"""Run settings: which encoder, translator, bank and output folder a run uses.

Each setting comes from lm-eval's ``--metadata`` JSON first, then from an
environment variable, then from the default:

=============  ==========================  ==============================
metadata key   environment variable        default
=============  ==========================  ==============================
encoder        UNIVAR_EVAL_ENCODER         univar-lambda-5
translator     UNIVAR_EVAL_TRANSLATOR      nllb-600m
bank           UNIVAR_EVAL_BANK            (none: no distances reported); a folder or hf://ORG/NAME@REV
output         UNIVAR_EVAL_OUTPUT          next to lm-eval's --output_path
min_answers    UNIVAR_EVAL_MIN_ANSWERS     10
batch_size     UNIVAR_EVAL_BATCH_SIZE      32
device         UNIVAR_EVAL_DEVICE          cuda when available, else cpu
=============  ==========================  ==============================
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from univar_eval.errors import UserError

DEFAULT_ENCODER = "univar-lambda-5"
DEFAULT_TRANSLATOR = "nllb-600m"


@dataclass(frozen=True)
class RunSettings:
    encoder: str = DEFAULT_ENCODER
    translator: str = DEFAULT_TRANSLATOR
    bank: str | None = None
    output: str | None = None
    min_answers: int = 10
    batch_size: int = 32
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ENV = {f.name: f"UNIVAR_EVAL_{f.name.upper()}" for f in fields(RunSettings)}


def resolve(metadata: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> RunSettings:
    """Combine ``--metadata`` values, environment variables and defaults."""
    metadata = metadata or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(RunSettings):
        raw = metadata.get(f.name)
        if raw is None:
            raw = environ.get(_ENV[f.name]) or None
        if raw is None:
            continue
        if f.type in ("int", int):
            try:
                raw = int(raw)
            except (TypeError, ValueError):
                raise UserError(f"setting {f.name}={raw!r} is not an integer; pass e.g. {f.name}=10") from None
        values[f.name] = str(raw) if f.type in ("str", "str | None") else raw
    return RunSettings(**values)
