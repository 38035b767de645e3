"""Step: value distribution. The embeddings of one model's answers to one task in one language.

A distribution is stored as a folder of three files:

``embeddings.safetensors``  float16 array (n_answers x dim), key ``embeddings``
``answers.jsonl``           one line per row: doc id, question id, value, lang, question, answer, encoder text
``manifest.json``           encoder (name, revision, fingerprint), questionnaire and version,
                            task, language, translator, counts, model, sha256 of the array

:func:`check_comparable` is the single place that decides whether two
distributions may be compared (same encoder, its revision and fingerprint,
questionnaire version, translator and its revision, embedded text format).

Every manifest of a run folder is read through :func:`read_manifest`, which checks it against
the schema of its format (:data:`DISTRIBUTION_SCHEMA`, :data:`PENDING_SCHEMA`: required keys and
their types, the format version, the encoder block, counts that are whole numbers >= 0, a task
name that is safe in a file name); :meth:`ValueDistribution.load` also checks the embeddings
against the manifest (present, sha256, answers x dimensions, finite). Whatever fails is a
"damaged run artifact": one line naming the file and what is wrong; nothing is used, deleted or
rewritten.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from univar_eval import __version__
from univar_eval.errors import UserError
from univar_eval.storage import schema
from univar_eval.storage.files import (
    DamagedFile,
    load_array,
    read_json,
    read_jsonl,
    save_array,
    write_json,
    write_jsonl,
)
from univar_eval.storage.identity import encoder_difference, same_revision
from univar_eval.storage.schema import OPTIONAL, REQUIRED, Nested, shown

EMBEDDINGS_FILE = "embeddings.safetensors"
ANSWERS_FILE = "answers.jsonl"
MANIFEST_FILE = "manifest.json"
#: ``format`` of a task folder holding a value distribution (the three files above)
DISTRIBUTION_FORMAT = "univar-eval/value-distribution/1"
#: ``format`` of a task folder whose answers were kept when embedding failed (``univar-eval embed`` finishes it)
PENDING_FORMAT = "univar-eval/pending-answers/1"


# -- the run manifest schema (checked by storage.schema, the one checker) -------------------------------------
ENCODER_SCHEMA = {
    "name": (REQUIRED, schema.nonempty_text),
    "fingerprint": (REQUIRED, schema.fingerprint),
    "revision": (OPTIONAL, schema.text_or_null),
    "model_id": (OPTIONAL, schema.text_or_null),
    "revision_pinned": (OPTIONAL, schema.bool_or_null),
    "dimension": (OPTIONAL, schema.positive_or_null),
    "fingerprint_id": (OPTIONAL, schema.text_or_null),
}
TRANSLATOR_SCHEMA = {
    "name": (REQUIRED, schema.nonempty_text),
    "revision": (OPTIONAL, schema.text_or_null),
    "model_id": (OPTIONAL, schema.text_or_null),
    "applied_by": (OPTIONAL, schema.text_or_null),
}


#: ``manifest.json`` of a value distribution (unknown keys are allowed: later releases may add some)
DISTRIBUTION_SCHEMA = {
    "task": (REQUIRED, schema.task_name),
    "lang": (REQUIRED, schema.nonempty_text),
    "encoder": (REQUIRED, Nested(ENCODER_SCHEMA)),
    "sha256": (REQUIRED, schema.sha256),
    "n_answers": (REQUIRED, schema.count),
    "model": (OPTIONAL, schema.text_or_null),
    "questionnaire": (OPTIONAL, schema.text_or_null),
    "questionnaire_version": (OPTIONAL, schema.text_or_null),
    "translator": (OPTIONAL, Nested(TRANSLATOR_SCHEMA, nullable=True)),
    "text_format": (OPTIONAL, schema.text_or_null),
    "counts": (OPTIONAL, schema.counts),
    "merged_runs": (OPTIONAL, schema.positive_or_null),
    "created": (OPTIONAL, schema.text_or_null),
    "univar_eval_version": (OPTIONAL, schema.text_or_null),
}
#: ``manifest.json`` of kept answers (embedding failed during the run)
PENDING_SCHEMA = {
    "task": (REQUIRED, schema.task_name),
    "n_answers": (REQUIRED, schema.count),
    "error": (OPTIONAL, schema.text_or_null),
    "settings": (OPTIONAL, schema.scalars),
    "questionnaire": (OPTIONAL, schema.text_or_null),
    "lang": (OPTIONAL, schema.text_or_null),
    "model": (OPTIONAL, schema.text_or_null),
    "created": (OPTIONAL, schema.text_or_null),
}
SCHEMAS = {DISTRIBUTION_FORMAT: DISTRIBUTION_SCHEMA, PENDING_FORMAT: PENDING_SCHEMA}


def _problem(data: dict, schema_: dict, prefix: str = "") -> str | None:
    return schema.find_problem(data, schema_, prefix)


def manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a manifest about to be written (by the schema of its ``format``), or None."""
    schema = SCHEMAS.get(manifest.get("format"))
    if schema is None:
        return f"format {shown(manifest.get('format'))} is not one of {', '.join(SCHEMAS)}"
    return _problem(manifest, schema)


def damaged(where, what: str) -> UserError:
    """The one-line error for a damaged file of a run's task folder (``where``: the file, or ``file:line``)."""
    return UserError(
        f"damaged run artifact {where}: {what}; nothing was changed: restore its task folder from a "
        "backup or rerun the lm_eval task"
    )


def check_manifest(manifest, path: str | Path) -> dict:
    """``manifest`` (read from ``path``) when it passes the schema of its format, else a damaged-artifact error."""
    path = Path(path)
    if not isinstance(manifest, dict):
        raise damaged(path, f"not a JSON object (got {type(manifest).__name__})")
    fmt = manifest.get("format")
    if fmt is None:
        raise damaged(path, "format missing")
    schema = SCHEMAS.get(fmt) if isinstance(fmt, str) else None
    if schema is None:
        known = ", ".join(SCHEMAS)
        if isinstance(fmt, str) and fmt.startswith("univar-eval/"):
            raise UserError(
                f"{path}: format {fmt!r} is not one univar-eval {__version__} reads ({known}); it was "
                "written by another release: upgrade univar-eval, or rerun the lm_eval task with this "
                "one; nothing was changed"
            )
        raise damaged(path, f"format {shown(fmt)} is not a univar-eval run format ({known})")
    problem = _problem(manifest, schema)
    if problem:
        raise damaged(path, problem)
    return manifest


def read_manifest(path: str | Path, *, ours: bool = False) -> dict | None:
    """The checked manifest of one task folder of a run (see :func:`check_manifest`).

    A ``manifest.json`` is univar-eval's when ``ours`` (found in a ``univar_<stamp>`` folder or named
    by the user), when it sits beside ``answers.jsonl`` or ``embeddings.safetensors``, or when its
    format says so; another tool's ``manifest.json`` gives None. Ours and damaged: a UserError.
    """
    path = Path(path)
    ours = ours or (path.parent / ANSWERS_FILE).exists() or (path.parent / EMBEDDINGS_FILE).exists()
    try:
        data = read_json(path, finite=True)
    except DamagedFile as e:
        if not ours:
            return None
        raise damaged(e.where, e.what) from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if not ours and not (isinstance(fmt, str) and fmt.startswith("univar-eval/")):
        return None
    return check_manifest(data, path)


@dataclass
class ValueDistribution:
    embeddings: np.ndarray
    records: list[dict]
    manifest: dict = field(default_factory=dict)
    #: the folder it was read from (None: computed in this process); embeddings read from disk are verified
    loaded_from: Path | None = field(default=None, compare=False, repr=False)

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
        """Write the three files atomically (the manifest last, so it only ever names a complete array).
        The manifest is stamped with :data:`DISTRIBUTION_FORMAT` and must pass its schema."""
        folder = Path(folder)
        # never write a manifest that load() would refuse (checked before anything is written)
        manifest = {**self.manifest, "format": DISTRIBUTION_FORMAT, "sha256": "0" * 64, "n_answers": len(self)}
        problem = manifest_problem(manifest)
        if problem:
            raise UserError(f"cannot save the value distribution in {folder}: its manifest's {problem}")
        digest = save_array(folder / EMBEDDINGS_FILE, self.embeddings)
        write_jsonl(folder / ANSWERS_FILE, self.records)
        self.manifest = {**manifest, "sha256": digest}
        write_json(folder / MANIFEST_FILE, self.manifest)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, verify: bool = True) -> "ValueDistribution":
        """The distribution stored in ``folder``, checked: the manifest against its schema, the embeddings
        against the manifest (sha256 unless ``verify=False``, answers x dimensions, finite values) and the
        answers against the embeddings. Any failure is a damaged-artifact UserError; nothing is changed."""
        folder = Path(folder)
        path = folder / MANIFEST_FILE
        manifest = read_manifest(path, ours=True)
        if manifest["format"] != DISTRIBUTION_FORMAT:
            raise UserError(
                f"{folder}: holds answers that were kept but never embedded ({manifest.get('error')}); "
                f"finish them with `univar-eval embed {folder.parent}`"
            )
        try:
            emb = load_array(folder / EMBEDDINGS_FILE, expected_sha256=manifest["sha256"] if verify else None)
            records = read_jsonl(folder / ANSWERS_FILE)
        except DamagedFile as e:
            raise damaged(e.where, e.what.replace("array file is missing", "file is missing")) from None
        n_rows, dim = emb.shape
        if n_rows != manifest["n_answers"]:
            raise damaged(
                folder / EMBEDDINGS_FILE, f"{n_rows} embeddings but the manifest says n_answers {manifest['n_answers']}"
            )
        if len(records) != n_rows:
            raise damaged(folder / ANSWERS_FILE, f"{len(records)} answers but {n_rows} embeddings")
        expected_dim = manifest["encoder"].get("dimension")
        if expected_dim is not None and dim != expected_dim:
            raise damaged(
                folder / EMBEDDINGS_FILE,
                f"{dim} dimensions but the manifest's encoder {manifest['encoder']['name']} has {expected_dim}",
            )
        if verify and not np.isfinite(emb).all():
            raise damaged(folder / EMBEDDINGS_FILE, "holds NaN or infinite embeddings")
        return cls(np.asarray(emb, dtype=np.float32), records, manifest, loaded_from=folder)


def make_manifest(
    *,
    encoder: dict,
    questionnaire: str,
    questionnaire_version: str,
    task: str,
    lang: str,
    translator: dict,
    model: str | None,
    counts: dict,
    text_format: str | None = None,
) -> dict:
    return {
        "format": DISTRIBUTION_FORMAT,
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
    va, vb = a.get("questionnaire_version"), b.get("questionnaire_version")
    # an external questionnaire's version is a hash of the questions one side answered: a subset of it is
    # compared on the shared questions (same id and text), and coverage decides whether they are enough
    if va != vb and not (is_external_version(va) and is_external_version(vb)):
        return f"questionnaire version differs ({va} vs {vb})"
    if a.get("text_format") != b.get("text_format"):
        return (
            f"embedded text format differs ({a.get('text_format') or 'unversioned'} vs "
            f"{b.get('text_format') or 'unversioned'}; made by another univar-eval version)"
        )
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


EXTERNAL_VERSION_PREFIX = "external:"


def is_external_version(version) -> bool:
    """A version made from the questions of an external (JSONL/CSV) questionnaire, not one of ours."""
    return isinstance(version, str) and version.startswith(EXTERNAL_VERSION_PREFIX)


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
