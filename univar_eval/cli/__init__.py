"""``univar-eval``: the command line around lm-eval runs.

Each sub-command lives in the module of the step it drives and registers itself
through a ``register(subparsers)`` function that sets ``func`` on its parser;
this file only lists them. Bad input ends with one ``error: ...`` line and exit
code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from univar_eval import __version__
from univar_eval.errors import UserError

#: (sub-command module, in the order they are listed in --help)
COMMAND_MODULES = [
    "univar_eval.cli.basic",
    "univar_eval.cli.bank",
    "univar_eval.cli.valuelex",
    "univar_eval.cli.report",
    "univar_eval.cli.identify",
    "univar_eval.cli.map",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="univar-eval",
        description="Measure the human values embedded in language models, on top of lm-evaluation-harness runs.",
    )
    parser.add_argument("--version", action="version", version=f"univar-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
