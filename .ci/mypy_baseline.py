"""mypy on univar_eval against a baseline that may only shrink.

    python .ci/mypy_baseline.py            # CI: fail (exit 1) on any error not in the baseline
    python .ci/mypy_baseline.py --update   # after fixing errors: write the smaller baseline

The baseline (``.ci/mypy-baseline.txt``) lists the errors known when the check began, one per line as
``path: [code] message`` without the line number, so that edits elsewhere in a file do not count as new
errors. An error is new when its (path, code, message) occurs more often now than in the baseline. Errors
fixed since are reported, so that the baseline can be shrunk with ``--update``, which refuses to add errors.
The mypy settings are ``[tool.mypy]`` in pyproject.toml.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?:\d+:)? error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$")


def key(match: re.Match) -> str:
    return f"{match['path']}: [{match['code']}] {match['message']}"


def current() -> tuple[Counter, list[str]]:
    """(errors as baseline keys, mypy's own error lines) of a fresh mypy run."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty", "--show-error-codes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1) or proc.stderr.strip():
        sys.exit(f"mypy did not run (exit {proc.returncode}):\n{proc.stderr}{proc.stdout}")
    keys: Counter = Counter()
    lines = []
    for line in proc.stdout.splitlines():
        m = ERROR.match(line)
        if m:
            keys[key(m)] += 1
            lines.append(line)
        elif ": error: " in line:
            sys.exit(f"unreadable mypy line: {line}")
    return keys, lines


def baseline() -> Counter:
    if not BASELINE.exists():
        return Counter()
    return Counter(line for line in BASELINE.read_text().splitlines() if line and not line.startswith("#"))


def main(argv: list[str]) -> int:
    now, lines = current()
    known = baseline()
    new = now - known
    fixed = known - now
    if "--update" in argv:
        if new and BASELINE.exists() and "--init" not in argv:
            print(f"refusing to add {sum(new.values())} errors to the baseline; fix them:", file=sys.stderr)
            print("\n".join(sorted(new.elements())), file=sys.stderr)
            return 1
        header = "# mypy errors known when the check began; this list may only shrink (.ci/mypy_baseline.py)\n"
        BASELINE.write_text(header + "".join(f"{k}\n" for k in sorted(now.elements())))
        print(f"baseline: {sum(now.values())} errors ({sum(fixed.values())} fewer than before)")
        return 0
    if new:
        print(f"mypy: {sum(new.values())} new errors (not in {BASELINE.relative_to(ROOT)}):")
        for line in lines:
            m = ERROR.match(line)
            if m and key(m) in new:
                print(line)
        return 1
    print(
        f"mypy: {sum(now.values())} errors, all in the baseline of {sum(known.values())}"
        + (f"; {sum(fixed.values())} fixed since: shrink it with --update" if fixed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
