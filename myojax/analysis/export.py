"""Export a myojax GPT as a Hugging Face GPT-2 checkpoint (``config.json`` + ``model.safetensors``)
that an unmodified ``transformers.GPT2LMHeadModel`` loads and runs to the same logits.

myojax's GPT is GPT-2's architecture (pre-LN blocks, LayerNorm eps 1e-5, fused QKV with biases,
tanh GELU = GPT-2's ``gelu_new``, learned positions, tied or untied readout; the weight layouts
are GPT-2's ``Conv1D`` layout, [in, out]). What GPT-2 lacks are muP's scalar multipliers, which
are folded into the weights, exactly in real arithmetic:

* input multiplier α (``x0 = α·(wte[x] + wpe)``): ``wte ← α·wte``, ``wpe ← α·wpe``. A tied
  readout then reads α·wte, so the output fold below divides by α;
* output multiplier μ (``logits = μ·LN_f(x)·headᵀ``, μ = output_mult / width_mult under muP):
  the final LayerNorm's gain and bias are scaled by μ/α (tied) or μ (untied);
* attention scale c (``softmax(c·q·k)``, c = attn_mult·8/d_head under muP): GPT-2 always uses
  1/sqrt(d_head) (``scale_attn_weights=True``), so the query columns of ``c_attn`` (weights and
  bias) are scaled by c·sqrt(d_head).

The gradient mode changes no forward value, so every mode exports the same way. Weights are
written in float32. A model GPT-2 cannot express is refused with ``ExportError`` naming why
(``gpt2_problems``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from myojax import files
from myojax.analysis.runs import Run
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.model import GPT, Block

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
GPT2_EPS = 1e-5
CHECK_TOLERANCE = 1e-4  # largest logit difference ``check_export`` accepts
# ModelConfig fields this exporter knows how to carry into GPT-2 (any new field must be added
# here, with its fold, before a model that sets it away from its default can be exported).
_HANDLED_FIELDS = {
    "vocab_size",
    "seq_len",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "gradient_mode",  # forward-neutral
    "attention_impl",  # forward-neutral: the same logits
    "tie_embeddings",
    "param_dtype",
    "compute_dtype",
    "remat",  # forward-neutral
    "parametrization",
    "base_width",
    "input_mult",
    "output_mult",
    "attn_mult",
    "zero_init_query",  # init only
    "zero_init_readout",  # init only
}
_GPT_LEAVES = {"wte", "wpe", "blocks", "lnf_gain", "lnf_bias", "lm_head"}
_BLOCK_LEAVES = {f.name for f in dataclasses.fields(Block)}


class ExportError(ValueError):
    """The model cannot be written as a GPT-2 checkpoint."""


def gpt2_problems(model: GPT) -> list[str]:
    """Why ``model`` cannot be a ``GPT2LMHeadModel`` (empty when it can)."""
    problems = []
    config = model.config
    defaults = ModelConfig()
    for name, value in config.to_dict().items():
        if name not in _HANDLED_FIELDS and value != getattr(defaults, name, value):
            problems.append(f"ModelConfig.{name}={value!r} has no GPT-2 equivalent")
    if config.compute_dtype == "bfloat16":
        problems.append(
            "compute_dtype='bfloat16': GPT-2 in float32 would not reproduce this model's logits"
        )
    if type(model) is not GPT:
        problems.append(f"{type(model).__name__} is not myojax.model.GPT")
    fields = {f.name for f in dataclasses.fields(model)} - {"config"}
    if fields != _GPT_LEAVES:
        problems.append(f"unknown GPT parts {sorted(fields ^ _GPT_LEAVES)}")
    block_fields = {f.name for f in dataclasses.fields(model.blocks)}
    if block_fields != _BLOCK_LEAVES:
        problems.append(f"unknown block parts {sorted(block_fields ^ _BLOCK_LEAVES)}")
    return problems


def gpt2_config(config: ModelConfig) -> dict[str, Any]:
    """``config.json`` for ``transformers.GPT2Config`` (no dropout: exports are for analysis)."""
    byte_level = config.vocab_size <= 256
    eos = None if byte_level else config.vocab_size - 1  # GPT-2 BPE: <|endoftext|> is last
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.seq_len,
        "n_ctx": config.seq_len,
        "n_embd": config.d_model,
        "n_layer": config.n_layers,
        "n_head": config.n_heads,
        "n_inner": config.ff_dim,
        "activation_function": "gelu_new",  # tanh-approximate GELU, as myojax's blocks
        "layer_norm_epsilon": GPT2_EPS,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
        "myojax": {"model_config": config.to_dict()},
    }


def gpt2_state_dict(model: GPT) -> dict[str, np.ndarray]:
    """GPT-2 parameter names -> float32 arrays, with muP's multipliers folded in."""
    problems = gpt2_problems(model)
    if problems:
        raise ExportError("cannot export as GPT-2: " + "; ".join(problems))
    c = model.config
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    alpha, mu = c.input_multiplier, c.output_multiplier
    out_scale = mu / alpha if c.tie_embeddings else mu
    q_scale = c.attn_scale * math.sqrt(c.head_dim)
    d = c.d_model
    state = {
        "transformer.wte.weight": f32(model.wte) * alpha,
        "transformer.wpe.weight": f32(model.wpe) * alpha,
        "transformer.ln_f.weight": f32(model.lnf_gain) * out_scale,
        "transformer.ln_f.bias": f32(model.lnf_bias) * out_scale,
    }
    if model.lm_head is not None:
        state["lm_head.weight"] = f32(model.lm_head).T.copy()
    for i in range(c.n_layers):
        b = model.layer(i)
        w_qkv, b_qkv = f32(b.w_qkv).copy(), f32(b.b_qkv).copy()
        w_qkv[:, :d] *= q_scale
        b_qkv[:d] *= q_scale
        p = f"transformer.h.{i}."
        state |= {
            p + "ln_1.weight": f32(b.ln1_gain),
            p + "ln_1.bias": f32(b.ln1_bias),
            p + "attn.c_attn.weight": w_qkv,
            p + "attn.c_attn.bias": b_qkv,
            p + "attn.c_proj.weight": f32(b.w_out),
            p + "attn.c_proj.bias": f32(b.b_out),
            p + "ln_2.weight": f32(b.ln2_gain),
            p + "ln_2.bias": f32(b.ln2_bias),
            p + "mlp.c_fc.weight": f32(b.w_fc),
            p + "mlp.c_fc.bias": f32(b.b_fc),
            p + "mlp.c_proj.weight": f32(b.w_proj),
            p + "mlp.c_proj.bias": f32(b.b_proj),
        }
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


def export_gpt2(model: GPT, out: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``out/config.json`` and ``out/model.safetensors``; returns ``out``.

    Needs the optional ``safetensors`` package (``pip install -e ".[hf]"``); ``metadata`` (e.g.
    the run and step) is stored in config.json under ``"myojax"``.
    """
    try:
        from safetensors.numpy import save_file
    except ImportError as e:
        raise ExportError(
            'export needs the optional package safetensors: pip install -e ".[hf]"'
        ) from e
    state = gpt2_state_dict(model)  # refuses before touching the disk
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = gpt2_config(model.config)
    config["myojax"] |= metadata or {}
    # The weights through a temporary file too, and the config last: a config means a whole export.
    tmp = out / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / WEIGHTS_FILE)
    files.write_json(out / CONFIG_FILE, config)
    return out


def transformers_logits(out: str | Path, tokens: np.ndarray) -> np.ndarray:
    """Logits of the export in ``out`` for ``tokens`` [B, T], run by an unmodified
    ``transformers.GPT2LMHeadModel`` (needs the ``[hf]`` extra: torch and transformers)."""
    try:
        import torch
        from transformers import GPT2LMHeadModel
    except ImportError as e:
        raise ExportError('checking needs torch and transformers: pip install -e ".[hf]"') from e
    hf, info = GPT2LMHeadModel.from_pretrained(str(out), output_loading_info=True)
    unused = {k: v for k, v in info.items() if v and k != "error_msgs"} or info.get("error_msgs")
    if unused:
        raise ExportError(f"transformers did not load {out} cleanly: {unused}")
    with torch.no_grad():
        return hf.eval()(torch.as_tensor(np.asarray(tokens, np.int64))).logits.numpy()


def export_run(run: Run, out: str | Path) -> Path:
    """``export_gpt2`` of a run's model, recording the run and step in the export."""
    return export_gpt2(
        run.model, out, metadata={"run_dir": str(run.path.resolve()), "step": run.step}
    )


def check_export(run: Run, out: str | Path) -> tuple[float, int]:
    """The largest |logit difference| between ``transformers.GPT2LMHeadModel`` on the export in
    ``out`` and the run's model, on 4 windows of ``seq_len`` tokens from the start of the run's
    held-out text, and ``seq_len``; an ``ExportError`` above ``CHECK_TOLERANCE``."""
    return check_logits(run, lambda tokens: transformers_logits(out, tokens))


def check_logits(run: Run, logits_fn: Callable[[np.ndarray], np.ndarray]) -> tuple[float, int]:
    """The largest |logit difference| between ``logits_fn`` and the run's model on 4 windows of
    ``seq_len`` tokens from the start of the run's held-out text, and ``seq_len``; an
    ``ExportError`` above ``CHECK_TOLERANCE``."""
    seq_len = run.model_config.seq_len
    val = pipeline.load_data(run.config["train"]["data"]).val[0]
    tokens = np.asarray(val[: 4 * seq_len], np.int32).reshape(4, seq_len)
    ours = np.asarray(jax.vmap(run.model)(tokens))
    diff = float(np.abs(logits_fn(tokens) - ours).max())
    if not diff <= CHECK_TOLERANCE:
        raise ExportError(f"export check failed: max |diff| {diff:.2e}")
    return diff, seq_len
