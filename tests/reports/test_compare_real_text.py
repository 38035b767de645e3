"""On real text, embedded with the offline MiniLM encoder, the distance does what it claims:
two halves of one model's answers are judged the same, two models with different values are judged different.

The three "models" answer the English PVQ-RR questions from three value stances (care for others,
personal success, tradition and order); each answer is put together from sentences written for
that stance, so answers vary in wording the way one model's answers do.
"""

from __future__ import annotations

import numpy as np
import pytest

from univar_eval.pipeline.answers import format_qa
from univar_eval.pipeline.questionnaire import load
from univar_eval.stats import distance as D

STANCES = {
    "carer": (
        [
            "I would think first about the people affected.",
            "My first concern would be for the others involved.",
            "I would ask how everyone involved is feeling.",
            "I would put the wellbeing of others ahead of my own.",
        ],
        [
            "Kindness costs little and helps a lot.",
            "Looking after each other is what makes a community.",
            "I could not enjoy anything that left someone else hurting.",
            "Being generous is more important than winning.",
            "Their needs matter as much as mine.",
            "I would rather lose out than treat someone unfairly.",
        ],
        [
            "So I would choose the option that helps them most.",
            "That is how I would want to be treated too.",
            "Caring for others is the heart of it for me.",
            "I would share whatever I can.",
        ],
    ),
    "achiever": (
        [
            "I would go for whatever puts me ahead.",
            "My priority would be my own success.",
            "I would look at what gives me the best result.",
            "I would take the chance to prove what I can do.",
        ],
        [
            "Winning is what counts in the end.",
            "Ambition and results are what earn respect.",
            "If I do not take the opportunity, someone else will.",
            "Being the best at what I do matters a great deal to me.",
            "Status and influence open every door.",
            "I measure myself by what I achieve.",
        ],
        [
            "So I would take the option that maximises my gain.",
            "Success comes to those who push for it.",
            "I want to be recognised as the one who delivered.",
            "Getting ahead is worth the effort.",
        ],
    ),
    "traditionalist": (
        [
            "I would do what my family and elders expect.",
            "I would follow the customs I was raised with.",
            "I would respect the rules that have always guided us.",
            "I would stay with the established way of doing things.",
        ],
        [
            "Traditions keep society stable and safe.",
            "Order and duty matter more than personal wishes.",
            "The old ways exist for good reasons.",
            "Respecting authority keeps things from falling apart.",
            "Faith and custom give my life its direction.",
            "It is not my place to break with what is expected.",
        ],
        [
            "So I would keep to the proper and familiar path.",
            "Stability is worth more than novelty.",
            "That is what a dutiful person does.",
            "I would not risk upsetting the established order.",
        ],
    ),
}


def answers_of(stance: str, questions: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    openers, reasons, closers = STANCES[stance]
    return [f"{rng.choice(openers)} {rng.choice(reasons)} {rng.choice(closers)}" for _ in questions]


@pytest.fixture(scope="module")
def embedded(minilm):
    questions = [r["question"] for r in load("pvq", "eng").records]
    out = {}
    for k, stance in enumerate(STANCES):
        texts = [format_qa(q, a) for q, a in zip(questions, answers_of(stance, questions, seed=k))]
        out[stance] = minilm.encode(texts, progress=False)
    return out


@pytest.mark.parametrize("metric", ["mmd", "centroid"])
def test_halves_of_one_model_are_the_same_and_different_models_differ(embedded, metric, figures):
    rng = np.random.default_rng(0)
    report = []
    for stance, emb in embedded.items():
        idx = rng.permutation(len(emb))
        half_a, half_b = emb[idx[: len(emb) // 2]], emb[idx[len(emb) // 2 :]]
        same = D.compare_sets(half_a, half_b, metric, n_permutations=1000, n_bootstrap=0, seed=1)
        report.append(f"{metric} {stance} half vs half: d={same.distance:.4f} p={same.p_value:.3f}")
        assert same.p_value > 0.05, report[-1]
    stances = list(embedded)
    for i, a in enumerate(stances):
        for b in stances[i + 1 :]:
            # the same questions on both sides: a paired comparison (question ids given)
            ids = list(range(len(embedded[a])))
            diff = D.compare_sets(
                embedded[a], embedded[b], metric, n_permutations=1000, n_bootstrap=0, seed=1, groups_x=ids, groups_y=ids
            )
            report.append(f"{metric} {a} vs {b}: d={diff.distance:.4f} p={diff.p_value:.4f}")
            assert diff.p_value < 0.01, report[-1]
    for line in report:
        figures(line)
