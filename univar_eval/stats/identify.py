"""Step: identification. UniVaR's validation protocol: can an encoder tell models (and languages) apart by values?

Every embedded QA pair is one input, labelled ``f"{model}${lang}"`` (UniVaR's label).
The embeddings are frozen; a seeded stratified split holds out ``test_size`` of each
label, and two classifiers are scored on the held-out part:

* **kNN** (cosine similarity, ``k`` = 50 as in the paper): majority vote of the ``k``
  most similar training inputs, ties broken by the summed similarity of the tied
  labels. ``k`` is capped at the training size of the smallest label, so a label with
  few examples is not out-voted just because ``k`` exceeds its size. Accuracy and
  weighted F1.
* **linear probe**: softmax regression (one linear layer), Adam lr 2e-3, 20 epochs,
  batch 512 (the paper's recipe), trained with torch on CPU from a zero start with a
  seeded shuffle, so it is deterministic. Accuracy at 1/5/10 and weighted F1.

Chance is ``1 / number of labels`` (``min(k, labels) / labels`` for acc@k). An encoder
that separates models by values scores well above chance here; run it on non-value
(control) questions too, to see how much of that is style.

Inputs are gathered by :func:`gather`: lm-eval output, UniVaR CSV files and QA JSONL
(anything ``univar-eval bank add`` accepts, embedded with the chosen encoder), run
folders holding univar-eval artifacts (their stored embeddings), or a bank.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from univar_eval.errors import UserError
from univar_eval.pipeline.encoders import same_fingerprint

log = logging.getLogger("univar_eval")

PROBE_LR = 2e-3
PROBE_EPOCHS = 20
PROBE_BATCH = 512
DEFAULT_K = 50
TOP_KS = (1, 5, 10)
FEW_STEPS = 100  # fewer probe steps than this earn a note under the table


# -- inputs ------------------------------------------------------------------------------------------------
@dataclass
class LabelledSet:
    """The embeddings of one model's answers to one task in one language."""

    model: str
    lang: str
    task: str | None
    questionnaire: str | None
    embeddings: np.ndarray
    encoder: dict
    origin: str

    @property
    def label(self) -> str:
        return f"{self.model}${self.lang}"


def from_distribution(dist, origin: str, model: str | None = None) -> LabelledSet:
    m = dist.manifest
    name = model or m.get("model") or origin
    return LabelledSet(model=str(name), lang=str(m.get("lang")), task=m.get("task"),
                       questionnaire=m.get("questionnaire"), embeddings=np.asarray(dist.embeddings, np.float32),
                       encoder=m.get("encoder") or {}, origin=origin)


def from_bank(path: str | Path) -> list[LabelledSet]:
    """Every entry of a bank, labelled with the entry's model and language."""
    from univar_eval.storage.bank import Bank

    bank = Bank(path)
    entries = bank.entries()
    if not entries:
        raise UserError(f"bank {bank.path} is empty; add entries with 'univar-eval bank add'")
    return [from_distribution(bank.load(e), f"{bank.path}:{e['model']}/{e['task']}", model=e["model"])
            for e in entries]


def from_run(path: str | Path) -> list[LabelledSet]:
    """The value distributions of a run folder (the newest per task), with their stored embeddings."""
    from univar_eval.reports.runs import load_run

    return [from_distribution(d, str(path)) for d in load_run(path)]


def has_artifacts(path: Path) -> bool:
    """Whether ``path`` is a folder holding univar-eval value distributions (a run folder)."""
    from univar_eval.reports.runs import find_distributions

    if not path.is_dir():
        return False
    try:
        find_distributions(path)
    except UserError:
        return False
    return True


def gather(sources: list[str], *, bank: str | None = None, encoder: str | None = None, name: str | None = None,
           questionnaire: str | None = None, translator: str | None = None, device: str | None = None,
           batch_size: int | None = None) -> list[LabelledSet]:
    """Labelled embeddings from run folders, a bank and QA sources (embedded with ``encoder``).

    Folders with univar-eval artifacts are read as runs; other sources go through
    :func:`univar_eval.storage.sources.collect` (the sources ``bank add`` accepts). All sets must
    share one encoder: a mix is refused.
    """
    sets: list[LabelledSet] = from_bank(bank) if bank else []
    raw: list[str] = []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise UserError(f"{src}: no such file or folder")
        if has_artifacts(path) and not name:
            sets += from_run(path)
        else:
            raw.append(src)
    if raw:
        from univar_eval.settings import resolve
        from univar_eval.storage.sources import collect, to_distribution

        wanted = encoder or (sets[0].encoder.get("name") if sets else None)
        overrides = {k: v for k, v in {"encoder": wanted, "translator": translator, "encoder_device": device,
                                       "encoder_batch_size": batch_size}.items() if v is not None}
        settings = resolve(overrides)
        for group in collect(raw, model=name, questionnaire=questionnaire):
            dist, _ = to_distribution(group, settings)
            sets.append(from_distribution(dist, group.source or group.model, model=group.model))
    if not sets:
        raise UserError("no inputs: give QA sources, run folders or --bank DIR")
    if encoder:
        other = [s for s in sets if s.encoder.get("name") != encoder]
        if other:
            raise UserError(f"{other[0].origin} was embedded with {other[0].encoder.get('name')}, not {encoder}; "
                            "pass its QA source (not its embeddings) to re-embed it, or drop --encoder")
    check_one_encoder(sets)
    return sets


def check_one_encoder(sets: list[LabelledSet]) -> dict:
    """The encoder every set shares; a mix of encoders (or fingerprints) is refused."""
    first = sets[0].encoder
    for s in sets[1:]:
        if s.encoder.get("name") != first.get("name") or not same_fingerprint(s.encoder.get("fingerprint"),
                                                                               first.get("fingerprint")):
            raise UserError(f"{s.origin} was embedded with {s.encoder.get('name')} (fingerprint "
                            f"{s.encoder.get('fingerprint_id')}) but {sets[0].origin} with {first.get('name')} "
                            f"({first.get('fingerprint_id')}); use inputs from one encoder (--encoder re-embeds "
                            "QA sources)")
    return first


def dataset(sets: list[LabelledSet]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stack the sets into (embeddings, label index per row, label names in sorted order)."""
    names = sorted({s.label for s in sets})
    index = {n: i for i, n in enumerate(names)}
    x = np.vstack([s.embeddings for s in sets]).astype(np.float32)
    y = np.concatenate([np.full(len(s.embeddings), index[s.label], dtype=np.int64) for s in sets])
    return x, y, names


# -- split -------------------------------------------------------------------------------------------------
def stratified_split(y: np.ndarray, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split holding out ``round(test_size * n)`` rows of every label (at least one, never all)."""
    if not 0.0 < test_size < 1.0:
        raise UserError(f"--test-size must be between 0 and 1 (got {test_size})")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < 2:
            raise UserError(f"label #{c} has {len(rows)} example; every label needs two or more for a held-out split")
        rows = rows[rng.permutation(len(rows))]
        n_test = int(min(max(round(test_size * len(rows)), 1), len(rows) - 1))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# -- metrics -----------------------------------------------------------------------------------------------
def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def accuracy_at_k(scores: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Share of rows whose true label is among the ``k`` highest scores (ties: lower label index first)."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """``m[i, j]`` = rows of true label i predicted as j."""
    m = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int | None = None) -> float:
    """F1 per label (0 where undefined), averaged with the number of true rows of each label as weight."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if not len(y_true):
        return float("nan")
    n = n_labels or int(max(y_true.max(), y_pred.max())) + 1
    m = confusion(y_true, y_pred, n)
    tp = np.diag(m).astype(np.float64)
    support = m.sum(axis=1).astype(np.float64)
    predicted = m.sum(axis=0).astype(np.float64)
    denom = support + predicted  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(np.sum(f1 * support) / support.sum())


# -- classifiers -------------------------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int, n_labels: int,
                chunk: int = 1024) -> np.ndarray:
    """Cosine kNN: majority vote of the ``k`` nearest training rows, ties broken by summed similarity."""
    train_x, test_x = _unit(train_x), _unit(test_x)
    k = max(1, min(k, len(train_x)))
    preds = []
    for start in range(0, len(test_x), chunk):
        sims = test_x[start:start + chunk] @ train_x.T
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
            np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        near_sims = np.take_along_axis(sims, nearest, axis=1).astype(np.float64)
        near_labels = train_y[nearest]
        rows = np.repeat(np.arange(len(sims)), nearest.shape[1])
        votes = np.zeros((len(sims), n_labels))
        summed = np.zeros((len(sims), n_labels))
        np.add.at(votes, (rows, near_labels.ravel()), 1.0)
        np.add.at(summed, (rows, near_labels.ravel()), near_sims.ravel())
        top = votes == votes.max(axis=1, keepdims=True)
        preds.append(np.argmax(np.where(top, summed, -np.inf), axis=1))
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def effective_k(k: int, train_y: np.ndarray) -> int:
    """``k`` capped at the training size of the smallest label."""
    return int(max(1, min(k, np.bincount(train_y).min() if len(train_y) else 1)))


def train_probe(train_x: np.ndarray, train_y: np.ndarray, n_labels: int, *, epochs: int = PROBE_EPOCHS,
                lr: float = PROBE_LR, batch_size: int = PROBE_BATCH, seed: int = 0):
    """Softmax regression (one linear layer) with Adam; zero start and seeded shuffling make it deterministic.

    Returns a function mapping embeddings to logits (numpy).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    layer = torch.nn.Linear(x.shape[1], n_labels)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(layer(x[idx]), y[idx])
            loss.backward()
            opt.step()

    def logits(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return layer(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))).numpy()

    return logits


# -- the protocol ------------------------------------------------------------------------------------------
def identify(x: np.ndarray, y: np.ndarray, names: list[str], *, k: int = DEFAULT_K, test_size: float = 0.2,
             seed: int = 0, epochs: int = PROBE_EPOCHS, lr: float = PROBE_LR,
             batch_size: int = PROBE_BATCH) -> dict:
    """kNN and linear-probe identification of ``names[y]`` from ``x`` on a seeded held-out split."""
    n_labels = len(names)
    if n_labels < 2:
        raise UserError(f"identification needs two labels (model$lang) or more; the inputs have only "
                        f"{', '.join(names) or 'none'}")
    train, test = stratified_split(y, test_size, seed)
    k_used = effective_k(k, y[train])
    knn_pred = knn_predict(x[train], y[train], x[test], k_used, n_labels)
    logits = train_probe(x[train], y[train], n_labels, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)(x[test])
    probe_pred = np.argmax(logits, axis=1)
    train_counts, test_counts = np.bincount(y[train], minlength=n_labels), np.bincount(y[test], minlength=n_labels)
    return {
        "n_labels": n_labels,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "chance": 1.0 / n_labels,
        "split": {"test_size": test_size, "seed": seed, "stratified": True},
        "knn": {"k": k_used, "k_requested": k, "accuracy": accuracy(y[test], knn_pred),
                "weighted_f1": weighted_f1(y[test], knn_pred, n_labels)},
        "probe": {**{f"acc@{t}": accuracy_at_k(logits, y[test], t) for t in TOP_KS},
                  "weighted_f1": weighted_f1(y[test], probe_pred, n_labels),
                  "epochs": epochs, "lr": lr, "batch_size": batch_size,
                  "steps": epochs * -(-len(train) // batch_size)},
        "labels": [{"label": n, "n_train": int(train_counts[i]), "n_test": int(test_counts[i])}
                   for i, n in enumerate(names)],
    }


def format_report(report: dict) -> str:
    """A small table: each metric beside its chance level."""
    n = report["n_labels"]
    knn, probe = report["knn"], report["probe"]
    rows = [("kNN accuracy", knn["accuracy"], 1 / n), ("kNN weighted F1", knn["weighted_f1"], 1 / n)]
    rows += [(f"probe acc@{t}", probe[f"acc@{t}"], min(t, n) / n) for t in TOP_KS]
    rows += [("probe weighted F1", probe["weighted_f1"], 1 / n)]
    enc = report.get("encoder") or {}
    head = (f"identification of {n} labels (model$lang), encoder {enc.get('name')} "
            f"(fingerprint {enc.get('fingerprint_id')})\n"
            f"{report['n_train']} train / {report['n_test']} held-out inputs "
            f"(stratified, test size {report['split']['test_size']}, seed {report['split']['seed']}); "
            f"kNN k={knn['k']}" + (f" (capped from {knn['k_requested']})" if knn["k"] != knn["k_requested"] else "")
            + f"; probe {probe['epochs']} epochs, Adam lr {probe['lr']:g}, batch {probe['batch_size']}")
    width = max(len(r[0]) for r in rows)
    lines = [head, "", f"{'metric':<{width}}  {'score':>7}  {'chance':>7}"]
    lines += [f"{name:<{width}}  {100 * v:6.2f}%  {100 * c:6.2f}%" for name, v, c in rows]
    lines += ["", f"chance level: 1/{n} = {100 / n:.2f}%"]
    if probe.get("steps", FEW_STEPS) < FEW_STEPS:
        lines.append(f"note: the probe took only {probe['steps']} optimiser steps (the paper's recipe assumes "
                     "thousands of inputs); on small data try a larger --epochs")
    return "\n".join(lines)
