"""Run settings: which encoder, translator, bank and output folder a run uses.

Each setting comes from lm-eval's ``--metadata`` first, then from an environment
variable, then from the default:

==================  ==========================  ==================================================
metadata key        environment variable        default
==================  ==========================  ==================================================
encoder             UNIVAR_EVAL_ENCODER         univar-lambda-5
translator          UNIVAR_EVAL_TRANSLATOR      nllb-600m
bank                UNIVAR_EVAL_BANK            none (no distances); a folder or hf://ORG/NAME@REV
output              UNIVAR_EVAL_OUTPUT          next to --output_path, else ./univar-runs/<model>/
min_answers         UNIVAR_EVAL_MIN_ANSWERS     10
encoder_batch_size  UNIVAR_EVAL_BATCH_SIZE      32
encoder_device      UNIVAR_EVAL_DEVICE          cuda when available, else cpu
model               UNIVAR_EVAL_MODEL           from the model arguments (see below)
==================  ==========================  ==================================================

lm-eval merges ``--model_args`` (``simple_evaluate(model_args=...)``) into the metadata, so
the encoder's device and batch size are named ``encoder_*``: ``--model_args device=cuda:0,
batch_size=8`` belongs to the evaluated model, not to the encoder. The old names,
``device`` and ``batch_size``, are still read when the caller says they were typed in
``--metadata`` (``user_keys``), with a deprecation warning.

``model``, the evaluated model's name in the artifacts, is the first of the metadata keys
``peft``, ``delta``, ``pretrained``, ``model``, ``path``, ``engine`` (the model arguments that
name a model; a ``TaskManager`` built by hand can pass ``model`` itself).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Collection, Mapping

from univar_eval.errors import UserError

log = logging.getLogger("univar_eval")

DEFAULT_ENCODER = "univar-lambda-5"
DEFAULT_TRANSLATOR = "nllb-600m"

#: Model arguments that name the evaluated model, most specific first (an adapter before its base).
MODEL_NAME_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")
#: Old metadata names -> new ones (renamed because lm-eval's model arguments use the old names too).
DEPRECATED = {"device": "encoder_device", "batch_size": "encoder_batch_size"}
_warned: set[str] = set()  # deprecated names already warned about in this process (one line, not one per task)


@dataclass(frozen=True)
class RunSettings:
    encoder: str = DEFAULT_ENCODER
    translator: str = DEFAULT_TRANSLATOR
    bank: str | None = None
    output: str | None = None
    min_answers: int = 10
    encoder_batch_size: int = 32
    encoder_device: str | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # read-only aliases of the names before the rename, for code written against them
    @property
    def device(self) -> str | None:
        return self.encoder_device

    @property
    def batch_size(self) -> int:
        return self.encoder_batch_size


# the environment variables keep their names from before the rename
_ENV = {f.name: f"UNIVAR_EVAL_{f.name.upper()}" for f in fields(RunSettings)}
_ENV.update(encoder_batch_size="UNIVAR_EVAL_BATCH_SIZE", encoder_device="UNIVAR_EVAL_DEVICE")


def model_name(metadata: Mapping[str, Any]) -> str | None:
    """The evaluated model's name from (merged) model arguments, or None."""
    for key in MODEL_NAME_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        # simple_evaluate(model_args={"pretrained": <a loaded transformers model>})
        name = getattr(getattr(value, "config", None), "name_or_path", None) or getattr(value, "name_or_path", None)
        if isinstance(name, str) and name:
            return name
    return None


def resolve(
    metadata: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    user_keys: Collection[str] = (),
) -> RunSettings:
    """Combine ``--metadata`` values, environment variables and defaults.

    ``user_keys``: the metadata keys known to come from the user's ``--metadata`` (not from the
    model arguments); only those make the deprecated names ``device``/``batch_size`` count.
    """
    metadata = dict(metadata or {})
    environ = os.environ if environ is None else environ
    for old, new in DEPRECATED.items():
        if old in metadata and old in user_keys and new not in metadata:
            metadata[new] = metadata[old]
            if old in _warned:
                continue
            _warned.add(old)
            log.warning(
                "univar-eval: metadata %r is deprecated (lm-eval also passes --model_args %s=... to the tasks); use %r",
                old,
                old,
                new,
            )
    values: dict[str, Any] = {}
    for f in fields(RunSettings):
        raw = model_name(metadata) if f.name == "model" else metadata.get(f.name)
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
