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
verify              UNIVAR_EVAL_VERIFY          16: bank answers re-embedded per entry; ``all``; 0 skips
repeats             (metadata only)             lm-eval's task ``repeats`` (the YAML's, else 1)
==================  ==========================  ==================================================

lm-eval merges ``--model_args`` (``simple_evaluate(model_args=...)``) into the metadata, so
the encoder's device and batch size are named ``encoder_*``: ``--model_args device=cuda:0,
batch_size=8`` belongs to the evaluated model, not to the encoder.

Nothing is silently ignored: a metadata key that is not a setting but is within a small edit distance
of one (``encodr``, ``translater``, ``min_answer``: distance 2, or 1 for names of four letters or fewer)
is refused with a "did you mean"; so is any ``UNIVAR_EVAL_*`` environment variable that univar-eval
does not read. Other unknown metadata keys are the model's arguments, not ours to refuse.

``model``, the evaluated model's name in the artifacts, is the first of the metadata keys
``peft``, ``delta``, ``pretrained``, ``model``, ``path``, ``engine`` (the model arguments that
name a model; a ``TaskManager`` built by hand can pass ``model`` itself).

``verify`` means what the commands' ``--verify all|N|0`` means: before generation, a sample of every bank entry
the run's tasks compare with (``bank``, a folder or ``hf://``) is translated and embedded again and checked
against the bank (:mod:`univar_eval.pipeline.verify`); a forged entry stops the run with exit 2.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from univar_eval.errors import UserError

log = logging.getLogger("univar_eval")

DEFAULT_ENCODER = "univar-lambda-5"
DEFAULT_TRANSLATOR = "nllb-600m"
#: Answers re-embedded per task (or bank entry) to check embeddings read from disk: the commands' ``--verify``
#: default and the run setting ``verify``'s (:mod:`univar_eval.pipeline.verify`).
DEFAULT_VERIFY = 16
#: ``verify: all`` as a number.
VERIFY_ALL = -1

#: Model arguments that name the evaluated model, most specific first (an adapter before its base).
MODEL_NAME_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


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
    #: answers per bank entry re-embedded before generation; None: the default (DEFAULT_VERIFY); VERIFY_ALL: all
    verify: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["verify"] == VERIFY_ALL:
            out["verify"] = "all"  # as it is written, so that resolve() reads it back
        return out


def parse_verify(raw: Any) -> int:
    """The ``verify`` setting: ``all`` (:data:`VERIFY_ALL`) or a whole number >= 0 (0 skips the check)."""
    if isinstance(raw, str) and raw.strip().lower() == "all":
        return VERIFY_ALL
    try:
        n = int(str(raw).strip()) if not isinstance(raw, bool) else -1
    except ValueError:
        n = -1
    if n < 0:
        raise UserError(
            f"setting verify={raw!r} is neither 'all' nor a whole number >= 0; pass e.g. "
            "--metadata '{\"verify\": 16}' (0 skips checking the bank)"
        )
    return n


_ENV = {f.name: f"UNIVAR_EVAL_{f.name.upper()}" for f in fields(RunSettings)}
_ENV.update(encoder_batch_size="UNIVAR_EVAL_BATCH_SIZE", encoder_device="UNIVAR_EVAL_DEVICE")

#: Metadata read by the task itself rather than kept in RunSettings: ``repeats`` sets lm-eval's task ``repeats``.
TASK_SETTINGS = ("repeats",)
#: Every metadata key univar-eval reads.
SETTING_NAMES = tuple(f.name for f in fields(RunSettings)) + TASK_SETTINGS
ENV_PREFIX = "UNIVAR_EVAL_"
#: Every environment variable with our prefix that univar-eval reads: the settings' and these.
OTHER_ENVIRONMENT = {
    "UNIVAR_EVAL_CACHE": "the embedding cache folder",
    "UNIVAR_EVAL_CARDS": "extra encoder cards",
    "UNIVAR_EVAL_NO_AUTOLOAD": "switches task discovery off",
}
KNOWN_ENVIRONMENT = frozenset(_ENV.values()) | frozenset(OTHER_ENVIRONMENT)


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


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, a swap of two neighbouring letters counting as one edit."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def near_setting(key: str, names=SETTING_NAMES) -> str | None:
    """The setting name ``key`` is probably a misspelling of: within edit distance 2 (1 for names of four
    letters or fewer, so that short model arguments are not mistaken for ``bank`` or ``model``)."""
    if key in names:
        return None
    lowered = key.lower()
    scored = sorted((edit_distance(lowered, n), n) for n in names)
    for distance, name in scored:
        if distance <= (1 if len(name) <= 4 else 2):
            return name
    return None


def check_metadata_keys(metadata: Mapping[str, Any]) -> None:
    """Refuse a metadata key that looks like a misspelt setting (``encodr``). Other unknown keys are
    left alone: lm-eval merges the model's arguments into the same metadata."""
    for key in metadata:
        name = near_setting(str(key))
        if name:
            raise UserError(
                f"metadata key {key!r} is not a univar-eval setting; did you mean {name!r}? "
                f"(settings: {', '.join(SETTING_NAMES)})"
            )


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse an environment variable with our prefix that univar-eval does not read."""
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and var not in KNOWN_ENVIRONMENT:
            suffixes = tuple(sorted(k[len(ENV_PREFIX) :].lower() for k in KNOWN_ENVIRONMENT))
            close = near_setting(var[len(ENV_PREFIX) :], suffixes)
            hint = f"did you mean {ENV_PREFIX}{close.upper()}? " if close else ""
            raise UserError(
                f"environment variable {var} is not a univar-eval setting; {hint}"
                f"(known: {', '.join(sorted(KNOWN_ENVIRONMENT))}); unset it"
            )


def resolve(metadata: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> RunSettings:
    """Combine ``--metadata`` values, environment variables and defaults.

    Raises :class:`UserError` for a misspelt setting in ``metadata`` or an unknown ``UNIVAR_EVAL_*``
    variable in ``environ`` (see the module docstring), and for a value of the wrong type.
    """
    metadata = dict(metadata or {})
    environ = os.environ if environ is None else environ
    check_metadata_keys(metadata)
    check_environment(environ)
    values: dict[str, Any] = {}
    for f in fields(RunSettings):
        raw = model_name(metadata) if f.name == "model" else metadata.get(f.name)
        if raw is None:
            raw = environ.get(_ENV[f.name]) or None
        if raw is None:
            continue
        if f.name == "verify":
            raw = parse_verify(raw)
        elif f.type in ("int", int):
            try:
                raw = int(raw)
            except (TypeError, ValueError):
                raise UserError(f"setting {f.name}={raw!r} is not an integer; pass e.g. {f.name}=10") from None
        values[f.name] = str(raw) if f.type in ("str", "str | None") else raw
    return RunSettings(**values)
