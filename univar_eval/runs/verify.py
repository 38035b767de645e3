"""Step: verification. Embeddings read from disk are checked against the answers they claim to embed.

A run folder or a bank holds answers (``answers.jsonl``) and their embeddings side by side, and checksums that
anyone who edits the files can recompute. So whenever a command uses embeddings it did not compute itself (a
run's artifacts, a run's artifacts reused by ``bank add``, a pulled bank), it re-embeds a sample of the answers
and compares:

* the sample: ``n`` answers per task (``--verify N``; default :data:`DEFAULT_SAMPLE`; ``all``; ``0`` skips the
  check and says so), drawn with fresh randomness whose seed is printed (so nobody can know in advance which
  answers will be checked, and a failure can be replayed);
* the encoder: the one the manifest records, loaded by name, and it must *be* that encoder (same revision and
  fingerprint, :func:`~univar_eval.storage.identity.encoder_difference`);
* the cache is bypassed: the sample goes straight through the encoder;
* English answers: the embedded text must be the one the pipeline makes from the question and the answer
  (``Q: .. A: ..``, fitted to the encoder), so a text cannot be swapped behind an answer; for other languages the
  text is a translation, which is not redone here (see the threat model);
* each re-embedded row must have cosine similarity at least ``1 - COSINE_TOLERANCE`` with the stored one.
  Stored embeddings are float16 and devices differ in rounding; both move a row's cosine by less than 1e-4
  (measured on MiniLM, see docs/threat-model.md), while another answer's embedding, even to the same question,
  sits below 0.99.

Detection: when a fraction ``f`` of a task's rows is forged, a sample of ``n`` finds at least one with probability
``1 - (1 - f)^n`` (n = 16: 81% for f = 0.1, 97% for f = 0.2, 99.9% for f = 0.35).
A mismatch stops the command: one line, exit 2.
"""

from __future__ import annotations

import math
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from univar_eval.errors import UserError
from univar_eval.pipeline.answers import format_qa
from univar_eval.safe_text import terminal_text
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.storage.identity import encoder_difference

if TYPE_CHECKING:
    from univar_eval.pipeline.encoders import Encoder

#: Answers re-embedded per task unless ``--verify`` says otherwise.
DEFAULT_SAMPLE = 16
#: Largest allowed 1 - cosine between a stored row and the same text embedded again.
COSINE_TOLERANCE = 1e-3
ALL = -1  # --verify all

VERIFY_HELP = (
    "re-embed this many answers per task (drawn at random, seed printed) and check them against the embeddings "
    f"read from disk: N, 'all', or 0 to skip (default {DEFAULT_SAMPLE})"
)


def detection_probability(f: float, n: int) -> float:
    """The chance that a sample of ``n`` rows catches at least one of a forged fraction ``f``."""
    return 1.0 - (1.0 - f) ** n


@dataclass
class Verified:
    task: str | None
    checked: int
    total: int
    seed: int | None
    worst: float  # the smallest cosine seen (1.0 when nothing was checked)

    def line(self, where: str) -> str:
        if self.checked == 0:
            return f"not verified {where} ({self.task}): --verify 0"
        return (
            f"verified {where} ({self.task}): {self.checked} of {self.total} answers re-embedded (seed {self.seed}), "
            f"smallest cosine {self.worst:.5f} >= {1 - COSINE_TOLERANCE}"
        )


_ENCODERS: dict[tuple[str, str | None], Encoder] = {}


def _encoder_for(recorded: dict, device: str | None, where: str) -> Encoder:
    """The encoder the manifest records, loaded by name, after checking it is that encoder."""
    from univar_eval.pipeline.encoders import load_encoder

    name = recorded.get("name")
    if not isinstance(name, str):
        raise UserError(
            f"cannot verify {where}: its manifest records no encoder name ({name!r}); pass --verify 0 to use its "
            "embeddings unchecked"
        )
    key = (name, device)
    if key not in _ENCODERS:
        try:
            _ENCODERS[key] = load_encoder(name, device=device)
        except UserError as e:
            raise UserError(
                f"cannot verify {where}: its encoder {name!r} cannot be loaded here ({e}); pass --verify 0 to use "
                "its embeddings unchecked"
            ) from None
    encoder = _ENCODERS[key]
    problem = encoder_difference(recorded, encoder.describe())
    if problem:
        raise UserError(
            f"cannot verify {where}: the recorded encoder is not the one loaded here ({problem}); rerun the task "
            "with this encoder, or pass --verify 0 to use its embeddings unchecked"
        )
    return encoder


def verify_distribution(
    dist: ValueDistribution, n: int, *, where: str, device: str | None = None, seed: int | None = None
) -> Verified:
    """Re-embed ``n`` (:data:`ALL`: every) answers of ``dist`` and compare (see the module's description)."""
    total = len(dist)
    if n == 0 or total == 0:
        return Verified(dist.task, 0, total, None, 1.0)
    seed = secrets.randbits(48) if seed is None else seed
    rng = np.random.default_rng(seed)
    size = total if n == ALL else min(n, total)
    rows = np.sort(rng.choice(total, size=size, replace=False))
    texts = []
    for i in rows:
        text = dist.records[i].get("text")
        if not isinstance(text, str) or not text:
            raise UserError(
                f"cannot verify {where}: answer {i + 1} carries no embedded text; rerun the task (or pass --verify 0 "
                "to use its embeddings unchecked)"
            )
        texts.append(text)
    encoder = _encoder_for(dist.manifest.get("encoder") or {}, device, where)
    english = dist.lang == "eng" or ((dist.manifest.get("translator") or {}).get("name") in (None, "none"))
    if english:
        from univar_eval.pipeline.embed import fit_to_encoder

        for i, text in zip(rows, texts):
            r = dist.records[i]
            q, a = r.get("question"), r.get("answer")
            if not isinstance(q, str) or not isinstance(a, str):
                raise UserError(f"cannot verify {where}: answer {i + 1} has no question or answer text")
            if text != format_qa(q, a) and text != fit_to_encoder([q], [a], encoder)[0][0]:
                raise UserError(
                    f"{where}: answer {i + 1}'s embedded text is not its question and answer (seed {seed}); the "
                    "answers file was edited after embedding: rerun the task"
                )
    fresh = np.asarray(encoder.encode(texts, batch_size=32, progress=False), dtype=np.float64)  # no cache
    stored = np.asarray(dist.embeddings[rows], dtype=np.float64)
    num = np.sum(fresh * stored, axis=1)
    den = np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), -1.0)
    worst_at = int(np.argmin(cos))
    worst = float(cos[worst_at])
    if not math.isfinite(worst) or worst < 1 - COSINE_TOLERANCE:
        row = int(rows[worst_at])
        rid = dist.records[row].get("id")
        raise UserError(
            f"{where}: embeddings do not match their answers: answer {row + 1}"
            + (f" (id {rid})" if rid is not None else "")
            + f" re-embedded with {encoder.name} has cosine {worst:.4f} with the stored row (need >= "
            f"{1 - COSINE_TOLERANCE}; {size} of {total} checked, seed {seed}); they were not made from these "
            "answers: rerun the task"
        )
    return Verified(dist.task, size, total, seed, worst)


def verify_all(dists: list[ValueDistribution], n: int, *, device: str | None = None, announce: bool = True) -> None:
    """Verify every distribution read from disk (``loaded_from`` set); one stderr line per task."""
    for d in dists:
        if d.loaded_from is None:
            continue
        result = verify_distribution(d, n, where=str(d.loaded_from), device=device)
        if announce and result.checked:  # --verify 0 was asked for: the reports' settings record it
            print(terminal_text(result.line(str(d.loaded_from))), file=sys.stderr)


def verify_bank(bank, n: int, *, device: str | None = None, announce: bool = True) -> int:
    """Verify a sample of every entry of ``bank`` (e.g. a pulled one); returns the answers checked."""
    checked = 0
    for e in bank.entries():
        where = f"bank {bank.path}: {e['model']} / {e['task']}"
        result = verify_distribution(bank.load(e, with_answers=True), n, where=where, device=device)
        checked += result.checked
        if announce and result.checked:
            print(terminal_text(result.line(where)), file=sys.stderr)
    return checked
