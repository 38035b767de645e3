"""``univar-eval gate`` and ``univar-eval leaderboard``: the release check and comparison tables."""

from __future__ import annotations

import sys

from univar_eval.cli import candidates, options
from univar_eval.reports.table import plural
from univar_eval.settings import resolve
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.files import jsonable, write_json, write_text

# The report and bank modules are imported inside each command (start-up time: every univar-eval
# command builds this parser, and these imports add about 0.13 s that only gate/leaderboard need).


def register(sub) -> None:
    g = sub.add_parser(
        "gate",
        help="release check: fail when a candidate's values moved away from an approved baseline",
        description="With --max-distance D: pass when the one-sided upper confidence bound of d_S (the shift "
        "shared across questions) is below D, fail when the Holm-adjusted p-value of 'd_S <= D' is below "
        "alpha (the lower bound exceeds D), else inconclusive; with repeats on both sides d_Q (the mean "
        "per-question change) is tested too, against --max-question-distance. Exit code 0 when every check "
        "passes, 1 when one fails or is inconclusive (unless --allow-inconclusive), 2 on usage or input errors.",
    )
    g.add_argument(
        "run",
        metavar="CANDIDATE",
        help="the candidate: its run folder (lm-eval --output_path), lm-eval samples (with --name), a "
        "UniVaR <model>.csv, or a JSONL of {model, lang, question, answer, id}",
    )
    g.add_argument("--bank", help="reference bank holding the baseline (needed for value checks)")
    g.add_argument("--against", metavar="MODEL", help="the approved baseline's name in the bank")
    g.add_argument(
        "--max-distance",
        type=options.non_negative_float,
        metavar="D",
        help="tolerance for d_S: pass only when the upper bound is below D (an equivalence test), fail only "
        "when the lower bound exceeds it; without it the gate is a difference test only. "
        "`univar-eval calibrate` proposes one from reruns of the baseline",
    )
    g.add_argument(
        "--max-question-distance",
        type=options.non_negative_float,
        metavar="DQ",
        help="tolerance for d_Q, the mean per-question change, tested where both sides have 2+ answers a "
        "question (default: D)",
    )
    g.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="exit 0 when checks are inconclusive (none fails); they are still reported",
    )
    g.add_argument("--alpha", type=options.probability, default=0.05, help="significance level of the tests (0.05)")
    g.add_argument("--langs", nargs="+", metavar="LANG", help="only these languages (on both sides)")
    g.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="only these tasks or task families (univar_pvq), on both sides"
    )
    g.add_argument(
        "--correction",
        choices=("holm", "bh", "none"),
        default="holm",
        help="multiple-testing correction over the task/language checks (holm: family-wise; bh: FDR)",
    )
    g.add_argument(
        "--metric",
        choices=distance_mod.METRICS,
        default="mmd",
        help="distance between value distributions (default mmd: the one with equivalence bounds)",
    )
    g.add_argument(
        "--permutations",
        type=options.permutations,
        default=distance_mod.DEFAULT_PERMUTATIONS,
        help="permutations of the difference test (the verdict without --max-distance, the p reported beside it "
        "with D); raised to 10 x tests / alpha where the correction needs more",
    )
    g.add_argument(
        "--bootstrap",
        type=options.count,
        default=distance_mod.DEFAULT_BOOTSTRAP,
        help="paired bootstrap resamples (over questions) for the upper bound and the noise floor (200)",
    )
    g.add_argument(
        "--seed", type=options.count, default=0, help="seed of the permutations and bootstrap resamples (default 0)"
    )
    g.add_argument("--min-answers", type=options.min_answers, help="fewer answers fail as insufficient (default 10)")
    g.add_argument(
        "--min-coverage",
        type=options.share,
        default=0.9,
        metavar="SHARE",
        help="fail a check as incomplete when the candidate answered fewer than this share of the baseline's "
        "questions (or, in the per-question design, has repeats for fewer); default 0.9",
    )
    g.add_argument(
        "--allow-other-questions",
        action="store_true",
        help="compare with a baseline that asked other questions: an explicitly UNPAIRED comparison",
    )
    g.add_argument(
        "--min-value-rationality",
        type=options.rationality_floor,
        metavar="X",
        help="also fail any HVAE task whose chance-corrected value rationality (1 = ideal chooser, 0 = a uniform "
        "random responder) is below X",
    )
    g.add_argument(
        "--fail-on-value",
        nargs="+",
        metavar="LABEL",
        help="also gate on these values alone (e.g. security_personal): one check per task and language, its "
        "questions tested like a task's (d_S and d_Q) at the gate's --alpha, in the same correction family",
    )
    g.add_argument("--plot", metavar="FILE", help="draw each task's per-value drift (value circle for PVQ)")
    g.add_argument("--json", metavar="FILE", help="write the JSON report")
    g.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (for a pull-request comment)")
    g.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per task and language")
    candidates.add_source_options(g)
    g.set_defaults(func=cmd_gate)

    lb = sub.add_parser("leaderboard", help="one row per model, columns per task and language")
    lb.add_argument("runs", nargs="+", metavar="CANDIDATE", help=candidates.SOURCES_HELP)
    lb.add_argument("--bank", help="reference bank: report distances to its models")
    lb.add_argument("--against", nargs="+", metavar="MODEL", help="only these reference models")
    lb.add_argument(
        "--metric", choices=distance_mod.METRICS, default="mmd", help="distance to the bank's models (default mmd)"
    )
    lb.add_argument("--format", choices=("md", "csv", "html", "json"), default="md")
    lb.add_argument("-o", "--output", help="write here instead of printing")
    lb.add_argument("--min-answers", type=options.min_answers)
    lb.add_argument("--allow-mixed", action="store_true", help="build a table from runs made with different settings")
    candidates.add_source_options(lb)
    lb.set_defaults(func=cmd_leaderboard)


def cmd_gate(args) -> int:
    from univar_eval.errors import UserError
    from univar_eval.reports import gate

    if not args.bank and args.min_value_rationality is None:
        raise UserError("nothing to check: give --bank DIR --against MODEL, and/or --min-value-rationality X")
    if bool(args.bank) != bool(args.against):
        raise UserError("value checks need both --bank DIR and --against MODEL")
    min_answers = args.min_answers if args.min_answers is not None else resolve({}).min_answers
    gate.validate_options(
        alpha=args.alpha,
        max_distance=args.max_distance,
        permutations=args.permutations,
        min_answers=min_answers,
        bootstrap=args.bootstrap,
        min_coverage=args.min_coverage,
        max_question_distance=args.max_question_distance,
    )
    max_q = args.max_question_distance if args.max_question_distance is not None else args.max_distance
    bank = candidates.open_bank(args) if args.bank else None
    if bank is not None and args.against not in bank.models():  # before any answer is embedded
        raise UserError(f"bank {bank.path} has no model {args.against!r}; it has: {', '.join(bank.models()) or 'none'}")
    # a run without value distributions (a crash) is read as empty: every baseline entry then fails as missing
    found = candidates.read(args, [args.run], bank, missing_ok=True)
    if len(found) != 1:
        raise UserError(
            f"{args.run} holds answers of {len(found)} models ({', '.join(c.model for c in found)}); "
            "a gate checks one candidate: give one model's answers"
        )
    candidate = found[0]
    checks = []
    if bank is not None:
        checks += gate.value_checks(
            args.run,
            bank,
            args.against,
            max_distance=args.max_distance,
            alpha=args.alpha,
            min_answers=min_answers,
            langs=args.langs,
            tasks=args.tasks,
            metric=args.metric,
            n_permutations=args.permutations,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            correction=args.correction,
            allow_other_questions=args.allow_other_questions,
            dists=candidate.distributions,
            min_coverage=args.min_coverage,
            max_question_distance=max_q,
            extra_tests=2 * len(args.fail_on_value or []) * len(candidate.distributions),
        )
    if args.min_value_rationality is not None:
        if not candidate.is_run:
            raise UserError(f"--min-value-rationality reads lm-eval's HVAE results, but {args.run} is not a run folder")
        checks += gate.hvae_checks(args.run, args.min_value_rationality, select=args.select)
    if (args.fail_on_value or args.plot) and not args.bank:
        raise UserError("--fail-on-value and --plot need --bank DIR --against MODEL")
    if bank is not None:  # (--bank) per-value drift: reasons name the values that moved most; --fail-on-value; --plot
        from univar_eval.reports.drift import gate_hooks

        checks = gate_hooks(
            checks,
            args.run,
            bank,
            args.against,
            alpha=args.alpha,
            max_distance=args.max_distance,
            correction=args.correction,
            fail_on_value=args.fail_on_value,
            plot=args.plot,
            langs=args.langs,
            tasks=args.tasks,
            seed=args.seed,
            dists=candidate.distributions,
            n_permutations=gate.permutations_needed(
                2 * len(checks) + 2 * len(args.fail_on_value or []) * len(candidate.distributions),
                args.alpha,
                args.correction,
                args.permutations,
            )
            if args.max_distance is None
            else args.permutations,
            n_bootstrap=args.bootstrap,
            max_question_distance=max_q,
        )
    unpaired = bool(args.against and args.allow_other_questions)
    title = f"candidate {candidate.model} ({args.run})"
    if args.against:
        title += (
            f" vs baseline {args.against} ({args.metric}, alpha {args.alpha} {args.correction}-corrected, "
            + (
                f"max distance {args.max_distance} for d_S, {max_q} for d_Q: equivalence test"
                if args.max_distance is not None
                else "no max distance: difference test only"
            )
            + (", UNPAIRED" if unpaired else "")
            + ")"
        )
    settings = {
        "run": args.run,
        "candidate": candidate.model,
        "read": candidate.read,
        "embedded": candidate.embedded,
        "bank": args.bank,
        "against": args.against,
        "metric": args.metric,
        "alpha": args.alpha,
        "correction": args.correction,
        "max_distance": args.max_distance,
        "max_question_distance": max_q,
        "allow_inconclusive": args.allow_inconclusive,
        "allow_other_questions": args.allow_other_questions,
        "design": "unpaired" if unpaired else "paired",
        "min_answers": min_answers,
        "min_coverage": args.min_coverage,
        "verify": "all" if candidates.verify_count(args) < 0 else candidates.verify_count(args),
        "permutations": args.permutations,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "min_value_rationality": args.min_value_rationality,
    }
    allow = args.allow_inconclusive
    print(gate.to_text(checks, title, allow, unpaired))
    if args.json:
        write_json(args.json, jsonable(gate.to_json(checks, settings, allow)))
    if args.markdown:
        write_text(args.markdown, gate.to_markdown(checks, title, allow, unpaired))
    if args.junit:
        write_text(args.junit, gate.to_junit(checks, allow_inconclusive=allow, unpaired=unpaired))
    return gate.exit_code(checks, allow)


def cmd_leaderboard(args) -> int:
    from univar_eval.reports import leaderboard

    min_answers = args.min_answers if args.min_answers is not None else resolve({}).min_answers
    bank = candidates.open_bank(args) if args.bank else None
    found = candidates.read(args, args.runs, bank, missing_ok=True)
    board = leaderboard.build(
        args.runs,
        bank=bank,
        against=args.against,
        min_answers=min_answers,
        metric=args.metric,
        allow_mixed=args.allow_mixed,
        candidates=found,
    )
    text = leaderboard.RENDERERS[args.format](board)
    if args.output:
        write_text(args.output, text)
        print(f"wrote {args.output}: {plural(len(board['rows']), 'model')}, {plural(len(board['columns']), 'column')}")
    else:
        sys.stdout.write(text)
    return 0
