"""``univar-eval drift``: which values moved between a candidate run and a baseline in a bank."""

from __future__ import annotations

import sys
from typing import Callable

from univar_eval.cli import options
from univar_eval.stats import drift as drift_mod


def register(sub) -> None:
    p = sub.add_parser(
        "drift",
        help="per-value breakdown: which values moved from a baseline, and on which questions",
        description="For each value label of the questionnaire (PVQ's 19 values and 4 higher-order "
        "groups, WVS themes, GLOBE dimensions, situation domains): the distance from the "
        "baseline on that value's questions, its share of the task's shift, and, with "
        "2+ answers per question on both sides, a within-question permutation p-value "
        "corrected across values (Benjamini-Hochberg). Then the questions that moved "
        "most, with both models' answers.",
    )
    p.add_argument("run", metavar="CANDIDATE", help="the candidate's run folder (lm-eval --output_path)")
    p.add_argument("--bank", required=True, help="reference bank holding the baseline")
    p.add_argument("--against", required=True, metavar="REF", help="the baseline's name in the bank")
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of printing it")
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the value circle (PVQ) or bars (other questionnaires): .png, .svg or .pdf; with "
        "several tasks, one file each (FILE's name + _TASK)",
    )
    p.add_argument("--plot-share", action="store_true", help="plot each value's share of the shift, not its distance")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks or task families")
    p.add_argument("--langs", nargs="+", metavar="LANG", help="only these languages")
    p.add_argument(
        "--alpha", type=options.probability, default=0.05, help="significance level after BH correction (0.05)"
    )
    p.add_argument("--permutations", type=options.permutations, default=drift_mod.DEFAULT_PERMUTATIONS)
    p.add_argument("--bootstrap", type=options.count, default=drift_mod.DEFAULT_BOOTSTRAP)
    p.add_argument(
        "--min-value-answers",
        type=options.min_answers,
        default=drift_mod.DEFAULT_MIN_VALUE_ANSWERS,
        help="answers per side below which a value is 'insufficient' (default %(default)s; separate "
        "from the task's --min-answers)",
    )
    p.add_argument("--top", type=options.count, default=5, help="questions that moved most to show (5)")
    p.add_argument("--seed", type=options.count, default=0)
    p.set_defaults(func=cmd_drift)


def cmd_drift(args) -> int:
    from univar_eval.reports import drift as report
    from univar_eval.reports import plot as plot_mod
    from univar_eval.storage.bank import Bank
    from univar_eval.storage.files import write_text

    if args.plot:
        plot_mod.output_format(args.plot)  # refuse a bad name before the work
    items = report.run_drift(
        args.run,
        Bank(args.bank),
        args.against,
        tasks=args.tasks,
        langs=args.langs,
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        alpha=args.alpha,
        min_value_answers=args.min_value_answers,
        top=max(args.top, 1),
    )
    render: Callable[..., str] = report.RENDERERS[args.format]
    text = render(items) if args.format == "json" else render(items, top=args.top)
    if args.output:
        write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.plot:
        for item, path in zip(items, report.plot_paths(args.plot, [i["task"] for i in items])):
            plot_mod.draw_drift(
                item["result"],
                path,
                questionnaire=item["questionnaire"],
                title=f"{item['task']}: {item['candidate']} vs {item['baseline']}",
                quantity="share" if args.plot_share else "distance",
            )
            print(f"wrote {path}", file=sys.stderr if not args.output else sys.stdout)
    return 0
