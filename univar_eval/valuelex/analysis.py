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
    metrics: dict = dict(lexicon_metrics(all_maps))
    # an answer is unscoreable when none of its words maps to a value (no words, or only unmapped ones)
    n_without = sum(1 for r in rows if not any(w["pole"] != 0 for w in r["words"]))
    positive = sum(1 for m in all_maps if m.pole == 1)
    why = ""
    if unscoreable(n_without, len(rows)):
        why = (
            f"{n_without} of {len(rows)} answers named no word that maps to a value (single value words were asked for)"
        )
    elif not positive:
        why = f"none of the {len(all_maps)} value words mapped to a subdimension, so the shares are undefined"
    metrics["why_unscored"] = why
    return metrics, {
        "calibration": mapper.calibration,
        "n_unscored": n_without,
        "n_responses": len(rows),
        "items": rows,
    }


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
    metrics: dict[str, float | str] = dict(profile([pairs[i][1] for i in nonempty], [scores[i] for i in nonempty]))
    metrics["n_completions"] = float(len(nonempty))
    metrics["n_empty"] = float(len(completions) - len(nonempty))
    n_empty = len(completions) - len(nonempty)
    metrics["why_unscored"] = (
        f"{n_empty} of {len(completions)} completions were empty after cleaning (nothing to score)"
        if unscoreable(n_empty, len(completions))
        else ""
    )
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
        "n_unscored": n_empty,
        "n_responses": len(completions),
        "calibration": get_scorer(encoder).calibration.to_dict(),
        "validation": validation_for(getattr(encoder, "name", None)),
        "items": rows,
    }


#: More than this share of unscoreable answers is warned about (one line per task) and stated in ``why_unscored``.
UNSCORED_WARNING = 0.5


def unscoreable(n_unscored: int, n: int) -> bool:
    """More than half of the answers (or all of none) could not be scored."""
    return n == 0 or n_unscored / n > UNSCORED_WARNING


def higher_is_better(name: str) -> bool | None:
    if name == "why_unscored":
        return None
    return not (name.startswith("unmapped") or name.startswith("opposite") or name == "n_empty")
