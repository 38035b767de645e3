"""Step: ValueLex lexicon. Pull value words out of free-form answers (:func:`parse_value_words`),
normalise them, and map each to a subdimension and pole (:func:`map_word`): a lexicon hit first, then
the nearest subdimension by embedding similarity above a calibrated threshold, else ``unmapped``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from univar_eval.valuelex.taxonomy import (
    Taxonomy,
    _cached,
    _encode,
    _ratio,
    load_taxonomy,
)

# -- parsing lexicon answers -----------------------------------------------------------------------
_MARKUP = re.compile(r"(\*\*|__|\*|`|~~)")
_HEADING = re.compile(r"^\s*#+\s*")
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022\u00b7\u25cf\u2013\u2014>]+|\(?\d{1,2}[.):]|\(?[a-zA-Z][.)](?=\s))\s*")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_HEAD_SEP = re.compile(r"\s+[-\u2013\u2014]+\s+|:\s*|\s+[\u2013\u2014]\s*")
_SPLIT = re.compile(r"[,;|/\u2022]|(?<=[a-z])\.(?=\s|$)|[!?]|\s+(?:and|or|&)\s+", re.IGNORECASE)
# Lead-ins of sentences that introduce values ("As an AI, I value ...", "My core values are ...").
_LEAD_IN = re.compile(
    r"^.*?\b(?:i\s+(?:(?:would|always|also|really|most|strongly|deeply|truly)\s+)*"
    r"(?:value|prioriti[sz]e|hold|cherish|embrace|uphold|strive\s+for|aim\s+for|believe\s+in|care\s+about|"
    r"stand\s+for|live\s+by|act\s+on|choose|pick|would\s+choose)|"
    r"(?:values?|principles?|qualities|words?|ideals)\s+(?:that\s+)?(?:i\s+\w+(?:\s+by|\s+on)?\s+)?"
    r"(?:are|is|include|would\s+be)|(?:are|is|include)\s*:)\s*",
    re.IGNORECASE,
)
_LEADING_FILLER = re.compile(
    r"^(?:and|or|also|more|especially|above\s+all|being|be|to\s+be|a|an|the|my|true|real|deep|strong|core)\s+",
    re.IGNORECASE,
)
_TRAILING_FILLER = re.compile(
    r"\s+(?:above\s+all(?:\s+else)?|most\s+of\s+all|first|too|as\s+well|most)$", re.IGNORECASE
)
#: Words that mark a piece as prose rather than a value word.
_PROSE = frozenset(
    """i i'm im me my mine myself you your we our us it its they them their he she this that these those here there
    is are am was were be been being do does did have has had will would can could should shall may might must
    as ai assistant model language values value principles principle qualities quality words word list following
    following: answer answers question questions some many most all each every always never not no yes
    what which who why how when where because so if than then such very also just like""".split()
)
_EDGE_STOP = frozenset("of for to in on at with and or the a an by from".split())
_TOKEN = re.compile(r"^[a-z][a-z'\-]*$")
MAX_WORDS_PER_ITEM = 3


def _clean_piece(piece: str) -> str | None:
    piece = _LEAD_IN.sub("", piece.strip())
    piece = piece.strip(" \t\"'\u201c\u201d\u2018\u2019.:;!?-\u2013\u2014").lower()
    for _ in range(3):
        piece = _TRAILING_FILLER.sub("", _LEADING_FILLER.sub("", piece))
    tokens = piece.split()
    if not tokens or len(tokens) > MAX_WORDS_PER_ITEM:
        return None
    if not all(_TOKEN.match(t) for t in tokens):
        return None
    if any(t in _PROSE for t in tokens) or tokens[0] in _EDGE_STOP or tokens[-1] in _EDGE_STOP:
        return None
    return " ".join(tokens)


def _line_items(line: str) -> list[str]:
    had_mark = bool(_LIST_MARK.match(line))
    line = _LIST_MARK.sub("", line, count=1)
    line = _PAREN.sub(" ", line)
    # "Honesty - being truthful", "Honesty: I tell the truth", "Here are my values: honesty, ..."
    parts = _HEAD_SEP.split(line, maxsplit=1)
    if len(parts) == 2:
        head, tail = parts
        head_clean = _clean_piece(head)
        if head_clean and (had_mark or len(head.split()) <= MAX_WORDS_PER_ITEM):
            return [head_clean]
        line = tail if not head_clean else line
    return [w for w in (_clean_piece(p) for p in _SPLIT.split(line)) if w]


def parse_value_words(text: str | None) -> list[str]:
    """The value words of a free-form answer, lower case, in order, without repeats.

    Handles comma lists, numbered or bulleted lines, ``1. Honesty - being truthful``,
    markdown bold, trailing periods and lead-in sentences ("As an AI, I value ...");
    pieces of prose longer than three words are dropped.
    """
    if not text:
        return []
    text = _MARKUP.sub("", text)
    out: list[str] = []
    seen: set[str] = set()
    for raw_line in text.splitlines():
        line = _HEADING.sub("", raw_line).strip()
        if not line:
            continue
        for word in _line_items(line):
            key = normalise(word)
            if key not in seen:
                seen.add(key)
                out.append(word)
    return out


# -- normalisation -----------------------------------------------------------------------------------
# Light stemming: a plural -s, then derivational suffixes (longest first, at most three, keeping a root
# of >= 4 letters, 3 for a few), then a final -e/-y; so that honest/honesty, helpful/helpfulness,
# reliable/reliability, precise/precision, safe/safety, free/freedom fall together.
_SUFFIXES = sorted(
    """fulness ousness istic ibility ability ization isation ivity osity ility ness ment ical etic
    ence ance ency ancy ism ity ion ful ive ous ent ant ate acy ety dom ing ic al able ible ed""".split(),
    key=len,
    reverse=True,
)
_SHORT_ROOT_OK = frozenset({"dom", "ety"})
_MIN_ROOT = 4


def _stem_token(token: str) -> str:
    token = token.replace("\u2019", "'").strip("'")
    if token.endswith("ies") and len(token) > 4:
        token = token[:-3] + "y"
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")) and len(token) > 3:
        token = token[:-1]
    for _ in range(3):
        for suf in _SUFFIXES:
            root = len(token) - len(suf)
            if token.endswith(suf) and root >= (_MIN_ROOT - 1 if suf in _SHORT_ROOT_OK else _MIN_ROOT):
                token = token[:root]
                break
        else:
            break
    if token.endswith("i"):  # trustworthi(ness) -> trustworthy
        token = token[:-1] + "y"
    if token.endswith(("e", "y")) and len(token) > 3:
        token = token[:-1]
    return token


def normalise(word: str) -> str:
    """Lower-case, hyphen-insensitive, light-stemmed key of a word or short phrase."""
    tokens = re.sub(r"[^a-z' ]+", " ", word.lower().replace("-", " ")).split()
    return " ".join(_stem_token(t) for t in tokens)


# -- mapping words to subdimensions ------------------------------------------------------------------
UNMAPPED = "unmapped"


@dataclass(frozen=True)
class WordMapping:
    word: str
    subdim: str  # a subdimension id, or "unmapped"
    dimension: str | None
    pole: int  # +1 a value word, -1 an opposite-pole word, 0 unmapped
    method: str  # "lexicon", "embedding" or "unmapped"
    similarity: float | None = None


@functools.lru_cache(maxsize=None)
def _lexicon_index() -> dict[str, tuple[str, int]]:
    """Normalised lexicon entry -> (subdimension, pole); keys claimed by two places are dropped."""
    tax = load_taxonomy()
    index: dict[str, set[tuple[str, int]]] = {}
    for s in tax.subdimensions.values():
        for words, pole in ((s.lexicon, 1), (s.opposite, -1)):
            for w in words:
                for key in {w.lower(), normalise(w)}:
                    index.setdefault(key, set()).add((s.id, pole))
    return {k: next(iter(v)) for k, v in index.items() if len(v) == 1}


_NEGATING_PREFIX = re.compile(r"^(?:un|dis|in|im|ir|il|mis|non-?)(?=[a-z]{4})")
_NEGATED_FORM = re.compile(r"^(?:un|dis|in|im|ir|il|mis|non)|less(?:ness)?$")
_NEGATING_PHRASE = re.compile(r"\b(?:lack|lacking|no|not|never|without)\b")


def lexicon_lookup(word: str) -> tuple[str, int] | None:
    """(subdimension, pole) of a lexicon or opposite-pole word, also in inflected forms, and of a
    prefix-negated value word ("unfriendliness" -> opposite pole of "friendliness"); else None."""
    index = _lexicon_index()
    hit = index.get(word.lower().strip()) or index.get(normalise(word))
    if hit:
        return hit
    w = word.lower().strip()
    m = _NEGATING_PREFIX.match(w)
    if m and " " not in w:
        base = index.get(w[m.end() :]) or index.get(normalise(w[m.end() :]))
        if base and base[1] == 1:
            return base[0], -1
    return None


class LexiconMapper:
    """Embedding fallback of :func:`map_word` for one encoder.

    Each subdimension is represented by the embeddings of its lexicon words, its
    opposite-pole words and its definition. A word's similarity to a subdimension
    is its largest cosine with them; the nearest subdimension wins if that cosine
    reaches the threshold; its pole follows :func:`_embedding_pole`.

    Calibration of the threshold (per encoder, on the taxonomy only): every lexicon
    word is mapped with itself left out, giving the similarities of true value
    words; the taxonomy's ``non_value_words`` (table, banana, ...) give those of
    words that are no values. The threshold is the midpoint between the 90th
    percentile of the non-value words and the 10th percentile of the left-out
    lexicon words (for ``minilm``: see tasks/valuelex/README.md).
    """

    def __init__(self, encoder):
        tax = load_taxonomy()
        entries: list[tuple[str, str, int]] = []  # (text, subdim, pole)
        for s in tax.subdimensions.values():
            entries += [(w, s.id, 1) for w in s.lexicon] + [(w, s.id, -1) for w in s.opposite]
            entries.append((f"{s.name}: {s.definition}", s.id, 1))
        self.entries = entries
        self.subdim = np.array([e[1] for e in entries])
        self.pole = np.array([e[2] for e in entries])
        self.emb = np.asarray(_encode(encoder, [e[0] for e in entries]), dtype=np.float32)
        self.encoder = encoder
        self.threshold, self.calibration = self._calibrate(tax)

    def _best(self, sims: np.ndarray) -> tuple[int, float]:
        i = int(np.argmax(sims))
        return i, float(sims[i])

    def _calibrate(self, tax: Taxonomy) -> tuple[float, dict]:
        lex = [i for i, e in enumerate(self.entries) if e[2] == 1 and ":" not in e[0]]
        sims = self.emb[lex] @ self.emb.T
        sims[np.arange(len(lex)), lex] = -np.inf  # leave the word itself out
        value_best = sims.max(axis=1)
        noise = np.asarray(_encode(self.encoder, list(tax.non_value_words)), dtype=np.float32) @ self.emb.T
        noise_best = noise.max(axis=1)
        lo, hi = float(np.percentile(noise_best, 90)), float(np.percentile(value_best, 10))
        threshold = (lo + hi) / 2
        return threshold, {"non_value_p90": lo, "lexicon_loo_p10": hi, "threshold": threshold}

    def map_many(self, words: Sequence[str]) -> list[WordMapping]:
        tax = load_taxonomy()
        out: list[WordMapping | None] = []
        todo: list[int] = []
        for k, w in enumerate(words):
            hit = lexicon_lookup(w)
            if hit:
                out.append(WordMapping(w, hit[0], tax.subdimensions[hit[0]].dimension, hit[1], "lexicon", 1.0))
            else:
                out.append(None)
                todo.append(k)
        if todo:
            sims = np.asarray(_encode(self.encoder, [words[k] for k in todo]), dtype=np.float32) @ self.emb.T
            for k, row in zip(todo, sims):
                i, best = self._best(row)
                if best >= self.threshold:
                    sub = str(self.subdim[i])
                    pole = _embedding_pole(words[k], int(self.pole[i]))
                    out[k] = WordMapping(words[k], sub, tax.subdimensions[sub].dimension, pole, "embedding", best)
                else:
                    out[k] = WordMapping(words[k], UNMAPPED, None, 0, "unmapped", best)
        return [m for m in out if m is not None]


def _embedding_pole(word: str, nearest_pole: int) -> int:
    """Pole of a word mapped by similarity. Antonyms embed close together ("loyalty" ~ "betrayal"),
    so the nearest entry's pole is trusted only when the word itself says so: a negating phrase
    flips it ("lack of empathy" -> -1, "not lying" -> +1); an opposite-pole neighbour counts only
    for a negated form ("thoughtlessness"); otherwise the word is a value word (+1)."""
    w = word.lower()
    if _NEGATING_PHRASE.search(w):
        return -nearest_pole
    if nearest_pole == -1 and _NEGATED_FORM.search(w):
        return -1
    return 1


_MAPPERS: dict[int, LexiconMapper] = {}


def get_mapper(encoder) -> LexiconMapper:
    """The mapper of ``encoder``, built (embedding the taxonomy) once per encoder object."""
    return _cached(_MAPPERS, LexiconMapper, encoder)


def map_word(word: str, encoder=None) -> WordMapping:
    """Map one value word: lexicon hit (also inflected forms), else nearest subdimension by embedding
    similarity above the calibrated threshold, else ``unmapped``. Without an encoder only lexicon hits map."""
    if encoder is None:
        hit = lexicon_lookup(word)
        if hit:
            return WordMapping(word, hit[0], load_taxonomy().subdimensions[hit[0]].dimension, hit[1], "lexicon", 1.0)
        return WordMapping(word, UNMAPPED, None, 0, "unmapped", None)
    return get_mapper(encoder).map_many([word])[0]


def lexicon_metrics(mappings: Iterable[WordMapping]) -> dict[str, float]:
    """Shares of the mapped value words per dimension and subdimension, opposite-pole and unmapped rates.

    ``share_<x>`` = value words (pole +1) mapped to ``x`` / all value words mapped with pole +1;
    ``opposite_rate`` and ``unmapped_rate`` are fractions of all parsed words (``n_words``).
    """
    tax = load_taxonomy()
    mappings = list(mappings)
    n = len(mappings)
    positive = [m for m in mappings if m.pole == 1]
    metrics: dict[str, float] = {}
    for d in tax.dimensions:
        metrics[f"share_{d}"] = _ratio(sum(m.dimension == d for m in positive), len(positive))
    for s in tax.subdimensions:
        metrics[f"share_{s}"] = _ratio(sum(m.subdim == s for m in positive), len(positive))
    metrics["opposite_rate"] = _ratio(sum(m.pole == -1 for m in mappings), n)
    metrics["unmapped_rate"] = _ratio(sum(m.pole == 0 for m in mappings), n)
    metrics["n_words"] = float(n)
    return metrics
