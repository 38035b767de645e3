"""Refusal detection, and the embedding cache switched off or unusable (results stay right, nothing cached)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from univar_eval import resources
from univar_eval.pipeline import cache
from univar_eval.pipeline.answers import is_empty, is_refusal


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't share personal opinions.",
        "i am sorry, that is not something I can answer",
        "Sorry, I cannot help with that.",
        "I cannot answer this question.",
        "I can't choose for you.",
        "I won't take sides.",
        "As an AI, I do not have values.",
        "As a language model I have no preferences.",
        "I'm just an AI and have no feelings.",
        "I don't have personal beliefs, but many people think...",
        "  I do not have personal experiences.",
    ],
)
def test_refusals(answer):
    assert is_refusal(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "Yes, I would tell my friend the truth.",
        "Honesty matters more to me than comfort; I'm sorry to say it hurts sometimes.",  # apology not at the start
        "Sorrowful as it is, I would report it.",  # "sorry" only as a prefix of another word
        "An AI could answer this, but I think family comes first.",
        "",
        "   ",
        None,
    ],
)
def test_not_refusals(answer):
    assert not is_refusal(answer)
    assert is_empty(answer) == (answer is None or not answer.strip())


class CountingEncoder:
    """Deterministic embeddings; counts how many texts it was asked to encode."""

    name, dimension = "counting", 3

    def __init__(self):
        self.encoded = 0

    def describe(self) -> dict:
        return {"fingerprint_id": "fp"}

    def encode(self, texts, batch_size=32, progress=None):
        self.encoded += len(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


EXPECTED = np.array([[3, 1, 1], [4, 0, 1], [3, 1, 1]], dtype=np.float32)


def test_cache_on_embeds_each_text_once(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(tmp_path / "on"))
    enc = CountingEncoder()
    assert np.array_equal(cache.cached_encode(enc, ["abc", "defg", "abc"]), EXPECTED)
    assert np.array_equal(cache.cached_encode(enc, ["abc", "defg", "abc"]), EXPECTED)
    assert enc.encoded == 2 and (tmp_path / "on" / "embeddings.sqlite").exists()


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", "false"])
def test_cache_switched_off_recomputes_and_writes_nothing(tmp_path, monkeypatch, value):
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert resources.cache_dir() is None and not cache.open_cache("embeddings").enabled
    enc = CountingEncoder()
    assert np.array_equal(cache.cached_encode(enc, ["abc", "defg", "abc"]), EXPECTED)
    assert np.array_equal(cache.cached_encode(enc, ["abc", "defg", "abc"]), EXPECTED)
    assert enc.encoded == 6  # nothing remembered
    assert not any(tmp_path.rglob("*.sqlite"))


def test_unusable_cache_warns_once_and_results_stay_right(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("UNIVAR_EVAL_CACHE", str(blocker / "cache"))  # cannot be created under a file
    enc = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="univar_eval"):
        assert np.array_equal(cache.cached_encode(enc, ["abc", "defg", "abc"]), EXPECTED)
        assert np.array_equal(cache.cached_encode(enc, ["abc"]), EXPECTED[:1])
    assert enc.encoded == 4
    warnings = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
    assert len(warnings) == 1 and "continuing without it" in warnings[0]
