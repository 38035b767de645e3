"""Step: reading runs. Which lm-eval runs a folder (lm-eval ``--output_path``) holds, and their value distributions.

One *run* is one ``lm_eval`` invocation: its ``univar_<stamp>/`` artifact folder (one sub-folder per
task), and lm-eval's ``results_<date>.json`` and ``samples_<task>_<date>.jsonl`` files beside it. A
results file names its artifact folder (metadata ``univar_artifacts`` in its task configs); an older
one is matched to the newest artifact folder started before it was written.

When a path holds several runs of one model (``--output_path runs/`` reused, or a CI checkpoint path
that never changes), commands refuse to guess: they list the runs and ask for ``--run latest`` or
``--run <stamp>``. Every command says on stderr which run folder(s) it read.

Candidates from any source (:func:`read_candidates`): a run folder, or answers that ``bank add``
accepts (lm-eval samples, UniVaR CSV, QA JSONL) embedded like the bank they are compared with.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from univar_eval.errors import UserError
from univar_eval.pipeline.answers import sample_files, task_of_samples_file
from univar_eval.runs.results import (
    LM_EVAL_FILE,
    RUN_DIR,
    date_of,
    read_results_file,
    results_files,
)
from univar_eval.runs.sources import collect, duplicate_task, to_distribution
from univar_eval.safe_text import terminal_text
from univar_eval.settings import resolve
from univar_eval.storage.distribution import (
    DISTRIBUTION_FORMAT,
    MANIFEST_FILE,
    PENDING_FORMAT,
    ValueDistribution,
    read_manifest,
    translator_label,
)

ARTIFACTS_KEY = "univar_artifacts"  # the same key as univar_eval.harness.task_base.ARTIFACTS_KEY


@dataclass
class Run:
    """One lm_eval invocation found under a path."""

    stamp: str
    model: str | None = None
    folder: Path | None = None  # univar_<stamp>/, when the run wrote value distributions
    distributions: list[Path] = field(default_factory=list)  # task folders with embeddings
    pending: list[tuple[Path, str]] = field(default_factory=list)  # task folders whose embedding failed, and why
    results: list[Path] = field(default_factory=list)  # lm-eval results files
    samples: list[Path] = field(default_factory=list)  # lm-eval samples files

    @property
    def where(self) -> Path:
        return self.folder or (self.results or self.samples)[0]

    @property
    def source(self) -> str:
        """Where this run was read, and which run it is: ``<where> (run <stamp>)``."""
        return f"{self.where} (run {self.stamp})"

    def counts(self) -> str:
        parts = [f"{len(self.distributions)} value distribution{'s' if len(self.distributions) != 1 else ''}"]
        if self.pending:
            parts.append(f"{len(self.pending)} not embedded")
        if self.results:
            parts.append("lm-eval results")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"{self.where} ({self.counts()})"

    def announce(self) -> None:
        """One line on stderr for this run, ``read <where> (run <stamp>): <counts>``, and its warnings."""
        print(terminal_text(f"read {self.source}: {self.counts()}"), file=sys.stderr)
        self.warn_pending()

    def warn_pending(self) -> None:
        """A warning on stderr for each task whose answers were kept but not embedded."""
        for folder, error in self.pending:
            print(
                terminal_text(
                    f"warning: {folder.name}: answers kept but not embedded ({error}); finish with "
                    f"`univar-eval embed {self.where}`"
                ),
                file=sys.stderr,
            )


def _read_folder(folder: Path, run: Run, exclude: set[Path] = frozenset()) -> None:
    """The task folders of one run: every manifest is checked against its schema (a damaged one is an error);
    a ``manifest.json`` of another tool outside a ``univar_<stamp>`` folder is passed over, and so are those
    under the run folders in ``exclude`` (read as runs of their own)."""
    seen: dict[tuple, Path] = {}
    for manifest_path in sorted(folder.rglob(MANIFEST_FILE)):
        if any(p in exclude for p in manifest_path.parents):
            continue
        ours = (
            manifest_path.parent == folder
            or bool(RUN_DIR.match(folder.name))
            or bool(RUN_DIR.match(manifest_path.parent.parent.name))
        )
        m = read_manifest(manifest_path, ours=ours)
        if m is None:
            continue
        key = (m.get("task"), m.get("lang"))
        if key in seen:  # never pick one of two silently (a copied baseline beside the real answers)
            raise duplicate_task(key, seen[key], manifest_path.parent)
        seen[key] = manifest_path.parent
        if m["format"] == DISTRIBUTION_FORMAT:
            run.distributions.append(manifest_path.parent)
        elif m["format"] == PENDING_FORMAT:
            run.pending.append((manifest_path.parent, str(m.get("error") or "unknown error")))
        run.model = run.model or m.get("model")


def _artifacts_named_by(data: dict) -> str | None:
    """The stamp of the artifact folder a (checked) results file names (metadata recorded by our tasks)."""
    for cfg in (data.get("configs") or {}).values():
        meta = cfg.get("metadata")
        where = meta.get(ARTIFACTS_KEY) if isinstance(meta, dict) else None
        m = RUN_DIR.match(Path(where).name) if isinstance(where, str) and where else None
        if m:
            return m.group(1)
    return None


def find_runs(path: str | Path) -> list[Run]:
    """Every run under ``path`` (a run folder, a model folder of lm-eval's output, or a folder of those)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        date = date_of(path)
        run = Run(stamp=date or path.name)
        if path.name.startswith("results"):
            run.results.append(path)
            run.model = read_results_file(path).get("model_name")
        elif path.name == MANIFEST_FILE:
            _read_folder(path.parent, run)
        else:
            run.samples.append(path)
        return [run]
    m = RUN_DIR.match(path.name)
    if m or (path / MANIFEST_FILE).exists():  # one run's artifact folder, or one task of it
        run = Run(stamp=m.group(1) if m else path.parent.name.removeprefix("univar_"), folder=path)
        _read_folder(path, run)
        return [run]
    runs: dict[tuple[Path, str], Run] = {}
    for folder in sorted(p for p in path.rglob("univar_*") if p.is_dir() and RUN_DIR.match(p.name)):
        run = Run(stamp=RUN_DIR.match(folder.name).group(1), folder=folder)
        _read_folder(folder, run)
        runs[(folder.parent, run.stamp)] = run
    known = {r.folder for r in runs.values()}
    # artifacts in a folder of another name (copied, renamed, UNIVAR_EVAL_OUTPUT): that folder is one run
    for manifest_path in sorted(path.rglob(MANIFEST_FILE)):
        holder = manifest_path.parent.parent
        if holder in known or any(p in known for p in holder.parents):
            continue
        if read_manifest(manifest_path) is None:  # another tool's manifest.json (e.g. a saved model's)
            continue
        key = (holder.parent, holder.name)
        if key not in runs:
            runs[key] = Run(stamp=holder.name, folder=holder)
            _read_folder(holder, runs[key], exclude=known)
    for file in sorted(p for p in path.rglob("*.json*") if LM_EVAL_FILE.match(p.name)):
        date = date_of(file)
        data = read_results_file(file) if file.name.startswith("results") else None  # read and checked once
        named = _artifacts_named_by(data) if data is not None else None
        # an older results file (or a samples file) belongs to the newest artifact folder started before it
        earlier = sorted(s for (parent, s) in runs if parent == file.parent and s <= date)
        stamp = named if named and (file.parent, named) in runs else (earlier[-1] if earlier else None)
        if stamp is None:  # a run without value distributions (HVAE, ValueLex only): keyed by lm-eval's date
            stamp = date
            runs.setdefault((file.parent, stamp), Run(stamp=stamp))
        run = runs[(file.parent, stamp)]
        (run.results if file.name.startswith("results") else run.samples).append(file)
        if run.model is None and data is not None:
            run.model = data.get("model_name")
    for (parent, _), run in runs.items():
        run.model = run.model or parent.name
    return sorted(runs.values(), key=lambda r: (str(r.model), r.stamp))


def select_runs(path: str | Path, run: str | None = None, *, announce: bool = True) -> list[Run]:
    """One run per model under ``path``: the only one, or the one ``run`` names (``latest`` or a stamp).

    Several runs of one model without ``run`` is an error that lists them.
    """
    found = find_runs(path)
    by_model: dict[str, list[Run]] = {}
    for r in found:
        by_model.setdefault(str(r.model), []).append(r)
    chosen = []
    for model, runs in sorted(by_model.items()):
        runs = sorted(runs, key=lambda r: r.stamp)
        if run in (None, "") and len(runs) > 1:
            listed = "; ".join(f"{r.stamp}: {r.describe()}" for r in runs)
            raise UserError(
                f"{path} holds {len(runs)} runs of {model} ({listed}); pick one with --run latest or "
                f"--run {runs[-1].stamp}, or give that run's univar_<stamp> folder"
            )
        if run in (None, "", "latest"):
            chosen.append(runs[-1])
            continue
        wanted = str(run).removeprefix("univar_")
        match = [r for r in runs if r.stamp == wanted or r.stamp.startswith(wanted)]
        if len(match) != 1:
            raise UserError(
                f"{path}: no run {run!r} of {model}; it has {', '.join(r.stamp for r in runs)} "
                "(--run latest picks the newest)"
            )
        chosen.append(match[0])
    if announce:
        for r in chosen:
            r.announce()
    return chosen


def find_distributions(
    path: str | Path, *, missing_ok: bool = False, run: str | None = None, announce: bool = True
) -> list[Path]:
    """Folders holding a value distribution under ``path``, from one run per model (see :func:`select_runs`).

    ``missing_ok``: a run without any (e.g. only HVAE or ValueLex results) gives an empty list
    instead of an error; a missing path or a damaged manifest is an error either way.
    """
    folders = sorted((f for r in select_runs(path, run, announce=announce) for f in r.distributions), key=str)
    if not folders and not missing_ok:
        raise UserError(
            f"{path}: no univar-eval artifacts found (run lm_eval with a univar task and --output_path, "
            "or point to the univar_<time> folder)"
        )
    return folders


def load_run(path: str | Path, *, missing_ok: bool = False, run: str | None = None) -> list[ValueDistribution]:
    return [ValueDistribution.load(folder) for folder in find_distributions(path, missing_ok=missing_ok, run=run)]


def run_label(dists: list[ValueDistribution], fallback: str) -> str:
    models = {d.manifest.get("model") for d in dists if d.manifest.get("model")}
    return models.pop() if len(models) == 1 else fallback


def load_runs(
    path: str | Path, run: str | None = None, *, announce: bool = True
) -> list[tuple[Run, list[ValueDistribution]]]:
    """Each selected run under ``path`` with its value distributions (one entry per model: never merged)."""
    return [
        (r, [ValueDistribution.load(f) for f in sorted(r.distributions, key=str)])
        for r in select_runs(path, run, announce=announce)
    ]


def run_sources(sources: list[str], run: str | None = None) -> list[str]:
    """``bank add`` sources with every lm-eval output folder narrowed to one run's samples files."""
    out: list[str] = []
    for src in sources:
        path = Path(src)
        if not path.is_dir() or RUN_DIR.match(path.name):
            out.append(src)
            continue
        if not find_runs(path):
            out.append(src)
            continue
        samples = [str(f) for r in select_runs(path, run) for f in sorted(r.samples)]
        out += samples or [src]
    return out


def summarise_versions(pairs) -> str:
    """``(questionnaire, version)`` pairs as one short phrase for a report header.

    Each language of a questionnaire has its own version (a hash of its items), so 25 languages give
    25 versions: one questionnaire with one version reads ``pvq@1a2b3c``, with several
    ``pvq@<digest of the set> (25 language versions)``; the digest changes when any of them does.
    """
    import hashlib

    by_q: dict[str, set[str]] = {}
    for q, v in pairs:
        by_q.setdefault(str(q), set()).add(str(v))
    parts = []
    for q, versions in sorted(by_q.items()):
        if len(versions) == 1:
            parts.append(f"{q}@{next(iter(versions))}")
        else:
            digest = hashlib.sha256("\n".join(sorted(versions)).encode()).hexdigest()[:8]
            parts.append(f"{q}@{digest} ({len(versions)} language versions)")
    return ", ".join(parts) or "-"


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
    results: list[Path] | None = None  # lm-eval results files of the run read (None: all under ``path``)
    run: Run | None = None  # the run read, when ``path`` is a run folder

    def describe(self) -> str:
        """What was read, for the one ``read ...`` line: where (and which run), what, how many answers, how embedded."""
        tasks = _summarise_tasks(sorted({d.task for d in self.distributions})) or "no value distributions"
        n = sum(len(d) for d in self.distributions)
        where = self.path if self.run is None else self.run.source
        return f"{where}: {self.read}; {self.model}: {n} answers in {tasks}; {self.embedded}"


def _summarise_tasks(tasks: list[str], limit: int = 6) -> str:
    """The task names, or past ``limit`` a count per questionnaire (``125 tasks: univar_pvq_* x25, ...``)."""
    if len(tasks) <= limit:
        return ", ".join(tasks)
    groups: dict[str, int] = {}
    for task in tasks:
        stem, _, lang = task.rpartition("_")
        key = f"{stem}_*" if stem and len(lang) == 3 else task
        groups[key] = groups.get(key, 0) + 1
    return f"{len(tasks)} tasks: " + ", ".join(f"{k} x{n}" if n > 1 else k for k, n in groups.items())


def _encoder_text(manifest: dict) -> str:
    enc = manifest.get("encoder") or {}
    return f"{enc.get('name')}@{enc.get('revision')} (fingerprint {enc.get('fingerprint_id')})"


def is_run(path: Path) -> bool:
    """A run folder (univar-eval artifacts or lm-eval results), one task's artifact folder, or its manifest."""
    if path.is_file():
        return path.name == MANIFEST_FILE or bool(results_files(path))
    return any(r.distributions or r.pending for r in find_runs(path)) or bool(results_files(path))


def read_candidates(
    path: str | Path,
    *,
    encoder: str | None = None,
    name: str | None = None,
    questionnaire: str | None = None,
    translator: str | None = None,
    translated_by: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    missing_ok: bool = False,
    announce: bool = True,
    run: str | None = None,
    verify: int | None = None,
) -> list[Candidate]:
    """The candidate model(s) at ``path``, whatever it holds: a run folder, or any source that
    ``univar-eval bank add`` accepts (lm-eval samples, UniVaR CSV, a JSONL of
    ``{model, lang, question, answer, id}``), embedded with ``encoder`` through the embedding cache.

    A run folder's own distributions are used when they were made with ``encoder`` (or no encoder is
    asked for); made with another one, the run's lm-eval samples of those tasks are embedded again when
    they are beside it. ``name`` reads a run folder's samples as answers of that model instead of its
    artifacts. ``missing_ok``: a run folder without value distributions (HVAE or ValueLex only) gives one
    candidate without distributions. With ``announce`` each candidate says on stderr, in one line, what was
    read (the path, the run's stamp) and how it was embedded. ``run``: ``latest`` or a stamp, when a run
    folder holds several runs of one model (see :func:`select_runs`); each model of a run folder is its own
    candidate, never merged. ``verify``: answers per task re-embedded to check embeddings read from disk
    (:mod:`univar_eval.runs.verify`; None: its default).
    """
    src = Path(path)
    if not src.exists():
        raise UserError(f"{path}: no such file or folder")
    overrides = {
        k: v
        for k, v in {
            "encoder": encoder,
            "translator": translator,
            "encoder_device": device,
            "encoder_batch_size": batch_size,
        }.items()
        if v is not None
    }
    runs: list[Run] = []
    if not name and is_run(src):
        candidates, runs = _run_candidates(src, str(path), encoder, translator, overrides, missing_ok, run)
    else:
        candidates = _answer_candidates(
            src,
            str(path),
            resolve(overrides),
            name=name,
            questionnaire=questionnaire,
            translator=translator,
            translated_by=translated_by,
        )
    from univar_eval.runs.verify import DEFAULT_SAMPLE, verify_all

    for c in candidates:  # embeddings read from disk are checked against their answers
        verify_all(c.distributions, DEFAULT_SAMPLE if verify is None else verify, device=device, announce=announce)
    if announce:
        for c in candidates:
            print(terminal_text(f"read {c.describe()}"), file=sys.stderr)
        for r in runs:
            r.warn_pending()
    return candidates


def _run_candidates(
    src: Path,
    path: str,
    encoder: str | None,
    translator: str | None,
    overrides: dict,
    missing_ok: bool,
    run: str | None,
) -> tuple[list[Candidate], list[Run]]:
    """The candidates of a run folder, and the runs selected (read_candidates announces them, once)."""
    selected = load_runs(src, run, announce=False)
    runs = [r for r, _ in selected]
    with_dists = [(r, d) for r, d in selected if d]
    if not with_dists:
        cand = _run_candidate(src, path, encoder, translator, overrides, missing_ok, None, [])
        cand.run = runs[0] if len(runs) == 1 else None
        return [cand], runs
    return [_run_candidate(src, path, encoder, translator, overrides, missing_ok, r, d) for r, d in with_dists], runs


def _run_candidate(
    src: Path,
    path: str,
    encoder: str | None,
    translator: str | None,
    overrides: dict,
    missing_ok: bool,
    found: Run | None,
    dists: list[ValueDistribution],
) -> Candidate:
    cand = _run_candidate_of(src, path, encoder, translator, overrides, missing_ok, found, dists)
    cand.results = found.results if found is not None else None
    cand.run = found
    return cand


def _run_candidate_of(
    src: Path,
    path: str,
    encoder: str | None,
    translator: str | None,
    overrides: dict,
    missing_ok: bool,
    found: Run | None,
    dists: list[ValueDistribution],
) -> Candidate:
    if not dists:
        if not missing_ok:
            raise UserError(
                f"{path}: no univar-eval artifacts found (run lm_eval with a univar task and "
                "--output_path, point to the univar_<time> folder, or pass --name MODEL to embed the "
                "run's lm-eval samples)"
            )
        return Candidate(path, path, [], True, "lm-eval results only", "nothing embedded")
    model = run_label(dists, path)
    made_with = sorted({str((d.manifest.get("encoder") or {}).get("name")) for d in dists})
    if encoder is None or made_with == [encoder]:
        return Candidate(
            model, path, dists, True, "univar-eval run artifacts", f"embedded by the run with {_embedded_with(dists)}"
        )
    tasks = {d.task for d in dists}
    newest: dict[str, Path] = {}  # the samples file of each task of the run
    for f in (
        found.samples if found is not None and found.samples else sample_files(src.parent if src.is_file() else src)
    ):
        task = task_of_samples_file(f) if f.name.startswith("samples_") else None
        if task in tasks:
            newest[task] = max(newest.get(task, f), f, key=lambda p: p.name)
    if not newest:  # refused later by the comparability check, which names both encoders
        return Candidate(
            model,
            path,
            dists,
            True,
            "univar-eval run artifacts",
            f"embedded by the run with {', '.join(made_with)}; no lm-eval samples beside them to "
            f"embed again with {encoder}",
        )
    settings = resolve(overrides)
    dists = [
        to_distribution(g, settings, encoder=encoder, translator=translator)[0]
        for g in collect([str(f) for f in sorted(newest.values())], model=model)
    ]
    return Candidate(
        model,
        path,
        dists,
        True,
        "the run's lm-eval samples",
        f"embedded again with {_embedded_with(dists)} through the embedding cache (the run used "
        f"{', '.join(made_with)})",
    )


def _answer_candidates(
    src: Path, path: str, settings, *, name, questionnaire, translator, translated_by
) -> list[Candidate]:
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
            how = f"embedded with {_embedded_with(dists)} through the embedding cache" + (
                f" ({sum(reused)} of {len(reused)} tasks reused from the run)" if any(reused) else ""
            )
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


def read_results(path: str | Path, run: str | None = None, *, files: list[Path] | None = None) -> dict:
    """``{"model": name or None, "tasks": {task: {metric: value}}}`` of one run per model under ``path``
    (see :func:`select_runs`; ``run``: ``latest`` or a stamp), or of ``files``."""
    if files is None:
        files = [f for r in select_runs(path, run, announce=False) for f in r.results]
    tasks: dict[str, dict] = {}
    model = None
    for file in sorted(files, key=lambda p: p.name):
        data = read_results_file(file)
        model = data.get("model_name") or model
        for task, metrics in data["results"].items():
            clean = {}
            for key, value in metrics.items():
                if key == "alias" or "_stderr" in key:
                    continue
                name = key.split(",", 1)[0]
                clean[name] = value
            tasks[task] = clean
    return {"model": model, "tasks": tasks}
