"""Step: reading runs. The value distributions that a run folder (lm-eval ``--output_path``) holds, and
candidates from any source (:func:`read_candidates`): a run folder, or answers that ``bank add`` accepts
(lm-eval samples, UniVaR CSV, QA JSONL) embedded like the bank they are compared with."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.harness.results import results_files
from univar_eval.pipeline.answers import sample_files, task_of_samples_file
from univar_eval.settings import resolve
from univar_eval.storage.distribution import MANIFEST_FILE, ValueDistribution, translator_label
from univar_eval.storage.files import read_json
from univar_eval.storage.sources import collect, to_distribution


def find_distributions(path: str | Path, *, missing_ok: bool = False) -> list[Path]:
    """Folders holding a value distribution under ``path``: the newest per (model, task).

    ``missing_ok``: a run without any (e.g. only HVAE or ValueLex results) gives an empty list
    instead of an error; a missing path or a damaged manifest is an error either way.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        path = path.parent
    newest: dict[tuple, tuple[str, Path]] = {}
    for manifest_path in sorted(path.rglob(MANIFEST_FILE)):
        m = read_json(manifest_path)
        if not isinstance(m, dict) or not str(m.get("format", "")).startswith("univar-eval/value-distribution"):
            continue
        key = (m.get("model"), m.get("task"))
        stamp = m.get("created") or ""
        if key not in newest or stamp >= newest[key][0]:
            newest[key] = (stamp, manifest_path.parent)
    if not newest and not missing_ok:
        raise UserError(f"{path}: no univar-eval artifacts found (run lm_eval with a univar task and --output_path, "
                        "or point to the univar_<time> folder)")
    return [folder for _, folder in sorted(newest.values(), key=lambda t: str(t[1]))]


def load_run(path: str | Path, *, missing_ok: bool = False) -> list[ValueDistribution]:
    return [ValueDistribution.load(folder) for folder in find_distributions(path, missing_ok=missing_ok)]


def run_label(dists: list[ValueDistribution], fallback: str) -> str:
    models = {d.manifest.get("model") for d in dists if d.manifest.get("model")}
    return models.pop() if len(models) == 1 else fallback


# -- candidates from any source ---------------------------------------------------------------------------
@dataclass
class Candidate:
    """One model's value distributions, read from a run folder or embedded from answers stored elsewhere."""

    model: str
    path: str  # what the user named
    distributions: list[ValueDistribution] = field(default_factory=list)
    is_run: bool = False  # a run folder: lm-eval's results (HVAE, ValueLex) may be read from ``path`` too
    read: str = ""  # what was read, in a few words
    embedded: str = ""  # how the embeddings were made

    def describe(self) -> str:
        tasks = ", ".join(sorted({d.task for d in self.distributions})) or "no value distributions"
        n = sum(len(d) for d in self.distributions)
        return f"{self.path}: {self.read}; {self.model}: {n} answers in {tasks}; {self.embedded}"


def _encoder_text(manifest: dict) -> str:
    enc = manifest.get("encoder") or {}
    return f"{enc.get('name')}@{enc.get('revision')} (fingerprint {enc.get('fingerprint_id')})"


def is_run(path: Path) -> bool:
    """A run folder (univar-eval artifacts or lm-eval results), one task's artifact folder, or its manifest."""
    if path.is_file():
        return path.name == MANIFEST_FILE or bool(results_files(path))
    return bool(find_distributions(path, missing_ok=True)) or bool(results_files(path))


def read_candidates(path: str | Path, *, encoder: str | None = None, name: str | None = None,
                    questionnaire: str | None = None, translator: str | None = None,
                    translated_by: str | None = None, device: str | None = None, batch_size: int | None = None,
                    missing_ok: bool = False, announce: bool = True) -> list[Candidate]:
    """The candidate model(s) at ``path``, whatever it holds: a run folder, or any source that
    ``univar-eval bank add`` accepts (lm-eval samples, UniVaR CSV, a JSONL of
    ``{model, lang, question, answer, id}``), embedded with ``encoder`` through the embedding cache.

    A run folder's own distributions are used when they were made with ``encoder`` (or no encoder is
    asked for); made with another one, the run's lm-eval samples of those tasks are embedded again when
    they are beside it. ``name`` reads a run folder's samples as answers of that model instead of its
    artifacts. ``missing_ok``: a run folder without value distributions (HVAE or ValueLex only) gives one
    candidate without distributions. With ``announce`` each candidate says on stderr what was read and
    how it was embedded.
    """
    src = Path(path)
    if not src.exists():
        raise UserError(f"{path}: no such file or folder")
    overrides = {k: v for k, v in {"encoder": encoder, "translator": translator, "encoder_device": device,
                                   "encoder_batch_size": batch_size}.items() if v is not None}
    if not name and is_run(src):
        candidates = [_run_candidate(src, str(path), encoder, translator, overrides, missing_ok)]
    else:
        candidates = _answer_candidates(src, str(path), resolve(overrides), name=name, questionnaire=questionnaire,
                                        translator=translator, translated_by=translated_by)
    if announce:
        for c in candidates:
            print(f"read {c.describe()}", file=sys.stderr)
    return candidates


def _run_candidate(src: Path, path: str, encoder: str | None, translator: str | None, overrides: dict,
                   missing_ok: bool) -> Candidate:
    dists = load_run(src, missing_ok=True)
    if not dists:
        if not missing_ok:
            raise UserError(f"{path}: no univar-eval artifacts found (run lm_eval with a univar task and "
                            "--output_path, point to the univar_<time> folder, or pass --name MODEL to embed the "
                            "run's lm-eval samples)")
        return Candidate(path, path, [], True, "lm-eval results only", "nothing embedded")
    model = run_label(dists, path)
    made_with = sorted({str((d.manifest.get("encoder") or {}).get("name")) for d in dists})
    if encoder is None or made_with == [encoder]:
        return Candidate(model, path, dists, True, "univar-eval run artifacts", f"embedded by the run with "
                         f"{_embedded_with(dists)}")
    tasks = {d.task for d in dists}
    newest: dict[str, Path] = {}  # the newest samples file of each task of the run
    for f in sample_files(src.parent if src.is_file() else src):
        task = task_of_samples_file(f) if f.name.startswith("samples_") else None
        if task in tasks:
            newest[task] = max(newest.get(task, f), f, key=lambda p: p.name)
    if not newest:  # refused later by the comparability check, which names both encoders
        return Candidate(model, path, dists, True, "univar-eval run artifacts",
                         f"embedded by the run with {', '.join(made_with)}; no lm-eval samples beside them to "
                         f"embed again with {encoder}")
    settings = resolve(overrides)
    dists = [to_distribution(g, settings, encoder=encoder, translator=translator)[0]
             for g in collect([str(f) for f in sorted(newest.values())], model=model)]
    return Candidate(model, path, dists, True, "the run's lm-eval samples",
                     f"embedded again with {_embedded_with(dists)} through the embedding cache (the run used "
                     f"{', '.join(made_with)})")


def _answer_candidates(src: Path, path: str, settings, *, name, questionnaire, translator,
                       translated_by) -> list[Candidate]:
    by_model: dict[str, list] = {}
    for g in collect([str(src)], model=name, questionnaire=questionnaire, translated_by=translated_by):
        dist, reused = to_distribution(g, settings, encoder=settings.encoder, translator=translator)
        by_model.setdefault(g.model, []).append((g, dist, reused))
    candidates = []
    for model, items in by_model.items():
        dists = [d for _, d, _ in items]
        kinds = sorted({_kind_of(g.source) for g, _, _ in items})
        reused = [r for _, _, r in items]
        if all(reused):
            how = f"reused the run's embeddings, made with {_embedded_with(dists)}"
        else:
            how = (f"embedded with {_embedded_with(dists)} through the embedding cache"
                   + (f" ({sum(reused)} of {len(reused)} tasks reused from the run)" if any(reused) else ""))
        translators = sorted({_translator_text(d.manifest) for d in dists if d.lang != "eng"})
        if translators:
            how += f"; translated by {', '.join(translators)}"
        candidates.append(Candidate(model, path, dists, False, " and ".join(kinds), how))
    return candidates


def _kind_of(source: str) -> str:
    name = Path(source).name
    if name.startswith("samples_"):
        return "lm-eval samples"
    return "UniVaR CSV" if name.endswith(".csv") else "QA JSONL"


def _embedded_with(dists: list[ValueDistribution]) -> str:
    return ", ".join(sorted({_encoder_text(d.manifest) for d in dists})) or "-"


def _translator_text(manifest: dict) -> str:
    if (manifest.get("translator") or {}).get("applied_by") == "source":
        return f"{translator_label(manifest)} (before univar-eval read them)"
    return translator_label(manifest)
