"""``univar-eval calibrate``: propose the gate's --max-distance from reruns of the baseline model."""

from __future__ import annotations

import sys

from univar_eval.cli import options
from univar_eval.stats import calibration


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="propose --max-distance for CI: the smallest D at which reruns of the baseline pass the whole gate",
        description="Gate each rerun of the baseline model against its bank entry, and propose the smallest D at "
        "which the whole gate passes for a rerun with the given probability (estimated from the reruns' bounds). "
        "Reruns must sample (temperature > 0, with repeats): greedy reruns repeat every answer and show no spread.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders of 3 or more reruns of the baseline model")
    p.add_argument("--bank", required=True, help="reference bank holding the baseline")
    p.add_argument("--against", required=True, metavar="REF", help="the baseline's name in the bank")
    p.add_argument(
        "--probability",
        type=options.probability,
        default=calibration.DEFAULT_PROBABILITY,
        help="the chance that a whole gate of a new rerun passes with the proposed D (default 0.95)",
    )
    p.add_argument("--alpha", type=options.probability, default=0.05, help="the gate's alpha (default 0.05)")
    p.add_argument("--bootstrap", type=options.count, default=200, help="the gate's bootstrap resamples (default 200)")
    p.add_argument("--seed", type=options.count, default=0, help="seed of the bootstrap and the draws (default 0)")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks (default: every task of the bank)")
    p.add_argument("--langs", nargs="+", metavar="LANG", help="only these languages (default: all)")
    p.add_argument("--json", metavar="FILE", help="write the proposal and how it was found")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from univar_eval.errors import UserError
    from univar_eval.reports import calibrate as report
    from univar_eval.storage.files import write_text
    from univar_eval.storage.hub import open_bank

    if not 0 < args.alpha < 1 or args.bootstrap < 1:
        raise UserError("--alpha must be between 0 and 1 and --bootstrap at least 1")
    result = report.calibrate(
        args.runs,
        open_bank(args.bank),
        args.against,
        alpha=args.alpha,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        probability=args.probability,
        tasks=args.tasks,
        langs=args.langs,
    )
    sys.stdout.write(report.to_text(result))
    if args.json:
        write_text(args.json, report.to_json(result))
    return 0 if not result["no_spread"] else 1
