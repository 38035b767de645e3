"""Step: verification for the commands. Embeddings read from disk are checked against the answers they claim to
embed: the check itself is :mod:`univar_eval.pipeline.verify` (shared with the ``bank`` of an lm-eval run, which
cannot import this layer); here the commands' side of it: every distribution of the run folders read, every entry of
a bank, one ``verified ...`` line each on stderr.

:data:`DEFAULT_SAMPLE` is the commands' default ``--verify`` (the suite's conftest sets it to 0 for tests that build
run folders by hand).
"""

from __future__ import annotations

import sys

from univar_eval.pipeline import verify as _check
from univar_eval.pipeline.verify import (
    ALL,
    COSINE_TOLERANCE,
    DEFAULT_SAMPLE,
    TRANSLATION_TOLERANCE,
    VERIFY_HELP,
    VerificationFailed,
    Verified,
    detection_probability,
    translator_difference,
    verify_distribution,
)
from univar_eval.safe_text import terminal_text
from univar_eval.storage.distribution import ValueDistribution

__all__ = [
    "ALL",
    "COSINE_TOLERANCE",
    "DEFAULT_SAMPLE",
    "TRANSLATION_TOLERANCE",
    "VERIFY_HELP",
    "VerificationFailed",
    "Verified",
    "detection_probability",
    "translator_difference",
    "verify_all",
    "verify_bank",
    "verify_distribution",
]


def _print(line: str) -> None:
    print(terminal_text(line), file=sys.stderr)


def verify_all(dists: list[ValueDistribution], n: int, *, device: str | None = None, announce: bool = True) -> None:
    """Verify every distribution read from disk (``loaded_from`` set); one stderr line per task."""
    for d in dists:
        if d.loaded_from is None:
            continue
        result = verify_distribution(d, n, where=str(d.loaded_from), device=device)
        if announce and result.checked:  # --verify 0 was asked for: the reports' settings record it
            _print(result.line(str(d.loaded_from)))


def verify_bank(bank, n: int, *, device: str | None = None, announce: bool = True) -> int:
    """Verify a sample of every entry of ``bank`` (e.g. a pulled one); returns the answers checked."""
    return _check.verify_bank(bank, n, device=device, announce=_print if announce else None)
