"""``univar-eval bank ...`` and ``univar-eval compare``: build reference banks, compare runs with them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from univar_eval.cli import candidates, options
from univar_eval.errors import UserError
from univar_eval.reports.table import plural
from univar_eval.safe_text import terminal_text
from univar_eval.settings import resolve
from univar_eval.stats import distance as distance_mod

# The bank, source and report modules are imported inside each command (start-up time: every
# univar-eval command builds this parser; only the command that runs needs them).


def register(sub) -> None:
    bank = sub.add_parser("bank", help="build and inspect reference banks of value distributions")
    bsub = bank.add_subparsers(dest="bank_command", metavar="ACTION")

    add = bsub.add_parser("add", help="add reference entries from lm-eval output, UniVaR CSV files or QA JSONL")
    add.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="lm-eval output (samples_*.jsonl or their folder), UniVaR <model>.csv files or folders, "
        "or a JSONL of {model, lang, question, answer}",
    )
    add.add_argument("--bank", required=True, help="bank folder (created when missing)")
    candidates.add_source_options(add, kind="reference")
    add.add_argument(
        "--no-replace",
        action="store_true",
        help="refuse to replace existing entries (by default an entry of the same model and task is "
        "replaced, and the output says so with the old and new counts)",
    )
    add.add_argument("--no-reuse", action="store_true", help="re-embed even when the run's artifacts match")
    add.add_argument(
        "--as-repeats",
        action="store_true",
        help="several runs of one model: merge them into one entry, their answers as repeats of each "
        "question (without it, several runs of one model are refused)",
    )
    add.set_defaults(func=cmd_add)

    ls = bsub.add_parser("list", help="list the entries of a bank")
    ls.add_argument("--bank", required=True)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)

    show = bsub.add_parser("show", help="show one model's entries (or one entry, or all) in full")
    show.add_argument("--bank", required=True)
    show.add_argument("model", nargs="?", help="the model (default: every entry)")
    show.add_argument("--task")
    show.add_argument("--verify", action="store_true", help="check every array and answers file against its sha256")
    show.add_argument(
        "--fix",
        action="store_true",
        help="remove files that no entry names (left by an interrupted 'bank add'), under the lock",
    )
    show.set_defaults(func=cmd_show)

    up = bsub.add_parser("upgrade", help="bring a bank of an older format to the current one (adds checksums)")
    up.add_argument("bank", metavar="DIR")
    up.set_defaults(func=cmd_upgrade)

    rm = bsub.add_parser("remove", help="remove a model's entries (all, one task, or one language)")
    rm.add_argument("--bank", required=True)
    rm.add_argument("model")
    rm.add_argument("--task")
    rm.add_argument("--lang")
    rm.set_defaults(func=cmd_remove)
    push = bsub.add_parser(
        "push",
        help="publish a bank as a Hugging Face dataset repository",
        description="Uploads bank.json, every entry's array and answers, a SHA256SUMS file and a "
        "dataset card as one commit (huggingface_hub; log in with 'hf auth login' or "
        "set HF_TOKEN). Entry files of an earlier push that the bank no longer names "
        "are deleted in the same commit.",
    )
    push.add_argument("folder", metavar="DIR", help="the bank folder")
    push.add_argument("--repo", required=True, metavar="ORG/NAME", help="dataset repository (created when missing)")
    push.add_argument("--branch", help="push to this branch (default: main)")
    push.add_argument("--message", help="commit message (default: entries, models and encoder)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--dry-run", action="store_true", help="check the bank and list what would be uploaded")
    push.set_defaults(func=cmd_push)

    pull = bsub.add_parser(
        "pull",
        help="fetch a published bank into a folder (checked against its sha256)",
        description="Fetches ORG/NAME at REVISION (default main) through huggingface_hub (its "
        "cache and HF_HUB_OFFLINE apply), copies the files into DIR, checks every "
        "sha256 and records the repository and commit in DIR/origin.json. When DIR "
        "holds a bank already, the entries are added to it as 'bank add' adds them "
        "(entries made with another encoder are refused).",
    )
    pull.add_argument("repo", metavar="ORG/NAME[@REVISION]")
    pull.add_argument("folder", metavar="DIR")
    pull.add_argument("--no-replace", action="store_true", help="refuse to overwrite entries DIR already has")
    candidates.add_verify_option(pull)
    pull.add_argument("--device", help="encoder device for --verify (cpu, cuda, ...)")
    pull.set_defaults(func=cmd_pull)
    bank.set_defaults(func=lambda a: (bank.print_help(), 2)[1])

    cmp_ = sub.add_parser("compare", help="distances between runs and reference models, per task and language")
    cmp_.add_argument("runs", nargs="+", metavar="CANDIDATE", help=candidates.SOURCES_HELP)
    cmp_.add_argument("--bank", help="reference bank (without it, the runs are compared with each other)")
    cmp_.add_argument("--against", nargs="+", metavar="MODEL", help="only these reference models")
    cmp_.add_argument("--metric", choices=distance_mod.METRICS, default="mmd")
    cmp_.add_argument("--permutations", type=options.permutations, default=distance_mod.DEFAULT_PERMUTATIONS)
    cmp_.add_argument("--bootstrap", type=options.count, default=distance_mod.DEFAULT_BOOTSTRAP)
    cmp_.add_argument("--seed", type=options.count, default=0)
    cmp_.add_argument(
        "--min-answers", type=options.min_answers, help="fewer answers than this is 'insufficient' (default 10)"
    )
    cmp_.add_argument(
        "--allow-other-questions",
        action="store_true",
        help="compare with entries that asked other questions on the same construct (e.g. UniVaR's "
        "released data); the report says so",
    )
    cmp_.add_argument("--format", choices=("table", "md", "json"), default="table")
    cmp_.add_argument("-o", "--output", help="also write the JSON report here")
    cmp_.add_argument(
        "--by-value",
        action="store_true",
        help="add the per-value breakdown of every distance (as univar-eval drift shows it)",
    )
    cmp_.add_argument("--hvae-plot", metavar="PNG", help="bar plot of HVAE value rationality per target value")
    candidates.add_source_options(cmp_)
    cmp_.set_defaults(func=cmd_compare)


def cmd_add(args: argparse.Namespace) -> int:
    """Under ``torchrun``/``accelerate launch`` each rank embeds its share of every source; rank 0 writes."""
    from univar_eval.pipeline.shard import current_world, sharded, shutdown

    world = current_world()
    try:
        with sharded(world):
            return _add(args, world)
    finally:
        shutdown(world)


def _add(args: argparse.Namespace, world) -> int:
    from univar_eval.pipeline.shard import from_main
    from univar_eval.runs.sources import collect, to_distribution
    from univar_eval.runs.verify import verify_all
    from univar_eval.storage.bank import Bank
    from univar_eval.storage.distribution import merge_as_repeats

    if args.name is not None and not args.name.strip():
        raise UserError(
            "--name is empty; give the reference model's name, or leave --name out to use the model the source names"
        )
    if args.name is not None:
        from univar_eval.storage.bank import check_model

        check_model(args.name, "--name")  # before anything is embedded
    bank = Bank(args.bank, create=True)
    bank_encoder = from_main((bank.encoder() or {}).get("name"), world)  # the bank on rank 0's disk
    overrides = {
        k: v
        for k, v in {
            "encoder": args.encoder or bank_encoder,
            "translator": args.translator,
            "encoder_device": args.device,
            "encoder_batch_size": args.batch_size,
        }.items()
        if v is not None
    }
    settings = resolve(overrides)
    from univar_eval.runs.folders import run_sources

    groups = collect(
        run_sources(args.sources, args.select),
        model=args.name,
        questionnaire=args.questionnaire,
        translated_by=args.translated_by,
        as_repeats=True,  # several runs of one model: refused below unless --as-repeats, with the sources named
    )
    by_key: dict[tuple, list] = {}
    for g in groups:
        by_key.setdefault((g.model, g.task), []).append(g)
    several = {k: v for k, v in by_key.items() if len(v) > 1}
    if several and not args.as_repeats:
        (model, task), gs = next(iter(several.items()))
        raise UserError(
            f"{model} / {task} comes from {len(gs)} runs ({', '.join(g.source for g in gs)}); pass "
            "--as-repeats to merge them into one entry as repeats, or give each run its own --name"
        )
    items, how = [], []
    for (model, task), gs in by_key.items():
        dists, notes = [], []
        for g in gs:
            dist, reused = to_distribution(
                g, settings, reuse=not args.no_reuse, encoder=args.encoder or bank_encoder, translator=args.translator
            )
            if reused:  # the run's own embeddings: checked against their answers before they enter the bank
                verify_all([dist], candidates.verify_count(args), device=args.device)
            dists.append(dist)
            notes.append(
                "reused the run's embeddings" if reused else f"embedded with {dist.manifest['encoder']['name']}"
            )
        if len(dists) > 1:
            dist = merge_as_repeats(dists, [g.source for g in gs])
            notes = [f"{len(dists)} runs merged as repeats; " + "; ".join(sorted(set(notes)))]
        items.append((dist, model, ", ".join(g.source for g in gs)))
        how.append(notes[0])
    if not world.is_main:  # rank 0 holds every distribution and writes the bank, once
        return 0
    added = bank.add_many(items, replace=not args.no_replace)
    old_of = {id(new): old for old, new in bank.replaced}
    for entry, note in zip(added, how):
        old = old_of.get(id(entry))
        if old is None:
            print(terminal_text(f"added {entry['model']} / {entry['task']}: {entry['n_answers']} answers ({note})"))
        else:
            print(
                terminal_text(
                    f"replaced {entry['model']} / {entry['task']}: {old['n_answers']} answers before, "
                    f"{entry['n_answers']} now ({note})"
                )
            )
    if bank.cleaned:
        print(f"removed {len(bank.cleaned)} orphaned file(s) no entry named (left by an interrupted write)")
    print(f"bank {bank.path}: {plural(len(bank.entries()), 'entry', 'entries')}, {plural(len(bank.models()), 'model')}")
    return 0


def cmd_list(args) -> int:
    from univar_eval.storage.hub import open_bank

    bank = open_bank(args.bank)
    entries = bank.entries()
    if args.json:
        print(json.dumps([{k: e[k] for k in ("model", "task", "lang", "n_answers")} for e in entries], indent=2))
        return 0
    enc = bank.encoder() or {}
    print(
        terminal_text(
            f"bank {bank.path}: {plural(len(entries), 'entry', 'entries')}, {plural(len(bank.models()), 'model')}; "
            f"encoder {enc.get('name')} (fingerprint {enc.get('fingerprint_id')})"
        )
    )
    for model in bank.models():
        own = bank.entries(model=model)
        tasks = ", ".join(f"{e['task']} ({e['n_answers']})" for e in own)
        print(terminal_text(f"  {model}: {tasks}"))
    return 0


def cmd_show(args) -> int:
    from univar_eval.storage.hub import open_bank

    bank = open_bank(args.bank)
    if args.model is None and args.task:
        raise UserError("--task needs a MODEL")
    if args.model is None:
        entries = bank.entries()
    else:
        entries = [bank.entry(args.model, args.task)] if args.task else bank.entries(model=args.model)
        if not entries:
            raise UserError(
                f"bank {bank.path} has no entries for {args.model!r}; see 'univar-eval bank list --bank {args.bank}'"
            )
    if args.fix:
        cleaned = bank.fix()
        print(
            f"removed {len(cleaned)} orphaned file(s) no entry named" + (f": {', '.join(cleaned)}" if cleaned else "")
        )
    for e in entries:
        if args.verify:
            bank.load(e)  # raises on a damaged array or answers file
        shown = {k: v for k, v in e.items() if k != "encoder"}
        shown["encoder"] = {k: v for k, v in e["encoder"].items() if k != "fingerprint"}
        print(terminal_text(json.dumps(shown, indent=2, ensure_ascii=False), lines=True))  # "\u202e" stays valid JSON
    if args.verify:
        print(f"all {len(entries)} arrays match their sha256 (and so do their answers files)")
    return 0


def cmd_upgrade(args) -> int:
    from univar_eval.storage.bank import FORMAT, Bank

    bank = Bank(args.bank)
    was = bank.format
    changed = bank.upgrade()
    if was == FORMAT:
        print(f"bank {bank.path} is already in format {FORMAT}; nothing to do")
    else:
        print(f"upgraded bank {bank.path} from {was} to {FORMAT}: {changed} entries gained an answers checksum")
    return 0


def cmd_remove(args) -> int:
    from univar_eval.storage.bank import Bank

    gone = Bank(args.bank).remove(args.model, task=args.task, lang=args.lang)
    print(terminal_text(f"removed {plural(len(gone), 'entry', 'entries')}: {', '.join(e['task'] for e in gone)}"))
    return 0


def cmd_push(args) -> int:
    from univar_eval.storage import hub

    if args.dry_run:
        repo, _ = hub.parse_spec(args.repo)
        plan = hub.plan_push(args.folder, repo)
        print(f"would push to {repo} ({args.branch or 'main'}): {args.message or plan.message}")
        for name in [*plan.files, hub.CHECKSUMS, hub.CARD]:
            print(f"  {name}")
        return 0
    info = hub.push(args.folder, args.repo, branch=args.branch, message=args.message, private=args.private)
    print(
        f"pushed {args.folder} to {args.repo} at commit {info.oid}; pull it with "
        f"'univar-eval bank pull {args.repo}@{info.oid} DIR' or use --bank {hub.HF_PREFIX}{args.repo}@{info.oid}"
    )
    return 0


def cmd_pull(args) -> int:
    from univar_eval.runs.verify import verify_bank
    from univar_eval.storage import hub

    n = candidates.verify_count(args)
    pulled = hub.pull(
        args.repo, args.folder, replace=not args.no_replace, check=lambda bank: verify_bank(bank, n, device=args.device)
    )
    how = "added to the bank there" if pulled.merged else "a bank of its own"
    print(
        f"pulled {pulled.repo}@{pulled.revision}: {pulled.n_entries} entries, every sha256 checked, into "
        f"{pulled.path} ({how}; revision recorded in {hub.ORIGIN})"
    )
    return 0


def cmd_compare(args) -> int:
    from univar_eval.reports.compare import compare_runs, format_table
    from univar_eval.reports.hvae import format_hvae, hvae_table
    from univar_eval.storage.files import jsonable, write_json

    bank = candidates.open_bank(args) if args.bank else None
    runs, paths = {}, {}
    # a run may have lm-eval results only (HVAE, ValueLex); other sources are embedded like the bank
    for cand in candidates.read(args, args.runs, bank, missing_ok=True):
        label = cand.model if cand.distributions else cand.path
        if label in runs:
            label = f"{cand.model} ({cand.path})"
        runs[label] = cand.distributions
        if cand.is_run:
            paths[label] = cand.path
    hvae_rows = hvae_table(paths, args.select)
    if args.hvae_plot:
        from univar_eval.reports.plot import draw_hvae_bars

        draw_hvae_bars(hvae_rows, args.hvae_plot)
    runs = {k: v for k, v in runs.items() if v}
    if not runs:
        if not hvae_rows:
            raise UserError(f"{', '.join(args.runs)}: no univar-eval artifacts nor HVAE results found")
        print(format_hvae(hvae_rows, markdown=args.format == "md"))
        return 0
    min_answers = args.min_answers if args.min_answers is not None else resolve({}).min_answers
    report = compare_runs(
        runs,
        bank=bank,
        against=args.against,
        metric=args.metric,
        min_answers=min_answers,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        allow_other_questions=args.allow_other_questions,
    )
    report["hvae"] = hvae_rows
    by_value = []
    if args.by_value:  # which values moved, behind each distance
        from univar_eval.reports.drift import RENDERERS, compare_breakdowns

        by_value = compare_breakdowns(runs, report["rows"], bank=bank, seed=args.seed)
        report["by_value"] = json.loads(RENDERERS["json"](by_value))
    if args.output:
        write_json(args.output, jsonable(report))
    if args.format == "json":
        json.dump(jsonable(report), sys.stdout, indent=2)
        print()
    else:
        print(format_table(report, markdown=args.format == "md"))
        if by_value:
            render_values: Callable[..., str] = RENDERERS["md" if args.format == "md" else "text"]
            print("\n" + render_values(by_value, top=3))
        if hvae_rows:
            print("\n" + format_hvae(hvae_rows, markdown=args.format == "md"))
    return 0
