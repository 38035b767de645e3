"""The identity rules every stored artifact is checked against: content hashes, commit hashes, revisions,
and THE rule for "same encoder". Lowest layer with :mod:`univar_eval.storage.files`: everything that
compares or stores artifacts reads these, nothing here imports the pipeline."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

#: A sha256 hex digest (files, embeddings, questionnaires).
SHA256 = re.compile(r"[0-9a-f]{64}")
#: A full git commit hash (hub revisions).
FULL_HASH = re.compile(r"[0-9a-f]{40}")
#: A short commit hash: only a prefix of a commit.
SHORT_HASH = re.compile(r"[0-9a-f]{7,39}")

#: Largest difference between two fingerprints of the same encoder (device and
#: library noise stays far below it; different encoders differ by far more).
FINGERPRINT_TOLERANCE = 0.02


def same_revision(a: str | None, b: str | None) -> bool:
    """Equal, or a short hash and a full hash it is the prefix of."""
    if a == b:
        return True
    if a and b and SHORT_HASH.fullmatch(min(a, b, key=len)) and FULL_HASH.fullmatch(max(a, b, key=len)):
        return max(a, b, key=len).startswith(min(a, b, key=len))
    return False


def same_fingerprint(a: Sequence[float] | None, b: Sequence[float] | None, tol: float = FINGERPRINT_TOLERANCE) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= tol


def encoder_difference(a: dict | None, b: dict | None, *, fingerprint: bool = True) -> str | None:
    """THE rule for "same encoder" (used by stored distributions, banks, identification, compare and
    the leaderboard): same card name, same revision and fingerprints within
    :data:`FINGERPRINT_TOLERANCE`. Returns why two encoder records (as written by
    :meth:`Encoder.describe`) differ, in a few words, or None when they are the same encoder.
    ``fingerprint=False`` skips the one check that needs the loaded encoder."""
    a, b = a or {}, b or {}
    if a.get("name") != b.get("name"):
        return f"encoder differs ({a.get('name')} vs {b.get('name')})"
    if not same_revision(a.get("revision"), b.get("revision")):
        return f"encoder revision differs ({a.get('revision')} vs {b.get('revision')})"
    if fingerprint and not same_fingerprint(a.get("fingerprint"), b.get("fingerprint")):
        return f"encoder fingerprint differs ({a.get('fingerprint_id')} vs {b.get('fingerprint_id')})"
    return None


def same_encoder(a: dict | None, b: dict | None) -> bool:
    """Whether two encoder records are the same encoder (see :func:`encoder_difference`)."""
    return encoder_difference(a, b) is None
