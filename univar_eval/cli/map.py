"""``univar-eval map``: a 2-D map of model-language value centroids and a heatmap of their distances."""

from __future__ import annotations

import argparse

from univar_eval.cli import options
from univar_eval.cli.candidates import add_run_option
from univar_eval.errors import UserError
from univar_eval.reports.identify import from_bank, from_run
from univar_eval.reports.plot import value_map
from univar_eval.reports.table import plural
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.files import write_json


def register(sub) -> None:
    p = sub.add_parser(
        "map",
        help="draw a 2-D map of model-language value centroids (and a distance heatmap)",
        description="Mean embedding per model and language, projected to 2-D (PCA, or UMAP when "
        "umap-learn is installed), coloured by language and marked by model; each "
        "language's centroid is linked to its points.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders (lm-eval --output_path, or univar_<time>)")
    p.add_argument("--bank", help="also draw every model of this bank")
    p.add_argument(
        "--task-family",
        metavar="NAME",
        help="one questionnaire family, e.g. pvq (default: every value questionnaire, control left out)",
    )
    p.add_argument("--method", choices=("pca", "umap"), default="pca")
    p.add_argument("-o", "--output", required=True, help="the map picture (.png, .svg or .pdf)")
    p.add_argument("--heatmap", metavar="FILE", help="also draw a heatmap of pairwise distances here")
    p.add_argument("--metric", choices=distance_mod.METRICS, default="mmd", help="heatmap distance (default mmd)")
    p.add_argument(
        "--size",
        nargs=2,
        type=options.positive_float,
        default=(8.0, 6.0),
        metavar=("W", "H"),
        help="figure size in inches (default 8 6)",
    )
    p.add_argument("--dpi", type=options.positive_float, default=150, help="dots per inch (default 150)")
    p.add_argument("--seed", type=options.count, default=0)
    add_run_option(p)
    p.add_argument("--json", metavar="FILE", help="also write the coordinates (and distances) as JSON")
    p.set_defaults(func=cmd_map)


def cmd_map(args: argparse.Namespace) -> int:
    if not args.runs and not args.bank:
        raise UserError("nothing to draw: give run folders, --bank DIR, or both")
    sets = from_bank(args.bank) if args.bank else []
    for run in args.runs:
        sets += from_run(run, args.select)
    result = value_map(
        sets,
        args.output,
        method=args.method,
        family=args.task_family,
        heatmap=args.heatmap,
        metric=args.metric,
        size=tuple(args.size),
        dpi=args.dpi,
        seed=args.seed,
    )
    n_langs, n_models = (len({p[k] for p in result["points"]}) for k in ("lang", "model"))
    print(
        f"wrote {args.output}: {len(result['points'])} model-language centroids "
        f"({plural(n_langs, 'language')}, {plural(n_models, 'model')}), {args.method.upper()}, "
        f"encoder {result['encoder']['name']}"
    )
    for pt in result["points"]:
        print(f"  {pt['model']}${pt['lang']}: ({pt['x']:+.3f}, {pt['y']:+.3f})")
    if args.heatmap:
        print(f"wrote {args.heatmap}: {args.metric} distances between {len(result['labels'])} model-language sets")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
