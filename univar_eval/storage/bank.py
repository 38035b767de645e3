"""Step: reference bank. Value distributions of reference models, per task and language, on disk.

A bank is a folder::

    bank.json                                  the manifest: one entry per (model, task)
    entries/<model>/<task>.<id>.safetensors    float16 embeddings (key ``embeddings``)
    entries/<model>/<task>.<id>.answers.jsonl  the QA records behind them (so a bank can be re-embedded)

Each entry records the encoder (name, revision, fingerprint), the questionnaire and
its version, the language, the translation setting, the number of answers, the
sha256 of the array and of the answers file, and where the answers came from.
Arrays are memory-mapped on read and checked against their sha256; answers files
too. Every write goes to a temporary file that is then renamed, and the manifest
is rewritten last under a lock, so a crash or a bad input never damages what the
bank already held; files that no entry names (left by a killed ``bank add``) are
removed under the same lock.

The manifest is checked against its schema on every load (types, ranges, required
keys, one encoder, every file inside ``entries/``); a manifest that fails is a
"damaged bank" and nothing it names is read or deleted. Names that reach a path are
validated (task) or slugged (model), and every path is resolved and must stay in
the bank folder (a symlink that leaves it is refused).

All entries of one bank share one encoder (name and fingerprint): a bank is one
coordinate system. Entries are compared with a run only when
:func:`~univar_eval.storage.distribution.comparability_problem` finds nothing.

Format ``univar-eval/bank/2`` added the answers checksum; banks in format 1 still
load (with a one-line warning) and ``univar-eval bank upgrade DIR`` adds what they lack.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from univar_eval.errors import UserError
from univar_eval.storage import schema
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.storage.files import (
    TMP_SUFFIX,
    load_array,
    read_json,
    read_jsonl,
    save_array,
    sha256_file,
    verified_sha256,
    write_json,
    write_jsonl,
)
from univar_eval.storage.identity import encoder_difference
from univar_eval.storage.schema import OPTIONAL, REQUIRED, TASK_NAME, Nested

log = logging.getLogger("univar_eval")

MANIFEST = "bank.json"
FORMAT = "univar-eval/bank/2"
#: Formats that still load (with a warning); ``bank upgrade`` brings them to FORMAT.
OLD_FORMATS = ("univar-eval/bank/1",)
ENTRIES = "entries"
_TASK_RE = TASK_NAME  # the one rule for task names, shared with run manifests
#: The longest model folder name (bytes): file systems allow 255 per name; a margin for backup suffixes.
MAX_NAME_BYTES = 240
_warned: set[str] = set()

#: One entry of ``bank.json`` (checked by storage.schema, the one checker of stored artifacts); the paths
#: ``array`` and ``answers`` are checked by :meth:`Bank._contained`, the one encoder across entries by the bank.
ENTRY_ENCODER_SCHEMA = {
    "name": (REQUIRED, schema.nonempty_text),
    "fingerprint": (REQUIRED, schema.fingerprint),
    "dimension": (OPTIONAL, schema.positive_or_null),
    "revision": (OPTIONAL, schema.text_or_null),
    "model_id": (OPTIONAL, schema.text_or_null),
    "fingerprint_id": (OPTIONAL, schema.text_or_null),
}
ENTRY_SCHEMA_V1 = {
    "model": (REQUIRED, schema.nonempty_text),
    "task": (REQUIRED, schema.nonempty_text),  # shown, never joined into a path: older names load
    "lang": (REQUIRED, schema.nonempty_text),
    "encoder": (REQUIRED, Nested(ENTRY_ENCODER_SCHEMA)),
    "n_answers": (REQUIRED, lambda v: schema.whole(v, 1)),
    "sha256": (REQUIRED, schema.sha256),
    "array": (REQUIRED, lambda v: None),
    "answers": (REQUIRED, lambda v: None),
    "questionnaire": (OPTIONAL, schema.text_or_null),
    "questionnaire_version": (OPTIONAL, schema.text_or_null),
    "source": (OPTIONAL, schema.text_or_null),
    "source_model": (OPTIONAL, schema.text_or_null),
    "translator": (OPTIONAL, Nested({"name": (REQUIRED, schema.text_or_null)}, nullable=True)),
}
ENTRY_SCHEMA_V1["answers_sha256"] = (OPTIONAL, schema.sha256)
ENTRY_SCHEMA = {**ENTRY_SCHEMA_V1, "answers_sha256": (REQUIRED, schema.sha256)}


def slug(name: str) -> str:
    """A file-system-safe folder name for a model (``org/model`` -> ``org__model``)."""
    return re.sub(r"[^\w.\-]+", "_", name.replace("/", "__")).strip("._") or "model"


def check_task(task, where: str) -> str:
    """``task`` when it is a usable task name (it becomes part of a file name), else a UserError."""
    if not isinstance(task, str) or not _TASK_RE.fullmatch(task):
        raise UserError(
            f"{where}: task {_shown(task)} is not a task name (letters, digits, '_', '-', '.'; "
            "at most 128, starting with a letter or digit)"
        )
    return task


def check_model(model, where: str) -> str:
    """``model`` when it is a usable model name (non-empty text, no control characters), else a UserError."""
    if (
        not isinstance(model, str)
        or not model.strip()
        or len(model) > 256
        or any(unicodedata.category(c) == "Cc" for c in model)
    ):
        raise UserError(
            f"{where}: model name {_shown(model)} is not usable (needs non-empty text of at most 256 "
            "characters, without control characters)"
        )
    if len(slug(model).encode("utf-8")) > MAX_NAME_BYTES:
        raise UserError(
            f"{where}: model name {_shown(model)} is too long for a folder name ({len(slug(model).encode('utf-8'))} "
            f"bytes once made file-safe; at most {MAX_NAME_BYTES}): give a shorter --name"
        )
    return model


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class Bank:
    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        if str(path).startswith("hf:"):  # a local folder is never named like a hub bank (./hf:/org/name)
            raise UserError(
                f"--bank {path}: a hub bank is read-only here (gate, compare, leaderboard and bank list read it); "
                "to change it, pull it into a folder (univar-eval bank pull ORG/NAME DIR), work there and push it"
            )
        self.path = Path(path)
        #: (old entry, new entry) of each entry the last add replaced; files the last clean-up removed
        self.replaced: list[tuple[dict, dict]] = []
        self.cleaned: list[str] = []
        if self.path.exists() and not self.path.is_dir():
            raise UserError(
                f"--bank {self.path} is a file; a reference bank is a folder (made by 'univar-eval bank add')"
            )
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if not create:
                if self.path.exists() and any(self.path.iterdir()):
                    raise UserError(
                        f"{self.path} is not a reference bank (no {MANIFEST}); "
                        "point to a folder made by 'univar-eval bank add'"
                    )
                raise UserError(
                    f"no reference bank at {self.path}; build one with "
                    f"'univar-eval bank add --bank {self.path} --name MODEL SOURCE'"
                )
            self._data = {"format": FORMAT, "entries": []}
        else:
            self._data = self._read()

    # -- reading -------------------------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            data = read_json(self.path / MANIFEST, finite=True)
        except UserError as e:
            raise UserError(f"damaged bank: {e}") from None
        if not isinstance(data, dict) or data.get("format") not in (FORMAT, *OLD_FORMATS):
            raise UserError(
                f"{self.path / MANIFEST} is not a univar-eval bank manifest ({FORMAT}); "
                "was the bank made by another tool or version?"
            )
        self._validate(data)
        if data["format"] != FORMAT and str(self.path) not in _warned:
            _warned.add(str(self.path))
            log.warning(
                "warning: bank %s is in the older format %s (answers files not checksummed); "
                "'univar-eval bank upgrade %s' adds what it lacks",
                self.path,
                data["format"],
                self.path,
            )
        return data

    def _damaged(self, what: str) -> UserError:
        return UserError(
            f"damaged bank: {self.path / MANIFEST}: {what}; nothing it names was read or changed: "
            "restore bank.json from a backup or rebuild the bank"
        )

    def _validate(self, data: dict) -> None:
        """Check the manifest against the bank schema; any failure is a "damaged bank"."""
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise self._damaged("'entries' is not a list")
        old = data["format"] != FORMAT
        seen_keys, seen_files, first_encoder = set(), set(), None
        for i, e in enumerate(entries, 1):
            where = f"entry {i}"
            if not isinstance(e, dict):
                raise self._damaged(f"{where} is not an object")
            named = all(isinstance(e.get(k), str) and e[k].strip() for k in ("model", "task"))
            where = f"entry {e['model']} / {e['task']}" if named else where
            problem = schema.find_problem(e, ENTRY_SCHEMA_V1 if old else ENTRY_SCHEMA)
            if problem:
                raise self._damaged(f"{where}: {problem}")
            enc = e["encoder"]
            if first_encoder is None:
                first_encoder = enc
            elif encoder_difference(first_encoder, enc):
                raise self._damaged(
                    f"{where}: encoder {enc['name']} differs from the bank's "
                    f"{first_encoder['name']} (a bank holds one encoder)"
                )
            if (e["model"], e["task"]) in seen_keys:
                raise self._damaged(f"{where} appears twice")
            seen_keys.add((e["model"], e["task"]))
            for key in ("array", "answers"):
                self._contained(e[key], f"{where}: {key}")
                if e[key] in seen_files:
                    raise self._damaged(f"{where}: {key} file {e[key]!r} is named by another entry too")
                seen_files.add(e[key])

    def _contained(self, rel, what: str = "path") -> Path:
        """``self.path / rel`` once it is certain to stay inside the bank's ``entries`` folder.

        ``rel`` must be a relative path under ``entries/`` without ``..``, and its resolved form
        (symlinks followed) must still be inside; anything else is a damaged bank, never followed.
        """
        if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
            raise self._damaged(f"{what} {_shown(rel)} is not a file name inside the bank")
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts or len(parts) < 2 or parts[0] != ENTRIES:
            raise self._damaged(f"{what} {rel!r} is outside the bank's {ENTRIES}/ folder")
        full = self.path / rel
        root = self.path.resolve() / ENTRIES
        if not full.resolve().is_relative_to(root):
            raise self._damaged(f"{what} {rel!r} leads outside the bank (a symlink to {full.resolve()})")
        return full

    def entries(self, *, model: str | None = None, task: str | None = None, lang: str | None = None) -> list[dict]:
        return [
            e
            for e in self._data["entries"]
            if (model is None or e["model"] == model)
            and (task is None or e["task"] == task)
            and (lang is None or e["lang"] == lang)
        ]

    @property
    def format(self) -> str:
        return self._data["format"]

    def models(self) -> list[str]:
        return sorted({e["model"] for e in self._data["entries"]})

    def references(self, *, task: str | None = None, lang: str | None = None) -> list[str]:
        """Reference models with an entry for ``task`` (and ``lang``)."""
        return sorted({e["model"] for e in self.entries(task=task, lang=lang)})

    def entry(self, model: str, task: str) -> dict:
        found = self.entries(model=model, task=task)
        if not found:
            have = ", ".join(self.references(task=task)) or "none"
            raise UserError(
                f"bank {self.path} has no entry for model {model!r} and task {task!r} (models with that task: {have})"
            )
        return found[0]

    def encoder(self) -> dict | None:
        """The encoder every entry of this bank was made with (None for an empty bank)."""
        return self._data["entries"][0]["encoder"] if self._data["entries"] else None

    def load(self, entry: dict, *, verify: bool = True, with_answers: bool = False) -> ValueDistribution:
        """The entry's distribution; the array is memory-mapped and checked against its sha256.

        With ``verify`` the answers file is checked too (its sha256 and its number of lines) and
        the embeddings must be finite; with ``with_answers`` the records come back with the array.
        """
        array_path = self._contained(entry["array"], f"entry {entry['model']} / {entry['task']}: array")
        emb = load_array(array_path, expected_sha256=entry["sha256"] if verify else None)
        if len(emb) != entry["n_answers"]:
            raise UserError(
                f"{array_path}: {len(emb)} rows but the bank manifest says {entry['n_answers']}; "
                "the file was replaced: remove the entry and add it again"
            )
        dim = entry["encoder"].get("dimension")
        if dim and emb.shape[1] != dim:
            raise UserError(
                f"{array_path}: {emb.shape[1]} dimensions but the bank's encoder has {dim}; "
                "remove the entry and add it again"
            )
        if verify and not np.isfinite(emb).all():
            raise UserError(f"{array_path}: holds NaN or infinite embeddings; remove the entry and add it again")
        records = self._answers(entry, verify=verify) if (verify or with_answers) else None
        return ValueDistribution(emb, records if with_answers else [{}] * len(emb), dict(entry))

    def _answers(self, entry: dict, *, verify: bool) -> list[dict]:
        path = self._contained(entry["answers"], f"entry {entry['model']} / {entry['task']}: answers")
        if not path.is_file():
            raise UserError(f"{path}: answers file is missing; remove the entry and add it again")
        if verify and entry.get("answers_sha256") and verified_sha256(path) != entry["answers_sha256"]:
            raise UserError(
                f"{path}: sha256 does not match the manifest (answers file modified or replaced); "
                "remove the entry and add it again"
            )
        records = read_jsonl(path)
        if len(records) != entry["n_answers"]:
            raise UserError(
                f"{path}: {len(records)} answers but the bank manifest says {entry['n_answers']}; "
                "remove the entry and add it again"
            )
        return records

    # -- writing -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError:
            if lock_path.is_symlink():  # O_NOFOLLOW refuses it (ELOOP): never lock, or create, through a link
                raise UserError(
                    f"{lock_path}: the bank's lock file is a symlink (to {os.readlink(lock_path)}), which "
                    f"univar-eval does not follow; remove it (rm {lock_path}) and run again"
                ) from None
            if lock_path.is_dir():  # EISDIR: a folder cannot be the lock file
                raise UserError(
                    f"{lock_path}: the bank's lock file is a folder, which univar-eval cannot lock; remove "
                    f"it (rmdir {lock_path}, or move it out of the bank if it holds anything) and run "
                    "again"
                ) from None
            raise
        with open(fd, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if (self.path / MANIFEST).exists():
                    self._data = self._read()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, dist: ValueDistribution, *, model: str, source: str, replace: bool = True) -> dict:
        """Store ``dist`` as the entry (model, its task). Refuses another encoder than the bank's."""
        return self.add_many([(dist, model, source)], replace=replace)[0]

    def add_many(self, items: list[tuple[ValueDistribution, str, str]], *, replace: bool = True) -> list[dict]:
        """Store several (distribution, model, source) entries; the manifest is rewritten once, at the end.

        Afterwards ``self.replaced`` lists the (old, new) entries that were replaced and
        ``self.cleaned`` the orphaned files removed.
        """
        self.replaced, self.cleaned = [], []
        langs: dict[tuple, set] = {}
        for dist, model, source in items:
            langs.setdefault((model, dist.manifest.get("task")), set()).add(dist.manifest.get("lang"))
        for (model, task), ls in langs.items():
            if len(ls) > 1:
                raise UserError(
                    f"{model} / {task} comes in {len(ls)} languages ({', '.join(sorted(map(str, ls)))}) "
                    "but a bank entry holds one language: give each language its own task name"
                )
        with self._locked():
            added, written, replaced = [], [], []
            try:
                for dist, model, source in items:
                    entry, old = self._store(dist, model=model, source=source, replace=replace)
                    written.append(entry)
                    replaced += [(o, entry) for o in old]
                    self._data["entries"] = [
                        e for e in self._data["entries"] if not (e["model"] == model and e["task"] == entry["task"])
                    ] + [entry]
                    added.append(entry)
            except BaseException:
                self._delete_files(written)
                self._data = self._read() if (self.path / MANIFEST).exists() else {"format": FORMAT, "entries": []}
                raise
            self._data["entries"].sort(key=lambda e: (e["model"], e["task"]))
            self._write()
            self._delete_files([o for o, _ in replaced])
            self.replaced = replaced
            self.cleaned = self._clean_orphans()
        return added

    def _store(self, dist: ValueDistribution, *, model: str, source: str, replace: bool) -> tuple[dict, list[dict]]:
        m = dist.manifest
        check_model(model, f"cannot add {source}")
        for key in ("task", "lang", "encoder"):
            if not m.get(key):
                raise UserError(f"cannot add {source} to the bank: its manifest lacks {key!r}")
        check_task(m["task"], f"cannot add {source}")
        check_task(m["lang"], f"cannot add {source}")
        new_enc = m["encoder"]
        if (
            not isinstance(new_enc, dict)
            or not isinstance(new_enc.get("name"), str)
            or not new_enc["name"]
            or not isinstance(new_enc.get("fingerprint"), (list, tuple))
            or not new_enc["fingerprint"]
        ):
            raise UserError(f"cannot add {source} to the bank: its manifest names no encoder with a fingerprint")
        if len(dist) == 0:
            raise UserError(f"cannot add {source} ({m['task']}) to the bank: no non-empty answers")
        emb = np.asarray(dist.embeddings)
        if emb.ndim != 2 or not np.isfinite(emb).all():
            raise UserError(
                f"cannot add {source} ({m['task']}) to the bank: its embeddings are not a finite "
                "2-D array (NaN, infinity or wrong shape)"
            )
        enc = self.encoder()
        if enc and encoder_difference(enc, new_enc):
            raise UserError(
                f"bank {self.path} holds {enc.get('name')} embeddings (fingerprint "
                f"{enc.get('fingerprint_id')}) but {source} was embedded with "
                f"{new_enc.get('name')} ({new_enc.get('fingerprint_id')}); "
                "use --encoder to match or another --bank"
            )
        old = self.entries(model=model, task=m["task"])
        if old and not replace:
            raise UserError(
                f"bank already has {model} / {m['task']} ({old[0]['n_answers']} answers); "
                "leave out --no-replace to replace it"
            )
        # new files get fresh names: the entry they replace stays intact until the manifest moves on
        base = f"{ENTRIES}/{slug(model)}/{m['task']}.{secrets.token_hex(4)}"
        array_rel, answers_rel = f"{base}.safetensors", f"{base}.answers.jsonl"
        self._contained(array_rel, f"{model}: array")  # refuses entries/<model> symlinked out of the bank
        try:
            digest = save_array(self.path / array_rel, emb)
            write_jsonl(self.path / answers_rel, dist.records)
            answers_digest = sha256_file(self.path / answers_rel)
        except BaseException:
            self._delete_files([{"array": array_rel, "answers": answers_rel}])
            raise
        entry = {
            "model": model,
            "task": m["task"],
            "lang": m["lang"],
            "questionnaire": m.get("questionnaire"),
            "questionnaire_version": m.get("questionnaire_version"),
            "encoder": {
                k: new_enc.get(k)
                for k in ("name", "model_id", "revision", "dimension", "fingerprint", "fingerprint_id")
            },
            "translator": m.get("translator") or {"name": "none"},
            "n_answers": int(len(dist)),
            "text_format": m.get("text_format"),
            "n_encoder_truncated": (m.get("counts") or {}).get("n_encoder_truncated"),
            "sha256": digest,
            "answers_sha256": answers_digest,
            "array": array_rel,
            "answers": answers_rel,
            "source": source,
            "source_model": m.get("model"),
            "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return entry, old

    def remove(self, model: str, *, task: str | None = None, lang: str | None = None) -> list[dict]:
        with self._locked():
            gone = self.entries(model=model, task=task, lang=lang)
            if not gone:
                raise UserError(
                    f"bank {self.path} has no entries for {model!r}"
                    + (f" and task {task!r}" if task else "")
                    + (f" and language {lang!r}" if lang else "")
                )
            keep = [e for e in self._data["entries"] if e not in gone]
            self._data["entries"] = keep
            self._write()
            self._delete_files(gone)  # files last: the manifest never names a missing file
        return gone

    def fix(self) -> list[str]:
        """Remove files that no entry names (left by a killed ``bank add``), under the bank's lock."""
        with self._locked():
            self.cleaned = self._clean_orphans()
        return self.cleaned

    def upgrade(self) -> int:
        """Bring an older-format bank to FORMAT (adds the answers checksums); returns the entries changed.

        Each array is checked against its sha256 and each answers file must hold one line per
        answer before its checksum is recorded.
        """
        with self._locked():
            changed = 0
            for e in self._data["entries"]:
                if "answers_sha256" in e:
                    continue
                self.load(e, verify=True)
                e["answers_sha256"] = sha256_file(self._contained(e["answers"]))
                changed += 1
            if changed or self._data["format"] != FORMAT:
                self._data["format"] = FORMAT
                self._write()
            _warned.discard(str(self.path))
        return changed

    def _delete_files(self, entries: list[dict]) -> None:
        for e in entries:
            for rel in (e["array"], e["answers"]):
                with contextlib.suppress(FileNotFoundError):
                    self._contained(rel, "file to delete").unlink()

    def _clean_orphans(self) -> list[str]:
        """Delete files under ``entries/`` that no entry names and temporary files of the manifest
        (call with the lock held: every write happens under it, so nothing else is in progress)."""
        named = {(self.path / e[k]).resolve() for e in self._data["entries"] for k in ("array", "answers")}
        removed = []
        root = self.path / ENTRIES
        if root.is_dir() and not root.is_symlink():
            for folder, _dirs, files in os.walk(root, topdown=False):  # symlinked folders are left alone
                for name in files:
                    path = Path(folder) / name
                    if path.resolve() not in named and (path.is_symlink() or path.is_file()):
                        path.unlink()  # a symlink is removed itself, never its target
                        removed.append(path.relative_to(self.path).as_posix())
                if Path(folder) != root and not any(Path(folder).iterdir()):
                    Path(folder).rmdir()
        for tmp in self.path.glob(f".{MANIFEST}.*{TMP_SUFFIX}"):
            tmp.unlink()
            removed.append(tmp.name)
        return sorted(removed)

    def _write(self) -> None:
        if all("answers_sha256" in e for e in self._data["entries"]):
            self._data["format"] = FORMAT  # older entries keep the older format until 'bank upgrade'
        write_json(self.path / MANIFEST, self._data)
