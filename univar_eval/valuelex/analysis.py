"""Step: ValueLex analysis. All answers of one task -> metrics and per-item details."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from univar_eval.valuelex.lexicon import get_mapper, lexicon_metrics, parse_value_words
from univar_eval.valuelex.projective import (
    clean_completion,
    get_scorer,
    profile,
    score_completions,
    validation_for,
)


def analyse_lexicon(items: list[dict], encoder) -> tuple[dict, dict]:
    mapper = get_mapper(encoder)
    rows, all_maps = [], []
    for item in items:
        for k, response in enumerate(item["responses"]):
            words = parse_value_words(response)
            maps = mapper.map_many(words) if words else []
            all_maps += maps
            rows.append({"id": item["id"], "repeat": k, "response": response, "words": [asdict(m) for m in maps]})
    metrics = lexicon_metrics(all_maps)
    return metrics, {"calibration": mapper.calibration, "items": rows}


def analyse_projective(items: list[dict], encoder) -> tuple[dict, dict]:
    pairs, completions, ids = [], [], []
    for item in items:
        for k, response in enumerate(item["responses"]):
            pairs.append((item["stem"], item["subdim"]))
            completions.append(response)
            ids.append((item["id"], k))
    cleaned = [clean_completion(stem, c) for (stem, _), c in zip(pairs, completions)]
    nonempty = [i for i, c in enumerate(cleaned) if c]
    scores = np.full(len(completions), np.nan)
    if nonempty:
        scores[nonempty] = score_completions([pairs[i] for i in nonempty], [completions[i] for i in nonempty], encoder)
    metrics = profile([pairs[i][1] for i in nonempty], [scores[i] for i in nonempty])
    metrics["n_completions"] = float(len(nonempty))
    metrics["n_empty"] = float(len(completions) - len(nonempty))
    rows = [
        {
            "id": i,
            "repeat": k,
            "subdim": p[1],
            "stem": p[0],
            "completion": c,
            "orientation": (None if math.isnan(s) else float(s)),
        }
        for (i, k), p, c, s in zip(ids, pairs, cleaned, scores)
    ]
    return metrics, {
        "calibration": get_scorer(encoder).calibration.to_dict(),
        "validation": validation_for(getattr(encoder, "name", None)),
        "items": rows,
    }


def _higher_is_better(name: str) -> bool:
    return not (name.startswith("unmapped") or name.startswith("opposite") or name == "n_empty")
