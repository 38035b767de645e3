"""Step: encoder (NomicBERT checkpoints). Load UniVaR's encoders natively, without remote code.

UniVaR's checkpoints (``CAiRE/UniVaR-lambda-*``) and their base
``nomic-ai/nomic-embed-text-v1`` are sentence-transformers models whose
``config.json`` and weights use the *original* NomicBERT layout (GPT-2 style
field names such as ``n_embd``; fused ``attn.Wqkv``; ``mlp.fc11/fc12/fc2``) and
whose hub code only runs on transformers 4. This module rebuilds them on
transformers' native ``nomic_bert`` model:

Two variants of the original model are supported natively (:func:`model_variant`):

* ``rotary`` -- rotary position embeddings over the whole head (``rotary_emb_fraction: 1.0``)
  with a SwiGLU MLP (``mlp.fc11/fc12/fc2``, no biases): ``nomic-embed-text-v1`` itself; built on
  transformers' ``NomicBertModel``;
* ``absolute`` -- learned absolute position embeddings (``rotary_emb_fraction: 0.0``,
  ``embeddings.position_embeddings``) with a GELU MLP (``activation_function: gelu``,
  ``mlp.fc1/fc2``), with or without biases: the contrastors settings UniVaR's training README
  lists; built on transformers' ``BertModel``, whose post-norm block computes the same thing
  (biases the config declares absent are exact zeros).

Any other combination is refused with one line naming the unsupported field.

1. :func:`translate_config` maps the original config onto ``NomicBertConfig`` or ``BertConfig``,
   refusing any setting the native model would compute differently;
2. :func:`convert_state_dict` renames the original tensors explicitly (and
   splits the fused q/k/v projection); :func:`load_nomic_model` checks that
   every tensor of the file is used and every parameter of the model is set;
3. :func:`load_nomic_sentence_transformer` assembles a ``SentenceTransformer``
   (this model, then the checkpoint's own pooling and normalisation).

Weights are read from safetensors only (never pickle). The original semantics
this follows (post-norm blocks, non-interleaved rotary over the whole head,
SwiGLU ``fc2(fc11(x) * silu(fc12(x)))``, or absolute positions and ``fc2(gelu(fc1(x)))``,
embedding LayerNorm ``emb_ln``) are those of nomic's ``modeling_hf_nomic_bert.py``;
``tests/test_nomic.py`` checks each variant against an independent plain-torch forward pass.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from univar_eval.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

#: Defaults of the original NomicBertConfig (and the GPT2Config it extends) for
#: the fields that change the computation; used when a config omits one.
ORIGINAL_DEFAULTS: dict[str, Any] = {
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_inner": None,
    "n_positions": 1024,
    "vocab_size": 50257,
    "pad_vocab_size_multiple": 1,
    "type_vocab_size": 2,
    "layer_norm_epsilon": 1e-5,
    "activation_function": "gelu_new",
    "rotary_emb_fraction": 0.0,
    "rotary_emb_base": 10_000,
    "rotary_emb_scale_base": None,
    "rotary_emb_interleaved": False,
    "rotary_scaling_factor": None,
    "max_trained_positions": 2048,
    "qkv_proj_bias": True,
    "mlp_fc1_bias": True,
    "mlp_fc2_bias": True,
    "prenorm": False,
    "parallel_block": False,
    "causal": False,
    "resid_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "initializer_range": 0.02,
    "pad_token_id": None,
}

ROTARY, ABSOLUTE = "rotary", "absolute"
#: (rotary_emb_fraction, activation_function) of each supported variant.
VARIANTS = {ROTARY: (1.0, "swiglu"), ABSOLUTE: (0.0, "gelu")}

#: Settings both variants need; anything else is refused.
_REQUIRED_ALL: dict[str, Any] = {
    "prenorm": False,
    "parallel_block": False,
    "causal": False,
}
#: What the native rotary model (NomicBertModel) implicitly assumes besides.
_REQUIRED: dict[str, Any] = {
    **_REQUIRED_ALL,
    "rotary_emb_interleaved": False,
    "rotary_emb_scale_base": None,
    "qkv_proj_bias": False,
    "mlp_fc1_bias": False,
    "mlp_fc2_bias": False,
}

#: Optional original fields (absent from most configs) and the only value the native model supports.
_REQUIRED_IF_PRESENT: dict[str, Any] = {
    "rotary_head_dim": False,
    "norm_mlp": False,
    "parallel_block_tied_norm": False,
}

#: Original fields consumed by :func:`translate_config`.
_MAPPED = (
    set(ORIGINAL_DEFAULTS)
    | set(_REQUIRED)
    | set(_REQUIRED_IF_PRESENT)
    | {"num_heads_kv", "embd_pdrop", "activation_function", "rotary_emb_fraction"}
)

#: Original fields that do not change the embeddings (remote code, kernels, training, generation).
_IGNORED = {
    "auto_map",
    "architectures",
    "model_type",
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "use_flash_attn",
    "fused_bias_fc",
    "fused_dropout_add_ln",
    "use_xentropy",
    "dense_seq_output",
    "use_rms_norm",  # the original text blocks always use LayerNorm, whatever this says
    "tie_word_embeddings",
    "add_pooling_layer",
    "bos_token_id",
    "eos_token_id",
    "sep_token_id",
    "use_cache",
    "n_ctx",
    "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn",
    "summary_type",
    "summary_use_proj",
    "summary_activation",
    "summary_proj_to_labels",
    "summary_first_dropout",
    "id2label",
    "label2id",
    "problem_type",
    "num_labels",
    "finetuning_task",
    "task_specific_params",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "is_decoder",
    "is_encoder_decoder",
    "register_tokens",
    "gradient_checkpointing",
    "chunk_size_feed_forward",
    "tokenizer_class",
}

#: Tensors of an original checkpoint that the embedding model does not use: the
#: original loader drops them as well (MLM head, unused tanh pooler, BERT buffers).
_UNUSED_KEYS = re.compile(r"^(cls\..*|pooler\.dense\.(weight|bias)|embeddings\.position_ids)$")

#: Whole-model renames, original -> native.
_TOP_LEVEL = {
    "embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
    "emb_ln.weight": "embeddings.LayerNorm.weight",
    "emb_ln.bias": "embeddings.LayerNorm.bias",
}

#: Per-layer renames (after ``encoder.layers.N.``), original -> native (after ``layers.N.``).
#: The original gated MLP computes ``fc2(fc11(x) * act(fc12(x)))``; the native one
#: ``down_proj(act(gate_proj(x)) * up_proj(x))``: fc12 is the gate, fc11 the up projection.
_PER_LAYER = {
    "attn.out_proj.weight": "self_attn.o_proj.weight",
    "mlp.fc11.weight": "mlp.up_proj.weight",
    "mlp.fc12.weight": "mlp.gate_proj.weight",
    "mlp.fc2.weight": "mlp.down_proj.weight",
    "norm1.weight": "post_attention_layernorm.weight",
    "norm1.bias": "post_attention_layernorm.bias",
    "norm2.weight": "post_mlp_layernorm.weight",
    "norm2.bias": "post_mlp_layernorm.bias",
}
_FUSED_QKV = "attn.Wqkv.weight"

#: The absolute variant on transformers' BertModel: whole-model and per-layer renames, original -> native.
_TOP_LEVEL_ABSOLUTE = {
    **{k: v for k, v in _TOP_LEVEL.items()},
    "embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
}
_PER_LAYER_ABSOLUTE = {
    "attn.out_proj.weight": "attention.output.dense.weight",
    "attn.out_proj.bias": "attention.output.dense.bias",
    "norm1.weight": "attention.output.LayerNorm.weight",
    "norm1.bias": "attention.output.LayerNorm.bias",
    "mlp.fc1.weight": "intermediate.dense.weight",
    "mlp.fc1.bias": "intermediate.dense.bias",
    "mlp.fc2.weight": "output.dense.weight",
    "mlp.fc2.bias": "output.dense.bias",
    "norm2.weight": "output.LayerNorm.weight",
    "norm2.bias": "output.LayerNorm.bias",
}
_FUSED_QKV_BIAS = "attn.Wqkv.bias"
#: Which config flag says whether each BertModel bias exists in the original (per layer, after ``encoder.layer.N.``).
_ABSOLUTE_BIAS_FLAGS = {
    "attention.self.query.bias": "qkv_proj_bias",
    "attention.self.key.bias": "qkv_proj_bias",
    "attention.self.value.bias": "qkv_proj_bias",
    "attention.output.dense.bias": "qkv_proj_bias",
    "intermediate.dense.bias": "mlp_fc1_bias",
    "output.dense.bias": "mlp_fc2_bias",
}
_LAYER_KEY = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")

_SAFE_WEIGHTS = "model.safetensors"
_SAFE_INDEX = "model.safetensors.index.json"
_HUB_FILES = ["*.json", "*.safetensors", "vocab.txt", "*.model", "1_Pooling/*"]


def _fix(what: str) -> str:
    return f"{what}: this NomicBERT checkpoint cannot be loaded natively (open an issue with its config.json)"


def is_original_nomic_config(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` (a parsed config.json) is a NomicBERT config in the original (remote-code) layout."""
    return config.get("model_type") == "nomic_bert" and "n_embd" in config


def gated_mlp_width(n_embd: int, n_inner: int | None, multiple_of: int = 256) -> int:
    """Hidden width of the original gated MLP: ``n_inner`` (default 8/3 of the width) rounded up to 256."""
    hidden = n_inner if n_inner is not None else int(8 * n_embd / 3)
    return int((hidden + multiple_of - 1) // multiple_of * multiple_of)


def model_variant(original: Mapping[str, Any]) -> str:
    """``"rotary"`` (rotary 1.0 + SwiGLU) or ``"absolute"`` (learned positions + GELU) for an original config;
    :class:`UserError` naming the field for anything else (partial rotary, other activations, mixes)."""
    cfg = {**ORIGINAL_DEFAULTS, **dict(original)}
    fraction, act = cfg.get("rotary_emb_fraction"), cfg.get("activation_function")
    try:
        fraction = float(fraction if fraction is not None else 0.0)
    except (TypeError, ValueError):
        raise UserError(_fix(f"unsupported rotary_emb_fraction={fraction!r}")) from None
    for name, (want_fraction, want_act) in VARIANTS.items():
        if fraction == want_fraction:
            if act != want_act:
                raise UserError(
                    _fix(
                        f"unsupported activation_function={act!r} with rotary_emb_fraction={fraction:g} "
                        f"(supported: {_supported()})"
                    )
                )
            return name
    raise UserError(
        _fix(f"unsupported rotary_emb_fraction={cfg.get('rotary_emb_fraction')!r} (supported: {_supported()})")
    )


def _supported() -> str:
    return " or ".join(f"rotary_emb_fraction {f:g} with activation_function {a}" for f, a in VARIANTS.values())


def translate_config(original: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the native config equivalent to an original NomicBERT config:
    ``NomicBertConfig`` for the rotary variant, ``BertConfig`` for the absolute one (see :func:`model_variant`).

    Raises :class:`UserError` for a setting the native model cannot reproduce
    (e.g. interleaved or partial rotary, biases with rotary, pre-norm, causal attention).
    Remote-code fields (``auto_map``) and kernel switches are dropped.
    """
    missing = [k for k in ("n_embd", "n_head", "n_layer") if k not in original]
    if original.get("model_type") != "nomic_bert" or missing:
        raise UserError(
            f"not an original NomicBERT config.json (model_type={original.get('model_type')!r}, "
            f"missing {', '.join(missing) or 'nothing'}); give the folder of a nomic_bert checkpoint"
        )
    cfg = {**ORIGINAL_DEFAULTS, **dict(original)}
    variant = model_variant(original)
    for key, expected in (_REQUIRED if variant == ROTARY else _REQUIRED_ALL).items():
        if cfg.get(key) != expected:
            raise UserError(_fix(f"unsupported {key}={cfg.get(key)!r} (the native model needs {expected!r})"))
    for key, expected in _REQUIRED_IF_PRESENT.items():
        if key in cfg and cfg[key] not in (expected, None):
            raise UserError(_fix(f"unsupported {key}={cfg[key]!r} (the native model needs {expected!r})"))
    hidden, heads = int(cfg["n_embd"]), int(cfg["n_head"])
    if hidden % heads:
        raise UserError(_fix(f"n_embd={hidden} is not a multiple of n_head={heads}"))
    if cfg.get("num_heads_kv") not in (None, heads):
        raise UserError(_fix(f"unsupported num_heads_kv={cfg['num_heads_kv']!r} (grouped attention)"))
    if int(cfg["type_vocab_size"]) <= 0:
        raise UserError(_fix("unsupported type_vocab_size <= 0 (no token-type embeddings)"))
    unknown = sorted(set(original) - _MAPPED - _IGNORED)
    if unknown:
        log.warning("NomicBERT config fields not used by the native loader: %s", ", ".join(unknown))

    multiple = max(int(cfg["pad_vocab_size_multiple"] or 1), 1)
    vocab = int(cfg["vocab_size"])
    vocab += (-vocab) % multiple  # the original pads the vocabulary the same way
    positions = int(cfg["n_positions"] or 0)
    common = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": int(cfg["n_layer"]),
        "num_attention_heads": heads,
        "hidden_dropout_prob": float(cfg["resid_pdrop"] or 0.0),
        "attention_probs_dropout_prob": float(cfg["attn_pdrop"] or 0.0),
        "type_vocab_size": int(cfg["type_vocab_size"]),
        "initializer_range": float(cfg["initializer_range"]),
        "layer_norm_eps": float(cfg["layer_norm_epsilon"]),
        "pad_token_id": int(cfg["pad_token_id"]) if cfg["pad_token_id"] is not None else 0,
    }
    if variant == ABSOLUTE:
        if positions <= 0:
            raise UserError(
                _fix(
                    f"unsupported n_positions={cfg['n_positions']!r} with rotary_emb_fraction 0 "
                    "(no position embeddings at all)"
                )
            )
        # the original's plain MLP is n_inner wide (default 4 * n_embd), GELU exact (erf) as F.gelu
        return {
            **common,
            "intermediate_size": int(cfg["n_inner"] or 4 * hidden),
            "hidden_act": "gelu",
            "max_position_embeddings": positions,
        }
    return {
        **common,
        "head_dim": hidden // heads,
        "intermediate_size": gated_mlp_width(hidden, cfg["n_inner"]),
        "hidden_act": "silu",
        "max_position_embeddings": positions if positions > 0 else int(cfg["max_trained_positions"]),
        "rope_parameters": {"rope_type": "default", "rope_theta": float(cfg["rotary_emb_base"])},
    }


def exact_length_limit(original: Mapping[str, Any]) -> int | None:
    """Longest input on which the native model equals the original, or ``None`` for no limit.

    With ``rotary_scaling_factor`` the original switches to dynamic-NTK rotary
    beyond ``max_trained_positions`` tokens; the native model keeps plain rotary.
    """
    if original.get("rotary_scaling_factor") and model_variant(original) == ROTARY:
        return int(original.get("max_trained_positions") or ORIGINAL_DEFAULTS["max_trained_positions"])
    return None


@dataclass
class ConvertedWeights:
    tensors: dict[str, "torch.Tensor"]  # native name -> tensor
    unused: list[str]  # original names deliberately left out (MLM head, pooler)
    unknown: list[str]  # original names with no native counterpart


def convert_state_dict(
    original: Mapping[str, "torch.Tensor"], hidden_size: int, variant: str = ROTARY
) -> ConvertedWeights:
    """Rename original NomicBERT tensors to the native layout of ``variant``; split the fused q/k/v projection."""
    import torch

    absolute = variant == ABSOLUTE
    top, per_layer = (_TOP_LEVEL_ABSOLUTE, _PER_LAYER_ABSOLUTE) if absolute else (_TOP_LEVEL, _PER_LAYER)
    out: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    unknown: list[str] = []
    for name, tensor in original.items():
        key = name[len("bert.") :] if name.startswith("bert.") else name
        if _UNUSED_KEYS.match(key):
            unused.append(name)
            continue
        if key in top:
            _put(out, top[key], tensor, name)
            continue
        match = _LAYER_KEY.match(key)
        if match is None:
            unknown.append(name)
            continue
        layer, rest = match.groups()
        prefix = f"encoder.layer.{int(layer)}." if absolute else f"layers.{int(layer)}."
        if rest == _FUSED_QKV or (absolute and rest == _FUSED_QKV_BIAS):
            if tensor.shape[0] != 3 * hidden_size or tensor.ndim != (2 if rest == _FUSED_QKV else 1):
                raise UserError(
                    f"{name} has shape {tuple(tensor.shape)}, expected ({3 * hidden_size}, {hidden_size})"
                    if rest == _FUSED_QKV
                    else f"{name} has shape {tuple(tensor.shape)}, expected ({3 * hidden_size},)"
                )
            kind = rest.rsplit(".", 1)[1]
            # rows are ordered (three, heads, head_dim): all of q, then all of k, then all of v
            names = ("query", "key", "value") if absolute else ("q", "k", "v")
            for part, chunk in zip(names, torch.chunk(tensor, 3, dim=0)):
                target = f"attention.self.{part}.{kind}" if absolute else f"self_attn.{part}_proj.{kind}"
                _put(out, prefix + target, chunk, name)
        elif rest in per_layer:
            _put(out, prefix + per_layer[rest], tensor, name)
        else:
            unknown.append(name)
    return ConvertedWeights(out, unused, unknown)


def _put(out: dict, key: str, tensor, source: str) -> None:
    if key in out:
        raise UserError(f"checkpoint holds {key} twice (again from {source}); is it a mix of two formats?")
    out[key] = tensor


def _few(names: Sequence[str], n: int = 5) -> str:
    names = sorted(names)
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def read_safetensors(folder: Path) -> dict[str, "torch.Tensor"]:
    """All tensors of the checkpoint in ``folder`` (single or sharded safetensors; never pickle)."""
    from safetensors import safe_open

    index = folder / _SAFE_INDEX
    if (folder / _SAFE_WEIGHTS).is_file():
        files = [folder / _SAFE_WEIGHTS]
    elif index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = [folder / f for f in sorted(set(weight_map.values()))]
    else:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = f" (only {', '.join(sorted(pickled))}, which is never unpickled)" if pickled else ""
        raise UserError(
            f"no {_SAFE_WEIGHTS} in {folder}{hint}; a safetensors revision of the checkpoint is needed "
            "(download the complete checkpoint, pick a revision that has model.safetensors, "
            "or convert the weights once with a tool you trust)"
        )
    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for key in handle.keys():
                if key in tensors:
                    raise UserError(f"tensor {key} appears in two shards of {folder}")
                tensors[key] = handle.get_tensor(key)
    return tensors


def load_nomic_model(folder: str | Path):
    """The native ``NomicBertModel`` (float32, eval mode) holding the weights of an original checkpoint folder.

    Returns ``(model, original_config)``. Raises :class:`UserError` unless every
    tensor of the file lands in the model (or is a known unused head) and every
    parameter of the model comes from the file.
    """
    import torch
    from transformers import BertConfig, BertModel, NomicBertConfig, NomicBertModel

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UserError(f"no config.json in {folder}; give the folder of a NomicBERT checkpoint")
    original = json.loads(config_path.read_text(encoding="utf-8"))
    kwargs = translate_config(original)
    variant = model_variant(original)
    config_cls: Any
    model_cls: Any  # (BertConfig, BertModel) or (NomicBertConfig, NomicBertModel): one pair, never mixed
    config_cls, model_cls = (BertConfig, BertModel) if variant == ABSOLUTE else (NomicBertConfig, NomicBertModel)
    config = config_cls(**kwargs)
    weights = convert_state_dict(read_safetensors(folder), config.hidden_size, variant)
    if weights.unknown:
        raise UserError(
            f"{folder}: {len(weights.unknown)} tensors have no place in the native model: {_few(weights.unknown)}"
        )
    if weights.unused:
        log.info(
            "NomicBERT: not loading %d tensors the embedding model does not use (%s)",
            len(weights.unused),
            _few(weights.unused, 3),
        )

    model = model_cls(config, add_pooling_layer=False)
    expected = model.state_dict()
    if variant == ABSOLUTE:
        _zero_absent_biases(weights.tensors, expected, {**ORIGINAL_DEFAULTS, **original}, folder)
    word = "embeddings.word_embeddings.weight"
    if word in weights.tensors and weights.tensors[word].shape[0] < expected[word].shape[0]:
        # the original model pads its vocabulary (pad_vocab_size_multiple) with rows nobody uses
        rows = weights.tensors[word]
        pad = torch.zeros(expected[word].shape[0] - rows.shape[0], rows.shape[1], dtype=rows.dtype)
        weights.tensors[word] = torch.cat([rows, pad])
    extra = sorted(set(weights.tensors) - set(expected))
    missing = sorted(set(expected) - set(weights.tensors))
    if extra or missing:
        raise UserError(
            f"{folder}: checkpoint and config.json disagree (n_layer={original.get('n_layer')}): "
            f"not in the model: {_few(extra) or 'none'}; not in the checkpoint: {_few(missing) or 'none'}"
        )
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in weights.tensors.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise UserError(f"{folder}: tensor shapes do not match config.json: {_few(wrong, 3)}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in weights.tensors.items()}, strict=True)
    model.eval()
    return model, original


def _zero_absent_biases(tensors: dict, expected: dict, cfg: Mapping[str, Any], folder: Path) -> None:
    """BertModel always has biases; where the original config declares a layer bias-free, the bias is an
    exact zero (never left at random init). A bias the config declares but the file lacks is an error."""
    import torch

    for key, shape in ((k, v.shape) for k, v in expected.items()):
        match = re.match(r"^encoder\.layer\.\d+\.(.+)$", key)
        flag = _ABSOLUTE_BIAS_FLAGS.get(match.group(1)) if match else None
        if flag is None:
            continue
        if key in tensors and not cfg[flag]:
            raise UserError(f"{folder}: config.json says {flag}=false but the checkpoint has a bias for {key}")
        if key not in tensors and not cfg[flag]:
            tensors[key] = torch.zeros(shape)


def resolve_checkpoint(model_id_or_path: str | Path, revision: str | None = None) -> Path:
    """The local folder of a checkpoint: the path itself, or the (cached) hub snapshot."""
    path = Path(model_id_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(model_id_or_path)
    if path.is_absolute() or text.startswith((".", "~")) or path.exists():
        raise UserError(f"encoder folder {text} does not exist (or is not a folder)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=_HUB_FILES))
    except (OSError, ValueError, EntryNotFoundError) as error:
        at = f" --revision {revision}" if revision else ""
        raise UserError(
            f"encoder model {text}{'@' + revision if revision else ''} is not available ({type(error).__name__}); "
            f"download it once with `hf download {text}{at}` on a machine with internet, "
            'or use the offline encoder: --metadata \'{"encoder": "minilm"}\''
        ) from None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _transformer_module_class():
    from sentence_transformers.sentence_transformer.modules import InputModule

    class NativeNomicBert(InputModule):
        """A sentence-transformers input module around the native ``NomicBertModel``: texts -> token embeddings."""

        config_keys = ["max_seq_length", "do_lower_case"]

        def __init__(self, model, tokenizer, max_seq_length: int | None, do_lower_case: bool = False):
            super().__init__()
            self.auto_model = model
            self._tokenizer = tokenizer
            self.max_seq_length = max_seq_length
            self.do_lower_case = do_lower_case

        @property
        def tokenizer(self):
            return self._tokenizer

        @tokenizer.setter
        def tokenizer(self, value):  # InputModule declares a writable attribute
            self._tokenizer = value

        def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict:
            texts = []
            for item in inputs:
                if not isinstance(item, str):
                    raise UserError(f"the NomicBERT encoder embeds plain texts, not {type(item).__name__}")
                texts.append(item)
            if prompt:
                texts = [prompt + t for t in texts]
            if self.do_lower_case:
                texts = [t.lower() for t in texts]
            max_length = kwargs.get("max_length") or self.max_seq_length
            return dict(
                self._tokenizer(
                    texts, padding=True, truncation="longest_first", return_tensors="pt", max_length=max_length
                )
            )

        def forward(self, features: dict, **kwargs) -> dict:
            inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
            output = self.auto_model(**inputs, return_dict=True)
            features["token_embeddings"] = output.last_hidden_state
            return features

        def get_embedding_dimension(self) -> int:
            return int(self.auto_model.config.hidden_size)

        def save(self, output_path: str, *args, **kwargs) -> None:
            raise UserError("a natively loaded NomicBERT encoder cannot be saved; keep using the original checkpoint")

    return NativeNomicBert


_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"


def _module_plan(folder: Path) -> list[tuple[str, str]]:
    """(kind, subfolder) of each sentence-transformers module, from modules.json (default: mean + normalise)."""
    entries = (
        json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        if (folder / "modules.json").is_file()
        else None
    )
    if not entries:
        return [(_TRANSFORMER, ""), (_POOLING, ""), (_NORMALIZE, "")]
    plan = []
    for entry in sorted(entries, key=lambda e: int(e.get("idx", 0))):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        if kind not in (_TRANSFORMER, _POOLING, _NORMALIZE):
            raise UserError(
                f"{folder}/modules.json: module {entry.get('type')!r} is not supported by the native NomicBERT loader"
            )
        plan.append((kind, str(entry.get("path", ""))))
    if plan[0][0] != _TRANSFORMER or sum(k == _TRANSFORMER for k, _ in plan) != 1:
        raise UserError(f"{folder}/modules.json: expected one Transformer module first, got {[k for k, _ in plan]}")
    return plan


def load_nomic_sentence_transformer(
    model_id_or_path: str | Path, revision: str | None = None, device: str | None = None
):
    """A ``SentenceTransformer`` for an original NomicBERT checkpoint, on transformers' native model.

    ``model_id_or_path`` is a local folder or a hub id (resolved from the local
    cache; see :func:`resolve_checkpoint`). No remote code is run.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers import AutoTokenizer

    folder = resolve_checkpoint(model_id_or_path, revision)
    model, original = load_nomic_model(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: the tokenizer could not be loaded ({type(error).__name__}: {error})") from None

    st_config = _read_json(folder / "sentence_bert_config.json")
    max_len = st_config.get("max_seq_length")
    if max_len is None:
        max_len = min(int(model.config.max_position_embeddings), int(getattr(tokenizer, "model_max_length", 10**9)))
    if model_variant(original) == ABSOLUTE and max_len > model.config.max_position_embeddings:
        max_len = int(model.config.max_position_embeddings)  # learned positions end there
    limit = exact_length_limit(original)
    if limit is not None and max_len > limit:
        log.warning(
            "NomicBERT: inputs truncated to %d tokens (the original switches to dynamic-NTK rotary beyond)", limit
        )
        max_len = limit

    modules = []
    for kind, sub in _module_plan(folder):
        if kind == _TRANSFORMER:
            modules.append(
                _transformer_module_class()(model, tokenizer, int(max_len), bool(st_config.get("do_lower_case", False)))
            )
        elif kind == _POOLING:
            pooling = Pooling.load_config(str(folder), subfolder=sub) if sub else {}
            pooling = {
                k: v for k, v in pooling.items() if k in ("embedding_dimension", "pooling_mode", "include_prompt")
            }
            pooling.setdefault("embedding_dimension", int(model.config.hidden_size))
            if pooling["embedding_dimension"] != model.config.hidden_size:
                raise UserError(
                    f"{folder}/{sub}: pooling expects {pooling['embedding_dimension']} dims, "
                    f"the model gives {model.config.hidden_size}"
                )
            modules.append(Pooling(**pooling))
        else:
            modules.append(Normalize())
    st_extra = _read_json(folder / "config_sentence_transformers.json")
    return SentenceTransformer(
        modules=modules,
        device=device,
        prompts=st_extra.get("prompts") or None,
        default_prompt_name=st_extra.get("default_prompt_name"),
    )
