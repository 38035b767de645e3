"""Step: identification report. The labelled embeddings ``identify`` and ``map`` read, and the report people read.

:func:`gather` reads lm-eval output, UniVaR CSV files and QA JSONL (anything ``univar-eval bank add``
accepts, embedded with the chosen encoder), run folders holding univar-eval artifacts (their
stored embeddings) and a bank, as :class:`univar_eval.stats.identify.LabelledSet` (one per model,
language and task). A damaged run artifact is an error, as in every command that reads runs.
:func:`format_report` renders one question source's block of
:func:`univar_eval.stats.identify.identify_sources` beside chance.
"""

from __future__ import annotations

from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.reports.table import Table, fmt_percent, render
from univar_eval.runs import verify as verify_mod
from univar_eval.runs.folders import find_runs, load_run
from univar_eval.runs.sources import collect, to_distribution
from univar_eval.runs.verify import verify_all, verify_bank
from univar_eval.settings import resolve
from univar_eval.stats.identify import (
    TOP_KS,
    LabelledSet,
    check_one_encoder,
    from_distribution,
)

FEW_STEPS = 100  # fewer probe steps than this earn a note under the table


def from_bank(path: str | Path, check=None) -> list[LabelledSet]:
    """Every entry of a bank (a folder or ``hf://ORG/NAME@REV``), labelled with the entry's model and language.
    ``check(bank)`` runs on a hub bank (see :func:`univar_eval.storage.hub.open_bank`)."""
    from univar_eval.storage.hub import open_bank

    bank = open_bank(str(path), check=check)
    entries = bank.entries()
    if not entries:
        raise UserError(f"bank {bank.path} is empty; add entries with 'univar-eval bank add'")
    # with the answers: their question ids serve --split question
    return [
        from_distribution(bank.load(e, with_answers=True), f"{bank.path}:{e['model']}/{e['task']}", model=e["model"])
        for e in entries
    ]


def from_run(
    path: str | Path, select: str | None = None, verify: int | None = None, device: str | None = None
) -> list[LabelledSet]:
    """The value distributions of a run folder (one run per model; ``select``: ``latest`` or a stamp), their
    embeddings checked against their answers (``verify`` answers a task; None: the default sample)."""
    dists = load_run(path, run=select)
    verify_all(dists, verify_mod.DEFAULT_SAMPLE if verify is None else verify, device=device)
    return [from_distribution(d, str(path)) for d in dists]


def has_artifacts(path: Path) -> bool:
    """Whether ``path`` is a folder holding univar-eval value distributions (a run folder). A damaged run
    artifact under it is an error (``damaged run artifact <file>: ...``), never a reason to read it as answers."""
    return path.is_dir() and any(r.distributions for r in find_runs(path))


def gather(
    sources: list[str],
    *,
    bank: str | None = None,
    encoder: str | None = None,
    name: str | None = None,
    questionnaire: str | None = None,
    translator: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    select: str | None = None,
    verify: int | None = None,
) -> list[LabelledSet]:
    """Labelled embeddings from run folders, a bank and QA sources (embedded with ``encoder``). ``verify``: answers
    per task re-embedded to check embeddings read from run folders and hub banks (None: the default sample).

    Folders with univar-eval artifacts are read as runs; other sources go through
    :func:`univar_eval.runs.sources.collect` (the sources ``bank add`` accepts). All sets must
    share one encoder: a mix is refused.
    """
    n = verify_mod.DEFAULT_SAMPLE if verify is None else verify
    sets: list[LabelledSet] = from_bank(bank, check=lambda b: verify_bank(b, n, device=device)) if bank else []
    raw: list[str] = []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise UserError(f"{src}: no such file or folder")
        if not name and has_artifacts(path):  # --name: lm-eval samples to re-read, as in compare
            sets += from_run(path, select, verify=n, device=device)
        else:
            raw.append(src)
    if raw:
        wanted = encoder or (sets[0].encoder.get("name") if sets else None)
        overrides = {
            k: v
            for k, v in {
                "encoder": wanted,
                "translator": translator,
                "encoder_device": device,
                "encoder_batch_size": batch_size,
            }.items()
            if v is not None
        }
        settings = resolve(overrides)
        for group in collect(raw, model=name, questionnaire=questionnaire):
            dist, reused = to_distribution(group, settings)
            if reused:  # a run's own embeddings, reused: checked like a run folder's
                verify_all([dist], n, device=device)
            sets.append(from_distribution(dist, group.source or group.model, model=group.model))
    if not sets:
        raise UserError("no inputs: give QA sources, run folders or --bank DIR")
    if encoder:
        other = [s for s in sets if s.encoder.get("name") != encoder]
        if other:
            raise UserError(
                f"{other[0].origin} was embedded with {other[0].encoder.get('name')}, not {encoder}; "
                "pass its QA source (not its embeddings) to re-embed it, or drop --encoder"
            )
    check_one_encoder(sets)
    return sets


def format_report(report: dict) -> str:
    """One source's block: each metric beside its chance level."""
    if "skipped" in report:
        return f"source {report['source']}: skipped, {report['skipped']}"
    n = report["n_labels"]
    knn, probe = report["knn"], report["probe"]
    rows = [("kNN accuracy", knn["accuracy"], 1 / n), ("kNN weighted F1", knn["weighted_f1"], 1 / n)]
    rows += [(f"probe acc@{t}", probe[f"acc@{t}"], t / n) for t in TOP_KS if f"acc@{t}" in probe]
    rows += [("probe weighted F1", probe["weighted_f1"], 1 / n)]
    enc = report.get("encoder") or {}
    split = report["split"]
    head = (
        f"source {report.get('source', 'unknown')}: identification of {n} labels (model$lang), encoder "
        f"{enc.get('name')} (fingerprint {enc.get('fingerprint_id')})\n"
        f"{report['n_train']} train / {report['n_test']} held-out inputs; split: {split['kind']}, "
        f"{split['note']}, seed {split['seed']}\n"
        f"kNN k={knn['k']}"
        + (f" (capped from {knn['k_requested']})" if knn["k"] != knn["k_requested"] else "")
        + f"; probe {probe['epochs']} epochs, Adam lr {probe['lr']:g} decayed by 1 - epoch/{probe['epochs']}, "
        f"batch {probe['batch_size']}"
    )
    table = Table(
        ["metric", "score", "chance"], [[name, v, c] for name, v, c in rows], formats={1: fmt_percent, 2: fmt_percent}
    )
    lines = [head, "", render(table, "text")]
    lines += ["", f"chance level: 1/{n} = {100 / n:.2f}%"]
    hidden = [f"acc@{t}" for t in TOP_KS if f"acc@{t}" not in probe]
    if hidden:
        lines.append(f"({' and '.join(hidden)} not shown: with {n} labels they are 1 by construction)")
    if probe.get("steps", FEW_STEPS) < FEW_STEPS:
        lines.append(
            f"note: the probe took only {probe['steps']} optimiser steps (the paper's recipe assumes "
            "thousands of inputs); on small data try a larger --epochs"
        )
    return "\n".join(lines)
