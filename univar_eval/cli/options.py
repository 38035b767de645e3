"""The bounds of numeric command-line options, stated once for every sub-command.

Each function here is an argparse ``type=``: it turns the typed text into a number or raises
``argparse.ArgumentTypeError`` with a message that starts with "must be". The parser of
``univar-eval`` (``cli/__init__.py``) turns such a message into one line, ``error: --OPTION must be
..., got VALUE``, and exit code 2, before any work starts.

The rules, and why:

- ``permutations``: a whole number >= 99. B permutations can give no p-value below 1 / (B + 1); with
  fewer than 19 a test at 5 % can never reject, so a difference test would "pass" for lack of
  evidence. 99 keeps the smallest p-value at 0.01, reachable by a 5 % test corrected over up to five
  checks; the gate raises the count itself for larger families.
- ``count``: a whole number >= 0 (bootstrap resamples, where 0 means no interval; seeds, which numpy
  needs non-negative; retries; epochs; rows to show).
- ``positive_int``: a whole number >= 1 (neighbours, batch sizes).
- ``at_least(n)``: a whole number >= n (``min_answers``: two answers are the fewest a distance needs).
- ``probability``: a number strictly between 0 and 1 (significance levels, held-out shares).
- ``positive_float``: a finite number > 0 (sizes, dots per inch, timeouts, learning rates).
- ``non_negative_float``: a finite number >= 0 (tolerances).
- ``rationality_floor``: a finite number <= 1 (the HVAE value-rationality scale tops at 1).
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

#: the fewest permutations any command accepts (see the module docstring)
MIN_PERMUTATIONS = 99


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def at_least(low: int) -> Callable[[str], int]:
    """A whole number >= ``low``."""

    def check(text: str) -> int:
        value = _whole(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    check.__name__ = f"at_least_{low}"  # argparse names the type in some messages
    return check


count = at_least(0)
positive_int = at_least(1)
permutations = at_least(MIN_PERMUTATIONS)
min_answers = at_least(2)


def verify_sample(text: str) -> int:
    """``--verify``: ``all`` (every answer) or a whole number >= 0 of answers a task (0 skips the check)."""
    from univar_eval.runs.verify import ALL

    if str(text).strip().lower() == "all":
        return ALL
    return count(text)


def probability(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = _number(text)
    if not 0 < value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def share(text: str) -> float:
    """A share above 0 and at most 1 (e.g. the coverage a gate asks for: 1 = every question)."""
    value = _number(text)
    if not 0 < value <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return value


def rationality_floor(text: str) -> float:
    """A finite number <= 1: a floor on the chance-corrected value rationality (1 = the ideal chooser,
    0 = chance, below 0 = worse than chance), so any floor above 1 could never be met."""
    value = _number(text)
    if not (math.isfinite(value) and value <= 1):
        raise argparse.ArgumentTypeError(f"must be a finite number <= 1 (1 = the ideal chooser), got {value}")
    return value
