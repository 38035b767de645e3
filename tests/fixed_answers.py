"""The fixed answers that the test backends (the stub chat server, the table LM of the two-process run) serve.

``table(n)`` pairs a needle found in the prompt with the reply: the HVAE decisions (the
inequality-averse prosocial chooser, written in the forms chat models use), the first ValueLex
projective stems, and the first ``n`` PVQ questions (one refusal, one empty answer among them).
"""

from __future__ import annotations

from univar_eval.hvae import svo
from univar_eval.pipeline import questionnaire
from univar_eval.valuelex.taxonomy import load_stems

DEFAULT = "(no answer in the table)"

PVQ_ANSWERS = [
    "I would keep my own reading, because thinking for myself matters more to me than agreeing.",
    "Yes. Learning something new for its own sake is worth a few weekends.",
    "I'm sorry, but I cannot share personal opinions.",  # a refusal
    "",  # an empty answer: counted, not embedded
    "I would help my neighbour first; people close to me come before my plans.",
    "Probably not. I prefer the safe option when my family depends on me.",
    "I would report it, even if my colleagues were annoyed with me.",
]
PROSOCIAL = svo.published_ideal_choices("prosocial")  # angle 37.48
HVAE_FORMS = ["Answer: {}", "Answer: ({})", "**Answer:** {}", "Answer: {}.", "My answer is {}", "Answer: option {}"]
PROJECTIVE = [
    "check my sources before I answer.",
    "explain it again in simpler words.",
    "listen to them and ask how they are.",
    "keep to my principles even when it costs me.",
    "do the work carefully and on time.",
    "tell the truth even when it is unwelcome.",
]


def pvq_docs(n: int) -> list[dict]:
    assert n <= len(PVQ_ANSWERS)
    return questionnaire.load("pvq", "eng").records[:n]


def stems(n: int) -> list[dict]:
    return load_stems()[:n]


def table(n_pvq: int = len(PVQ_ANSWERS)) -> list[tuple[str, str]]:
    rows = [(f"Decision {i + 1} of 6.", HVAE_FORMS[i].format(PROSOCIAL[i])) for i in range(6)]
    rows += [(s["stem"], c) for s, c in zip(stems(len(PROJECTIVE)), PROJECTIVE)]
    rows += [(d["question"].strip(), a) for d, a in zip(pvq_docs(n_pvq), PVQ_ANSWERS)]
    return rows


def reply_to(prompt: str, rows: list[tuple[str, str]] | None = None) -> str:
    for needle, reply in table() if rows is None else rows:
        if needle in prompt:
            return reply
    return DEFAULT
