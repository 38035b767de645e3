"""The questionnaires in UniVaR's 25 languages: same ids as English, the right script, no English left over,
and task files generated for every language that has data."""

from __future__ import annotations

import importlib.util
import re
import unicodedata

import pytest

from univar_eval.pipeline import questionnaire as q
from univar_eval.resources import tasks_dir

# The script each language is written in (Unicode character-name prefix of its letters).
SCRIPTS = {
    "zho": ("CJK UNIFIED",),
    "jpn": ("CJK UNIFIED", "HIRAGANA", "KATAKANA"),
    "kor": ("HANGUL",),
    "tha": ("THAI",),
    "rus": ("CYRILLIC",),
    "bul": ("CYRILLIC",),
    "arb": ("ARABIC",),
    "pes": ("ARABIC",),
    "hin": ("DEVANAGARI",),
}
LATIN = [lang for lang in q.LANGUAGES if lang not in SCRIPTS]
# Names of programming languages, code and identifiers that an item keeps verbatim from its English source
# (the control's coding requests); they are not counted against a non-Latin script.
CODE_TOKENS = re.compile(
    r"(?<![0-9A-Za-z_\u00C0-\u024F])(Python|SQL|JavaScript|Java|C|len\(\)|for|data\.txt|orders|customers|n|DNA)"
    r"(?![0-9A-Za-z_\u00C0-\u024F]|\.[A-Za-z])"
)
ENGLISH_WORDS = re.compile(r"\b(the|would|your|you|what|should|which|with|about|there)\b", re.IGNORECASE)

CASES = [(name, lang) for name in q.QUESTIONNAIRES for lang in q.available_languages(name) if lang != "eng"]


def letters_by_script(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            key = next(
                (
                    p
                    for p in (
                        "CJK UNIFIED",
                        "HIRAGANA",
                        "KATAKANA",
                        "HANGUL",
                        "THAI",
                        "CYRILLIC",
                        "ARABIC",
                        "DEVANAGARI",
                        "LATIN",
                    )
                    if name.startswith(p)
                ),
                "OTHER",
            )
            counts[key] = counts.get(key, 0) + 1
    return counts


def letters_by_script_without_kept_code(source: str, translation: str) -> dict[str, int]:
    """Letter counts of a translation, leaving out code names that its English source has too."""
    kept = {m.group(0) for m in CODE_TOKENS.finditer(source)}
    return letters_by_script(CODE_TOKENS.sub(lambda m: "" if m.group(0) in kept else m.group(0), translation))


def test_code_names_from_the_english_item_are_not_counted_but_others_are():
    assert letters_by_script_without_kept_code("Write a Python function.", "编写一个Python函数。") == {"CJK UNIFIED": 6}
    # a name the English item does not have still counts against the script
    assert letters_by_script_without_kept_code("How does photosynthesis work?", "Python光合作用") == {
        "LATIN": 6,
        "CJK UNIFIED": 4,
    }
    # "C" inside a word (¿Cómo ...) is a letter, not the C language
    assert letters_by_script_without_kept_code("Write a C function.", "¿Cómo?")["LATIN"] == 4


@pytest.mark.parametrize("name,lang", CASES)
def test_translation_has_english_ids_right_script_and_no_english(name, lang):
    eng = q.load(name, "eng")
    other = q.load(name, lang)
    assert [r["id"] for r in other.records] == [r["id"] for r in eng.records]
    for src, tr in zip(eng.records, other.records):
        assert (tr["value"], tr["higher_order"]) == (src["value"], src["higher_order"])
        assert tr["question"] != src["question"], f"{tr['id']} was not translated"
        counts = letters_by_script_without_kept_code(src["question"], tr["question"])
        total = sum(counts.values())
        if lang in SCRIPTS:
            native = sum(counts.get(p, 0) for p in SCRIPTS[lang])
            assert native / total >= 0.9, f"{lang} {tr['id']}: only {native}/{total} letters in {SCRIPTS[lang]}"
        else:
            assert counts.get("LATIN", 0) / total >= 0.95, f"{lang} {tr['id']}: not in Latin script"
        leftover = ENGLISH_WORDS.findall(tr["question"])
        assert not leftover, f"{lang} {tr['id']}: English words left: {leftover}"
    if lang == "jpn":  # Japanese, not Chinese: kana must appear
        kana = sum(letters_by_script(r["question"]).get("HIRAGANA", 0) for r in other.records)
        assert kana > len(other.records) * 5


def test_task_files_are_generated_for_every_language_with_data():
    path = tasks_dir() / "univar" / "_generate_configs.py"
    if not path.exists():
        pytest.skip("generator is not shipped in the installed package")
    spec = importlib.util.spec_from_file_location("univar_generate_configs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.expected_files()
    for file, text in expected.items():
        assert file.exists() and file.read_text(encoding="utf-8") == text, (
            f"{file.name} is out of date: run python tasks/univar/_generate_configs.py"
        )
    for lang in q.available_languages("pvq"):
        assert (tasks_dir() / "univar" / "pvq" / f"univar_pvq_{lang}.yaml") in expected


def test_every_language_has_a_group_over_every_set_it_has():
    import yaml

    for lang in q.LANGUAGES:
        sets = [name for name in q.QUESTIONNAIRES if lang in q.available_languages(name)]
        group = yaml.safe_load((tasks_dir() / "univar" / "by_language" / f"_univar_{lang}.yaml").read_text())
        assert group["group"] == f"univar_{lang}"
        assert group["task"] == [f"univar_{name}_{lang}" for name in sets]
        assert "univar_pvq_" + lang in group["task"]
    umbrella = yaml.safe_load((tasks_dir() / "univar" / "_univar.yaml").read_text())
    assert "univar_control" not in umbrella["task"]
