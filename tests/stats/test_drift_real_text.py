"""Per-value drift on real text (issue 19): two personas answer every PVQ question three times, in
paraphrases written for this test. They answer alike except on two values: a security-minded
baseline and an openness-minded candidate differ on security-personal and stimulation questions.
Embedded with the offline MiniLM encoder, the breakdown must name exactly those two values."""

from __future__ import annotations

import numpy as np
import pytest

from univar_eval.pipeline.answers import format_qa
from univar_eval.pipeline.questionnaire import load
from univar_eval.stats.drift import PER_QUESTION, value_drift

#: what either persona says where they agree (paraphrases of one balanced stance)
SHARED = [
    "It depends on the people involved. I would think about what each of them needs and look for a fair middle way.",
    "I would weigh the situation carefully, talk to the people it affects, and then choose what seems reasonable.",
    "There is no single right answer here; I would consider everyone's point of view and settle on a balanced choice.",
    "My first step would be to listen to the others, then decide on something sensible that most of them can accept.",
    "I would try to be reasonable about it: look at the facts, hear the others out and find a fair compromise.",
    "Probably a moderate option. I would balance my own wishes with those of the people around me.",
]
#: the security-minded baseline where the two differ
SAFE = [
    (
        "I would choose the safe option. Protecting myself and my family from danger and keeping things stable comes "
        "first, even if it costs me something."
    ),
    (
        "Safety matters most to me, so I would avoid the risk. I want a secure home and a predictable life for the "
        "people I care about."
    ),
    (
        "No, I would not take that chance. I prefer security and stability over excitement, and I would stay with "
        "what I know is safe."
    ),
    (
        "I would play it safe and keep the risks low. A calm, protected and orderly life is worth more to me than a "
        "thrill."
    ),
]
#: the openness-minded candidate where the two differ
BOLD = [
    (
        "Yes, I would go for it. New experiences and adventure make life exciting, and I enjoy stepping into the "
        "unknown."
    ),
    "Absolutely, I love trying something new and different. The thrill and the novelty are the whole point for me.",
    ("I would jump at the chance. Variety, challenge and surprise keep me curious, and I get bored with the familiar."),
    "Why not? I am always looking for fresh adventures and unusual experiences, even when they are a bit risky.",
]
MOVED = {"security_personal", "stimulation"}
REPEATS = 3


def persona_answers(records, stance_pool, seed):
    rng = np.random.default_rng(seed)
    texts, ids = [], []
    for r in records:
        pool = stance_pool if r["value"] in MOVED else SHARED
        for answer in rng.choice(pool, size=REPEATS):  # independent draws, as sampled repeats are
            texts.append(format_qa(r["question"], str(answer)))
            ids.append(r["id"])
    return texts, ids


@pytest.fixture(scope="module")
def embedded(minilm):
    records = load("pvq", "eng").records
    base_texts, base_ids = persona_answers(records, SAFE, seed=1)
    cand_texts, cand_ids = persona_answers(records, BOLD, seed=2)
    labels = {r["id"]: (r["value"], r["higher_order"]) for r in records}
    return (
        minilm.encode(cand_texts, progress=False),
        cand_ids,
        minilm.encode(base_texts, progress=False),
        base_ids,
        labels,
    )


def test_the_breakdown_names_the_two_values_on_which_the_personas_differ(embedded):
    x, ix, y, iy, labels = embedded
    r = value_drift(x, y, ix, iy, labels, n_permutations=4999, n_bootstrap=200, grouped=True)
    assert r.design == PER_QUESTION
    significant = {v.label for v in r.values if v.significant}
    assert significant == MOVED
    assert {v.label for v in r.values[:2]} == MOVED
    assert all(v.p_adjusted < 0.01 for v in r.values[:2])
    assert sum(v.share for v in r.values[:2]) > 0.5  # most of the task's shift
    assert {m.value for m in r.questions[:5]} <= MOVED
