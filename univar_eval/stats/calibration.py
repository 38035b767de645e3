"""Step: calibration. The smallest tolerance D at which a whole gate passes for a rerun of the baseline.

Input: for each of k >= 3 reruns of the baseline model, the upper bound of every tested quantity of every check
(``uppers``: k x m). A rerun's gate passes at D exactly when its largest upper bound is below D, so the question is
the distribution of that maximum. Each test's bound is modelled across reruns by its mean and spread (Student-t
predictive draws with k - 1 degrees of freedom, widened by ``sqrt(1 + 1/k)`` for the uncertainty of the mean), the
tests drawn independently, and D is the ``probability`` quantile of the simulated maxima -- never below the largest
bound a seen rerun needed. With 125 checks, a 95 % chance for the whole gate is about 0.9996 per check; the
independent draws give that tail from a handful of reruns, which the reruns' own maxima cannot.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t as t_dist

from univar_eval.stats.equivalence import MMD2_CEILING

DEFAULT_PROBABILITY = 0.95
MIN_RERUNS = 3
#: Below this many reruns the proposal is said to be wide (measured on real text, 38 questions x 2 answers: from 3
#: reruns the proposed D let 6 of 12 other-stance comparisons pass; from 6, none; tests/reports/test_gate_real_text)
FEW_RERUNS = 6
NO_SPREAD_NOTE = (
    "the reruns repeat every answer (greedy decoding): they show no spread, so no tolerance can be estimated from "
    "them; rerun the baseline with sampling and repeats (lm-eval `repeats: N`, temperature > 0)"
)


def propose(uppers: np.ndarray, *, probability: float = DEFAULT_PROBABILITY, draws: int = 20000, seed: int = 0) -> dict:
    """``{"max_distance", "per_rerun", "pass_rate_seen", "no_spread", "note"}`` from ``uppers`` (k reruns x m tests).

    ``per_rerun``: the smallest D at which each rerun's whole gate passes (its largest bound); ``pass_rate_seen``:
    the share of the given reruns that pass at the proposed D (1.0 by construction)."""
    uppers = np.asarray(uppers, dtype=np.float64)
    k, m = uppers.shape
    if k < MIN_RERUNS:
        raise ValueError(f"calibration needs at least {MIN_RERUNS} reruns, got {k}")
    per_rerun = uppers.max(1)
    spread = uppers.std(0, ddof=1)
    ceiling = math.sqrt(MMD2_CEILING)
    if not np.any(spread > 0) and not np.any(uppers > 0):
        return {
            "max_distance": None,
            "per_rerun": per_rerun.tolist(),
            "pass_rate_seen": None,
            "no_spread": True,
            "note": NO_SPREAD_NOTE,
        }
    rng = np.random.default_rng([seed, 17])
    noise = t_dist.rvs(k - 1, size=(draws, m), random_state=rng) * math.sqrt(1 + 1 / k)
    maxima = (uppers.mean(0) + spread * noise).max(1)
    proposed = min(max(float(np.quantile(maxima, probability)), float(per_rerun.max())), ceiling)
    note = None
    if k < FEW_RERUNS:
        note = (
            f"only {k} reruns: the Student-t tail ({k - 1} degrees of freedom) makes this D wide, wide enough that "
            f"other models may pass; {FEW_RERUNS} or more reruns give a tighter D"
        )
    return {
        "max_distance": proposed,
        "per_rerun": per_rerun.tolist(),
        "pass_rate_seen": float(np.mean(per_rerun < proposed)),
        "no_spread": False,
        "note": note,
    }
