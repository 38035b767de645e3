"""The gate on real text embedded with the offline MiniLM encoder: a model's rerun is never failed against its own
first run, and models holding other values fail.

Four "models" answer 38 English PVQ-RR questions (two per value) from four stances (a carer, an achiever, a
traditionalist, a free spirit). Each stance supports some of Schwartz's values and rejects others; on a value it
has no view about, each answer leans one way or the other at random, as a sampled model's would. An answer is put
together from paraphrases written for the stance and for the question's value, drawn at random, so two runs of
one stance say the same things in different words. Runs differ only in their random draws (seeds fixed in
advance: run k of stance i uses seed 100 * i + k). Nothing here was tuned to make the test pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from univar_eval.cli import main
from univar_eval.pipeline.embed import build_distribution
from univar_eval.pipeline.questionnaire import load
from univar_eval.settings import resolve
from univar_eval.storage.bank import Bank
from univar_eval.storage.distribution import merge_as_repeats

#: For each value: ways of saying "this matters to me here" (+) and "it does not" (-).
VALUE_PHRASES = {
    "sd_thought": (
        ["Thinking for myself matters more than agreeing.", "I want to reach my own conclusions."],
        ["I would defer to those who know better.", "My own opinion is not worth the friction."],
    ),
    "sd_action": (
        ["I want to choose my own path here.", "Deciding for myself is worth the risk."],
        ["I would rather follow the plan others have set.", "I do not need to make every choice myself."],
    ),
    "stimulation": (
        ["Something new and exciting is worth trying.", "I would go for the adventure."],
        ["I prefer the calm and familiar option.", "Excitement is not worth the disruption."],
    ),
    "hedonism": (
        ["Enjoying life is a good enough reason.", "I would pick what gives me pleasure."],
        ["Pleasure can wait; there are more important things.", "I would not indulge myself here."],
    ),
    "achievement": (
        ["Showing what I can accomplish matters to me.", "I would aim to succeed and be recognised."],
        ["Getting ahead is not what drives me.", "Success and recognition matter little to me."],
    ),
    "power_dominance": (
        ["I would want to be the one in charge.", "Having a say over others is useful."],
        ["I have no wish to control other people.", "Telling others what to do is not for me."],
    ),
    "power_resources": (
        ["Money and what it brings are worth pursuing.", "I would take the chance to gain wealth."],
        ["I do not care much about the money here.", "Wealth is not worth bending for."],
    ),
    "face": (
        ["Protecting my reputation comes first.", "I would not want to lose face in front of people."],
        ["What others think of me matters little.", "I can live with some embarrassment."],
    ),
    "security_personal": (
        ["I would choose what keeps me and mine safe.", "Safety is the priority for me."],
        ["A little risk to myself is acceptable.", "I would not let fear for my safety decide."],
    ),
    "security_societal": (
        ["A stable and orderly society must be protected.", "Public order comes before wishes."],
        ["Order should not override people's freedom.", "I distrust putting stability above all."],
    ),
    "tradition": (
        ["The customs handed down to us deserve respect.", "I would keep to our traditions."],
        ["Old customs should not bind us today.", "I would break with tradition when it no longer fits."],
    ),
    "conformity_rules": (
        ["Rules are there to be followed.", "I would obey the rule even if it is inconvenient."],
        ["Rules can be bent when they make no sense.", "I would not follow a rule blindly."],
    ),
    "conformity_interpersonal": (
        ["I would avoid upsetting the people around me.", "I would not want to annoy anyone."],
        ["I will not tiptoe around people's feelings.", "Sometimes you have to annoy people."],
    ),
    "humility": (
        ["I am one person among many, nothing special.", "Modesty suits me better than attention."],
        ["I deserve to be noticed for what I do.", "I see no reason to play myself down."],
    ),
    "benevolence_caring": (
        ["The wellbeing of the people close to me comes first.", "I would look after my own."],
        ["My own needs come before helping them.", "They can look after themselves."],
    ),
    "benevolence_dependability": (
        ["People must be able to rely on me.", "I would keep my word to them."],
        ["I cannot be bound by every promise.", "Being reliable is not my main concern."],
    ),
    "universalism_concern": (
        ["Everyone deserves fair treatment, even strangers.", "Justice for all is what matters."],
        ["I cannot take on the problems of the whole world.", "Fairness to strangers is not my business."],
    ),
    "universalism_nature": (
        ["Protecting nature is worth the cost.", "I would choose what is better for the planet."],
        ["The environment is not my first concern here.", "Convenience matters more to me."],
    ),
    "universalism_tolerance": (
        ["I would listen to people who differ from me.", "Different views deserve a hearing."],
        ["I have little patience for views so unlike mine.", "Some differences are not worth accepting."],
    ),
}

#: Stance: (openers, closers, values it supports, values it rejects); any other value: no fixed view.
STANCES = {
    "carer": (
        ["Thinking of the others involved,", "With everyone's wellbeing in mind,", "Caring about the people affected,"],
        [
            "Kindness matters most to me.",
            "That is how I would want to be treated.",
            "Looking after people is what counts.",
        ],
        {
            "benevolence_caring",
            "benevolence_dependability",
            "universalism_concern",
            "universalism_nature",
            "universalism_tolerance",
            "humility",
            "conformity_interpersonal",
        },
        {"power_dominance", "power_resources", "achievement", "face", "hedonism"},
    ),
    "achiever": (
        ["Looking at what gets me ahead,", "Thinking about my own success,", "Weighing what wins me the most,"],
        ["Results are what count in the end.", "I play to win.", "Ambition has always driven me."],
        {"achievement", "power_dominance", "power_resources", "face", "hedonism", "sd_action"},
        {
            "humility",
            "universalism_concern",
            "universalism_nature",
            "benevolence_caring",
            "conformity_interpersonal",
            "tradition",
        },
    ),
    "traditionalist": (
        ["As I was brought up to do,", "Following the proper way,", "Respecting how things have always been done,"],
        ["That is what a dutiful person does.", "Stability is worth more than novelty.", "Our elders taught us well."],
        {
            "tradition",
            "conformity_rules",
            "conformity_interpersonal",
            "security_personal",
            "security_societal",
            "humility",
            "benevolence_dependability",
        },
        {"stimulation", "sd_thought", "sd_action", "hedonism", "universalism_tolerance"},
    ),
    "free_spirit": (
        ["Going with my own judgement,", "Thinking independently,", "Following my curiosity,"],
        [
            "Life is too short to do otherwise.",
            "I would rather be free than comfortable.",
            "Nobody else should decide this for me.",
        ],
        {"sd_thought", "sd_action", "stimulation", "hedonism", "universalism_tolerance"},
        {
            "tradition",
            "conformity_rules",
            "conformity_interpersonal",
            "security_societal",
            "security_personal",
            "face",
            "power_dominance",
        },
    ),
}


def questions() -> list[dict]:
    seen: dict[str, int] = {}
    out = []
    for r in load("pvq", "eng").records:
        if seen.get(r["value"], 0) < 2:
            seen[r["value"]] = seen.get(r["value"], 0) + 1
            out.append(r)
    return out


def answer_run(stance: str, qs: list[dict], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    openers, closers, supports, rejects = STANCES[stance]
    records = []
    for q in qs:
        pro, con = VALUE_PHRASES[q["value"]]
        side = pro if q["value"] in supports else con if q["value"] in rejects else (pro if rng.random() < 0.5 else con)
        opener, phrase, closer = rng.choice(openers), str(rng.choice(side)), rng.choice(closers)
        text = f"{opener} {phrase[0].lower()}{phrase[1:]} {closer}"
        records.append({"id": q["id"], "value": q["value"], "lang": "eng", "question": q["question"], "answer": text})
    return records


def embedded_run(stance: str, qs: list[dict], settings, seed: int):
    """Run ``seed`` of a stance (seeds are per stance: 100 x its index + ``seed``), embedded like an lm-eval run."""
    dist, _ = build_distribution(
        answer_run(stance, qs, seed=100 * list(STANCES).index(stance) + seed),
        task="univar_pvq_eng",
        questionnaire="pvq",
        lang="eng",
        settings=settings,
        model=stance,
    )
    return dist


@pytest.fixture(scope="module")
def runs(minilm, tmp_path_factory):
    """Eight runs per stance (seeds 0-7)."""
    qs = questions()
    settings = resolve({"encoder": "minilm", "device": "cpu"})
    return {(stance, k): embedded_run(stance, qs, settings, k) for stance in STANCES for k in range(8)}


def save_run(dist, folder):
    dist.save(folder / "univar_2026-11-29T00-00-00" / "univar_pvq_eng")
    return str(folder)


def test_a_rerun_passes_against_its_first_run_and_other_stances_fail(runs, tmp_path, capsys):
    """The gate's default settings (no --max-distance: a difference test), one answer per question per run."""
    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many([(runs[s, 0], s, "run 0") for s in STANCES])
    verdicts, lines = {}, []
    for cand in STANCES:
        folder = save_run(runs[cand, 1], tmp_path / f"cand-{cand}")
        for base in STANCES:
            js = tmp_path / f"{cand}-{base}.json"
            code = main(["gate", folder, "--bank", str(bank.path), "--against", base, "--json", str(js)])
            c = json.loads(js.read_text())["checks"][0]
            verdicts[cand, base] = code
            lines.append(
                f"rerun of {cand} vs {base}: exit {code}, {c['design']}, mmd {c['distance']:.4f}, p {c['p_value']:.4f}"
            )
    capsys.readouterr()
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for (cand, base), code in verdicts.items():
        assert code == (0 if cand == base else 1), lines


def merged(runs, stance, ks):
    return merge_as_repeats([runs[stance, k] for k in ks], [f"run {k}" for k in ks])


def test_with_a_tolerance_from_the_baseline_noise(runs, tmp_path, capsys):
    """Baseline: runs 0-3 of each stance merged as repeats (4 answers a question: its noise floor is measurable);
    candidate: runs 4-7 merged alike (a rerun with as many answers). D is set, as the README says, to the noise
    bound (the upper bound a rerun of the baseline would show). A rerun passes or is inconclusive (never fails);
    other stances fail."""
    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many([(merged(runs, s, range(4)), s, "runs 0-3") for s in STANCES])
    outcomes, lines = {}, []
    for cand in STANCES:
        folder = save_run(merged(runs, cand, range(4, 8)), tmp_path / f"cand-{cand}")
        for base in STANCES:
            js = tmp_path / f"{cand}-{base}.json"
            main(["gate", folder, "--bank", str(bank.path), "--against", base, "--json", str(js)])
            noise = json.loads(js.read_text())["checks"][0]["noise_upper"]
            assert noise is not None and noise > 0
            tolerance = noise
            code = main(
                [
                    "gate",
                    folder,
                    "--bank",
                    str(bank.path),
                    "--against",
                    base,
                    "--max-distance",
                    f"{tolerance:.4f}",
                    "--json",
                    str(js),
                ]
            )
            c = json.loads(js.read_text())["checks"][0]
            outcomes[cand, base] = (code, c["outcome"])
            lines.append(
                f"runs 4-7 of {cand} vs {base} (D = noise bound {noise:.4f}): {c['outcome']}, "
                f"mmd {c['distance']:.4f}, bound {c['upper']:.4f}, p {c['p_value']:.4f}"
            )
    capsys.readouterr()
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for (cand, base), (code, outcome) in outcomes.items():
        if cand == base:
            assert outcome in ("pass", "inconclusive"), lines
        else:
            assert (code, outcome) == (1, "fail"), lines


def rerun_pair(stance: str, qs: list[dict], settings, seed: int):
    """A rerun with 2 answers a question: runs ``seed`` and ``seed + 1`` of the stance merged."""
    return merge_as_repeats([embedded_run(stance, qs, settings, seed + j) for j in range(2)], ["a", "b"])


@pytest.mark.parametrize("k", [3, 6])
def test_with_a_tolerance_from_calibrate(runs, minilm, tmp_path, capsys, k):
    """The README's recipe: D proposed by ``calibrate`` from k reruns of the baseline. Baseline: runs 0-1 of a
    stance merged as repeats (2 answers a question: 38 questions with one answer could never pass); calibration
    reruns and 4 held-out reruns (never seen by calibrate): further runs merged in pairs alike. At the proposed D
    held-out reruns pass (calibrate's promise: at least 14 of 16). What it does not promise, printed: how other
    stances fare at that D (few reruns make the proposal wide, see docs/statistics.md, "Real text")."""
    qs = questions()
    settings = resolve({"encoder": "minilm", "device": "cpu"})
    bank = Bank(tmp_path / "bank", create=True)
    bank.add_many([(merged(runs, s, range(2)), s, "runs 0-1") for s in STANCES])
    lines, held_out_passes, other_passes = [], 0, 0
    for stance in STANCES:
        reruns = [
            save_run(rerun_pair(stance, qs, settings, 20 + 2 * c), tmp_path / f"cal-{stance}-{c}") for c in range(k)
        ]
        js = tmp_path / f"cal-{stance}.json"
        assert main(["calibrate", *reruns, "--bank", str(bank.path), "--against", stance, "--json", str(js)]) == 0
        cal = json.loads(js.read_text())
        d = cal["max_distance"]
        assert d is not None and d > 0
        assert ("only 3 reruns" in cal["note"]) if k < 6 else cal["note"] is None
        passes = 0
        for h in range(4):
            folder = save_run(rerun_pair(stance, qs, settings, 60 + 2 * h), tmp_path / f"held-{stance}-{h}")
            code = main(["gate", folder, "--bank", str(bank.path), "--against", stance, "--max-distance", f"{d:.4f}"])
            passes += code == 0
        held_out_passes += passes
        others = []
        for other in STANCES:
            if other == stance:
                continue
            folder = save_run(merged(runs, other, (2, 3)), tmp_path / f"other-{other}-{stance}")
            js = tmp_path / f"other-{other}-{stance}.json"
            main(["gate", folder, "--bank", str(bank.path), "--against", stance, "--max-distance", f"{d:.4f}"]
                 + ["--json", str(js)])  # fmt: skip
            c = json.loads(js.read_text())["checks"][0]
            others.append(f"{other} {c['outcome']} (d_S {c['distance']:.3f})")
            other_passes += c["outcome"] == "pass"
        lines.append(
            f"{k} reruns, {stance}: D {d:.4f}; held-out reruns passing {passes}/4; others: " + ", ".join(others)
        )
    capsys.readouterr()
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert held_out_passes >= 14, lines
    if k >= 6:  # 6 reruns: no other stance passes at the proposed D (3 reruns: 6 of 12 did; calibrate says so)
        assert other_passes == 0, lines
