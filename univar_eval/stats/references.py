"""Step: distances to reference models. One value distribution against every comparable bank entry of its task:
the computation behind lm-eval's ``mmd@<ref>`` metrics (at aggregation time) and behind ``univar-eval compare`` and
``gate`` (which add the reporting).

Which comparison (the rule lives in :func:`univar_eval.stats.distance.compare_sets`): paired by question id, on the
questions both sides answered (answers to other questions are left out and counted); per question when both sides
have two answers or more per question, else a shift shared across questions only (``design`` says which, ``note``
says what that cannot see). ``allow_other_questions`` switches to an explicitly unpaired comparison.

A distribution with fewer than ``min_answers`` answers is reported as ``insufficient`` rather than given a distance.
A bank entry that differs in encoder, fingerprint, questionnaire version, translation setting or embedded-text format
is refused with a one-line message; it is never compared silently.
"""

from __future__ import annotations

import math

import numpy as np

from univar_eval.errors import UserError
from univar_eval.stats import distance as distance_mod
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution, comparability_problem

#: Above this fraction of encoder-truncated texts, compare and gate warn.
TRUNCATION_WARN = 0.05


def reference_distances(
    dist: ValueDistribution,
    bank: Bank | str,
    *,
    min_answers: int = 10,
    metric: str = "mmd",
    n_permutations: int = distance_mod.DEFAULT_PERMUTATIONS,
    n_bootstrap: int = 0,
    seed: int = 0,
    against: list[str] | None = None,
    allow_other_questions: bool = False,
    alpha: float = 0.05,
    noise: bool = False,
) -> dict:
    """Distances from ``dist`` to every reference of its task in ``bank``.

    Returns ``{"status": ok|insufficient|no references, "nearest": model|None,
    "references": {model: {distance, p_value, ci_low, ci_high, upper, design, n_x, n_y, status,
    noise, warnings, ...}}}``. ``noise``: also the reference's noise floor (:func:`baseline_noise`: the distance a
    rerun of the reference would show; None where it cannot be measured), the floor a distance is read against.
    """
    bank = bank if isinstance(bank, Bank) else Bank(bank)
    task = dist.manifest.get("task")
    entries = bank.entries(task=task)
    if against:
        missing = sorted(set(against) - {e["model"] for e in entries})
        if missing:
            raise UserError(
                f"bank {bank.path} has no {task} entry for {', '.join(missing)}; "
                f"it has: {', '.join(e['model'] for e in entries) or 'none'}"
            )
        entries = [e for e in entries if e["model"] in against]
    result: dict = {
        "task": task,
        "lang": dist.manifest.get("lang"),
        "n_answers": len(dist),
        "references": {},
        "nearest": None,
        "status": "ok",
    }
    for e in entries:
        problem = comparability_problem(dist.manifest, e)
        if problem and allow_other_questions and problem.startswith("questionnaire version"):
            problem = None
        if problem:
            raise UserError(
                f"bank entry {e['model']} / {task} is not comparable with this run: {problem}; "
                "rebuild the bank entry (or the run) with the same settings"
            )
    if not entries:
        result["status"] = "no references"
        return result
    if len(dist) < min_answers:
        result["status"] = "insufficient"
        for e in entries:
            result["references"][e["model"]] = insufficient(len(dist), e["n_answers"])
        return result
    for e in entries:
        if e["n_answers"] < min_answers:
            result["references"][e["model"]] = insufficient(len(dist), e["n_answers"])
            continue
        ref = bank.load(e, with_answers=True)
        r = compare_one(
            dist,
            ref,
            metric,
            n_permutations=n_permutations,
            n_bootstrap=n_bootstrap,
            seed=seed,
            alpha=alpha,
            paired=not allow_other_questions,
        )
        if noise:
            r["noise"], r["noise_upper"] = baseline_noise(ref, metric, seed)
        r["warnings"] = truncation_warnings(dist.manifest, "run") + truncation_warnings(e, f"bank entry {e['model']}")
        result["references"][e["model"]] = r
    scored = {m: r["distance"] for m, r in result["references"].items() if r["status"] == "ok"}
    result["nearest"] = min(scored, key=lambda m: (scored[m], m)) if scored else None
    return result


def compare_one(
    x: ValueDistribution,
    y: ValueDistribution,
    metric: str,
    *,
    n_permutations: int,
    n_bootstrap: int,
    seed: int,
    alpha: float,
    paired: bool,
) -> dict:
    r = distance_mod.compare_sets(
        x.embeddings,
        y.embeddings,
        metric,
        n_permutations=n_permutations,
        n_bootstrap=n_bootstrap,
        seed=seed,
        alpha=alpha,
        paired=paired,
        **pairing_keys(x, y),
    )
    return {**r.to_dict(), "status": "ok"}


def baseline_noise(ref: ValueDistribution, metric: str, seed: int) -> tuple[float | None, float | None]:
    """The reference's noise floor (:func:`distance.within_noise`): the distance a rerun of the reference, with as
    many answers, would show against it, and that rerun's upper bound; None where it cannot be told (no question
    ids, no repeats, or for mmd 2 answers a question). The bound is the smallest sensible tolerance:
    with D below it, a rerun of the reference would typically not pass."""
    ids = next((keys for keys in (question_ids(ref), question_texts(ref)) if keys and None not in keys), None)
    if ids is None:
        return None, None
    result = distance_mod.within_noise(ref.embeddings, ids, metric, seed)
    return _finite_or_none(result.distance), _finite_or_none(result.upper)


def _finite_or_none(value) -> float | None:
    if isinstance(value, (int, float, np.floating)) and math.isfinite(float(value)):
        return float(value)
    return None


def truncation_fraction(manifest: dict) -> float | None:
    """The fraction of texts the encoder had to cut (None when the manifest does not say)."""
    counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else manifest
    n_cut, n = counts.get("n_encoder_truncated"), counts.get("n_answers") or manifest.get("n_answers")
    if not isinstance(n_cut, int) or not isinstance(n, int) or n <= 0:
        return None
    return n_cut / n


def truncation_warnings(manifest: dict, what: str) -> list[str]:
    frac = truncation_fraction(manifest)
    if frac is None or frac <= TRUNCATION_WARN:
        return []
    return [f"{what}: {frac:.0%} of the texts exceeded the encoder's maximum length (the question's middle was cut)"]


def question_ids(dist: ValueDistribution) -> list | None:
    """The question id of each answer (None where a record has none; None when none has one)."""
    ids = [
        r.get("id") if isinstance(r.get("id"), (str, int)) and not isinstance(r.get("id"), bool) else None
        for r in dist.records
    ]
    return ids if any(i is not None for i in ids) else None


def question_texts(dist: ValueDistribution) -> list | None:
    """The question text of each answer, whitespace normalised (None where a record has none)."""
    texts = [" ".join(q.split()) or None if isinstance(q := r.get("question"), str) else None for r in dist.records]
    return texts if any(t is not None for t in texts) else None


def pairing_keys(x: ValueDistribution, y: ValueDistribution) -> dict:
    """How the answers of two sets are paired: by question id when both sets carry ids they share, else by
    the question text (whitespace normalised); with neither, the sets are independent samples (the report's
    ``paired_questions`` is then 0)."""
    for key in (question_ids, question_texts):
        gx, gy = key(x), key(y)
        if gx and gy and ({g for g in gx if g is not None} & {g for g in gy if g is not None}):
            return {"groups_x": gx, "groups_y": gy}
    return {"groups_x": None, "groups_y": None}


def insufficient(n_x: int, n_y: int) -> dict:
    return {
        "distance": math.nan,
        "p_value": None,
        "ci_low": None,
        "ci_high": None,
        "n_x": n_x,
        "n_y": n_y,
        "status": "insufficient",
    }
