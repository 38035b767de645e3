"""Until the reworked ``stats.distance.compare_sets`` lands (issue 13, distance side), tests of the verdict side
run the old one behind the agreed signature: ``alpha`` and ``paired`` accepted, and the agreed fields (``design``,
``n_questions``, ``n_left_out_x/y``, ``upper``, ``problem``, ``note``) filled in from what the old one computes.
Does nothing once ``compare_sets`` has a ``paired`` parameter."""

from __future__ import annotations

import inspect
import math
from collections import Counter

from univar_eval.stats import distance as distance_mod


class _Result:
    def __init__(self, d: dict):
        self._d = d
        self.__dict__.update(d)

    def to_dict(self) -> dict:
        return dict(self._d)


def needed() -> bool:
    return "paired" not in inspect.signature(distance_mod.compare_sets).parameters


def wrap(old):
    def compare_sets(x, y, metric="mmd", *, n_permutations=1000, n_bootstrap=200, seed=0, groups_x=None,
                     groups_y=None, alpha=0.05, paired=True, **kw):
        if not paired:
            groups_x = groups_y = None
        r = old(x, y, metric, n_permutations=n_permutations, n_bootstrap=n_bootstrap, seed=seed, groups_x=groups_x,
                groups_y=groups_y, **kw).to_dict()
        if groups_x is None or groups_y is None:
            design, n_q = "unpaired", None
        else:
            shared = set(groups_x) & set(groups_y)
            cx, cy = Counter(g for g in groups_x if g in shared), Counter(g for g in groups_y if g in shared)
            per_q = shared and min(cx.values()) >= 2 and min(cy.values()) >= 2
            design, n_q = ("per_question" if per_q else "shared_shift"), len(shared)
        bad = [k for k in ("distance", "p_value") if r.get(k) is not None and not math.isfinite(r[k])]
        r.update(design=design, n_questions=n_q, n_left_out_x=0, n_left_out_y=0, upper=r.get("ci_high"),
                 problem=f"{', '.join(bad)} not finite" if bad else None,
                 note=("one answer per question: only shifts shared across questions are testable"
                       if design == "shared_shift" else None))
        return _Result(r)

    return compare_sets
