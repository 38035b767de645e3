"""Every shell and Python snippet of the README and of docs/ runs, or says why it cannot.

A fenced ``bash``/``sh``/``shell``/``python`` block runs as it is written, unless the line right above it (blank
lines aside) is a marker:

- ``<!-- snippet: gpu -->``: needs a real model, so a GPU, or the runs one makes; not run;
- ``<!-- snippet: network -->``: needs the network (the package index, the hub, an endpoint); not run;
- ``<!-- snippet: suite -->``: it runs this test suite itself (CI runs it: ``.ci/run``); not run;
- ``<!-- snippet: tested-by PATH -->``: the test file PATH runs it verbatim (it must exist and name the page);
- ``<!-- snippet: e2e -->``: runs, but slowly (an lm_eval run, an encoder): marked ``e2e``;
- ``exit=N`` after the kind: the block ends with exit code N (e.g. a gate that fails), else 0.

The blocks of one page run in order in one fresh folder (a later block may use what an earlier one wrote),
offline, with a private cache; bash runs with ``-e -o pipefail``, so every command of a block must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
MARKER = re.compile(r"<!--\s*snippet:\s*(?P<kind>[a-z0-9-]+)(?P<rest>[^>]*?)\s*-->")
NOT_RUN = {"gpu", "network", "suite", "tested-by"}
KINDS = NOT_RUN | {"e2e"}
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")


@dataclass
class Snippet:
    page: Path
    line: int  # where the block starts (1-based, the fence)
    lang: str  # bash or python
    code: str
    kind: str | None  # None: an ordinary block, run in the quick tests
    exit: int
    argument: str  # the PATH of tested-by

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets(page: Path) -> list[Snippet]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang = LANGS.get(m["lang"])
        if lang:
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.fullmatch(above.strip())
            kind, exit_code, argument = None, 0, ""
            if marker:
                kind = marker["kind"]
                for word in marker["rest"].split():
                    if word.startswith("exit="):
                        exit_code = int(word[5:])
                    else:
                        argument = word
            found.append(Snippet(page, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", kind, exit_code, argument))
        i = end + 1
    return found


ALL = [s for page in PAGES for s in snippets(page)]
RUN = [s for s in ALL if s.kind not in NOT_RUN]


def test_every_snippet_runs_or_says_why_not():
    assert len(ALL) >= 20 and {s.page.name for s in ALL} >= {"README.md", "usage.md", "banks.md", "ci.md"}
    for s in ALL:
        assert s.kind is None or s.kind in KINDS, f"{s.name}: unknown snippet marker {s.kind!r} (use one of {KINDS})"
        if s.kind == "tested-by":
            test = ROOT / s.argument
            assert test.is_file(), f"{s.name}: tested-by names {s.argument}, which does not exist"
            assert s.page.name in test.read_text(), f"{s.name}: {s.argument} does not read {s.page.name}"
    # the README's main job and the Python API example are among the snippets that run
    assert any("lm_eval --model hf" in s.code for s in RUN if s.page.name == "README.md")
    assert any('device="cpu"' in s.code for s in RUN if s.lang == "python")


def test_the_demo_block_is_the_one_its_test_runs():
    """tests/e2e/test_e2e_demo.py runs the first bash block after "## Offline demo": the marked one."""
    readme = ROOT / "README.md"
    demo = [s for s in ALL if s.kind == "tested-by" and s.page == readme]
    text = readme.read_text().split("## Offline demo", 1)[1]
    assert [s.code for s in demo] == [text.split("```bash\n", 1)[1].split("```", 1)[0]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One fresh working folder per page: its blocks run there, in order."""
    made: dict[Path, Path] = {}

    def folder(page: Path) -> Path:
        if page not in made:
            made[page] = tmp_path_factory.mktemp(page.stem.lower())
        return made[page]

    return folder


@pytest.mark.parametrize(
    "snippet", [pytest.param(s, id=s.name, marks=[pytest.mark.e2e] if s.kind == "e2e" else []) for s in RUN]
)
def test_snippet_runs(snippet: Snippet, folders):
    cwd = folders(snippet.page)
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "UNIVAR_EVAL_CACHE": str(cwd / ".cache"),
        "PYTHONUNBUFFERED": "1",
    }
    command = ["bash", "-e", "-o", "pipefail", "-c", snippet.code] if snippet.lang == "bash" else [sys.executable]
    proc = subprocess.run(
        command,
        input=snippet.code if snippet.lang == "python" else None,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = f"{snippet.name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert proc.returncode == snippet.exit, report
    assert "Traceback (most recent call last)" not in proc.stderr, report


def test_the_readme_stays_short_and_points_to_every_page():
    """At most 200 lines: what it is, set-up, tests, the demo, where to read on; the rest is in docs/."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert {p for p in pages if f"(docs/{p})" not in readme} == set()
