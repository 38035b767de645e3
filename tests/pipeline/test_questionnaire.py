"""Schema and coverage of the shipped questionnaires."""

from __future__ import annotations

import collections
import hashlib
import json

import pytest

from univar_eval.errors import UserError
from univar_eval.pipeline import questionnaire as q

PVQ_VALUES = {
    "sd_thought": "openness_to_change",
    "sd_action": "openness_to_change",
    "stimulation": "openness_to_change",
    "hedonism": "openness_to_change",
    "achievement": "self_enhancement",
    "power_dominance": "self_enhancement",
    "power_resources": "self_enhancement",
    "face": "self_enhancement",
    "security_personal": "conservation",
    "security_societal": "conservation",
    "tradition": "conservation",
    "conformity_rules": "conservation",
    "conformity_interpersonal": "conservation",
    "humility": "conservation",
    "benevolence_caring": "self_transcendence",
    "benevolence_dependability": "self_transcendence",
    "universalism_concern": "self_transcendence",
    "universalism_nature": "self_transcendence",
    "universalism_tolerance": "self_transcendence",
}


def test_pvq_english_covers_the_19_values():
    pvq = q.load("pvq", "eng")
    per_value = collections.Counter(r["value"] for r in pvq.records)
    assert set(per_value) == set(PVQ_VALUES)
    assert min(per_value.values()) >= 8
    for r in pvq.records:
        assert r["higher_order"] == PVQ_VALUES[r["value"]]
        assert r["id"].startswith(f"pvq-{r['value']}-")
        assert r["question"].strip().endswith(("?", "."))


@pytest.mark.parametrize("name", list(q.QUESTIONNAIRES))
def test_every_language_file_passes_the_schema(name):
    langs = q.available_languages(name)
    assert "eng" in langs
    eng_ids = [r["id"] for r in q.load(name, "eng").records]
    for lang in langs:
        loaded = q.load(name, lang)
        assert [r["id"] for r in loaded.records] == eng_ids, f"{name}/{lang} ids differ from English"


def test_schema_errors_are_one_line(tmp_path):
    good = {"id": "x-1", "value": "v", "higher_order": "h", "lang": "eng", "question": "Why?"}
    with pytest.raises(UserError, match=r"src:2: duplicate id 'x-1'"):
        q.validate_records([good, dict(good)], lang="eng", source="src")
    with pytest.raises(UserError, match=r"src:1: field 'question' is missing or empty"):
        q.validate_records([{**good, "question": "  "}], lang="eng", source="src")
    with pytest.raises(UserError, match="unknown language 'xxx'"):
        q.load("pvq", "xxx")
    with pytest.raises(UserError, match="unknown questionnaire"):
        q.load("nope", "eng")


def test_version_changes_with_content(tmp_path, monkeypatch):
    shipped = q.load("pvq", "eng")
    (tmp_path / "pvq").mkdir()
    copy = tmp_path / "pvq" / "eng.jsonl"
    copy.write_bytes(shipped.path.read_bytes())
    monkeypatch.setattr(q, "data_dir", lambda: tmp_path)
    same = q.load("pvq", "eng")
    assert same.path == copy and same.version == shipped.version  # same bytes, same version
    assert same.version == hashlib.sha256(copy.read_bytes()).hexdigest()[:16]
    lines = copy.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    copy.write_text(
        "\n".join([json.dumps({**first, "question": first["question"] + " Why?"}), *lines[1:]]) + "\n", encoding="utf-8"
    )
    edited = q.load("pvq", "eng")
    assert edited.records[0]["question"].endswith(" Why?")
    assert edited.version != shipped.version and len(edited.version) == 16


@pytest.mark.parametrize(
    "task,expected",
    [
        ("univar_pvq_eng", "pvq"),
        ("univar_control_zho", "control"),
        ("univar_myvalues_fra", "myvalues"),  # an external questionnaire: the same rule
        ("univar_pvq_xx", None),  # not a language
        ("univar_pvq", None),
        ("hvae_svo", None),
        (None, None),
    ],
)
def test_one_rule_for_the_questionnaire_of_a_task(task, expected):
    from univar_eval.pipeline.questionnaire import questionnaire_of_task
    from univar_eval.reports.leaderboard import _questionnaire_of
    from univar_eval.stats.identify import LabelledSet

    assert questionnaire_of_task(task) == expected
    if task:  # the leaderboard and identify show the task itself when the rule finds none
        assert _questionnaire_of(task) == (expected or task)
    assert LabelledSet.__dict__["source"].fget(type("S", (), {"questionnaire": None, "task": task})()) == (
        expected or task or "unknown"
    )
