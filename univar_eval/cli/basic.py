"""Small sub-commands: ``tasks-dir``, ``encoders``, ``embed`` and ``tiny-model``."""

from __future__ import annotations

from univar_eval.demo.tiny_models import build_persona_lm, build_tiny_causal_lm
from univar_eval.pipeline.encoders import list_cards
from univar_eval.reports.table import Table, render
from univar_eval.resources import tasks_dir
from univar_eval.settings import DEFAULT_ENCODER


def register(sub) -> None:
    p = sub.add_parser("tasks-dir", help="print the folder to pass to lm_eval --include_path")
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser("encoders", help="list the encoder cards")
    p.set_defaults(func=_encoders)

    p = sub.add_parser("embed", help="finish a run whose embedding failed: embed the answers it kept",
                       description="When translation or embedding fails at the end of an lm_eval run, each "
                                   "univar task keeps its answers (answers.jsonl, an 'error' in manifest.json). "
                                   "This embeds them with the run's settings (or the ones given here) and writes "
                                   "the value distributions in place.")
    p.add_argument("run", metavar="RUN", help="the run folder (lm-eval --output_path, or its univar_<time> folder)")
    p.add_argument("--encoder", help="encoder card or local folder (default: the run's)")
    p.add_argument("--translator", help="translator for non-English answers (default: the run's; 'none' keeps the text)")
    p.add_argument("--device", help="cpu, cuda, ...")
    p.add_argument("--batch-size", type=int, help="encoder batch size")
    p.set_defaults(func=_embed)

    p = sub.add_parser("tiny-model", help="write a tiny causal LM: random weights, or trained on a persona (demo)",
                       description="Without --persona: random weights (smoke runs; its answers are gibberish). "
                                   "With --persona: trained for a few seconds on CPU on that persona's answers to "
                                   "value questions, so two personas really differ and a rerun matches.")
    p.add_argument("folder", help="where to write the model")
    p.add_argument("--persona", help="carer (benevolence, universalism) or achiever (achievement, power)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tiny_model)


def _tasks_dir(args) -> int:
    print(tasks_dir())
    return 0


def _encoders(args) -> int:
    rows = [[name, f"{card.source}@{card.revision}", card.dimension, "yes" if name == DEFAULT_ENCODER else ""]
            for name, card in list_cards().items()]
    print(render(Table(["encoder", "model", "dimension", "default"], rows), "text"))
    return 0


def _embed(args) -> int:
    from univar_eval.errors import UserError
    from univar_eval.pipeline.embed import finish_pending, pending_folders

    folders = pending_folders(args.run)
    if not folders:
        raise UserError(f"{args.run}: no kept answers waiting to be embedded (every task already has its embeddings)")
    overrides = {"encoder": args.encoder, "translator": args.translator, "device": args.device,
                 "batch_size": args.batch_size}
    for folder in folders:
        dist = finish_pending(folder, overrides)
        print(f"embedded {dist.task}: {len(dist)} answers with {dist.manifest['encoder']['name']} -> {folder}")
    return 0


def _tiny_model(args) -> int:
    path = (build_persona_lm(args.folder, args.persona, seed=args.seed) if args.persona
            else build_tiny_causal_lm(args.folder, seed=args.seed))
    print(path)
    return 0
