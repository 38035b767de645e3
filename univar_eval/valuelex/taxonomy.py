"""Step: ValueLex data. The taxonomy (3 dimensions, 6 subdimensions with their poles), the
lexicon prompts, the projective stems and the exemplars, all in ``tasks/valuelex/data``; and the small
helpers both measurements share."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from univar_eval.errors import UserError
from univar_eval.resources import tasks_dir
from univar_eval.storage.files import read_jsonl

log = logging.getLogger("univar_eval")

PARTS = ("lexicon", "projective")


# -- data ------------------------------------------------------------------------------------------
def data_dir() -> Path:
    return tasks_dir() / "valuelex" / "data"


@dataclass(frozen=True)
class Subdimension:
    id: str
    name: str
    dimension: str
    definition: str
    lexicon: tuple[str, ...]
    opposite: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    dimensions: dict[str, str]  # id -> name
    dimension_definitions: dict[str, str]
    subdimensions: dict[str, Subdimension]  # id -> subdimension, in taxonomy order
    non_value_words: tuple[str, ...]

    def subdims_of(self, dimension: str) -> list[str]:
        return [s.id for s in self.subdimensions.values() if s.dimension == dimension]


@functools.lru_cache(maxsize=None)
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """The three dimensions, six subdimensions, their definitions and lexicons."""
    p = Path(path) if path else data_dir() / "taxonomy.json"
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{p}: cannot read the ValueLex taxonomy ({e}); reinstall univar-eval") from None
    dims, dim_defs, subs = {}, {}, {}
    for d in raw["dimensions"]:
        dims[d["id"]] = d["name"]
        dim_defs[d["id"]] = d.get("definition", "")
        for s in d["subdimensions"]:
            subs[s["id"]] = Subdimension(
                s["id"], s["name"], d["id"], s["definition"], tuple(s["lexicon"]), tuple(s.get("opposite", ()))
            )
    return Taxonomy(str(raw.get("version", "")), dims, dim_defs, subs, tuple(raw.get("non_value_words", ())))


def _read_jsonl(name: str) -> list[dict]:
    return read_jsonl(data_dir() / name)


def load_prompts() -> list[dict]:
    return _read_jsonl("prompts.jsonl")


def load_stems() -> list[dict]:
    return _read_jsonl("stems.jsonl")


def load_exemplars() -> list[dict]:
    """Written exemplars of both poles of every subdimension: first-person statements (plain and in
    an aligned assistant's register: refusals, hedges, negations, several sentences)."""
    return _read_jsonl("exemplars.jsonl")


def load_stem_exemplars() -> list[dict]:
    """Written completions of both poles for each projective stem (``stem_id``, ``completion``)."""
    stems = {s["id"]: s["stem"] for s in load_stems()}
    return [{**r, "stem": stems[r["stem_id"]]} for r in _read_jsonl("stem_exemplars.jsonl")]


def load_dataset(part: str | None = None, **_metadata):
    """``custom_dataset`` of the ValueLex tasks: the lexicon prompts or the projective stems as a ``test`` split."""
    import datasets

    if part == "lexicon":
        docs = [{"id": r["id"], "prompt": r["prompt"], "doc_index": i} for i, r in enumerate(load_prompts())]
    elif part == "projective":
        docs = [
            {"id": r["id"], "subdim": r["subdim"], "dimension": r["dimension"], "stem": r["stem"], "doc_index": i}
            for i, r in enumerate(load_stems())
        ]
    else:
        raise UserError(f"valuelex: unknown part {part!r}; dataset_kwargs.part must be one of {', '.join(PARTS)}")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


# -- shared helpers ---------------------------------------------------------------------------------
def _encode(encoder, texts: Sequence[str]) -> np.ndarray:
    """Embeddings of ``texts`` (no progress bar where the encoder supports the switch)."""
    try:
        return encoder.encode(list(texts), progress=False)
    except TypeError:
        return encoder.encode(list(texts))


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _cached(cache: dict, cls, encoder):
    key = id(encoder)
    if key not in cache or cache[key].encoder is not encoder:
        cache[key] = cls(encoder)
    return cache[key]
