"""What ``compare``, ``gate`` and ``leaderboard`` share: candidates from any source, embedded like the bank.

A candidate is a run folder, or any source ``univar-eval bank add`` accepts (lm-eval samples,
UniVaR CSV, a JSONL of ``{model, lang, question, answer, id}``); answers are embedded with the
bank's encoder (``--encoder`` without a bank) through the embedding cache, see
:func:`univar_eval.runs.folders.read_candidates`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from univar_eval.cli import options
from univar_eval.errors import UserError
from univar_eval.pipeline.translate import NLLB_MODELS
from univar_eval.runs.folders import Candidate, is_run, read_candidates
from univar_eval.storage.bank import Bank

SOURCES_HELP = (
    "run folders (lm-eval --output_path, or univar_<time>), lm-eval samples (with --name), UniVaR "
    "<model>.csv files or folders, or a JSONL of {model, lang, question, answer, id}"
)


RUN_HELP = (
    "which run, when a folder holds several runs of one model: 'latest' or a univar_<stamp> (e.g. 2026-11-29T04-21-24)"
)


NAME_HELP = (
    "model name of lm-eval samples (a run folder's samples are then embedded again); for CSV/JSONL it "
    "replaces the names in the file"
)

#: How each kind of command reads its sources: (group title, --name help, default encoder, default translator).
SOURCE_TEXTS = {
    "reference": (
        "reading the sources",
        "reference model name (required for lm-eval output; default for CSV: file name)",
        "the bank's; for lm-eval output the run's own",
        "for lm-eval output the run's own",
    ),
    "candidates": (
        "answers from other sources (embedded with the bank's encoder, through the cache)",
        NAME_HELP,
        "the bank's; without a bank, the run folders'",
        "the bank's",
    ),
    "identify": (
        "reading the sources (answers not embedded yet go through the embedding cache)",
        NAME_HELP,
        "the bank's or the run folders'",
        "for lm-eval output the run's own",
    ),
}


def add_run_option(p) -> None:
    """``--run latest|STAMP`` (to ``args.select``): which run, when a folder holds several runs of one model."""
    p.add_argument("--run", dest="select", metavar="latest|STAMP", help=RUN_HELP)


def add_source_options(p: argparse.ArgumentParser, *, kind: str = "candidates") -> None:
    """The options that say how to read answers from a source, declared once for ``bank add``
    (``kind="reference"``: the sources become bank entries), for the candidates of compare, gate and
    leaderboard (``"candidates"``) and for ``identify`` (``"identify"``: no ``--translated-by``, which it does
    not read)."""
    title, name, encoder, translator = SOURCE_TEXTS[kind]
    g = p.add_argument_group(title)
    g.add_argument("--name", help=name)
    g.add_argument(
        "--encoder",
        help=f"encoder card name or local path for answers that are not embedded yet "
        f"(default: {encoder}; else UNIVAR_EVAL_ENCODER or univar-lambda-5)",
    )
    g.add_argument(
        "--translator",
        help=f"translator for non-English answers (default: {translator}; else "
        "UNIVAR_EVAL_TRANSLATOR or nllb-600m; 'none' keeps the text)",
    )
    g.add_argument(
        "--questionnaire", help="questionnaire of CSV/JSONL answers when the folder name or the records do not tell"
    )
    if kind != "identify":
        g.add_argument("--translated-by", help="JSONL answers are already English, translated by this system")
    g.add_argument("--device", help="encoder/translator device (cpu, cuda, ...; default: cuda when available)")
    g.add_argument("--batch-size", type=options.positive_int, help="encoder batch size")
    add_verify_option(g)
    add_run_option(g)


def add_verify_option(p) -> None:
    """``--verify all|N|0``: how many answers per task to re-embed when embeddings are read from disk."""
    from univar_eval.runs.verify import VERIFY_HELP

    p.add_argument("--verify", type=options.verify_sample, metavar="all|N|0", help=VERIFY_HELP)


def verify_count(args) -> int:
    """``--verify`` as given, else the default sample per task."""
    from univar_eval.runs.verify import DEFAULT_SAMPLE

    n = getattr(args, "verify", None)
    return DEFAULT_SAMPLE if n is None else n


def open_bank(args, spec: str | None = None) -> Bank:
    """The bank ``--bank`` names; a hub bank's embeddings are checked against its answers (``--verify``)."""
    from univar_eval.runs.verify import verify_bank
    from univar_eval.storage.hub import open_bank as open_spec

    n = verify_count(args)
    device = getattr(args, "device", None)
    return open_spec(spec or args.bank, check=lambda bank: verify_bank(bank, n, device=device))


def bank_translator(bank: Bank | None) -> str | None:
    """The one translator the bank's non-English entries were made with, when univar-eval can run it by name."""
    if bank is None:
        return None
    names = {(e.get("translator") or {}).get("name") for e in bank.entries() if e["lang"] != "eng"}
    if len(names) == 1:
        name = names.pop()
        return name if name in NLLB_MODELS or name == "none" else None
    return None


def read(args: argparse.Namespace, paths: list[str], bank: Bank | None, *, missing_ok: bool) -> list[Candidate]:
    """Every candidate in ``paths``, in order: run folders first decide the encoder when there is no bank."""
    encoder = args.encoder
    bank_encoder = (bank.encoder() or {}).get("name") if bank is not None else None
    if encoder and bank is not None and bank_encoder and encoder != bank_encoder:
        raise UserError(
            f"--encoder {encoder} but the bank {bank.path} holds {bank_encoder} embeddings; "
            "answers must be embedded with the bank's encoder (leave out --encoder)"
        )
    encoder = encoder or bank_encoder
    options = {
        "name": args.name,
        "questionnaire": args.questionnaire,
        "translator": args.translator or bank_translator(bank),
        "translated_by": args.translated_by,
        "device": args.device,
        "batch_size": args.batch_size,
        "missing_ok": missing_ok,
        "run": getattr(args, "select", None),
        "verify": verify_count(args),
    }  # --run latest|STAMP: one of several runs of a model
    if encoder is None:  # no bank: the answers are embedded like the run folders given beside them
        runs = [
            c for p in paths if _looks_like_run(p, args.name) for c in read_candidates(p, announce=False, **options)
        ]
        made_with = {(d.manifest.get("encoder") or {}).get("name") for c in runs for d in c.distributions}
        encoder = made_with.pop() if len(made_with) == 1 else None
    out = []
    for p in paths:
        out += read_candidates(p, encoder=encoder, **options)
    return out


def _looks_like_run(path: str, name: str | None) -> bool:
    return not name and Path(path).exists() and is_run(Path(path))
