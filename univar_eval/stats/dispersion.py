"""Step: statistics. Dispersion of a set of embeddings (reported as ``value_dispersion``).

The mean pairwise cosine distance between embeddings: 0 when every one is the same point, larger when
they spread over more of the space. It describes one model and says nothing about any other.

The UniVaR task applies it to the model's answers embedded alone (in English, with the run's encoder),
not to the ``Q: .. A: ..`` texts of the value distribution. The question is the questionnaire's text,
the same for every model; in the QA embedding it sets a floor under the spread (a model that answers
the same string to every question still scored 0.62 on the Quick start's PVQ questions), so the QA
spread measures the questions as much as the model. The answers alone measure what the model said: one
answer to every question gives exactly 0.
"""

from __future__ import annotations

import numpy as np


def dispersion(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance between the (normalised) embeddings; NaN for fewer than two."""
    n = len(embeddings)
    if n < 2:
        return float("nan")
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    s = x.sum(axis=0)
    mean_cos = (float(s @ s) - n) / (n * (n - 1))
    return max(0.0, 1.0 - mean_cos)
