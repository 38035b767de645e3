"""Attack 6 of issue 25: the embedding cache cannot be forged. Entries carry an HMAC under a per-user secret key
(mode 0600, outside the cache folder); rewriting a value with a recomputed plain checksum, or with a tag made
under another key, gets it recomputed, never used."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat

import numpy as np
import pytest

from univar_eval.pipeline import cache as cache_mod
from univar_eval.pipeline.cache import TABLE, KeyValueCache, cached_encode, open_cache, secret_key, text_key


class Encoder:
    name = "toy"
    dimension = 4

    def __init__(self):
        self.calls = []

    def describe(self):
        return {"fingerprint_id": "fp"}

    def encode(self, texts, batch_size=32, progress=None):
        self.calls.append(list(texts))
        return np.stack([np.full(4, len(t), dtype=np.float32) for t in texts])


def plain_checksum(namespace: str, key: str, value: bytes) -> str:
    """What the 0.1 cache stored beside a value: a hash anyone can recompute."""
    h = hashlib.sha256()
    for part in (namespace.encode(), key.encode(), value):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


@pytest.fixture()
def fresh(private_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cache_mod._OPEN.clear()
    yield
    cache_mod._OPEN.clear()


def test_the_key_is_private_and_outside_the_cache(fresh, tmp_path, private_cache):
    enc = Encoder()
    cached_encode(enc, ["Q: a? A: yes."])
    key = tmp_path / "config" / "univar-eval" / "cache.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert not key.resolve().is_relative_to(private_cache.resolve())
    with pytest.raises(cache_mod.KeyProblem, match="inside the cache folder"):
        secret_key(private_cache / "cache.key", cache_folder=private_cache)
    os.chmod(key, 0o644)
    with pytest.raises(cache_mod.KeyProblem, match="not a private file"):
        secret_key(key)


@pytest.mark.parametrize("forge", ["plain checksum", "another key"])
def test_a_rewritten_entry_with_a_valid_checksum_is_recomputed(fresh, caplog, forge):
    enc = Encoder()
    texts = ["Q: a? A: yes.", "Q: b? A: no."]
    clean = cached_encode(enc, texts)
    cache = open_cache("embeddings")
    ns, k = "toy:fp", text_key(texts[0])
    forged = np.full(4, 99.0, dtype="<f4").tobytes()
    tag = (
        plain_checksum(ns, k, forged)
        if forge == "plain checksum"
        else cache_mod.value_tag(b"x" * 32, ns, k, forged)  # an attacker's own key
    )
    with sqlite3.connect(cache.path) as db:
        db.execute(f"UPDATE {TABLE} SET value = ?, tag = ? WHERE key = ?", (forged, tag, k))
    again = cached_encode(enc, texts)
    assert np.array_equal(again, clean)  # the forged value was never used
    assert enc.calls[-1] == [texts[0]]  # recomputed; the other entry reused
    assert "1 cached value(s)" in caplog.text and "failed authentication" in caplog.text


def test_an_untrusted_key_skips_the_cache_and_results_stay_right(fresh, tmp_path, caplog):
    key = tmp_path / "config" / "univar-eval" / "cache.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"k" * 32)
    os.chmod(key, 0o666)
    cache = KeyValueCache(tmp_path / "c" / "embeddings.sqlite")
    assert not cache.enabled and "not a private file" in caplog.text


def test_a_poisoned_cache_cannot_make_another_candidate_pass(integrity_world, tmp_path, capsys, caplog, fresh):
    """The end-to-end attack: a restored CI cache whose entries for the achiever's texts hold the carer's
    embeddings, each with a valid (plain) checksum. The achiever's answers are embedded again and fail."""
    import json

    from integrity_world import gate

    w = integrity_world
    bank = w.bank(tmp_path, w.run("carer", 0))
    achiever, carer = w.run("achiever", 2), w.run("carer", 2)
    src = tmp_path / "vendor.jsonl"
    src.write_text(
        "\n".join(json.dumps({**r, "model": "vendor", "questionnaire": "pvq"}) for r in achiever.records) + "\n"
    )
    cache = open_cache("embeddings")
    enc = achiever.manifest["encoder"]
    ns = f"{enc['name']}:{enc['fingerprint_id']}"
    rows = []
    for r, e in zip(achiever.records, np.asarray(carer.embeddings, dtype="<f4")):
        k, v = text_key(r["text"]), e.tobytes()
        rows.append((ns, k, v, plain_checksum(ns, k, v)))
    with sqlite3.connect(cache.path) as db:
        db.executemany(f"INSERT OR REPLACE INTO {TABLE} (ns, key, value, tag) VALUES (?, ?, ?, ?)", rows)
    code, out, err = gate(capsys, src, bank)
    assert code == 1 and "FAILED" in out and "PASSED" not in out
    assert "38 cached value(s)" in caplog.text and "failed authentication" in caplog.text
    # the honest model's answers, embedded through the same cache, still pass
    honest = tmp_path / "honest.jsonl"
    honest.write_text(
        "\n".join(json.dumps({**r, "model": "vendor", "questionnaire": "pvq"}) for r in carer.records) + "\n"
    )
    assert gate(capsys, honest, bank)[0] == 0
