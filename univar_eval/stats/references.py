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
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from univar_eval.errors import UserError
from univar_eval.stats import distance as distance_mod
from univar_eval.stats import equivalence, lapack
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import ValueDistribution, comparability_problem

#: Above this fraction of encoder-truncated texts, compare and gate warn.
TRUNCATION_WARN = 0.05
#: Threads comparing references at once (each with one BLAS thread).
_WORKERS = min(4, os.cpu_count() or 1)


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
        check_comparable(dist, e, allow_other_questions)
    if not entries:
        result["status"] = "no references"
        return result
    if len(dist) < min_answers:
        result["status"] = "insufficient"
        for e in entries:
            result["references"][e["model"]] = insufficient(len(dist), e["n_answers"])
        return result
    cache: dict = {}  # the run's own kernel block, computed once for every reference

    def one(e: dict) -> dict:
        if e["n_answers"] < min_answers:
            return insufficient(len(dist), e["n_answers"])
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
            cache=cache,
        )
        if noise:
            r["noise"], r["noise_upper"] = baseline_noise(ref, metric, seed)
        r["warnings"] = truncation_warnings(dist.manifest, "run") + truncation_warnings(e, f"bank entry {e['model']}")
        return r

    # the references on a few threads of one BLAS thread each: the kernels are small, threaded BLAS gains little
    # on them and stalls on a busy machine; scipy's LAPACK is loaded first so that the limit covers it too
    lapack.available()
    with threadpool_limits(1), ThreadPoolExecutor(min(_WORKERS, len(entries))) as pool:
        for e, r in zip(entries, pool.map(one, entries)):
            result["references"][e["model"]] = r
    scored = {m: r["distance"] for m, r in result["references"].items() if r["status"] == "ok"}
    result["nearest"] = min(scored, key=lambda m: (scored[m], m)) if scored else None
    return result


def check_comparable(dist: ValueDistribution, entry: dict, allow_other_questions: bool = False) -> None:
    """A one-line error when the bank ``entry`` cannot be compared with ``dist`` (another encoder, fingerprint,
    questionnaire version, translation or text format); never compared silently."""
    problem = comparability_problem(dist.manifest, entry)
    if problem and allow_other_questions and problem.startswith("questionnaire version"):
        problem = None
    if problem:
        raise UserError(
            f"bank entry {entry['model']} / {dist.manifest.get('task')} is not comparable with this run: {problem}; "
            "rebuild the bank entry (or the run) with the same settings"
        )


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
    cache: dict | None = None,
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
        cache=cache,
        **pairing_keys(x, y),
    )
    return {**r.to_dict(), "status": "ok"}


def baseline_noise(
    ref: ValueDistribution,
    metric: str,
    seed: int,
    *,
    alpha: float = distance_mod.DEFAULT_ALPHA,
    n_bootstrap: int = distance_mod.DEFAULT_BOOTSTRAP,
    quantity: str | None = None,
) -> tuple[float | None, float | None]:
    """The reference's noise floor: the distance a rerun of the reference, with as many answers, would show
    against it, and that rerun's upper bound (at ``alpha``, from ``n_bootstrap`` resamples: the gate's settings);
    None where it cannot be told (no question ids, no repeats). ``quantity="d_S"`` (the gate with mmd): the floor
    of the quantity ``--max-distance`` bounds (:func:`equivalence.noise_floor`); else
    :func:`distance.within_noise`. The bound is the smallest sensible tolerance: with D below it, a rerun of the
    reference would typically not pass (``univar-eval calibrate`` chooses D for a whole gate)."""
    ids = next((keys for keys in (question_ids(ref), question_texts(ref)) if keys and None not in keys), None)
    if ids is None:
        return None, None
    if quantity == equivalence.D_S:
        floor = equivalence.noise_floor(ref.embeddings, ids, alpha=alpha, n_bootstrap=n_bootstrap, seed=seed)
        return (None, None) if floor is None else (_finite_or_none(floor.distance), _finite_or_none(floor.upper))
    result = distance_mod.within_noise(ref.embeddings, ids, metric, seed, alpha=alpha, n_bootstrap=n_bootstrap)
    return _finite_or_none(result.distance), _finite_or_none(result.upper)


def gate_comparison(
    dist: ValueDistribution,
    ref: ValueDistribution,
    metric: str,
    *,
    alpha: float,
    n_bootstrap: int,
    n_permutations: int,
    seed: int,
    allow_other_questions: bool = False,
) -> dict:
    """What a gate check decides on: ``{"tests": [...], design, n_x, n_y, n_questions, n_left_out_x/_y, n_copies,
    note, problem}``. Each test is one tested quantity (:class:`equivalence.Bound` as a dict: ``quantity``,
    ``statistic``, ``se``, ``df``, ``distance``, ``upper``, ``p_difference``, ``squared``, ``enough``,
    ``ceiling``). mmd, paired: d_S, and d_Q where both sides have repeats (:mod:`univar_eval.stats.equivalence`).
    Other metrics or unpaired: the design's distance from :func:`distance.compare_sets`, its bootstrap bound, and a
    normal approximation (standard error from the bootstrap interval) for the test of excess."""
    keys = {"groups_x": None, "groups_y": None} if allow_other_questions else pairing_keys(dist, ref)
    out = {"status": "ok", "n_x": len(dist), "n_y": len(ref), "n_copies": 0, "note": None, "problem": None}
    if metric == "mmd" and keys["groups_x"] is not None:
        ev = equivalence.evaluate(
            dist.embeddings,
            ref.embeddings,
            keys["groups_x"],
            keys["groups_y"],
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            n_permutations=n_permutations,
            seed=seed,
        )
        tests = []
        for b in ev.bounds:
            t = b.to_dict()
            t.update(squared=True, enough=b.enough)
            t["details"] = {k: v for k, v in t["details"].items() if k != "per_question"}
            tests.append(t)
        per_question = any(b.quantity == equivalence.D_Q for b in ev.bounds)
        out.update(
            tests=tests,
            design="per_question" if per_question else "shared_shift",
            n_questions=ev.n_questions,
            n_left_out_x=ev.n_left_out_x,
            n_left_out_y=ev.n_left_out_y,
            n_copies=ev.n_copies,
            copies_in_excess=ev.copies_in_excess,
            identical=ev.identical,
            problem=ev.problem,
            note=None if per_question else distance_mod.SHARED_SHIFT_NOTE,
        )
        return out
    r = distance_mod.compare_sets(
        dist.embeddings,
        ref.embeddings,
        metric,
        n_permutations=n_permutations,
        n_bootstrap=n_bootstrap,
        seed=seed,
        alpha=alpha,
        paired=not allow_other_questions,
        **keys,
    )
    se = math.nan
    if r.ci_low is not None and r.ci_high is not None and math.isfinite(r.ci_high - r.ci_low):
        se = (r.ci_high - r.ci_low) / (2 * 1.959964)
    ceiling = {"mmd": math.sqrt(equivalence.MMD2_CEILING), "centroid": 2.0, "frechet": 4.0}[metric]
    test = {
        "quantity": metric if r.design != "unpaired" else f"{metric} (unpaired)",
        "statistic": r.distance,
        "se": se,
        "df": None,
        "distance": r.distance,
        "upper": None if r.upper is None else min(r.upper, ceiling),
        "p_difference": r.p_value,
        "n_questions": r.n_questions,
        "squared": False,
        "enough": True,
        "ceiling": ceiling,
    }
    out.update(
        tests=[test],
        design=r.design,
        n_questions=r.n_questions,
        n_left_out_x=r.n_left_out_x,
        n_left_out_y=r.n_left_out_y,
        problem=r.problem,
        note=r.note,
    )
    return out


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
