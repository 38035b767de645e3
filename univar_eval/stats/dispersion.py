"""Step: statistics. Dispersion of one value distribution (reported as ``value_dispersion``).

The mean pairwise cosine distance between a model's answer embeddings: 0 when every
answer embeds to the same point, larger when the answers spread over more of the
space. It describes one distribution and says nothing about any other model.
"""

from __future__ import annotations

import numpy as np


def dispersion(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance between the (normalised) embeddings."""
    n = len(embeddings)
    if n < 2:
        return float("nan")
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    s = x.sum(axis=0)
    mean_cos = (float(s @ s) - n) / (n * (n - 1))
    return 1.0 - mean_cos
