"""``univar-eval``: the command line around lm-eval runs.

Each sub-command lives in the module of the step it drives and registers itself
through a ``register(subparsers)`` function that sets ``func`` on its parser;
this file only lists them.

Exit codes: 0 success or pass; 1 a verdict failed (and nothing else); 2 bad input,
a damaged file or any unexpected error, always as one ``error: ...`` line (an
unexpected error adds "rerun with -v for the traceback", and ``-v`` prints it);
130 interrupted; 141 the reader of the output went away (``... | head``), quietly,
as Unix tools do.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import traceback
from typing import NoReturn

from univar_eval import __version__
from univar_eval.errors import UserError

#: (sub-command module, in the order they are listed in --help)
COMMAND_MODULES = [
    "univar_eval.cli.basic",
    "univar_eval.cli.bank",
    "univar_eval.cli.valuelex",
    "univar_eval.cli.report",
    "univar_eval.cli.calibrate",
    "univar_eval.cli.drift",
    "univar_eval.cli.identify",
    "univar_eval.cli.map",
]


class Parser(argparse.ArgumentParser):
    """argparse, except that an option value outside its bounds (``cli/options.py``) is a ``UserError``:
    one ``error: --OPTION must be ..., got VALUE`` line and exit code 2, like every other input error.
    Other usage errors (an unknown option, a missing argument) keep argparse's usage message."""

    def error(self, message: str) -> NoReturn:
        bound = re.fullmatch(r"argument (\S+): (must be .*)", message, flags=re.DOTALL)
        if bound:
            raise UserError(f"{bound.group(1).split('/')[-1]} {bound.group(2)}")
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="univar-eval",
        description="Measure the human values embedded in language models, on top of lm-evaluation-harness runs.",
    )
    parser.add_argument("--version", action="version", version=f"univar-eval {__version__}")
    _add_verbose(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in _subcommands(parser):  # ``univar-eval gate ... -v`` as well as ``univar-eval -v gate ...``
        _add_verbose(command, default=argparse.SUPPRESS)  # unset there: it keeps a -v given before the command
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log progress, and print the traceback of an unexpected error",
    )


def _subcommands(parser: argparse.ArgumentParser):
    """Every sub-command's parser below ``parser`` (``bank add`` too), each once."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    if id(child) not in seen:
                        seen.add(id(child))
                        stack.append(child)
                        yield child


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UserError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except UserError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``univar-eval bank list | head -1``): stop quietly; point stdout at
        # /dev/null so the interpreter's final flush does not complain either
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to redirect
            pass
        return 141
    except Exception as e:  # noqa: BLE001 - the one place that turns a crash into one line and exit 2
        if args.verbose:
            traceback.print_exc()
        print(
            f"error: unexpected {type(e).__name__}: {one_line(str(e))}"
            + ("" if args.verbose else "; rerun with -v (univar-eval -v ...) for the traceback"),
            file=sys.stderr,
        )
        return 2


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (newlines and other control characters become spaces), at most ``limit`` long."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
