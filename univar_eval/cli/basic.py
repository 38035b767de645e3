"""Small sub-commands: ``tasks-dir``, ``encoders``, ``embed`` and ``tiny-model``."""

from __future__ import annotations

from univar_eval.cli import options
from univar_eval.demo.tiny_models import build_persona_lm, build_tiny_causal_lm
from univar_eval.pipeline.encoders import list_cards, shipped_cards
from univar_eval.pipeline.pins import cards_path, describe_revision
from univar_eval.pipeline.translate import NLLB_MODELS, NllbTranslator, get_translator
from univar_eval.reports.table import Table, render
from univar_eval.resources import tasks_dir
from univar_eval.settings import DEFAULT_ENCODER, DEFAULT_TRANSLATOR


def register(sub) -> None:
    p = sub.add_parser(
        "tasks-dir",
        help="print the folder to pass to lm_eval --include_path",
        description="Print the folder that holds univar-eval's lm-eval task files. lm-eval finds them "
        "without it (the installed startup hook registers them); with UNIVAR_EVAL_NO_AUTOLOAD=1 pass it "
        'yourself: lm_eval --include_path "$(univar-eval tasks-dir)" ...',
    )
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser(
        "encoders",
        help="list the encoder cards and translators, with their revisions (pinned or not)",
        description="List the encoder cards (the shipped ones in encoders/, with pins from the local "
        "cards file applied) and the translators: hub model, revision, dimension, and whether the "
        "revision is pinned to a full commit hash. The default encoder and translator are marked. "
        "Unpinned revisions can change on the hub: download the models once, then run univar-eval pin.",
    )
    p.set_defaults(func=_encoders)

    p = sub.add_parser(
        "embed",
        help="finish a run whose embedding failed: embed the answers it kept",
        description="When translation or embedding fails at the end of an lm_eval run, each "
        "univar task keeps its answers (answers.jsonl, an 'error' in manifest.json). "
        "This embeds them with the run's settings (or the ones given here) and writes "
        "the value distributions in place.",
    )
    p.add_argument("run", metavar="RUN", help="the run folder (lm-eval --output_path, or its univar_<time> folder)")
    p.add_argument("--encoder", help="encoder card or local folder (default: the run's)")
    p.add_argument(
        "--translator", help="translator for non-English answers (default: the run's; 'none' keeps the text)"
    )
    p.add_argument("--device", help="cpu, cuda, ...")
    p.add_argument("--batch-size", type=options.positive_int, help="encoder batch size")
    p.set_defaults(func=_embed)

    p = sub.add_parser(
        "pin",
        help="pin every downloaded encoder and translator to the full commit hash in the local hub cache",
        description="After the models were downloaded once, looks up the commit each unpinned card "
        "and translator resolves to in the local hub cache (HF_HOME / HF_HUB_CACHE) and "
        "writes those full hashes into a local cards file, which every later run reads: "
        "--cards, else $UNIVAR_EVAL_CARDS, else ~/.config/univar-eval/cards.yaml.",
    )
    p.add_argument(
        "--cards",
        metavar="FILE",
        help="the local cards file to write (default: $UNIVAR_EVAL_CARDS, else ~/.config/univar-eval/cards.yaml)",
    )
    p.add_argument("--cache-dir", metavar="DIR", help="hub cache to read (default: huggingface_hub's)")
    p.set_defaults(func=_pin)

    p = sub.add_parser(
        "tiny-model",
        help="write a tiny causal LM: random weights, or trained on a persona (demo)",
        description="Without --persona: random weights (smoke runs; its answers are gibberish). "
        "With --persona: trained for a few seconds on CPU on that persona's answers to "
        "value questions, so two personas really differ and a rerun matches.",
    )
    p.add_argument("folder", help="where to write the model")
    p.add_argument("--persona", help="carer (benevolence, universalism) or achiever (achievement, power)")
    p.add_argument("--seed", type=options.count, default=0)
    p.set_defaults(func=_tiny_model)


def _tasks_dir(args) -> int:
    print(tasks_dir())
    return 0


def _encoders(args) -> int:
    shipped = shipped_cards()
    local = f"pinned by {cards_path()}"
    rows = []
    for name, card in list_cards().items():
        state = (
            local if card.revision != shipped[name].revision else describe_revision(card.revision, package=card.package)
        )
        rows.append(
            [name, f"{card.source}@{card.revision}", card.dimension, state, "yes" if name == DEFAULT_ENCODER else ""]
        )
    print(render(Table(["encoder", "model", "dimension", "revision", "default"], rows), "text"))
    rows = []
    for name in NLLB_MODELS:
        t = get_translator(name)
        assert isinstance(t, NllbTranslator)  # every name in NLLB_MODELS
        state = local if t.revision != NLLB_MODELS[name][1] else describe_revision(t.revision)
        rows.append([name, f"{t.model_id}@{t.revision}", state, "yes" if name == DEFAULT_TRANSLATOR else ""])
    print()
    print(render(Table(["translator", "model", "revision", "default"], rows), "text"))
    print("unpinned revisions can change on the hub: download the models once, then run `univar-eval pin`")
    return 0


def models_to_pin() -> list[tuple[str, str, str, str | None]]:
    """(kind, name, hub id, shipped revision) of every hub model univar-eval loads by name: what `pin` pins."""
    from univar_eval.pipeline.encoders import shipped_cards
    from univar_eval.pipeline.translate import NLLB_MODELS

    out = [
        ("encoders", c.name, c.model_id, c.revision)
        for c in shipped_cards().values()
        if c.model_id and not c.package and c.revision != "local"
    ]
    out += [("translators", name, model_id, rev) for name, (model_id, rev) in NLLB_MODELS.items()]
    return out


def _pin(args) -> int:
    from pathlib import Path

    from univar_eval.errors import UserError
    from univar_eval.pipeline.pins import cards_path, pin_all

    path = Path(args.cards) if args.cards else cards_path()
    if path is None:
        raise UserError("UNIVAR_EVAL_CARDS=off: name the file to write with --cards FILE")
    results = pin_all(path, models_to_pin(), args.cache_dir)
    for r in results:
        line = f"{r.kind[:-1]:10s} {r.name:22s} {r.model_id}@{r.was}"
        if r.status == "pinned":
            line += f" -> {r.revision}"
        elif r.status == "not downloaded":
            line += f": not in the hub cache (hf download {r.model_id} --revision {r.was or 'main'}, then pin again)"
        else:
            line += f": {r.status}"
        print(line)
    n_new = sum(r.status == "pinned" for r in results)
    missing = sum(r.revision is None for r in results)
    print(
        f"wrote {path}: {n_new} pinned now, {missing} not downloaded; every run reads it"
        + ("" if path == cards_path() else f" once UNIVAR_EVAL_CARDS={path} is set")
    )
    return 0


def _embed(args) -> int:
    """Under ``torchrun``/``accelerate launch`` every process runs this: each embeds its share of every
    task folder, rank 0 gathers, writes and prints (see :mod:`univar_eval.pipeline.shard`)."""
    from univar_eval.errors import UserError
    from univar_eval.pipeline.embed import finish_pending, pending_folders
    from univar_eval.pipeline.shard import current_world, sharded, shutdown

    folders = pending_folders(args.run)
    if not folders:
        raise UserError(f"{args.run}: no kept answers waiting to be embedded (every task already has its embeddings)")
    overrides = {
        "encoder": args.encoder,
        "translator": args.translator,
        "encoder_device": args.device,
        "encoder_batch_size": args.batch_size,
    }
    world = current_world()
    try:
        with sharded(world):
            for folder in folders:
                dist = finish_pending(folder, overrides)
                if world.is_main:
                    print(
                        f"embedded {dist.task}: {len(dist)} answers with {dist.manifest['encoder']['name']} -> {folder}"
                    )
    finally:
        shutdown(world)
    return 0


def _tiny_model(args) -> int:
    path = (
        build_persona_lm(args.folder, args.persona, seed=args.seed)
        if args.persona
        else build_tiny_causal_lm(args.folder, seed=args.seed)
    )
    print(path)
    return 0
