"""Synthetic value distributions for tests that need a bank of known structure (identify, map)."""

from __future__ import annotations

import numpy as np

from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution


def manifest(model="m", lang="eng", task=None, encoder="fake", fingerprint=0.0, questionnaire="pvq"):
    return {
        "format": "univar-eval/value-distribution/1",
        "created": "2026-01-01T00:00:00+00:00",
        "task": task or f"univar_{questionnaire}_{lang}",
        "lang": lang,
        "questionnaire": questionnaire,
        "questionnaire_version": "v1",
        "translator": {"name": "none"},
        "model": model,
        "encoder": {"name": encoder, "revision": None, "fingerprint": [fingerprint] * 8, "fingerprint_id": "fp"},
    }


def cloud(centre, n, rng, noise=0.15):
    """``n`` unit vectors scattered around the direction of ``centre``."""
    e = centre / np.linalg.norm(centre) + noise * rng.normal(size=(n, len(centre)))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def synthetic_bank(
    path,
    *,
    model_weight,
    lang_weight,
    models=("alpha", "beta", "gamma"),
    langs=("eng", "fra", "zho"),
    n=30,
    d=16,
    seed=0,
):
    """Each model-language set is a cloud around ``model_weight * model direction + lang_weight * language
    direction``: the weights set how far apart models and languages are."""
    rng = np.random.default_rng(seed)
    model_dir = {m: rng.normal(size=d) for m in models}
    lang_dir = {lg: rng.normal(size=d) for lg in langs}
    bank = Bank(path, create=True)
    for m in models:
        for lg in langs:
            e = cloud(model_weight * model_dir[m] + lang_weight * lang_dir[lg], n, rng)
            bank.add(ValueDistribution(e, [{"i": i} for i in range(n)], manifest(m, lg)), model=m, source="synthetic")
    return bank
