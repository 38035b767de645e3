"""The flow from answers to a value distribution, shared by lm-eval tasks and the CLI:

answers -> (empty ones counted and dropped) -> translation to English -> ``Q: .. A: ..``
-> encoder -> :class:`~univar_eval.storage.distribution.ValueDistribution` with its manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from univar_eval.errors import UserError
from univar_eval.pipeline import answers as answers_mod
from univar_eval.pipeline import questionnaire as questionnaire_mod
from univar_eval.pipeline.cache import cached_encode
from univar_eval.pipeline.encoders import load_encoder
from univar_eval.pipeline.translate import get_translator, to_english
from univar_eval.settings import RunSettings
from univar_eval.storage.distribution import (
    ANSWERS_FILE,
    MANIFEST_FILE,
    PENDING_FORMAT,
    ValueDistribution,
    damaged,
    make_manifest,
    read_manifest,
)
from univar_eval.storage.files import DamagedFile, read_jsonl

log = logging.getLogger("univar_eval")


def build_distribution(
    records: list[dict],
    *,
    task: str,
    questionnaire: str | None,
    lang: str,
    settings: RunSettings,
    model: str | None,
    questionnaire_version: str | None = None,
    translated_by: str | None = None,
) -> tuple[ValueDistribution, dict]:
    """Embed the non-empty answers of ``records`` (all in language ``lang``).

    ``translated_by``: the records are already in English, translated by that system
    (e.g. UniVaR's released ``qa_translated`` data); it is recorded, nothing is translated.
    """
    questionnaire_mod.check_language(lang)
    if questionnaire_version is None and questionnaire:
        questionnaire_version = questionnaire_mod.load(questionnaire, lang).version
    kept, n_empty = answers_mod.split_empty(records)
    n_truncated = 0
    if translated_by:
        questions_en, answers_en = [r["question"] for r in kept], [r["answer"] for r in kept]
        translation = {"name": translated_by, "applied_by": "source"}
    else:
        translator = get_translator("none" if lang == "eng" else settings.translator, device=settings.encoder_device)
        truncated_before = translator.stats.n_truncated
        questions_en, answers_en = to_english(
            [r["question"] for r in kept], [r["answer"] for r in kept], lang, translator, label=task
        )
        n_truncated = translator.stats.n_truncated - truncated_before
        translation = translator.describe()
    encoder = load_encoder(settings.encoder, device=settings.encoder_device)
    texts, n_encoder_truncated = fit_to_encoder(questions_en, answers_en, encoder)
    if n_encoder_truncated:
        log.warning(
            "univar-eval: %d of %d texts of %s (%.0f%%) exceed %s's maximum length of %s tokens; the "
            "middle of each such question was cut and the answer kept whole",
            n_encoder_truncated,
            len(texts),
            task,
            100 * n_encoder_truncated / len(texts),
            encoder.name,
            encoder.max_length,
        )
    embeddings = embed_with_progress(encoder, texts, batch_size=settings.encoder_batch_size, label=task)
    out_records = []
    for r, text in zip(kept, texts):
        out_records.append({**r, "text": text})
    counts = {
        "n_answers": len(kept),
        "n_empty": n_empty,
        "n_refused": sum(answers_mod.is_refusal(a) for a in answers_en),
        "n_truncated": n_truncated,
        "n_encoder_truncated": n_encoder_truncated,
    }
    manifest = make_manifest(
        encoder=encoder.describe(),
        questionnaire=questionnaire,
        questionnaire_version=questionnaire_version,
        task=task,
        lang=lang,
        translator={"name": "none"} if lang == "eng" else translation,
        model=model,
        counts=counts,
        text_format=answers_mod.TEXT_FORMAT,
    )
    return ValueDistribution(embeddings, out_records, manifest), counts


def embed_with_progress(encoder, texts: list[str], *, batch_size: int, label: str) -> np.ndarray:
    """``cached_encode`` in blocks, with one progress bar per task (``embedding <task>``)."""
    block = max(1, batch_size) * 4
    parts = []
    # disable=None: the bar shows on a terminal, not in pipes and log files
    with tqdm(total=len(texts), desc=f"embedding {label}", unit="answer", disable=True if not texts else None) as bar:
        for start in range(0, len(texts), block):
            chunk = texts[start : start + block]
            parts.append(cached_encode(encoder, chunk, batch_size=batch_size, progress=False))
            bar.update(len(chunk))
    return np.vstack(parts) if parts else cached_encode(encoder, texts, batch_size=batch_size, progress=False)


def pending_folders(path: str | Path) -> list[Path]:
    """Task folders under ``path`` whose answers were kept when embedding failed during the lm-eval run.

    Every manifest under ``path`` is checked against its schema and every kept-answers folder is read
    (see :func:`read_pending`) before anything is embedded, so a damaged one stops the command with
    nothing written."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    found = []
    for manifest_path in sorted(path.rglob(MANIFEST_FILE)):
        ours = manifest_path.parent == path or manifest_path.parent.parent.name.startswith("univar_")
        m = read_manifest(manifest_path, ours=ours)
        if m is not None and m["format"] == PENDING_FORMAT:
            read_pending(manifest_path.parent)
            found.append(manifest_path.parent)
    return found


def read_pending(folder: Path) -> tuple[dict, list[dict]]:
    """The checked manifest and the answers of a task folder whose answers were kept."""
    manifest = read_manifest(folder / MANIFEST_FILE, ours=True)
    assert manifest is not None  # ours=True: a damaged manifest raises, it never gives None
    if manifest["format"] != PENDING_FORMAT:
        raise UserError(f"{folder}: already embedded; nothing to do")
    try:
        rows = read_jsonl(folder / ANSWERS_FILE)
    except DamagedFile as e:
        raise damaged(e.where, e.what) from None
    if len(rows) != manifest["n_answers"]:
        raise damaged(
            folder / ANSWERS_FILE, f"{len(rows)} answers but the manifest says n_answers {manifest['n_answers']}"
        )
    return manifest, rows


def finish_pending(folder: Path, overrides: dict) -> ValueDistribution:
    """Embed the kept answers of one task folder with its run's settings (``overrides`` win) and save the
    distribution in its place, so compare, gate, bank add and map read it like any other."""
    from univar_eval.settings import resolve

    manifest, rows = read_pending(folder)
    if not manifest.get("questionnaire") or not manifest.get("lang"):
        raise UserError(
            f"{folder}: kept answers of {manifest.get('task')} are not a univar questionnaire task; nothing to embed"
        )
    saved = {k: v for k, v in (manifest.get("settings") or {}).items() if v is not None}
    settings = resolve({**saved, **{k: v for k, v in overrides.items() if v is not None}}, environ={})
    dist, _ = build_distribution(
        rows,
        task=manifest["task"],
        questionnaire=manifest["questionnaire"],
        lang=manifest["lang"],
        settings=settings,
        model=manifest.get("model"),
    )
    dist.save(folder)
    return dist


def fit_to_encoder(questions: list[str], answers: list[str], encoder) -> tuple[list[str], int]:
    """The ``Q: .. A: ..`` texts, each fitted to the encoder's maximum length (see
    :data:`~univar_eval.pipeline.answers.TEXT_FORMAT`), and how many were over it."""
    texts = [answers_mod.format_qa(q, a) for q, a in zip(questions, answers)]
    limit = encoder.max_length
    lengths = encoder.token_lengths(texts) if limit else None
    if lengths is None:
        return texts, 0
    over = [i for i, n in enumerate(lengths) if n > limit]

    def fits(text: str) -> bool:
        return encoder.token_lengths([text])[0] <= limit

    for i in over:
        texts[i] = answers_mod.fit_qa(questions[i], answers[i], fits)
    return texts, len(over)
