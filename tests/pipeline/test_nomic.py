"""Native loading of original-format NomicBERT checkpoints (UniVaR's encoders), fully offline.

Tiny checkpoints are written in the *original* layout (GPT-2 style config
fields, ``attn.Wqkv``, ``emb_ln``, sentence-transformers files as ST 2/3 wrote
them), in both supported variants: rotary with SwiGLU (``mlp.fc11/fc12/fc2``,
nomic-embed-text-v1) and learned absolute positions with GELU (``mlp.fc1/fc2``,
``embeddings.position_embeddings``; the contrastors settings UniVaR's training
README lists), the latter with and without biases. The decisive tests compare each
loaded model with a plain-torch forward pass written from the original NomicBERT
math (post-norm blocks; non-interleaved rotary over the whole head and
``fc2(fc11(x) * silu(fc12(x)))``, or position embeddings added to the input and
``fc2(gelu(fc1(x)))``), computed directly on the original tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from univar_eval.errors import UserError

HIDDEN, HEADS, LAYERS, N_INNER = 32, 4, 2, 64
MLP_WIDTH = 256  # the original gated MLP rounds n_inner up to a multiple of 256
ROPE_BASE, EPS, MAX_SEQ = 1000.0, 1e-12, 64

TEXTS = [
    "Q: Would you tell a friend a painful truth? A: Yes, honesty matters more than comfort.",
    "Q: Should rules ever be broken? A: Only when following them would cause real harm.",
    "Q: What matters most? A: Family.",
    "honesty",
]

_WORDS = (
    "q a would you tell friend painful truth yes honesty matters more than comfort should rules ever be broken "
    "only when following them cause real harm what most family good life health and the freedom to choose my "
    "path how do treat strangers with same respect i want for myself"
).split()


def original_config(vocab_size: int) -> dict:
    """A tiny config.json as the original (remote-code) NomicBERT writes it."""
    return {
        "_name_or_path": "nomic-ai/nomic-embed-text-v1",
        "activation_function": "swiglu",
        "architectures": ["NomicBertModel"],
        "attn_pdrop": 0.0,
        "auto_map": {
            "AutoConfig": "configuration_hf_nomic_bert.NomicBertConfig",
            "AutoModel": "modeling_hf_nomic_bert.NomicBertModel",
            "AutoModelForMaskedLM": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertForPreTraining",
        },
        "bos_token_id": None,
        "causal": False,
        "dense_seq_output": True,
        "embd_pdrop": 0.0,
        "eos_token_id": None,
        "fused_bias_fc": True,
        "fused_dropout_add_ln": True,
        "initializer_range": 0.02,
        "layer_norm_epsilon": EPS,
        "max_trained_positions": 2048,
        "mlp_fc1_bias": False,
        "mlp_fc2_bias": False,
        "model_type": "nomic_bert",
        "n_embd": HIDDEN,
        "n_head": HEADS,
        "n_inner": N_INNER,
        "n_layer": LAYERS,
        "n_positions": 8192,
        "pad_vocab_size_multiple": 8,
        "parallel_block": False,
        "parallel_block_tied_norm": False,
        "prenorm": False,
        "qkv_proj_bias": False,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "rotary_emb_base": ROPE_BASE,
        "rotary_emb_fraction": 1.0,
        "rotary_emb_interleaved": False,
        "rotary_emb_scale_base": None,
        "rotary_scaling_factor": None,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.0,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": "4.41.2",
        "type_vocab_size": 2,
        "use_cache": True,
        "use_flash_attn": True,
        "use_rms_norm": False,
        "use_xentropy": True,
        "vocab_size": vocab_size,
    }


def original_weights(padded_vocab: int, seed: int = 7) -> dict:
    """Random tensors under the original key names (fused Wqkv, fc11/fc12/fc2, emb_ln, norm1/norm2)."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.3, offset=0.0):
        return (torch.randn(*shape, generator=g) * scale + offset).contiguous()

    w = {
        "embeddings.word_embeddings.weight": rnd(padded_vocab, HIDDEN, scale=1.0),
        "embeddings.token_type_embeddings.weight": rnd(2, HIDDEN, scale=0.5),
        "emb_ln.weight": rnd(HIDDEN, scale=0.1, offset=1.0),
        "emb_ln.bias": rnd(HIDDEN, scale=0.1),
    }
    for i in range(LAYERS):
        p = f"encoder.layers.{i}."
        w[p + "attn.Wqkv.weight"] = rnd(3 * HIDDEN, HIDDEN)
        w[p + "attn.out_proj.weight"] = rnd(HIDDEN, HIDDEN)
        w[p + "mlp.fc11.weight"] = rnd(MLP_WIDTH, HIDDEN)
        w[p + "mlp.fc12.weight"] = rnd(MLP_WIDTH, HIDDEN)
        w[p + "mlp.fc2.weight"] = rnd(HIDDEN, MLP_WIDTH, scale=0.1)
        for norm in ("norm1", "norm2"):
            w[p + f"{norm}.weight"] = rnd(HIDDEN, scale=0.1, offset=1.0)
            w[p + f"{norm}.bias"] = rnd(HIDDEN, scale=0.1)
    return w


def write_tokenizer(folder: Path) -> int:
    """A BERT WordPiece tokenizer (uncased) with a hand-written vocabulary; returns its size."""
    from transformers import BertTokenizerFast

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,?!:;'-", *letters, *[f"##{c}" for c in letters]]
    vocab += [w for w in dict.fromkeys(_WORDS) if w not in vocab]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=8192)
    tok.save_pretrained(str(folder))  # tokenizer.json, tokenizer_config.json, vocab.txt
    assert len(tok) == len(vocab)
    return len(vocab)


ABS_POSITIONS, ABS_INNER = 96, 48  # learned position table; the plain MLP is n_inner wide (no rounding)


def absolute_config(vocab_size: int, bias: bool) -> dict:
    """The absolute-position, GELU variant: rotary_emb_fraction 0.0, activation_function gelu."""
    return {
        **original_config(vocab_size),
        "activation_function": "gelu",
        "rotary_emb_fraction": 0.0,
        "n_positions": ABS_POSITIONS,
        "n_inner": ABS_INNER,
        "qkv_proj_bias": bias,
        "mlp_fc1_bias": bias,
        "mlp_fc2_bias": bias,
    }


def absolute_weights(padded_vocab: int, bias: bool, seed: int = 11) -> dict:
    """Random tensors under the original key names of the absolute variant (fc1/fc2, position embeddings)."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.3, offset=0.0):
        return (torch.randn(*shape, generator=g) * scale + offset).contiguous()

    w = {
        "embeddings.word_embeddings.weight": rnd(padded_vocab, HIDDEN, scale=1.0),
        "embeddings.position_embeddings.weight": rnd(ABS_POSITIONS, HIDDEN, scale=0.5),
        "embeddings.token_type_embeddings.weight": rnd(2, HIDDEN, scale=0.5),
        "emb_ln.weight": rnd(HIDDEN, scale=0.1, offset=1.0),
        "emb_ln.bias": rnd(HIDDEN, scale=0.1),
    }
    for i in range(LAYERS):
        p = f"encoder.layers.{i}."
        w[p + "attn.Wqkv.weight"] = rnd(3 * HIDDEN, HIDDEN)
        w[p + "attn.out_proj.weight"] = rnd(HIDDEN, HIDDEN)
        w[p + "mlp.fc1.weight"] = rnd(ABS_INNER, HIDDEN)
        w[p + "mlp.fc2.weight"] = rnd(HIDDEN, ABS_INNER, scale=0.2)
        if bias:
            w[p + "attn.Wqkv.bias"] = rnd(3 * HIDDEN, scale=0.2)
            w[p + "attn.out_proj.bias"] = rnd(HIDDEN, scale=0.2)
            w[p + "mlp.fc1.bias"] = rnd(ABS_INNER, scale=0.2)
            w[p + "mlp.fc2.bias"] = rnd(HIDDEN, scale=0.2)
        for norm in ("norm1", "norm2"):
            w[p + f"{norm}.weight"] = rnd(HIDDEN, scale=0.1, offset=1.0)
            w[p + f"{norm}.bias"] = rnd(HIDDEN, scale=0.1)
    return w


def write_checkpoint(folder: Path, seed: int = 7, variant: str = "rotary", bias: bool = True) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_tokenizer(folder)
    padded = vocab + (-vocab) % 8
    config = original_config(vocab) if variant == "rotary" else absolute_config(vocab, bias)
    weights = original_weights(padded, seed) if variant == "rotary" else absolute_weights(padded, bias, seed)
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ],
            indent=2,
        ),
        encoding="utf-8",
    )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": HIDDEN,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
                "pooling_mode_weightedmean_tokens": False,
                "pooling_mode_lasttoken": False,
                "include_prompt": True,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_SEQ, "do_lower_case": False}), encoding="utf-8"
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "__version__": {"sentence_transformers": "3.0.1", "transformers": "4.41.2", "pytorch": "2.3.0"},
                "prompts": {},
                "default_prompt_name": None,
                "similarity_fn_name": None,
            }
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def tiny_nomic(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("tiny-nomic") / "ckpt")


@pytest.fixture(scope="module")
def loaded(tiny_nomic):
    from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

    return load_nomic_sentence_transformer(str(tiny_nomic), device="cpu")


def read_original(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# --------------------------------------------------------------------------- reference forward pass (original math)


def reference_embedding(w: dict, token_ids: list[int]):
    """Mean-pooled, L2-normalised embedding of one unpadded sequence, in float64, from the original tensors."""
    import torch
    import torch.nn.functional as F

    w = {k: v.double() for k, v in w.items()}
    d = HIDDEN // HEADS
    n = len(token_ids)
    ids = torch.tensor(token_ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (HIDDEN,), w["emb_ln.weight"], w["emb_ln.bias"], EPS)

    inv_freq = 1.0 / ROPE_BASE ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)  # (n, d/2)
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]

    def rotary(t):  # (n, heads, d); GPT-NeoX style: first half pairs with second half
        a, b = t[..., : d // 2], t[..., d // 2 :]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    for i in range(LAYERS):
        p = f"encoder.layers.{i}."
        qkv = (x @ w[p + "attn.Wqkv.weight"].T).view(n, 3, HEADS, d)
        q, k, v = rotary(qkv[:, 0]), rotary(qkv[:, 1]), qkv[:, 2]
        att = torch.softmax(torch.einsum("qhd,khd->hqk", q, k) / d**0.5, dim=-1)
        ctx = torch.einsum("hqk,khd->qhd", att, v).reshape(n, HIDDEN)
        x = F.layer_norm(
            x + ctx @ w[p + "attn.out_proj.weight"].T, (HIDDEN,), w[p + "norm1.weight"], w[p + "norm1.bias"], EPS
        )
        up = x @ w[p + "mlp.fc11.weight"].T
        gate = x @ w[p + "mlp.fc12.weight"].T
        mlp = (up * F.silu(gate)) @ w[p + "mlp.fc2.weight"].T
        x = F.layer_norm(x + mlp, (HIDDEN,), w[p + "norm2.weight"], w[p + "norm2.bias"], EPS)
    pooled = x.mean(dim=0)
    return (pooled / pooled.norm()).numpy()


def reference_absolute_embedding(w: dict, token_ids: list[int]):
    """The same for the absolute variant: learned positions added to the input, no rotary, and the plain
    MLP ``fc2(gelu(fc1(x)))`` with exact (erf) GELU; biases where the file has them."""
    import torch
    import torch.nn.functional as F

    w = {k: v.double() for k, v in w.items()}
    d = HIDDEN // HEADS
    n = len(token_ids)
    ids = torch.tensor(token_ids)

    def linear(x, name):
        out = x @ w[name + ".weight"].T
        return out + w[name + ".bias"] if name + ".bias" in w else out

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = F.layer_norm(x, (HIDDEN,), w["emb_ln.weight"], w["emb_ln.bias"], EPS)
    for i in range(LAYERS):
        p = f"encoder.layers.{i}."
        qkv = linear(x, p + "attn.Wqkv").view(n, 3, HEADS, d)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        att = torch.softmax(torch.einsum("qhd,khd->hqk", q, k) / d**0.5, dim=-1)
        ctx = torch.einsum("hqk,khd->qhd", att, v).reshape(n, HIDDEN)
        x = F.layer_norm(
            x + linear(ctx, p + "attn.out_proj"), (HIDDEN,), w[p + "norm1.weight"], w[p + "norm1.bias"], EPS
        )
        hidden = linear(x, p + "mlp.fc1")
        hidden = 0.5 * hidden * (1.0 + torch.erf(hidden / 2**0.5))  # exact GELU, written out
        x = F.layer_norm(x + linear(hidden, p + "mlp.fc2"), (HIDDEN,), w[p + "norm2.weight"], w[p + "norm2.bias"], EPS)
    pooled = x.mean(dim=0)
    return (pooled / pooled.norm()).numpy()


# --------------------------------------------------------------------------- config translation


def test_translate_config_maps_original_fields():
    from univar_eval.pipeline.nomic import translate_config

    out = translate_config(original_config(99))
    assert out["hidden_size"] == HIDDEN and out["num_attention_heads"] == HEADS and out["num_hidden_layers"] == LAYERS
    assert out["head_dim"] == HIDDEN // HEADS
    assert out["intermediate_size"] == MLP_WIDTH  # 64 rounded up to 256, as the original gated MLP does
    assert out["vocab_size"] == 104  # 99 padded to a multiple of pad_vocab_size_multiple=8
    assert out["layer_norm_eps"] == EPS
    assert out["hidden_act"] == "silu"
    assert out["rope_parameters"] == {"rope_type": "default", "rope_theta": ROPE_BASE}
    assert out["max_position_embeddings"] == 8192 and out["type_vocab_size"] == 2
    assert "auto_map" not in out and "n_embd" not in out
    # nomic-embed-text-v1's sizes: n_inner 3072 stays 3072; without n_inner, 8/3 * 768 = 2048
    big = {**original_config(30528), "n_embd": 768, "n_head": 12, "n_layer": 12, "n_inner": 3072}
    assert translate_config(big)["intermediate_size"] == 3072
    assert translate_config({**big, "n_inner": None})["intermediate_size"] == 2048
    from transformers import NomicBertConfig

    assert NomicBertConfig(**out).head_dim == HIDDEN // HEADS


@pytest.mark.parametrize(
    "field,value",
    [
        ("rotary_emb_interleaved", True),
        ("rotary_emb_fraction", 0.5),
        ("rotary_emb_fraction", 0.0),  # with swiglu: a mix of the two variants
        ("causal", True),
        ("prenorm", True),
        ("qkv_proj_bias", True),
        ("mlp_fc1_bias", True),
        ("activation_function", "gelu"),
        ("rotary_emb_scale_base", 512),
        ("rotary_head_dim", True),
        ("num_heads_kv", 2),
    ],
)
def test_translate_config_refuses_settings_the_native_model_computes_differently(field, value):
    from univar_eval.pipeline.nomic import translate_config

    with pytest.raises(UserError, match=field):
        translate_config({**original_config(99), field: value})


def test_translate_config_uses_original_defaults_for_missing_fields():
    from univar_eval.pipeline.nomic import translate_config

    cfg = original_config(99)
    del cfg["qkv_proj_bias"]  # the original default is True: biases the native model lacks
    with pytest.raises(UserError, match="qkv_proj_bias"):
        translate_config(cfg)
    with pytest.raises(UserError, match="not an original NomicBERT"):
        translate_config({"model_type": "nomic_bert", "hidden_size": 768})


def test_translate_config_of_the_absolute_variant():
    from transformers import BertConfig

    from univar_eval.pipeline.nomic import model_variant, translate_config

    cfg = absolute_config(99, bias=True)
    assert model_variant(cfg) == "absolute" and model_variant(original_config(99)) == "rotary"
    out = translate_config(cfg)
    assert out["hidden_act"] == "gelu" and out["intermediate_size"] == ABS_INNER  # plain MLP: no rounding to 256
    assert out["max_position_embeddings"] == ABS_POSITIONS and out["vocab_size"] == 104
    assert "rope_parameters" not in out
    assert translate_config({**cfg, "n_inner": None})["intermediate_size"] == 4 * HIDDEN  # the original default
    assert BertConfig(**out).hidden_size == HIDDEN
    # the absolute variant ignores rotary-only settings; biases are allowed
    assert translate_config({**cfg, "rotary_emb_interleaved": True})["hidden_act"] == "gelu"


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"activation_function": "gelu_new"}, "activation_function"),
        ({"activation_function": "relu"}, "activation_function"),
        ({"rotary_emb_fraction": 0.25}, "rotary_emb_fraction"),
        ({"rotary_emb_fraction": 1.0}, "activation_function"),  # rotary with a plain GELU MLP: not a supported variant
        ({"n_positions": 0}, "n_positions"),
        ({"prenorm": True}, "prenorm"),
        ({"causal": True}, "causal"),
    ],
)
def test_absolute_variant_refuses_anything_else_in_one_line(changes, field):
    from univar_eval.pipeline.nomic import translate_config

    with pytest.raises(UserError, match=field) as info:
        translate_config({**absolute_config(99, bias=True), **changes})
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- weights


def test_every_tensor_lands_in_the_model(tiny_nomic, loaded):
    import torch

    model = loaded[0].auto_model
    params = model.state_dict()
    src = read_original(tiny_nomic)
    checked = set()

    def same(native: str, tensor):
        assert torch.equal(params[native], tensor), native
        checked.add(native)

    word = src["embeddings.word_embeddings.weight"]
    assert word.shape[0] == params["embeddings.word_embeddings.weight"].shape[0]
    same("embeddings.word_embeddings.weight", word)
    same("embeddings.token_type_embeddings.weight", src["embeddings.token_type_embeddings.weight"])
    same("embeddings.LayerNorm.weight", src["emb_ln.weight"])
    same("embeddings.LayerNorm.bias", src["emb_ln.bias"])
    for i in range(LAYERS):
        p, n = f"encoder.layers.{i}.", f"layers.{i}."
        wqkv = src[p + "attn.Wqkv.weight"]
        same(n + "self_attn.q_proj.weight", wqkv[:HIDDEN])
        same(n + "self_attn.k_proj.weight", wqkv[HIDDEN : 2 * HIDDEN])
        same(n + "self_attn.v_proj.weight", wqkv[2 * HIDDEN :])
        same(n + "self_attn.o_proj.weight", src[p + "attn.out_proj.weight"])
        same(n + "mlp.up_proj.weight", src[p + "mlp.fc11.weight"])
        same(n + "mlp.gate_proj.weight", src[p + "mlp.fc12.weight"])
        same(n + "mlp.down_proj.weight", src[p + "mlp.fc2.weight"])
        for old, new in (("norm1", "post_attention_layernorm"), ("norm2", "post_mlp_layernorm")):
            same(n + f"{new}.weight", src[p + f"{old}.weight"])
            same(n + f"{new}.bias", src[p + f"{old}.bias"])
    assert checked == set(params), f"parameters not from the checkpoint: {set(params) - checked}"
    assert model.config.rope_parameters["rope_theta"] == ROPE_BASE
    assert model.config.hidden_act == "silu"


def test_convert_state_dict_sorts_out_prefixes_heads_and_strangers():
    import torch

    from univar_eval.pipeline.nomic import convert_state_dict

    t = torch.zeros(2, 2)
    out = convert_state_dict(
        {
            "bert.emb_ln.weight": t,
            "cls.predictions.decoder.weight": t,
            "pooler.dense.weight": t,
            "encoder.layers.0.attn.Wqkv.bias": t,
            "encoder.layers.3.mlp.fc12.weight": t,
        },
        hidden_size=2,
    )
    assert set(out.tensors) == {"embeddings.LayerNorm.weight", "layers.3.mlp.gate_proj.weight"}
    assert out.unused == ["cls.predictions.decoder.weight", "pooler.dense.weight"]
    assert out.unknown == ["encoder.layers.0.attn.Wqkv.bias"]


def test_mismatched_checkpoint_is_refused(tmp_path, tiny_nomic):
    import shutil

    from safetensors.torch import load_file, save_file

    from univar_eval.pipeline.nomic import load_nomic_model

    for case in ("extra", "missing"):
        folder = tmp_path / case
        shutil.copytree(tiny_nomic, folder)
        w = load_file(str(folder / "model.safetensors"))
        if case == "extra":
            w["encoder.layers.0.attn.Wqkv.bias"] = w["emb_ln.bias"].repeat(3)
            match = "no place in the native model.*Wqkv.bias"
        else:
            del w["encoder.layers.1.mlp.fc12.weight"]
            match = "not in the checkpoint: layers.1.mlp.gate_proj.weight"
        save_file(w, str(folder / "model.safetensors"))
        with pytest.raises(UserError, match=match):
            load_nomic_model(folder)


# --------------------------------------------------------------------------- behaviour


def test_matches_reference_forward_pass_of_the_original_model(tiny_nomic, loaded):
    src = read_original(tiny_nomic)
    tok = loaded.tokenizer
    got = loaded.encode(TEXTS, batch_size=4, convert_to_numpy=True)  # one padded batch
    assert got.shape == (len(TEXTS), HIDDEN)
    for text, emb in zip(TEXTS, got):
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids, text  # the hand-written vocabulary covers the texts
        np.testing.assert_allclose(emb, reference_embedding(src, ids), atol=1e-5, rtol=0)
    # and not trivially: the texts get clearly different embeddings
    assert float(np.max(np.abs(got[0] - got[1]))) > 0.05


def test_deterministic_across_loads_and_calls(tiny_nomic, loaded):
    from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

    first = loaded.encode(TEXTS, convert_to_numpy=True)
    again = loaded.encode(TEXTS, convert_to_numpy=True)
    other = load_nomic_sentence_transformer(tiny_nomic, device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert np.array_equal(first, again)
    assert np.array_equal(first, other)


def test_outputs_are_normalised_mean_pooled_and_honour_st_files(loaded):
    import torch

    assert [type(m).__name__ for m in loaded] == ["NativeNomicBert", "Pooling", "Normalize"]
    assert loaded[1].pooling_mode == "mean"
    assert loaded.max_seq_length == MAX_SEQ
    assert loaded.get_embedding_dimension() == HIDDEN
    emb = loaded.encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    # mean over the real tokens only (padding excluded), then L2
    features = loaded.preprocess(TEXTS)
    with torch.no_grad():
        tokens = loaded[0](dict(features))["token_embeddings"]
    mask = features["attention_mask"].unsqueeze(-1).float()
    mean = (tokens * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(emb, torch.nn.functional.normalize(mean, dim=-1).numpy(), atol=1e-6)
    long = " ".join(["honesty"] * 200)
    assert loaded.preprocess([long])["input_ids"].shape[1] == MAX_SEQ


# --------------------------------------------------------------------------- the absolute-position, GELU variant


@pytest.fixture(scope="module", params=[True, False], ids=["biases", "no-biases"])
def absolute_nomic(request, tmp_path_factory) -> tuple[Path, bool]:
    return write_checkpoint(
        tmp_path_factory.mktemp("tiny-nomic-abs") / "ckpt", variant="absolute", bias=request.param
    ), request.param


def test_absolute_variant_loads_every_tensor(absolute_nomic):
    import torch

    from univar_eval.pipeline.nomic import convert_state_dict, load_nomic_model

    folder, bias = absolute_nomic
    model, _ = load_nomic_model(folder)
    assert type(model).__name__ == "BertModel" and model.config.hidden_act == "gelu"
    params = model.state_dict()
    src = read_original(folder)
    checked = set()

    def same(native: str, tensor):
        assert torch.equal(params[native], tensor), native
        checked.add(native)

    same("embeddings.word_embeddings.weight", src["embeddings.word_embeddings.weight"])
    same("embeddings.position_embeddings.weight", src["embeddings.position_embeddings.weight"])
    same("embeddings.token_type_embeddings.weight", src["embeddings.token_type_embeddings.weight"])
    same("embeddings.LayerNorm.weight", src["emb_ln.weight"])
    same("embeddings.LayerNorm.bias", src["emb_ln.bias"])
    for i in range(LAYERS):
        p, n = f"encoder.layers.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            fused = src.get(p + f"attn.Wqkv.{kind}")
            for j, part in enumerate(("query", "key", "value")):
                same(
                    n + f"attention.self.{part}.{kind}",
                    fused[j * HIDDEN : (j + 1) * HIDDEN] if fused is not None else torch.zeros(HIDDEN),
                )
            for old, new, width in (
                ("attn.out_proj", "attention.output.dense", HIDDEN),
                ("mlp.fc1", "intermediate.dense", ABS_INNER),
                ("mlp.fc2", "output.dense", HIDDEN),
            ):
                # a bias the config declares absent is an exact zero, never random init
                same(n + f"{new}.{kind}", src.get(p + f"{old}.{kind}", torch.zeros(width)))
        for old, new in (("norm1", "attention.output.LayerNorm"), ("norm2", "output.LayerNorm")):
            same(n + f"{new}.weight", src[p + f"{old}.weight"])
            same(n + f"{new}.bias", src[p + f"{old}.bias"])
    assert checked == set(params), f"parameters not from the checkpoint: {set(params) - checked}"
    # every tensor of the file was used: each fused Wqkv tensor fills three parameters, and without biases
    # six bias parameters per layer are the declared zeros
    fused = LAYERS * (2 if bias else 1)
    assert len(src) + 2 * fused + (0 if bias else 6 * LAYERS) == len(params)
    converted = convert_state_dict(src, HIDDEN, "absolute")
    assert not converted.unknown and not converted.unused


def test_absolute_variant_matches_reference_forward_pass(absolute_nomic):
    from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

    folder, _ = absolute_nomic
    src = read_original(folder)
    st = load_nomic_sentence_transformer(str(folder), device="cpu")
    assert [type(m).__name__ for m in st] == ["NativeNomicBert", "Pooling", "Normalize"]
    got = st.encode(TEXTS, batch_size=4, convert_to_numpy=True)  # one padded batch
    for text, emb in zip(TEXTS, got):
        ids = st.tokenizer(text)["input_ids"]
        np.testing.assert_allclose(emb, reference_absolute_embedding(src, ids), atol=1e-5, rtol=0)
    assert float(np.max(np.abs(got[0] - got[1]))) > 0.05
    # positions matter: the same tokens in another order embed differently (no rotary, learned table)
    assert not np.allclose(st.encode(["honesty family"])[0], st.encode(["family honesty"])[0], atol=1e-3)


def test_absolute_variant_refuses_biases_the_config_denies(tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from univar_eval.pipeline.nomic import load_nomic_model

    folder = write_checkpoint(tmp_path / "abs", variant="absolute", bias=True)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "mlp_fc1_bias": False}))
    with pytest.raises(UserError, match="mlp_fc1_bias=false but the checkpoint has a bias"):
        load_nomic_model(folder)
    # a declared bias missing from the file is a missing tensor, not a silent zero
    other = tmp_path / "abs2"
    shutil.copytree(folder, other)
    (other / "config.json").write_text(json.dumps(cfg))
    w = load_file(str(other / "model.safetensors"))
    del w["encoder.layers.0.mlp.fc2.bias"]
    save_file(w, str(other / "model.safetensors"))
    with pytest.raises(UserError, match="not in the checkpoint: encoder.layer.0.output.dense.bias"):
        load_nomic_model(other)


# --------------------------------------------------------------------------- errors for people


def test_missing_model_gives_one_line_user_error(tmp_path):
    from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

    # offline (conftest sets HF_HUB_OFFLINE=1) and never cached: an id no one publishes
    model_id, revision = "univar-eval-tests/no-such-encoder", "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(UserError) as info:
        load_nomic_sentence_transformer(model_id, revision=revision)
    message = str(info.value)
    assert "\n" not in message
    assert f"hf download {model_id} --revision {revision}" in message
    assert '--metadata \'{"encoder": "minilm"}\'' in message
    with pytest.raises(UserError, match="does not exist"):
        load_nomic_sentence_transformer(str(tmp_path / "no-such-folder"))


def test_pickle_only_checkpoint_is_refused(tmp_path, tiny_nomic):
    import shutil

    from univar_eval.pipeline.nomic import load_nomic_sentence_transformer

    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_nomic, folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not unpickled, ever")
    with pytest.raises(UserError, match="safetensors revision .* is needed") as info:
        load_nomic_sentence_transformer(folder)
    assert "pytorch_model.bin" in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- through the encoder step


def test_load_encoder_routes_a_local_nomic_folder_to_the_native_loader(tiny_nomic, loaded):
    from univar_eval.pipeline.encoders import get_card, load_encoder

    card = get_card(str(tiny_nomic))
    assert card.architecture == "nomic_bert" and card.revision == "local"
    enc = load_encoder(str(tiny_nomic), device="cpu")
    assert type(enc.model[0]).__name__ == "NativeNomicBert"
    emb = enc.encode(TEXTS)
    assert emb.dtype == np.float32 and emb.shape == (len(TEXTS), HIDDEN)
    np.testing.assert_allclose(emb, loaded.encode(TEXTS, convert_to_numpy=True), atol=1e-6)
    assert enc.describe()["dimension"] == HIDDEN
