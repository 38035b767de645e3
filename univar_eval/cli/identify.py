"""``univar-eval identify``: UniVaR's identification check of an encoder (kNN and linear probe over model$lang)."""

from __future__ import annotations

import argparse

from univar_eval.cli import options
from univar_eval.cli.candidates import add_source_options
from univar_eval.reports import identify as identify_report
from univar_eval.stats import identify as identify_mod
from univar_eval.storage.files import jsonable, write_json


def register(sub) -> None:
    p = sub.add_parser(
        "identify",
        help="check an encoder: identify model$lang from answers (kNN and linear probe)",
        description="UniVaR's validation protocol: each embedded QA pair is labelled model$lang; "
        "each question source (PVQ, WVS, GLOBE, situations, control) is evaluated on "
        "its own, with the paper's fixed per-label train/test counts where the source is "
        "large enough (else 80/20 per label); a cosine kNN (accuracy, weighted F1) and a "
        "linear probe (acc@1/5/10, weighted F1) are scored against chance.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="run folders with univar-eval artifacts, lm-eval output (with --name), UniVaR <model>.csv "
        "files or folders, or a JSONL of {model, lang, question, answer}",
    )
    p.add_argument("--bank", help="also use every entry of this bank (label: model$lang)")
    p.add_argument(
        "--k", type=options.positive_int, default=identify_mod.DEFAULT_K, help="kNN neighbours (default 50, as UniVaR)"
    )
    p.add_argument(
        "--split",
        choices=identify_mod.SPLITS,
        default="paper",
        help="paper (default): UniVaR's fixed per-label counts (128/40 PVQ, 201/50 WVS, 54/30 GLOBE) "
        "where every label has enough answers, else --test-size per label; question: hold out "
        "--test-size of the questions so no question is in both train and test (stricter, not the "
        "paper's protocol)",
    )
    p.add_argument(
        "--test-size",
        type=options.probability,
        default=identify_mod.DEFAULT_TEST_SIZE,
        help="held-out share of each label where the fixed counts do not apply, or of the questions "
        "with --split question (default 0.2)",
    )
    p.add_argument("--seed", type=options.count, default=0)
    p.add_argument(
        "--epochs", type=options.count, default=identify_mod.PROBE_EPOCHS, help="linear-probe epochs (default 20)"
    )
    p.add_argument(
        "--lr", type=options.positive_float, default=identify_mod.PROBE_LR, help="linear-probe Adam learning rate"
    )
    p.add_argument(
        "--probe-batch-size",
        type=options.positive_int,
        default=identify_mod.PROBE_BATCH,
        help="linear-probe batch size",
    )
    p.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    add_source_options(p, kind="identify")
    p.set_defaults(func=cmd_identify)


def cmd_identify(args: argparse.Namespace) -> int:
    sets = identify_report.gather(
        args.sources,
        bank=args.bank,
        encoder=args.encoder,
        name=args.name,
        questionnaire=args.questionnaire,
        translator=args.translator,
        device=args.device,
        batch_size=args.batch_size,
        select=args.select,
        verify=args.verify,
    )
    encoder = identify_mod.check_one_encoder(sets)
    sources = identify_mod.identify_sources(
        sets,
        k=args.k,
        test_size=args.test_size,
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.probe_batch_size,
        split=args.split,
    )
    encoder_info = {k: encoder.get(k) for k in ("name", "model_id", "revision", "fingerprint_id")}
    for block in sources.values():
        block["encoder"] = encoder_info
    report = {
        "encoder": encoder_info,
        "split": args.split,
        "inputs": sorted({s.origin for s in sets}),
        "sources": sources,
    }
    print("\n\n".join(identify_report.format_report(block) for block in sources.values()))
    if args.json:
        write_json(args.json, jsonable(report))
        print(f"wrote {args.json}")
    return 0
