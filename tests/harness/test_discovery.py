"""Task discovery: the .pth startup hook, its off switch, and --include_path, through the real lm_eval CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import OFFLINE_ENV, lm_eval_executable

from univar_eval import _autoload
from univar_eval.resources import tasks_dir


def _ls(*extra: str, env: dict | None = None) -> str:
    proc = subprocess.run(
        [lm_eval_executable(), "ls", "tasks", *extra],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE_ENV, **(env or {})},
        timeout=600,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def listing():
    return _ls()


def test_lm_eval_lists_our_tasks_without_include_path(listing):
    assert "univar_pvq_eng" in listing
    assert re.search(r"^\|\s*univar_pvq\s+\|", listing, re.M)  # the group


def test_autoload_can_be_switched_off_and_include_path_still_works():
    off = _ls(env={"UNIVAR_EVAL_NO_AUTOLOAD": "1"})
    assert "univar_pvq_eng" not in off
    explicit = _ls("--include_path", str(tasks_dir()), env={"UNIVAR_EVAL_NO_AUTOLOAD": "1"})
    assert "univar_pvq_eng" in explicit


def test_pth_file_is_installed():
    pth = Path(sysconfig.get_paths()["purelib"]) / "univar_eval-autoload.pth"
    assert pth.exists(), f"{pth} missing: the startup hook is not installed"


# the startup line as installed (pip copies univar_eval/_autoload.pth to the top of site-packages), or as in the
# source tree when the package is not installed
INSTALLED_PTH = Path(sysconfig.get_paths()["purelib"]) / "univar_eval-autoload.pth"
PTH_SOURCE = INSTALLED_PTH if INSTALLED_PTH.exists() else Path(_autoload.__file__).with_name("_autoload.pth")


def test_pth_line_never_breaks_python_and_says_what_failed():
    line = PTH_SOURCE.read_text()
    # a half-removed package: importing univar_eval fails; the interpreter starts, with one line that names the fix
    code = f"import sys; sys.modules['univar_eval'] = None; exec({line!r})"
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == ""
    [warning] = proc.stderr.splitlines()
    assert warning.startswith("univar-eval: task discovery is off (ModuleNotFoundError: ")
    assert "UNIVAR_EVAL_NO_AUTOLOAD=1" in warning and '--include_path "$(univar-eval tasks-dir)"' in warning
    # switched off: nothing is imported, nothing said
    off = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env={"UNIVAR_EVAL_NO_AUTOLOAD": "1"}
    )
    assert off.returncode == 0 and off.stderr == ""


def test_a_failing_patch_warns_in_one_line_and_lm_eval_goes_on(capsys, monkeypatch):
    class Inner:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.TaskManager = object()  # a TaskManager the hook cannot wrap

    def broken(module):
        raise TypeError("cannot set '__init__' attribute")

    monkeypatch.setattr(_autoload, "patch", broken)
    _autoload._Loader(Inner()).exec_module(type(sys)("fake"))
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "univar-eval: task discovery is off (TypeError: cannot set '__init__' attribute); " + _autoload.HINT
    )


def test_interpreter_start_does_not_import_lm_eval():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; print('lm_eval' in sys.modules, 'univar_eval' in sys.modules)"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert proc.stdout.split() == ["False", "True"]


def test_patch_adds_our_folder_once_and_keeps_user_paths(tmp_path):
    seen = {}

    class FakeManager:
        def __init__(self, include_path=None, **kw):
            seen["paths"] = include_path

    class Module:
        TaskManager = FakeManager

    _autoload.patch(Module)
    _autoload.patch(Module)  # idempotent
    FakeManager()
    assert seen["paths"] == [str(tasks_dir())]
    FakeManager(include_path=str(tmp_path))
    assert seen["paths"] == [str(tasks_dir()), str(tmp_path)]
    FakeManager(include_path=[str(tasks_dir())])
    assert seen["paths"] == [str(tasks_dir())]
