"""Step: reference bank. Value distributions of reference models, per task and language, on disk.

A bank is a folder::

    bank.json                                  the manifest: one entry per (model, task)
    entries/<model>/<task>.<id>.safetensors    float16 embeddings (key ``embeddings``)
    entries/<model>/<task>.<id>.answers.jsonl  the QA records behind them (so a bank can be re-embedded)

Each entry records the encoder (name, revision, fingerprint), the questionnaire and
its version, the language, the translation setting, the number of answers, the
sha256 of the array and where the answers came from. Arrays are memory-mapped on
read and checked against their sha256. Every write goes to a temporary file that
is then renamed, and the manifest is rewritten last under a lock, so a crash or a
bad input never damages what the bank already held.

All entries of one bank share one encoder (name and fingerprint): a bank is one
coordinate system. Entries are compared with a run only when
:func:`~univar_eval.storage.distribution.comparability_problem` finds nothing.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import re
import secrets
from pathlib import Path
from typing import Iterator

from univar_eval.errors import UserError
from univar_eval.pipeline.encoders import same_fingerprint
from univar_eval.storage.distribution import ValueDistribution
from univar_eval.storage.files import (
    load_array,
    read_json,
    read_jsonl,
    save_array,
    write_json,
    write_jsonl,
)

MANIFEST = "bank.json"
FORMAT = "univar-eval/bank/1"


def slug(name: str) -> str:
    """A file-system-safe folder name for a model (``org/model`` -> ``org__model``)."""
    return re.sub(r"[^\w.\-]+", "_", name.replace("/", "__")).strip("._") or "model"


class Bank:
    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if not create:
                if self.path.exists() and any(self.path.iterdir()):
                    raise UserError(f"{self.path} is not a reference bank (no {MANIFEST}); "
                                    "point to a folder made by 'univar-eval bank add'")
                raise UserError(f"no reference bank at {self.path}; build one with "
                                f"'univar-eval bank add --bank {self.path} --name MODEL SOURCE'")
            self._data = {"format": FORMAT, "entries": []}
        else:
            self._data = self._read()

    # -- reading -------------------------------------------------------------------------------------
    def _read(self) -> dict:
        data = read_json(self.path / MANIFEST)
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
            raise UserError(f"{self.path / MANIFEST} is not a univar-eval bank manifest ({FORMAT}); "
                            "was the bank made by another tool or version?")
        return data

    def entries(self, *, model: str | None = None, task: str | None = None, lang: str | None = None) -> list[dict]:
        return [e for e in self._data["entries"]
                if (model is None or e["model"] == model) and (task is None or e["task"] == task)
                and (lang is None or e["lang"] == lang)]

    def models(self) -> list[str]:
        return sorted({e["model"] for e in self._data["entries"]})

    def references(self, *, task: str | None = None, lang: str | None = None) -> list[str]:
        """Reference models with an entry for ``task`` (and ``lang``)."""
        return sorted({e["model"] for e in self.entries(task=task, lang=lang)})

    def entry(self, model: str, task: str) -> dict:
        found = self.entries(model=model, task=task)
        if not found:
            have = ", ".join(self.references(task=task)) or "none"
            raise UserError(f"bank {self.path} has no entry for model {model!r} and task {task!r} "
                            f"(models with that task: {have})")
        return found[0]

    def encoder(self) -> dict | None:
        """The encoder every entry of this bank was made with (None for an empty bank)."""
        return self._data["entries"][0]["encoder"] if self._data["entries"] else None

    def load(self, entry: dict, *, verify: bool = True, with_answers: bool = False) -> ValueDistribution:
        """The entry's distribution; the array is memory-mapped and checked against its sha256."""
        array_path = self.path / entry["array"]
        emb = load_array(array_path, expected_sha256=entry["sha256"] if verify else None)
        if len(emb) != entry["n_answers"]:
            raise UserError(f"{array_path}: {len(emb)} rows but the bank manifest says {entry['n_answers']}; "
                            "the file was replaced: remove the entry and add it again")
        records = read_jsonl(self.path / entry["answers"]) if with_answers else [{}] * len(emb)
        return ValueDistribution(emb, records, dict(entry))

    # -- writing -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as lock:
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
        """Store several (distribution, model, source) entries; the manifest is rewritten once, at the end."""
        with self._locked():
            added, written, replaced = [], [], []
            try:
                for dist, model, source in items:
                    entry, old = self._store(dist, model=model, source=source, replace=replace)
                    written.append(entry)
                    replaced += old
                    self._data["entries"] = [e for e in self._data["entries"]
                                             if not (e["model"] == model and e["task"] == entry["task"])] + [entry]
                    added.append(entry)
            except BaseException:
                self._delete_files(written)
                self._data = self._read() if (self.path / MANIFEST).exists() else {"format": FORMAT, "entries": []}
                raise
            self._data["entries"].sort(key=lambda e: (e["model"], e["task"]))
            self._write()
            self._delete_files(replaced)
        return added

    def _store(self, dist: ValueDistribution, *, model: str, source: str, replace: bool) -> tuple[dict, list[dict]]:
        m = dist.manifest
        for key in ("task", "lang", "encoder"):
            if not m.get(key):
                raise UserError(f"cannot add {source} to the bank: its manifest lacks {key!r}")
        if len(dist) == 0:
            raise UserError(f"cannot add {source} ({m['task']}) to the bank: no non-empty answers")
        enc = self.encoder()
        if enc and (enc.get("name") != m["encoder"].get("name")
                    or not same_fingerprint(enc.get("fingerprint"), m["encoder"].get("fingerprint"))):
            raise UserError(f"bank {self.path} holds {enc.get('name')} embeddings (fingerprint "
                            f"{enc.get('fingerprint_id')}) but {source} was embedded with "
                            f"{m['encoder'].get('name')} ({m['encoder'].get('fingerprint_id')}); "
                            "use --encoder to match or another --bank")
        old = self.entries(model=model, task=m["task"])
        if old and not replace:
            raise UserError(f"bank already has {model} / {m['task']}; pass --replace to overwrite it")
        # new files get fresh names: the entry they replace stays intact until the manifest moves on
        base = Path("entries") / slug(model) / f"{m['task']}.{secrets.token_hex(4)}"
        array_rel, answers_rel = f"{base}.safetensors", f"{base}.answers.jsonl"
        try:
            digest = save_array(self.path / array_rel, dist.embeddings)
            write_jsonl(self.path / answers_rel, dist.records)
        except BaseException:
            self._delete_files([{"array": array_rel, "answers": answers_rel}])
            raise
        entry = {
            "model": model,
            "task": m["task"],
            "lang": m["lang"],
            "questionnaire": m.get("questionnaire"),
            "questionnaire_version": m.get("questionnaire_version"),
            "encoder": {k: m["encoder"].get(k) for k in ("name", "model_id", "revision", "dimension",
                                                          "fingerprint", "fingerprint_id")},
            "translator": m.get("translator") or {"name": "none"},
            "n_answers": int(len(dist)),
            "text_format": m.get("text_format"),
            "n_encoder_truncated": (m.get("counts") or {}).get("n_encoder_truncated"),
            "sha256": digest,
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
                raise UserError(f"bank {self.path} has no entries for {model!r}"
                                + (f" and task {task!r}" if task else "") + (f" and language {lang!r}" if lang else ""))
            keep = [e for e in self._data["entries"] if e not in gone]
            self._data["entries"] = keep
            self._write()
            self._delete_files(gone)  # files last: the manifest never names a missing file
        return gone

    def _delete_files(self, entries: list[dict]) -> None:
        for e in entries:
            for rel in (e["array"], e["answers"]):
                with contextlib.suppress(FileNotFoundError):
                    (self.path / rel).unlink()

    def _write(self) -> None:
        write_json(self.path / MANIFEST, self._data)
