"""Tiny models for offline smoke runs, tests and the persona demo.

Nothing can be downloaded from the Hugging Face hub in CI, so the tests build
their models here: a byte-level BPE tokenizer trained on a small built-in
corpus (with a chat template and the special tokens lm-eval expects) and a
two-layer Llama with random weights. lm-eval's ``--model hf`` loads the folder
like any real checkpoint. The answers are gibberish, but they are real model
output going through the real code paths.
"""

from __future__ import annotations

from pathlib import Path

from univar_eval.pipeline import questionnaire

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = [
    "Question: What would you do if a friend asked you to keep a secret that could hurt someone?",
    "Answer: I would talk to my friend first and explain why honesty matters to me.",
    "Family, tradition, freedom, security, achievement, kindness, fairness and respect.",
    "I think people should be free to choose their own path, but care for others too.",
    "Rules keep a community safe; breaking them needs a very good reason.",
    "The quick brown fox jumps over the lazy dog. 0123456789 ,.;:!?'\"()-",
    "Option A B C D E F G H I. I choose C because it is fair to both of us.",
    "Honesty, helpfulness, competence, reliability, empathy, integrity, curiosity.",
]


def train_tokenizer(vocab_size: int = 400, corpus: list[str] | None = None):
    """A byte-level BPE tokenizer trained offline, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((corpus or _CORPUS) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_causal_lm(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Llama and its tokenizer to ``folder``; return the folder."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    torch.manual_seed(seed)
    model = _llama(tokenizer, hidden=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _llama(tokenizer, hidden: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_persona_lm(folder: str | Path, persona: str, seed: int = 0, steps: int = 240, n_questions: int = 64) -> Path:
    """Train a tiny Llama on one persona's answers to PVQ questions (seconds on a CPU); return the folder.

    The training text is the task's own frame, ``Question: ...\nAnswer: ...``, so the model answers
    the questionnaire in its persona's voice. Training is seeded and single-threaded: the same
    persona and seed give the same weights, and greedy answers, on every run.
    """
    import torch

    from univar_eval.demo import personas
    from univar_eval.errors import UserError
    from univar_eval.pipeline import questionnaire

    if persona not in personas.PERSONAS:
        raise UserError(f"unknown persona {persona!r}; choose one of {', '.join(personas.names())}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    questions = [r["question"] for r in questionnaire.load("pvq", "eng").records[:n_questions]]
    texts = [f"Question: {q}\nAnswer: {a}" for q, a in personas.training_pairs(persona, questions)]
    vocab_corpus = _CORPUS + [a for answers in personas.PERSONAS.values() for a in answers] + questions
    tokenizer = train_tokenizer(vocab_size=600, corpus=vocab_corpus)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic, and kind to a shared machine
    try:
        torch.manual_seed(seed)
        model = _llama(tokenizer, hidden=64)
        eos = tokenizer.eos_token_id
        rows = [tokenizer(t)["input_ids"] + [eos] for t in texts]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            labels[i, : len(r)] = torch.tensor(r)
        mask = (labels != -100).long()
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(steps):
            batch = torch.randperm(len(rows), generator=generator)[:16]
            loss = model(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
    finally:
        torch.set_num_threads(threads)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_translator(folder: str | Path, seed: int = 0, vocab_size: int = 2000) -> Path:
    """Write a tiny random-weight NLLB-architecture (M2M100) translator and its tokenizer to ``folder``.

    The tokenizer is NLLB's (sentencepiece-style BPE with NLLB-200's language-code tokens such as
    ``zho_Hans``), trained offline on the questionnaires shipped with the package, so the real
    translation code path runs: source-language prefix, forced English first token, batching,
    truncation. The output is gibberish.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = list(_CORPUS)
    for lang in questionnaire.available_languages("pvq"):
        corpus += [r["question"] for r in questionnaire.load("pvq", lang).records[:40]]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    model_json = __import__("json").loads(tok.to_str())["model"]
    tokenizer = NllbTokenizer(
        vocab=model_json["vocab"],
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]],
        src_lang="eng_Latn",
        tgt_lang="eng_Latn",
    )
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    model = M2M100ForConditionalGeneration(config)
    model.generation_config.max_length = 64
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
