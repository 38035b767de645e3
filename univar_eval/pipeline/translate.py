"""Step: translation. Bring every question-answer pair into English before embedding.

UniVaR translates each QA pair back to English with NLLB-200 so that the encoder
sees values rather than language. English text is never sent through a
translator; ``none`` keeps the original text (for multilingual encoders).

Translators, chosen with ``--metadata '{"translator": ...}'`` or ``UNIVAR_EVAL_TRANSLATOR``:

=============  ======================================  ==========================
name           model                                   note
=============  ======================================  ==========================
nllb-600m      facebook/nllb-200-distilled-600M        default; fits any GPU, runs on CPU
nllb-1.3b      facebook/nllb-200-distilled-1.3B
nllb-3.3b      facebook/nllb-200-3.3B                  as in the UniVaR paper
none           (no translation)                        for multilingual encoders
<folder>       a local seq2seq checkpoint with an NLLB tokenizer
=============  ======================================  ==========================

Inputs are cut at ``max_input_tokens`` (256, as UniVaR did); every cut is counted and
reported. Translations are cached on disk (SQLite, keyed by translation model, source
language and text hash; see :mod:`univar_eval.pipeline.cache`), so a text is translated once.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from univar_eval.errors import UserError
from univar_eval.pipeline.cache import open_cache, text_key
from univar_eval.pipeline.encoders import _default_device
from univar_eval.pipeline.pins import is_pinned, pinned_revision
from univar_eval.pipeline.questionnaire import LANGUAGES, check_language

log = logging.getLogger("univar_eval")

#: name -> (hub id, revision). Revisions are the hub's default branch (unpinned): ``univar-eval pin``
#: writes the commits a user downloaded into the local cards file, which replace them
#: (see :mod:`univar_eval.pipeline.pins`).
NLLB_MODELS = {
    "nllb-600m": ("facebook/nllb-200-distilled-600M", "main"),
    "nllb-1.3b": ("facebook/nllb-200-distilled-1.3B", "main"),
    "nllb-3.3b": ("facebook/nllb-200-3.3B", "main"),
}
MAX_INPUT_TOKENS = 256


@dataclass
class TranslationStats:
    n_cached: int = 0
    n_translated: int = 0
    n_truncated: int = 0

    def add(self, other: "TranslationStats") -> None:
        for f in ("n_cached", "n_translated", "n_truncated"):
            setattr(self, f, getattr(self, f) + getattr(other, f))


class Translator:
    """Interface: ``translate(texts, src_lang)`` returns English texts, same order."""

    name = "abstract"
    #: no progress bar and no per-call truncation warning: the caller (translating in blocks) reports totals
    quiet = False

    def __init__(self) -> None:
        self.stats = TranslationStats()

    def translate(self, texts: Sequence[str], src_lang: str, label: str | None = None, cache: bool = True) -> list[str]:
        """``label`` names the texts on the progress bar (e.g. the task); ``cache=False`` translates every text
        afresh, neither reading nor writing the translation cache (verification does)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


class NoTranslation(Translator):
    name = "none"

    def translate(self, texts: Sequence[str], src_lang: str, label: str | None = None, cache: bool = True) -> list[str]:
        return list(texts)


@dataclass
class NllbTranslator(Translator):
    """NLLB-200 (or any seq2seq model with NLLB's language-code tokens) on transformers."""

    name: str  # an instance field here, a class attribute on the other translators
    model_id: str = ""
    revision: str | None = None
    device: str | None = None
    batch_size: int = 16
    max_input_tokens: int = MAX_INPUT_TOKENS
    num_beams: int = 1
    stats: TranslationStats = field(default_factory=TranslationStats)
    _model: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    quiet: bool = False

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "revision": self.revision,
            "revision_pinned": is_pinned(self.revision),
            "max_input_tokens": self.max_input_tokens,
            "num_beams": self.num_beams,
        }

    def _load(self):
        if self._model is None:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            self.device = self.device or _default_device()
            kw: dict[str, Any] = {}
            if self.revision and not Path(self.model_id).exists():
                kw["revision"] = self.revision
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_id, **kw)
                dtype = "float16" if str(self.device).startswith("cuda") else None
                self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_id, dtype=dtype, **kw)
            except OSError as e:
                raise UserError(
                    f"translator {self.name} ({self.model_id}) cannot be loaded ({str(e).splitlines()[0]}); "
                    f"download it first (`hf download {self.model_id} --revision {self.revision or 'main'}`) "
                    "or choose the "
                    "translator 'none', which embeds the original text"
                ) from None
            # we always pass max_new_tokens; a max_length in the model's own generation config (NLLB: 200) only
            # makes transformers warn, on every batch, that max_new_tokens takes precedence
            self._model.generation_config.max_length = None
            self._model.to(self.device).eval()
        return self._model, self._tokenizer

    def translate(self, texts: Sequence[str], src_lang: str, label: str | None = None, cache: bool = True) -> list[str]:
        check_language(src_lang)
        texts = list(texts)
        stats = TranslationStats()
        if src_lang == "eng":
            return texts
        if not cache:  # verification: every text through the model, nothing read from or written to the cache
            unique = list(dict.fromkeys(texts))
            done, truncated = self._generate(unique, LANGUAGES[src_lang], label)
            self.stats.add(TranslationStats(n_translated=len(unique), n_truncated=truncated))
            fresh = dict(zip(unique, done))
            return [fresh[t] for t in texts]
        store = open_cache("translations")
        namespace = f"{self.model_id}@{self.revision}:{self.max_input_tokens}:{self.num_beams}:{src_lang}"
        keys = [text_key(t) for t in texts]
        found = {k: v.decode("utf-8") for k, v in store.get_many(namespace, keys).items()}
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        stats.n_cached = sum(k in found for k in keys)
        if todo:
            done, truncated = self._generate(todo, LANGUAGES[src_lang], label)
            stats.n_translated, stats.n_truncated = len(todo), truncated
            new = {text_key(t): out for t, out in zip(todo, done)}
            store.put_many(namespace, [(k, v.encode("utf-8")) for k, v in new.items()])
            found.update(new)
        if stats.n_truncated and not self.quiet:
            log.warning(
                "univar-eval: %d of %d %s texts were longer than %d tokens and were cut before translation",
                stats.n_truncated,
                len(todo),
                src_lang,
                self.max_input_tokens,
            )
        self.stats.add(stats)
        return [found[k] for k in keys]

    def _generate(self, texts: list[str], src_code: str, label: str | None = None) -> tuple[list[str], int]:
        import torch
        from tqdm.auto import tqdm

        model, tok = self._load()
        tok.src_lang = src_code
        eng = tok.convert_tokens_to_ids("eng_Latn")
        if eng is None or eng == tok.unk_token_id:
            raise UserError(f"translator {self.name}: its tokenizer has no eng_Latn token; use an NLLB-200 model")
        lengths = [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]
        truncated = sum(n > self.max_input_tokens for n in lengths)
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # similar lengths batch together
        out: list[str] = [""] * len(texts)
        # one bar per call (a task's questions, then its answers): translation is the slow step on a CPU
        bar = tqdm(
            total=len(texts),
            desc=f"translating {label or src_code} -> eng_Latn",
            unit="text",
            disable=True if not texts or self.quiet else None,
        )  # None: shown on a terminal, not in pipes or logs
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok(
                [texts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_input_tokens,
            ).to(model.device)
            with torch.inference_mode():
                gen = model.generate(
                    **enc,
                    forced_bos_token_id=eng,
                    num_beams=self.num_beams,
                    max_new_tokens=int(self.max_input_tokens * 1.5),
                )
            for i, text in zip(idx, tok.batch_decode(gen, skip_special_tokens=True)):
                out[i] = text.strip()
            bar.update(len(idx))
        bar.close()
        return out, truncated


_LOADED: dict[tuple, Translator] = {}


def get_translator(name: str, device: str | None = None, batch_size: int = 16) -> Translator:
    """The translator called ``name`` (a name from the table above or a local folder), loaded lazily, once."""
    if name in (None, "", "none"):
        return NoTranslation()
    key = (name, device)
    if key not in _LOADED:
        if name in NLLB_MODELS:
            model_id, shipped = NLLB_MODELS[name]
            revision = pinned_revision("translators", name, model_id, shipped)  # `univar-eval pin`
            _LOADED[key] = NllbTranslator(
                name=name, model_id=model_id, revision=revision, device=device, batch_size=batch_size
            )
        elif Path(name).is_dir():
            _LOADED[key] = NllbTranslator(
                name=f"local:{Path(name).resolve().name}",
                model_id=str(Path(name).resolve()),
                device=device,
                batch_size=batch_size,
            )
        else:
            raise UserError(
                f"unknown translator {name!r}; use one of {', '.join([*NLLB_MODELS, 'none'])} "
                "or a local NLLB checkpoint folder"
            )
    return _LOADED[key]


@contextlib.contextmanager
def quietly(translator: Translator) -> Iterator[Translator]:
    """``translator`` without its own progress bars and truncation warnings within the block."""
    was = translator.quiet
    translator.quiet = True
    try:
        yield translator
    finally:
        translator.quiet = was


def to_english(
    questions: Sequence[str],
    answers: Sequence[str],
    lang: str,
    translator: Translator,
    label: str | None = None,
    cache: bool = True,
) -> tuple[list[str], list[str]]:
    """Translate questions and answers of language ``lang`` into English (English passes through).

    Each distinct question is translated once, however many answers it has. ``cache=False``: past the
    translation cache (see :meth:`Translator.translate`).
    """
    if lang == "eng" or isinstance(translator, NoTranslation):
        return list(questions), list(answers)
    unique_q = list(dict.fromkeys(questions))
    q_map = dict(zip(unique_q, translator.translate(unique_q, lang, label=f"{label or lang} questions", cache=cache)))
    return [q_map[q] for q in questions], translator.translate(
        answers, lang, label=f"{label or lang} answers", cache=cache
    )
