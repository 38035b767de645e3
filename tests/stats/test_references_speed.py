"""The compare path's shortcuts change no result: the shared kernel-block cache and the threaded references."""

from __future__ import annotations

import numpy as np
import pytest

from univar_eval.stats import distance as D
from univar_eval.stats.references import reference_distances
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution

ENCODER = {"name": "t", "revision": None, "dimension": 16, "fingerprint": [0.0] * 4, "fingerprint_id": "t"}


def _same(a: dict, b: dict) -> bool:
    return all(
        (x == y) or (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y))
        for x, y in ((a[k], b[k]) for k in a)
    )


@pytest.mark.parametrize("metric", ["mmd", "centroid"])
def test_a_shared_cache_gives_the_same_results_and_holds_one_block(metric):
    rng = np.random.default_rng(21)
    x = rng.normal(size=(30, 16))
    cache: dict = {}
    for shift in (0.0, 0.3, 0.0):
        y = rng.normal(size=(25, 16)) + shift
        cached = D.compare_sets(x, y, metric, n_permutations=60, n_bootstrap=30, cache=cache).to_dict()
        fresh = D.compare_sets(x, y, metric, n_permutations=60, n_bootstrap=30).to_dict()
        assert _same(cached, fresh)
    assert len(cache) == 1  # x's own block, computed once for the three references


def test_the_observed_mmd_is_the_double_precision_one():
    rng = np.random.default_rng(22)
    x, y = rng.normal(size=(12, 8)), rng.normal(size=(9, 8)) + 0.2
    r = D.compare_sets(x, y, n_permutations=20, n_bootstrap=0)
    assert r.statistic == pytest.approx(D.mmd2_unbiased(x, y), rel=1e-13, abs=1e-15)


def test_threaded_references_match_one_comparison_at_a_time(tmp_path):
    rng = np.random.default_rng(23)
    manifest = {"task": "t_eng", "lang": "eng", "questionnaire": "pvq", "questionnaire_version": "1",
                "encoder": ENCODER, "translator": {"name": "none"}, "model": "m"}  # fmt: skip

    def unit(n):
        v = rng.normal(size=(n, 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many([(ValueDistribution(unit(20), [{}] * 20, manifest), f"ref-{i}", "t") for i in range(6)])
    run = ValueDistribution(unit(20), [{}] * 20, manifest)
    got = reference_distances(run, Bank(bank.path), n_permutations=50)
    assert list(got["references"]) == sorted(got["references"])  # the bank's order, whatever thread ran first
    for e in Bank(bank.path).entries(task="t_eng"):
        alone = D.compare_sets(run.embeddings, Bank(bank.path).load(e).embeddings, n_permutations=50, n_bootstrap=0)
        r = got["references"][e["model"]]
        assert (r["distance"], r["p_value"]) == (alone.distance, alone.p_value)
    nearest = min(got["references"], key=lambda m: got["references"][m]["distance"])
    assert got["nearest"] == nearest
