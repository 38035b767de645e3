"""Step: encoder. Turn formatted question-answer texts into value embeddings.

Encoders are described by cards, one YAML file per encoder in ``encoders/``
(see ``encoders/README.md``). A card names the model (hub id and pinned
revision, or a Python package that bundles it), its architecture and how it is
loaded. UniVaR's own checkpoints are NomicBERT models whose hub code was
written for transformers 4; they are loaded natively (``univar_eval.pipeline.nomic``),
never with ``trust_remote_code``.

Every encoder returns float32, L2-normalised embeddings, and carries a
*fingerprint*: its output on fixed probe texts, projected to a few numbers, so
that embeddings made with another encoder (or another revision, tokenizer or
pooling) are recognised and never compared silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from univar_eval.errors import UserError
from univar_eval.pipeline import pins
from univar_eval.resources import encoders_dir

log = logging.getLogger(__name__)

#: Fixed texts whose embeddings identify an encoder (in UniVaR's input format).
PROBE_TEXTS = (
    "Q: Would you tell a friend a painful truth? A: Yes, honesty matters more than comfort.",
    "Q: Should rules ever be broken? A: Only when following them would cause real harm.",
    "Q: What matters most in a good life? A: Family, health and the freedom to choose my path.",
    "Q: How do you treat strangers? A: With the same respect I would want for myself.",
)
_FINGERPRINT_DIMS = 8


@dataclass(frozen=True)
class EncoderCard:
    name: str
    model_id: str | None = None
    revision: str | None = None
    package: str | None = None
    architecture: str = "sentence-transformers"
    dimension: int | None = None
    max_seq_length: int | None = None
    description: str = ""
    reference: str = ""

    @property
    def source(self) -> str:
        return self.model_id or f"python package {self.package}"


CARD_KEYS = tuple(f.name for f in fields(EncoderCard))


def read_card(path: Path) -> EncoderCard:
    """One encoder card; unknown keys and a missing name are refused (a typo must not pass silently)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise UserError(f"encoder card {path}: expected a mapping of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(CARD_KEYS))
    if unknown:
        raise UserError(
            f"encoder card {path}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(CARD_KEYS)}"
        )
    if not raw.get("name"):
        raise UserError(f"encoder card {path}: 'name' is missing")
    if raw.get("dimension") is not None and (not isinstance(raw["dimension"], int) or raw["dimension"] < 1):
        raise UserError(f"encoder card {path}: dimension must be a positive integer, got {raw['dimension']!r}")
    return EncoderCard(**raw)


def shipped_cards() -> dict[str, EncoderCard]:
    """All encoder cards shipped with the package, by name, as written (revisions checked, no local pins)."""
    cards = {}
    for path in sorted(encoders_dir().glob("*.yaml")):
        card = read_card(path)
        pins.check_revision(card.revision, str(path))
        cards[card.name] = card
    return cards


def list_cards() -> dict[str, EncoderCard]:
    """All encoder cards shipped with the package, by name, with the full hashes of the local cards file
    (``univar-eval pin``) in place of unpinned revisions."""
    return {
        name: dataclasses.replace(card, revision=pins.pinned_revision("encoders", name, card.model_id, card.revision))
        if card.model_id and not card.package
        else card
        for name, card in shipped_cards().items()
    }


def get_card(name: str) -> EncoderCard:
    """The card for ``name``; a local folder holding a sentence-transformers model also works."""
    cards = list_cards()
    if name in cards:
        return cards[name]
    if Path(name).is_dir():
        path = str(Path(name).resolve())
        return EncoderCard(name=path, model_id=path, revision="local", architecture=_local_architecture(Path(path)))
    raise UserError(
        f"unknown encoder {name!r}; choose one of {', '.join(sorted(cards))} "
        "(univar-eval encoders lists them) or give the path of a local sentence-transformers model"
    )


def _local_architecture(folder: Path) -> str:
    """``nomic_bert`` for a folder holding an original-format NomicBERT checkpoint, else sentence-transformers."""
    from univar_eval.pipeline.nomic import is_original_nomic_config

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "sentence-transformers"
    return "nomic_bert" if isinstance(config, dict) and is_original_nomic_config(config) else "sentence-transformers"


class Encoder:
    """A loaded encoder: ``encode(texts)`` gives normalised float32 embeddings."""

    def __init__(self, card: EncoderCard, model, device: str | None = None):
        self.card = card
        self.model = model
        self.device = device
        self._fingerprint: list[float] | None = None

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def revision(self) -> str | None:
        return self.card.revision

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getter()
        return int(dim) if dim else int(self.encode(PROBE_TEXTS[:1], progress=False).shape[1])

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if progress is None:
            progress = len(texts) >= 64
        emb = self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(emb, dtype=np.float32)

    @property
    def max_length(self) -> int | None:
        """The longest input in tokens (special tokens included); longer texts are cut by the model."""
        value = getattr(self.model, "max_seq_length", None) or self.card.max_seq_length
        return int(value) if value else None

    def token_lengths(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the encoder's tokens, special tokens included (None when the tokenizer is unknown)."""
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None or not texts:
            return None if tokenizer is None else []
        ids = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(i) for i in ids]

    @property
    def fingerprint(self) -> list[float]:
        """The encoder's output on :data:`PROBE_TEXTS`, projected to a few fixed directions."""
        if self._fingerprint is None:
            emb = self.encode(PROBE_TEXTS, progress=False).astype(np.float64)
            self._fingerprint = fingerprint_of(emb)
        return self._fingerprint

    def describe(self) -> dict:
        """What a manifest records about the encoder."""
        return {
            "name": self.name,
            "model_id": self.card.model_id or self.card.package,
            "revision": self.revision,
            "revision_pinned": pins.is_pinned(self.revision, package=self.card.package),
            "dimension": self.dimension,
            "fingerprint": self.fingerprint,
            "fingerprint_id": fingerprint_id(self.fingerprint),
        }


def fingerprint_of(probe_embeddings: np.ndarray) -> list[float]:
    dim = probe_embeddings.shape[1]
    proj = np.random.RandomState(20240411).standard_normal((dim, _FINGERPRINT_DIMS)) / np.sqrt(_FINGERPRINT_DIMS)
    values = (probe_embeddings @ proj).ravel()
    return [round(float(v), 4) for v in values]


def fingerprint_id(fingerprint: Sequence[float]) -> str:
    """A short label for people, never a test of equality: two fingerprints within
    :data:`univar_eval.storage.identity.FINGERPRINT_TOLERANCE` can round to different ids (0.049 vs 0.051). Equality of
    encoders is judged by :func:`univar_eval.storage.identity.encoder_difference` alone."""
    coarse = ",".join(f"{v:.1f}" for v in fingerprint)
    return hashlib.sha256(coarse.encode()).hexdigest()[:12]


def _default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


_LOADED: dict[tuple[str, str], Encoder] = {}


def load_encoder(name: str, device: str | None = None) -> Encoder:
    """Load (once per process) the encoder named by a card or a local path."""
    card = get_card(name)
    device = device or os.environ.get("UNIVAR_EVAL_DEVICE") or _default_device()
    key = (card.name, device)
    if key not in _LOADED:
        encoder = Encoder(card, _load_model(card, device), device)
        check_dimension(encoder)
        _LOADED[key] = encoder
    return _LOADED[key]


def check_dimension(encoder: Encoder) -> None:
    """The card's ``dimension`` must be what the loaded model produces (a wrong card or checkpoint)."""
    expected = encoder.card.dimension
    if expected is not None and encoder.dimension != expected:
        raise UserError(
            f"encoder {encoder.name!r}: its card says dimension {expected} but the loaded model "
            f"gives {encoder.dimension}; fix the card's dimension or the model it names"
        )


def _load_model(card: EncoderCard, device: str):
    from sentence_transformers import SentenceTransformer

    if card.package:
        try:
            module = importlib.import_module(card.package)
        except ImportError:
            raise UserError(
                f"encoder {card.name!r} needs the Python package {card.package!r}: "
                f"pip install '.[offline]' in a univar-eval checkout (or pip install {card.package.replace('_', '-')})"
            ) from None
        path = str(module.get_model_path())
        model = SentenceTransformer(path, device=device)
    elif card.architecture == "nomic_bert":
        from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

        if not card.model_id:
            raise UserError(f"encoder card {card.name}: a nomic_bert card needs a model_id (a hub id or a folder)")
        model = load_nomic_sentence_transformer(card.model_id, revision=card.revision, device=device)
    else:
        try:
            model = SentenceTransformer(
                card.model_id, revision=card.revision if card.revision != "local" else None, device=device
            )
        except OSError as e:
            raise _unavailable(card, e) from None
    if card.max_seq_length:
        model.max_seq_length = card.max_seq_length
    return model


def _unavailable(card: EncoderCard, error: Exception) -> UserError:
    return UserError(
        f"encoder {card.name!r} ({card.model_id}@{card.revision}) could not be loaded ({type(error).__name__}); "
        f"download it once with `hf download {card.model_id} --revision {card.revision}` "
        'on a machine with internet, or use the offline encoder: --metadata \'{"encoder": "minilm"}\' '
        "(pip install '.[offline]' in a univar-eval checkout)"
    )
