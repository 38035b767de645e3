"""``univar-eval gate`` and ``univar-eval leaderboard``: the release check and comparison tables."""

from __future__ import annotations

import sys

from univar_eval.reports.table import plural
from univar_eval.settings import resolve
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.files import write_json, write_text

# The report and bank modules are imported inside each command (start-up time: every univar-eval
# command builds this parser, and these imports add about 0.13 s that only gate/leaderboard need).

def register(sub) -> None:
    g = sub.add_parser("gate", help="release check: fail when a candidate's values moved away from an approved baseline",
                       description="Exit code 0 when every check passes, 1 when one fails, 2 on usage or input "
                                   "errors.")
    g.add_argument("run", metavar="RUN", help="the candidate's run folder (lm-eval --output_path)")
    g.add_argument("--bank", help="reference bank holding the baseline (needed for value checks)")
    g.add_argument("--against", metavar="MODEL", help="the approved baseline's name in the bank")
    g.add_argument("--max-distance", type=float,
                   help="fail only above this distance (and when significant); default: any significant difference")
    g.add_argument("--alpha", type=float, default=0.05, help="significance level of the permutation test (0.05)")
    g.add_argument("--langs", nargs="+", metavar="LANG", help="only these languages")
    g.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks or task families (univar_pvq)")
    g.add_argument("--correction", choices=("holm", "bh", "none"), default="holm",
                   help="multiple-testing correction over the task/language checks (holm: family-wise; bh: FDR)")
    g.add_argument("--metric", choices=distance_mod.METRICS, default="mmd")
    g.add_argument("--permutations", type=int, default=distance_mod.DEFAULT_PERMUTATIONS)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--min-answers", type=int, help="fewer answers fail as insufficient (default 10)")
    g.add_argument("--min-value-rationality", type=float, metavar="X",
                   help="also fail any HVAE task whose chance-corrected value rationality (1 = ideal chooser, 0 = a uniform "
                        "random responder) is below X")
    g.add_argument("--json", metavar="FILE", help="write the JSON report")
    g.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (for a pull-request comment)")
    g.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per task and language")
    g.set_defaults(func=cmd_gate)

    lb = sub.add_parser("leaderboard", help="one row per model, columns per task and language")
    lb.add_argument("runs", nargs="+", metavar="RUN", help="run folders, one per model")
    lb.add_argument("--bank", help="reference bank: report distances to its models")
    lb.add_argument("--against", nargs="+", metavar="MODEL", help="only these reference models")
    lb.add_argument("--metric", choices=distance_mod.METRICS, default="mmd")
    lb.add_argument("--format", choices=("md", "csv", "html", "json"), default="md")
    lb.add_argument("-o", "--output", help="write here instead of printing")
    lb.add_argument("--min-answers", type=int)
    lb.add_argument("--allow-mixed", action="store_true", help="build a table from runs made with different settings")
    lb.set_defaults(func=cmd_leaderboard)


def cmd_gate(args) -> int:
    from univar_eval.errors import UserError
    from univar_eval.reports import gate
    from univar_eval.storage.bank import Bank

    if not args.bank and args.min_value_rationality is None:
        raise UserError("nothing to check: give --bank DIR --against MODEL, and/or --min-value-rationality X")
    if bool(args.bank) != bool(args.against):
        raise UserError("value checks need both --bank DIR and --against MODEL")
    min_answers = args.min_answers if args.min_answers is not None else resolve({}).min_answers
    checks = []
    if args.bank:
        checks += gate.value_checks(args.run, Bank(args.bank), args.against, max_distance=args.max_distance,
                                    alpha=args.alpha, min_answers=min_answers, langs=args.langs, tasks=args.tasks,
                                    metric=args.metric, n_permutations=args.permutations, seed=args.seed,
                                    correction=args.correction)
    if args.min_value_rationality is not None:
        checks += gate.hvae_checks(args.run, args.min_value_rationality)
    title = (f"candidate {args.run}" + (f" vs baseline {args.against} ({args.metric}, alpha {args.alpha} "
                                        f"{args.correction}-corrected"
                                        + (f", max distance {args.max_distance}" if args.max_distance is not None
                                           else "") + ")" if args.against else ""))
    settings = {"run": args.run, "bank": args.bank, "against": args.against, "metric": args.metric,
                "alpha": args.alpha, "correction": args.correction, "max_distance": args.max_distance,
                "min_answers": min_answers,
                "permutations": args.permutations, "seed": args.seed,
                "min_value_rationality": args.min_value_rationality}
    print(gate.to_text(checks, title))
    if args.json:
        write_json(args.json, gate.to_json(checks, settings))
    if args.markdown:
        write_text(args.markdown, gate.to_markdown(checks, title))
    if args.junit:
        write_text(args.junit, gate.to_junit(checks))
    return 0 if gate.summary(checks)["passed"] else 1


def cmd_leaderboard(args) -> int:
    from univar_eval.reports import leaderboard
    from univar_eval.storage.bank import Bank

    min_answers = args.min_answers if args.min_answers is not None else resolve({}).min_answers
    board = leaderboard.build(args.runs, bank=Bank(args.bank) if args.bank else None, against=args.against,
                              min_answers=min_answers, metric=args.metric, allow_mixed=args.allow_mixed)
    text = leaderboard.RENDERERS[args.format](board)
    if args.output:
        write_text(args.output, text)
        print(f"wrote {args.output}: {plural(len(board['rows']), 'model')}, {plural(len(board['columns']), 'column')}")
    else:
        sys.stdout.write(text)
    return 0
