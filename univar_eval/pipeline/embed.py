"""The flow from answers to a value distribution, shared by lm-eval tasks and the CLI:

answers -> (empty ones counted and dropped) -> translation to English -> ``Q: .. A: ..``
-> encoder -> :class:`~univar_eval.storage.distribution.ValueDistribution` with its manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from univar_eval.errors import UserError
from univar_eval.pipeline import answers as answers_mod
from univar_eval.pipeline import questionnaire as questionnaire_mod
from univar_eval.pipeline.cache import cached_encode
from univar_eval.pipeline.encoders import load_encoder
from univar_eval.pipeline.shard import World, active_world, agree, rank_device, run_blocks
from univar_eval.pipeline.translate import get_translator, quietly, to_english
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
    world: World | None = None,
) -> tuple[ValueDistribution, dict]:
    """Embed the non-empty answers of ``records`` (all in language ``lang``).

    ``translated_by``: the records are already in English, translated by that system
    (e.g. UniVaR's released ``qa_translated`` data); it is recorded, nothing is translated.

    The answers are translated and embedded in blocks of :func:`block_size`; under
    :func:`~univar_eval.pipeline.shard.sharded` (or with ``world``) the blocks are spread over the
    ranks and gathered to rank 0, which returns the distribution; the other ranks return an empty one
    (no rows) that must not be written.
    """
    questionnaire_mod.check_language(lang)
    world = world or active_world()
    if questionnaire_version is None and questionnaire:
        questionnaire_version = questionnaire_mod.load(questionnaire, lang).version
    kept, n_empty = answers_mod.split_empty(records)
    device = rank_device(settings.encoder_device, world)
    translator = None
    if translated_by:
        translation = {"name": translated_by, "applied_by": "source"}
    else:
        translator = get_translator("none" if lang == "eng" else settings.translator, device=device)
        translation = translator.describe()
    encoder = load_encoder(settings.encoder, device=device)
    # the same models on every rank (by name and revision: a fingerprint may differ in its last digit by device)
    described = encoder.describe()
    identity = {k: described.get(k) for k in ("name", "model_id", "revision", "dimension")}
    agree((identity, translation), world, "encoder or translator")

    def embed_block(rows: list[dict]) -> tuple[list[str], np.ndarray, int, int, int]:
        """One block of answers: translated, fitted to the encoder, embedded (through the caches)."""
        questions, answers = [r["question"] for r in rows], [r["answer"] for r in rows]
        n_cut = 0
        if translator is not None:
            before = translator.stats.n_truncated
            with quietly(translator):
                questions, answers = to_english(questions, answers, lang, translator, label=task)
            n_cut = translator.stats.n_truncated - before
        texts, n_fitted = fit_to_encoder(questions, answers, encoder)
        vectors = cached_encode(encoder, texts, batch_size=settings.encoder_batch_size, progress=False)
        return texts, vectors, sum(answers_mod.is_refusal(a) for a in answers), n_cut, n_fitted

    done = run_blocks(kept, embed_block, block=block_size(settings), world=world, label=f"embedding {task}")
    sharding: dict[str, int | list[int]] | None = {"world_size": world.size} if world.distributed else None
    if done is None:  # another rank than 0: rank 0 holds the whole distribution and writes it
        empty = np.zeros((0, encoder.dimension), dtype=np.float32)
        manifest = {"task": task, "lang": lang, "encoder": encoder.describe(), "sharding": sharding}
        return ValueDistribution(empty, [], manifest), {"n_answers": 0, "n_empty": 0}
    blocks, shares = done
    texts = [t for b in blocks for t in b[0]]
    if sharding:
        sharding["answers_per_rank"] = [s.stop - s.start for s in shares]
    n_truncated = sum(b[3] for b in blocks)
    n_encoder_truncated = sum(b[4] for b in blocks)
    if n_truncated:
        log.warning(
            "univar-eval: %d %s texts of %s (questions and answers) were longer than %s tokens and were cut "
            "before translation",
            n_truncated,
            lang,
            task,
            getattr(translator, "max_input_tokens", "?"),
        )
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
    if blocks:
        embeddings = np.vstack([b[1] for b in blocks])
    else:
        embeddings = cached_encode(encoder, [], batch_size=settings.encoder_batch_size, progress=False)
    out_records = [{**r, "text": text} for r, text in zip(kept, texts)]
    counts = {
        "n_answers": len(kept),
        "n_empty": n_empty,
        "n_refused": sum(b[2] for b in blocks),
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
    if sharding:
        manifest["sharding"] = sharding
    return ValueDistribution(embeddings, out_records, manifest), counts


def block_size(settings: RunSettings) -> int:
    """Answers per block: four encoder batches. The blocks are the same in one process and in many, so
    each block is translated and embedded exactly as one process would (see :mod:`.shard`)."""
    return max(1, settings.encoder_batch_size) * 4


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
    distribution in its place, so compare, gate, bank add and map read it like any other.

    Under :func:`~univar_eval.pipeline.shard.sharded` every rank embeds its share and rank 0 alone
    writes; a failure on any rank leaves the kept answers as they were."""
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
    if active_world().is_main:
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
