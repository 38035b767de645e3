"""Step: identification. UniVaR's validation protocol: can an encoder tell models (and languages) apart by values?

Every embedded QA pair is one input, labelled ``f"{model}${lang}"`` (UniVaR's label).
As in UniVaR's ``downstream_eval.py``, **each question source is evaluated on its own**
(PVQ, WVS, GLOBE, situations, the control): value sets and the control are never pooled
under one label, and the report has one block per source. Within a source the embeddings
are frozen, split per label, and two classifiers are scored on the held-out part:

* **split** (``split="paper"``, the default): the paper's fixed per-label train/test counts
  (:data:`PAPER_SPLIT`: 128/40 PVQ, 201/50 WVS, 54/30 GLOBE, 1000/250 situations, 735/250
  control), drawn at random within each ``model$lang`` label, when every label of the source
  has that many answers; otherwise a seeded stratified split holding out ``test_size``
  (20 %) of each label. The report says which one was used and why. ``split="question"``
  holds out ``test_size`` of the *questions* instead, so that no question is in both train and
  test: a stricter variant, not the paper's protocol.
* **kNN** (cosine similarity, ``k`` = 50 as in the paper): majority vote of the ``k``
  most similar training inputs, ties broken by the summed similarity of the tied
  labels. ``k`` is capped at the training size of the smallest label, so a label with
  few examples is not out-voted just because ``k`` exceeds its size. Accuracy and
  weighted F1.
* **linear probe**: softmax regression (one linear layer), Adam lr 2e-3, 20 epochs,
  batch 512, the learning rate decayed by UniVaR's ``LambdaLR`` factor ``1 - epoch / epochs``
  stepped once per epoch; trained with torch on CPU from a zero start with a seeded shuffle,
  so it is deterministic. Accuracy at 1/5/10 (only the ``k`` below the number of labels:
  acc@k is 1 by construction otherwise) and weighted F1.

Chance is ``1 / number of labels`` (``k / labels`` for acc@k). An encoder that separates
models by values scores well above chance on the value sources and much less on the control.

This module is the computation on labelled embeddings (:class:`LabelledSet`). Reading them (run
folders, a bank, QA sources embedded with the chosen encoder) and rendering the report are
:mod:`univar_eval.reports.identify`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from univar_eval.errors import UserError
from univar_eval.pipeline.questionnaire import questionnaire_of_task
from univar_eval.storage.identity import encoder_difference

log = logging.getLogger("univar_eval")

PROBE_LR = 2e-3
PROBE_EPOCHS = 20
PROBE_BATCH = 512
DEFAULT_K = 50
TOP_KS = (1, 5, 10)

#: UniVaR's per-label (train, test) counts of each question source (paper, Table 4; downstream_eval.py).
PAPER_SPLIT: dict[str, tuple[int, int]] = {
    "pvq": (128, 40),
    "wvs": (201, 50),
    "globe": (54, 30),
    "situations": (1000, 250),
    "control": (735, 250),
}
SPLITS = ("paper", "question")
DEFAULT_TEST_SIZE = 0.2


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
    questions: list | None = None  # the question key of each row (see question_keys), for split="question"

    @property
    def label(self) -> str:
        return f"{self.model}${self.lang}"

    @property
    def source(self) -> str:
        """The question source (questionnaire) the answers belong to; sets are evaluated per source."""
        if self.questionnaire:
            return str(self.questionnaire)
        return questionnaire_of_task(self.task) or self.task or "unknown"


def question_keys(records: list[dict]) -> list | None:
    """The question of each record: the questionnaire's item id (shared by every model and language of our
    questionnaires), else the question text; None when the records carry neither."""
    if records and all(r.get("id") is not None and ":" not in str(r.get("id")) for r in records):
        return [str(r["id"]) for r in records]  # our item ids ("pvq-sd_thought-01"), not file:line positions
    if records and all(isinstance(r.get("question"), str) for r in records):
        return [" ".join(r["question"].split()).lower() for r in records]
    return None


def from_distribution(dist, origin: str, model: str | None = None) -> LabelledSet:
    m = dist.manifest
    name = model or m.get("model") or origin
    return LabelledSet(
        model=str(name),
        lang=str(m.get("lang")),
        task=m.get("task"),
        questionnaire=m.get("questionnaire"),
        embeddings=np.asarray(dist.embeddings, np.float32),
        encoder=m.get("encoder") or {},
        origin=origin,
        questions=question_keys(dist.records),
    )


def check_one_encoder(sets: list[LabelledSet]) -> dict:
    """The encoder every set shares; a mix of encoders (or fingerprints) is refused."""
    first = sets[0].encoder
    for s in sets[1:]:
        if encoder_difference(s.encoder, first):
            raise UserError(
                f"{s.origin} was embedded with {s.encoder.get('name')} (fingerprint "
                f"{s.encoder.get('fingerprint_id')}) but {sets[0].origin} with {first.get('name')} "
                f"({first.get('fingerprint_id')}); use inputs from one encoder (--encoder re-embeds "
                "QA sources)"
            )
    return first


def dataset(sets: list[LabelledSet]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stack the sets into (embeddings, label index per row, label names in sorted order)."""
    names = sorted({s.label for s in sets})
    index = {n: i for i, n in enumerate(names)}
    x = np.vstack([s.embeddings for s in sets]).astype(np.float32)
    y = np.concatenate([np.full(len(s.embeddings), index[s.label], dtype=np.int64) for s in sets])
    return x, y, names


def by_source(sets: list[LabelledSet]) -> dict[str, list[LabelledSet]]:
    """The sets grouped by question source, in a stable order (value sources first, the control last)."""
    groups: dict[str, list[LabelledSet]] = {}
    for s in sets:
        groups.setdefault(s.source, []).append(s)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] == "control", kv[0])))


def questions_of(sets: list[LabelledSet]) -> np.ndarray | None:
    """The question key of every row of the stacked sets, or None when a set does not say."""
    if any(s.questions is None or len(s.questions) != len(s.embeddings) for s in sets):
        return None
    return np.array([q for s in sets for q in s.questions], dtype=object)


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


def fixed_split(y: np.ndarray, n_train: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """UniVaR's split: ``n_test`` and ``n_train`` rows drawn at random within every label (rows beyond
    ``n_train + n_test`` are left out). Every label needs ``n_train + n_test`` rows."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < n_train + n_test:
            raise UserError(f"label #{c} has {len(rows)} examples; the fixed split needs {n_train + n_test}")
        rows = rows[rng.permutation(len(rows))]
        test.append(rows[:n_test])
        train.append(rows[n_test : n_test + n_train])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def question_split(
    y: np.ndarray, questions: np.ndarray, test_size: float = DEFAULT_TEST_SIZE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``round(test_size * questions)`` whole questions (at least one, never all): every answer to a
    held-out question, from every label, is in test, so no question is in both train and test."""
    if not 0.0 < test_size < 1.0:
        raise UserError(f"--test-size must be between 0 and 1 (got {test_size})")
    unique = np.array(sorted(set(questions.tolist())), dtype=object)
    if len(unique) < 2:
        raise UserError("the question split needs two or more distinct questions")
    rng = np.random.default_rng(seed)
    n_test = int(min(max(round(test_size * len(unique)), 1), len(unique) - 1))
    held_out = set(unique[rng.permutation(len(unique))[:n_test]].tolist())
    is_test = np.array([q in held_out for q in questions.tolist()], dtype=bool)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    for c in np.unique(y):
        if not np.any(y[train] == c) or not np.any(y[test] == c):
            raise UserError(
                f"label #{c} has no answers on one side of the question split; "
                "it needs answers to more questions (or use the default split)"
            )
    return train, test


def choose_split(
    y: np.ndarray,
    source: str,
    *,
    split: str = "paper",
    test_size: float = DEFAULT_TEST_SIZE,
    seed: int = 0,
    questions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The train/test rows of one source and a description of the split used (kind, counts, why)."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use {' or '.join(SPLITS)}")
    if split == "question":
        if questions is None:
            raise UserError(
                f"{source}: the question split needs the question of every answer, and some inputs "
                "do not record it; use the default split"
            )
        train, test = question_split(y, questions, test_size, seed)
        return (
            train,
            test,
            {
                "kind": "question",
                "test_size": test_size,
                "seed": seed,
                "n_questions": len(set(questions.tolist())),
                "n_test_questions": len(set(questions[test].tolist())),
                "note": f"{len(set(questions[test].tolist()))} of {len(set(questions.tolist()))} "
                "questions held out, none in both train and test (stricter than the paper)",
            },
        )
    smallest = int(np.bincount(y).min()) if len(y) else 0
    counts = PAPER_SPLIT.get(source)
    if counts and smallest >= sum(counts):
        train, test = fixed_split(y, *counts, seed=seed)
        return (
            train,
            test,
            {
                "kind": "paper",
                "n_train_per_label": counts[0],
                "n_test_per_label": counts[1],
                "seed": seed,
                "note": f"the paper's fixed {counts[0]}/{counts[1]} per label",
            },
        )
    why = (
        f"the paper's {counts[0]}/{counts[1]} per label needs {sum(counts)} answers per label, the smallest "
        f"label has {smallest}"
        if counts
        else f"the paper has no fixed counts for {source!r}"
    )
    train, test = stratified_split(y, test_size, seed)
    return (
        train,
        test,
        {
            "kind": "stratified",
            "test_size": test_size,
            "seed": seed,
            "note": f"{round(100 * (1 - test_size))}/{round(100 * test_size)} per label ({why})",
        },
    )


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


def knn_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int, n_labels: int, chunk: int = 1024
) -> np.ndarray:
    """Cosine kNN: majority vote of the ``k`` nearest training rows, ties broken by summed similarity."""
    train_x, test_x = _unit(train_x), _unit(test_x)
    k = max(1, min(k, len(train_x)))
    preds = []
    for start in range(0, len(test_x), chunk):
        sims = test_x[start : start + chunk] @ train_x.T
        nearest = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k < sims.shape[1]
            else np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        )
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


def train_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    n_labels: int,
    *,
    epochs: int = PROBE_EPOCHS,
    lr: float = PROBE_LR,
    batch_size: int = PROBE_BATCH,
    seed: int = 0,
):
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
    # UniVaR's schedule (downstream_eval.py): LambdaLR with factor 1 - epoch / n_epochs, stepped once per epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 - epoch / epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(layer(x[idx]), y[idx])
            loss.backward()
            opt.step()
        schedule.step()

    def logits(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return layer(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))).numpy()

    logits.learning_rates = rates  # the rate of each epoch, for the report and the tests
    return logits


# -- the protocol ------------------------------------------------------------------------------------------
def top_ks(n_labels: int) -> list[int]:
    """The acc@k worth reporting: k = 1 always, larger k only below the number of labels (else it is 1 by
    construction)."""
    return [t for t in TOP_KS if t == 1 or t < n_labels]


def identify(
    x: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    k: int = DEFAULT_K,
    test_size: float = DEFAULT_TEST_SIZE,
    seed: int = 0,
    epochs: int = PROBE_EPOCHS,
    lr: float = PROBE_LR,
    batch_size: int = PROBE_BATCH,
    source: str = "unknown",
    split: str = "paper",
    questions: np.ndarray | None = None,
) -> dict:
    """kNN and linear-probe identification of ``names[y]`` from ``x`` (one question source) on a seeded
    held-out split (:func:`choose_split`)."""
    n_labels = len(names)
    if n_labels < 2:
        raise UserError(
            f"identification needs two labels (model$lang) or more; the inputs have only {', '.join(names) or 'none'}"
        )
    train, test, split_info = choose_split(y, source, split=split, test_size=test_size, seed=seed, questions=questions)
    k_used = effective_k(k, y[train])
    knn_pred = knn_predict(x[train], y[train], x[test], k_used, n_labels)
    probe = train_probe(x[train], y[train], n_labels, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    logits = probe(x[test])
    probe_pred = np.argmax(logits, axis=1)
    train_counts, test_counts = np.bincount(y[train], minlength=n_labels), np.bincount(y[test], minlength=n_labels)
    return {
        "source": source,
        "n_labels": n_labels,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "chance": 1.0 / n_labels,
        "split": split_info,
        "knn": {
            "k": k_used,
            "k_requested": k,
            "accuracy": accuracy(y[test], knn_pred),
            "weighted_f1": weighted_f1(y[test], knn_pred, n_labels),
        },
        "probe": {
            **{f"acc@{t}": accuracy_at_k(logits, y[test], t) for t in top_ks(n_labels)},
            "weighted_f1": weighted_f1(y[test], probe_pred, n_labels),
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "schedule": "LambdaLR 1 - epoch/epochs",
            "steps": epochs * -(-len(train) // batch_size),
        },
        "labels": [
            {"label": n, "n_train": int(train_counts[i]), "n_test": int(test_counts[i])} for i, n in enumerate(names)
        ],
    }


def identify_sources(sets: list[LabelledSet], **kwargs) -> dict[str, dict]:
    """:func:`identify` on each question source separately: ``{source: report}``. A source with a single
    label gets ``{"source", "skipped": why}``; if no source has two labels the inputs are refused."""
    reports: dict[str, dict] = {}
    for source, group in by_source(sets).items():
        x, y, names = dataset(group)
        if len(names) < 2:
            reports[source] = {"source": source, "skipped": f"only one label ({names[0]}); needs two or more"}
            continue
        reports[source] = identify(x, y, names, source=source, questions=questions_of(group), **kwargs)
    if all("skipped" in r for r in reports.values()):
        raise UserError(
            "identification needs two labels (model$lang) or more within one question source; "
            + "; ".join(f"{s}: {r['skipped']}" for s, r in reports.items())
        )
    return reports
