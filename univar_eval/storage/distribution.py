"""Step: value distribution. The embeddings of one model's answers to one task in one language.

A distribution is stored as a folder of three files:

``embeddings.safetensors``  float16 array (n_answers x dim), key ``embeddings``
``answers.jsonl``           one line per row: doc id, question id, value, lang, question, answer, encoder text
``manifest.json``           encoder (name, revision, fingerprint), questionnaire and version,
                            task, language, translator, counts, model, sha256 of the array

:func:`check_comparable` is the single place that decides whether two
distributions may be compared (same encoder, its revision and fingerprint,
questionnaire version, translator and its revision, embedded text format).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from univar_eval import __version__
from univar_eval.errors import UserError
from univar_eval.pipeline.encoders import encoder_difference
from univar_eval.pipeline.pins import same_revision
from univar_eval.storage.files import (
    load_array,
    read_json,
    read_jsonl,
    save_array,
    write_json,
    write_jsonl,
)

EMBEDDINGS_FILE = "embeddings.safetensors"
ANSWERS_FILE = "answers.jsonl"
MANIFEST_FILE = "manifest.json"
#: ``format`` of a task folder whose answers were kept when embedding failed (``univar-eval embed`` finishes it)
PENDING_FORMAT = "univar-eval/pending-answers/1"


@dataclass
class ValueDistribution:
    embeddings: np.ndarray
    records: list[dict]
    manifest: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.records) != len(self.embeddings):
            raise ValueError(f"{len(self.records)} records but {len(self.embeddings)} embeddings")

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def task(self) -> str | None:
        return self.manifest.get("task")

    @property
    def lang(self) -> str | None:
        return self.manifest.get("lang")

    def save(self, folder: str | Path) -> Path:
        """Write the three files atomically (the manifest last, so it only ever names a complete array)."""
        folder = Path(folder)
        digest = save_array(folder / EMBEDDINGS_FILE, self.embeddings)
        write_jsonl(folder / ANSWERS_FILE, self.records)
        self.manifest = {**self.manifest, "sha256": digest, "n_answers": len(self)}
        write_json(folder / MANIFEST_FILE, self.manifest)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, verify: bool = True) -> "ValueDistribution":
        folder = Path(folder)
        manifest = read_json(folder / MANIFEST_FILE, finite=True)
        if not isinstance(manifest, dict):
            raise UserError(f"{folder / MANIFEST_FILE}: not a value-distribution manifest (expected a JSON object); "
                            "the run folder is damaged: rerun the task")
        digest = manifest.get("sha256")
        if verify and not (isinstance(digest, str) and len(digest) == 64):
            raise UserError(f"{folder / MANIFEST_FILE}: no sha256 for the embeddings, so they cannot be verified; "
                            "the run folder is damaged: rerun the task")
        emb = load_array(folder / EMBEDDINGS_FILE, expected_sha256=digest if verify else None)
        records = read_jsonl(folder / ANSWERS_FILE)
        if len(records) != len(emb):
            raise UserError(f"{folder}: {len(records)} answers but {len(emb)} embeddings; the run folder is damaged")
        if verify and not np.isfinite(emb).all():
            raise UserError(f"{folder / EMBEDDINGS_FILE}: holds NaN or infinite embeddings; the run folder is "
                            "damaged: rerun the task")
        return cls(np.asarray(emb, dtype=np.float32), records, manifest)


def make_manifest(*, encoder: dict, questionnaire: str, questionnaire_version: str, task: str, lang: str,
                  translator: dict, model: str | None, counts: dict, text_format: str | None = None) -> dict:
    return {
        "format": "univar-eval/value-distribution/1",
        "univar_eval_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "task": task,
        "lang": lang,
        "questionnaire": questionnaire,
        "questionnaire_version": questionnaire_version,
        "encoder": encoder,
        "translator": translator,
        "counts": counts,
        "text_format": text_format,
    }


def comparability_problem(a: dict, b: dict, *, fingerprint: bool = True) -> str | None:
    """Why two manifests may not be compared, in a few words; None when they may.

    ``fingerprint=False`` skips the one check that needs the loaded encoder, for checking the
    settings of a run before it generates anything.
    """
    encoder = encoder_difference(a.get("encoder"), b.get("encoder"), fingerprint=fingerprint)
    if encoder:
        return encoder
    if a.get("questionnaire") != b.get("questionnaire"):
        return f"questionnaire differs ({a.get('questionnaire')} vs {b.get('questionnaire')})"
    if a.get("questionnaire_version") != b.get("questionnaire_version"):
        return f"questionnaire version differs ({a.get('questionnaire_version')} vs {b.get('questionnaire_version')})"
    if a.get("text_format") != b.get("text_format"):
        return (f"embedded text format differs ({a.get('text_format') or 'unversioned'} vs "
                f"{b.get('text_format') or 'unversioned'}; made by another univar-eval version)")
    tra, trb = a.get("translator") or {}, b.get("translator") or {}
    ta, tb = tra.get("name"), trb.get("name")
    if a.get("lang") != "eng" and ta != tb:
        return f"translation setting differs ({ta} vs {tb})"
    # the translator's revision too; text translated before univar-eval read it (UniVaR's released data)
    # has no known revision and is compared by name
    external = "source" in (tra.get("applied_by"), trb.get("applied_by"))
    if a.get("lang") != "eng" and not external and not same_revision(tra.get("revision"), trb.get("revision")):
        return f"translator revision differs ({ta}@{tra.get('revision')} vs {tb}@{trb.get('revision')})"
    return None


def translator_label(manifest: dict) -> str:
    """The translator of a manifest for people: ``name@revision`` (``name`` when no revision is known)."""
    t = manifest.get("translator") or {}
    name = t.get("name") or "none"
    return f"{name}@{t['revision']}" if t.get("revision") else name


def check_comparable(a: dict, b: dict, *, what: str = "bank entry") -> None:
    problem = comparability_problem(a, b)
    if problem:
        raise UserError(f"{what} is not comparable with this run: {problem}; rebuild it with the same settings")


def merge_as_repeats(dists: list[ValueDistribution], sources: list[str]) -> ValueDistribution:
    """Several runs of one model on one task as one distribution whose answers are repeats of each question.

    Each record gets ``run`` (0, 1, ...); counts are summed. The runs must be comparable (same encoder,
    questionnaire version, translation setting and text format)."""
    first = dists[0]
    for d, src in zip(dists[1:], sources[1:]):
        problem = comparability_problem(first.manifest, d.manifest)
        if problem:
            raise UserError(f"cannot merge {src} with {sources[0]} as repeats of {first.task}: {problem}")
    records = [{**r, "run": k} for k, d in enumerate(dists) for r in d.records]
    counts: dict = {}
    for d in dists:
        for key, value in (d.manifest.get("counts") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                counts[key] = counts.get(key, 0) + value
    manifest = {k: v for k, v in first.manifest.items() if k not in ("sha256", "n_answers")}
    manifest.update(counts=counts, merged_runs=len(dists))
    embeddings = np.vstack([np.asarray(d.embeddings, dtype=np.float32) for d in dists])
    return ValueDistribution(embeddings, records, manifest)
