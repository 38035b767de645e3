"""Step: verification. Embeddings read from disk are checked against the answers they claim to embed.

A run folder or a bank holds answers (``answers.jsonl``) and their embeddings side by side, and checksums that
anyone who edits the files can recompute. So whenever univar-eval uses embeddings it did not compute itself (a
run's artifacts, a run's artifacts reused by ``bank add``, a pulled bank, the ``bank`` of an lm-eval run), it
redoes the pipeline on a sample of the answers and compares:

* the sample: ``n`` answers per task (``--verify N`` or the run setting ``verify``; default
  :data:`DEFAULT_SAMPLE`; ``all``; ``0`` skips the check and says so), drawn with fresh randomness whose seed is
  printed (so nobody can know in advance which answers will be checked, and a failure can be replayed);
* the encoder: the one the manifest records, loaded by name, and it must *be* that encoder (same revision and
  fingerprint, :func:`~univar_eval.storage.identity.encoder_difference`);
* the caches are bypassed: the sample goes straight through the translator and the encoder;
* the embedded text: for English answers (and ``translator: none``) it must be the one the pipeline makes from the
  question and the answer (``Q: .. A: ..``, fitted to the encoder), so a text cannot be swapped behind an answer;
* translations (other languages): the recorded translator must be the one loaded here (:func:`translator_difference`:
  name, revision, beams, input limit, and the model for a hub translator), and the sampled questions and answers
  are translated again with it. The stored text must be exactly the re-translation (greedy and beam decoding are
  deterministic on one device); where it is not, the re-translation is embedded and must have cosine at least
  ``1 - TRANSLATION_TOLERANCE`` with the stored row (another device's rounding may change a word, a translation of
  another answer moves the row far more; measured in docs/threat-model.md). Text translated before univar-eval
  read it (``applied_by: source``, UniVaR's released data) cannot be redone; the ``verified`` line says so;
* each re-embedded row must have cosine similarity at least ``1 - COSINE_TOLERANCE`` with the stored one.
  Stored embeddings are float16 and devices differ in rounding; both move a row's cosine by less than 1e-4
  (measured on MiniLM, see docs/threat-model.md), while another answer's embedding, even to the same question,
  sits below 0.99.

Detection: when a fraction ``f`` of a task's rows is forged, a sample of ``n`` finds at least one with probability
``1 - (1 - f)^n`` (n = 16: 81% for f = 0.1, 97% for f = 0.2, 99.9% for f = 0.35).
A mismatch is a :class:`VerificationFailed` (a :class:`~univar_eval.errors.UserError`): one line, exit 2.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from univar_eval.errors import UserError
from univar_eval.pipeline.answers import format_qa
from univar_eval.settings import DEFAULT_VERIFY
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.storage.identity import encoder_difference, same_revision

if TYPE_CHECKING:
    from univar_eval.pipeline.encoders import Encoder
    from univar_eval.pipeline.translate import Translator

#: Answers re-embedded per task unless ``--verify`` (or the run setting ``verify``) says otherwise.
DEFAULT_SAMPLE = DEFAULT_VERIFY
#: Largest allowed 1 - cosine between a stored row and the same text embedded again.
COSINE_TOLERANCE = 1e-3
#: Largest allowed 1 - cosine between a stored row and the embedding of its re-translation, when the
#: re-translation is not the stored text word for word.
TRANSLATION_TOLERANCE = 0.03
ALL = -1  # --verify all

VERIFY_HELP = (
    "re-embed this many answers per task (drawn at random, seed printed; non-English ones translated again) and "
    f"check them against the embeddings read from disk: N, 'all', or 0 to skip (default {DEFAULT_SAMPLE})"
)

#: What a translator record must share with the translator that redoes it (model_id too, except for a local
#: folder, whose path differs from machine to machine; its name is the folder's name).
TRANSLATOR_IDENTITY = ("name", "revision", "num_beams", "max_input_tokens")


class VerificationFailed(UserError):
    """Embeddings (or translations) read from disk are not what the recorded models make of their answers."""


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
    #: how translations were checked: "" (English or none), "n re-translated (k word for word)", or why not
    translation: str = ""

    def line(self, where: str) -> str:
        if self.checked == 0:
            return f"not verified {where} ({self.task}): --verify 0"
        return (
            f"verified {where} ({self.task}): {self.checked} of {self.total} answers re-embedded (seed {self.seed}), "
            f"smallest cosine {self.worst:.5f} >= {1 - COSINE_TOLERANCE}"
            + (f"; {self.translation}" if self.translation else "")
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


def translator_difference(recorded: dict, loaded: dict) -> str | None:
    """Why the translator ``recorded`` in a manifest is not the ``loaded`` one (both as ``describe()`` writes
    them), in a few words; None when it is. A key the loaded translator has must be recorded alike."""
    keys = TRANSLATOR_IDENTITY + (() if str(loaded.get("name", "")).startswith("local:") else ("model_id",))
    for key in keys:
        mine, theirs = recorded.get(key), loaded.get(key)
        same = same_revision(mine, theirs) if key == "revision" else mine == theirs
        if not same:
            return f"{key} {mine!r} recorded, {theirs!r} here"
    return None


def _translator_for(recorded: dict, device: str | None, where: str, given: Translator | None) -> Translator:
    """The translator the manifest records (``given``, or loaded by name), after checking it is that translator."""
    from univar_eval.pipeline.translate import get_translator

    name = recorded.get("name")
    if given is None:
        spec = recorded.get("model_id") if str(name).startswith("local:") else name
        if not isinstance(spec, str) or not spec:
            raise UserError(
                f"cannot verify {where}: its manifest records no translator to redo the translations with "
                f"({name!r}); pass --verify 0 to use its embeddings unchecked"
            )
        try:
            given = get_translator(spec, device=device)
            load = getattr(given, "_load", None)
            if load is not None:
                load()
        except Exception as e:  # noqa: BLE001 - a translator that cannot be loaded is the same news, whatever broke
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UserError(
                f"cannot verify {where}: its translator {name!r} cannot be loaded here ({first}); pass --verify 0 "
                "to use its embeddings unchecked"
            ) from None
    problem = translator_difference(recorded, given.describe())
    if problem:
        raise VerificationFailed(
            f"{where}: the recorded translator is not the one loaded here ({problem}); the translations cannot be "
            "redone: rebuild the entry (or the run) with this translator, or pass --verify 0 to use it unchecked"
        )
    return given


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), -1.0)


def verify_distribution(
    dist: ValueDistribution,
    n: int,
    *,
    where: str,
    device: str | None = None,
    seed: int | None = None,
    translator: Translator | None = None,
) -> Verified:
    """Re-embed ``n`` (:data:`ALL`: every) answers of ``dist`` and compare (see the module's description).
    ``translator``: the translator to redo translations with (default: loaded from the manifest's record); it
    must be the recorded one all the same."""
    from univar_eval.pipeline.embed import fit_to_encoder

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
    recorded_translator = dist.manifest.get("translator") or {}
    english = dist.lang == "eng" or recorded_translator.get("name") in (None, "none")
    pairs = []
    for i in rows:
        r = dist.records[i]
        q, a = r.get("question"), r.get("answer")
        if not isinstance(q, str) or not isinstance(a, str):
            raise UserError(f"cannot verify {where}: answer {i + 1} has no question or answer text")
        pairs.append((q, a))
    if english:
        for i, text, (q, a) in zip(rows, texts, pairs):
            if text != format_qa(q, a) and text != fit_to_encoder([q], [a], encoder)[0][0]:
                raise VerificationFailed(
                    f"{where}: answer {i + 1}'s embedded text is not its question and answer (seed {seed}); the "
                    "answers file was edited after embedding: rerun the task"
                )
    fresh = np.asarray(encoder.encode(texts, batch_size=32, progress=False), dtype=np.float64)  # no cache
    stored = np.asarray(dist.embeddings[rows], dtype=np.float64)
    worst_at, worst = _worst(fresh, stored)
    if not math.isfinite(worst) or worst < 1 - COSINE_TOLERANCE:
        raise VerificationFailed(
            f"{where}: embeddings do not match their answers: {_answer(dist, int(rows[worst_at]))}"
            f" re-embedded with {encoder.name} has cosine {worst:.4f} with the stored row (need >= "
            f"{1 - COSINE_TOLERANCE}; {size} of {total} checked, seed {seed}); they were not made from these "
            "answers: rerun the task"
        )
    note = ""
    if not english:
        note = _check_translations(dist, rows, texts, pairs, stored, encoder, where, device, seed, translator)
    return Verified(dist.task, size, total, seed, worst, note)


def _worst(fresh: np.ndarray, stored: np.ndarray) -> tuple[int, float]:
    """The row whose fresh vector is least like its stored one, and that cosine."""
    cos = _cosines(fresh, stored)
    at = int(np.argmin(cos))
    return at, float(cos[at])


def _answer(dist, row: int) -> str:
    """``answer N (id ID)`` of a distribution's row, as the refusals name it."""
    rid = dist.records[row].get("id")
    return f"answer {row + 1}" + (f" (id {rid})" if rid is not None else "")


def _check_translations(
    dist, rows, texts, pairs, stored, encoder, where: str, device, seed: int, translator: Translator | None
) -> str:
    """Translate the sampled answers again (no cache) and compare with the stored texts; returns the note for
    the ``verified`` line."""
    from univar_eval.pipeline.embed import fit_to_encoder
    from univar_eval.pipeline.translate import quietly, to_english

    recorded = dist.manifest.get("translator") or {}
    if recorded.get("applied_by") == "source":
        return f"translations not redone: made by {recorded.get('name')} before univar-eval read them"
    loaded = _translator_for(recorded, device, where, translator)
    with quietly(loaded):
        questions, answers = to_english(
            [q for q, _ in pairs], [a for _, a in pairs], dist.lang, loaded, label=dist.task, cache=False
        )
    again, _ = fit_to_encoder(questions, answers, encoder)
    differ = [k for k, (old, new) in enumerate(zip(texts, again)) if old != new]
    if differ:
        redone = np.asarray(encoder.encode([again[k] for k in differ], batch_size=32, progress=False))
        at, worst = _worst(redone, stored[differ])
        if not math.isfinite(worst) or worst < 1 - TRANSLATION_TOLERANCE:
            raise VerificationFailed(
                f"{where}: translations do not match their answers: {_answer(dist, int(rows[differ[at]]))}"
                f" translated again with {loaded.describe().get('name')} gives a text whose embedding has cosine "
                f"{worst:.4f} with the stored row (need >= {1 - TRANSLATION_TOLERANCE}; seed {seed}); the stored "
                "translation was not made from this answer by the recorded translator: rerun the task"
            )
    return f"{len(rows)} translated again, {len(rows) - len(differ)} word for word"


def verify_bank(bank, n: int, *, device: str | None = None, announce=None, entries=None, translator=None) -> int:
    """Verify a sample of every entry of ``bank`` (or of ``entries``); returns the answers checked.

    ``announce(line)`` receives one line per entry checked (the CLI prints it to stderr, a run logs it)."""
    checked = 0
    for e in bank.entries() if entries is None else entries:
        where = f"bank {bank.path}: {e['model']} / {e['task']}"
        result = verify_distribution(
            bank.load(e, with_answers=True), n, where=where, device=device, translator=translator
        )
        checked += result.checked
        if announce is not None and result.checked:
            announce(result.line(where))
    return checked


#: Bank entries already verified in this process: (bank folder, array sha256, answers sha256, n) -> the line.
_VERIFIED_ENTRIES: dict[tuple, str] = {}


def verify_bank_entries_once(bank, entries: list[dict], n: int, *, device=None, translator=None, announce=None):
    """:func:`verify_bank` on ``entries``, each entry once per process (a run builds its tasks more than once,
    and a group shares one bank): an entry is known by its folder and content checksums, so a changed file is
    verified again."""
    for e in entries:
        key = (str(bank.path.resolve()), e.get("sha256"), e.get("answers_sha256"), n)
        if key in _VERIFIED_ENTRIES:
            continue
        lines: list[str] = []
        verify_bank(bank, n, device=device, entries=[e], translator=translator, announce=lines.append)
        _VERIFIED_ENTRIES[key] = lines[0] if lines else ""
        if announce is not None and lines:
            announce(lines[0])
