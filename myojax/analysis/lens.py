"""A myojax GPT as a TransformerLens ``HookedTransformer`` (the interpretability ecosystem's
common model class), with the same logits.

The weights are the Hugging Face export's (``gpt2_state_dict``: muP's input, output and
attention multipliers already folded in, exactly), rearranged into TransformerLens's per-head
layout; no LayerNorm folding or centering is applied, so every hook reads the model's own
activations. Needs the ``[hf]`` extra (torch, transformer-lens 3.x: 4.0 removed
``HookedTransformer``).

Where ``myojax.analysis.capture``'s fields are in TransformerLens (``run_with_cache``):

=====================================  =========================================================
myojax ``Activations`` field           TransformerLens hook (``cache[name]``)
=====================================  =========================================================
``resid_in[:, l]``  [B, T, D]          ``blocks.{l}.hook_resid_pre`` (l = 0: ``hook_embed`` +
                                       ``hook_pos_embed``, muP's α folded into both)
``resid_out[:, l]`` [B, T, D]          ``blocks.{l}.hook_resid_post``
``attn_probs[:, l]`` [B, H, T, S]      ``blocks.{l}.attn.hook_pattern``
``logits`` [B, T, V]                   the model's output (``return_type="logits"``)
``losses`` [B, T]                      ``model(inputs, return_type="loss", loss_per_token=True)``
                                       scores T - 1 positions of ``inputs``; ours score ``targets``
=====================================  =========================================================
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from myojax.analysis.export import GPT2_EPS, ExportError, check_logits, gpt2_state_dict
from myojax.analysis.runs import Run
from myojax.model import GPT

LENS_FILE = "transformer_lens.pt"
# myojax capture field -> TransformerLens hook name (``{l}``: the layer).
CAPTURE_HOOKS = {
    "resid_in": "blocks.{l}.hook_resid_pre",
    "resid_out": "blocks.{l}.hook_resid_post",
    "attn_probs": "blocks.{l}.attn.hook_pattern",
}


def _imports() -> tuple[Any, Any, Any]:
    try:
        import torch
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as e:
        raise ExportError(
            'TransformerLens export needs torch and transformer-lens: pip install -e ".[hf]"'
        ) from e
    return torch, HookedTransformer, HookedTransformerConfig


def lens_config(model: GPT) -> dict[str, Any]:
    """``HookedTransformerConfig`` arguments matching ``model`` (any width, depth, heads,
    vocabulary)."""
    c = model.config
    return {
        "n_layers": c.n_layers,
        "d_model": c.d_model,
        "n_heads": c.n_heads,
        "d_head": c.head_dim,
        "d_mlp": c.ff_dim,
        "d_vocab": c.vocab_size,
        "n_ctx": c.seq_len,
        "act_fn": "gelu_new",  # tanh-approximate GELU, as myojax's blocks
        "normalization_type": "LN",
        "eps": GPT2_EPS,
        "positional_embedding_type": "standard",
        "default_prepend_bos": False,
        "original_architecture": "GPT2LMHeadModel",
    }


def lens_state_dict(model: GPT) -> dict[str, np.ndarray]:
    """TransformerLens parameter names -> float32 arrays (from the folded GPT-2 weights)."""
    gpt2 = gpt2_state_dict(model)
    c = model.config
    h, dh, d = c.n_heads, c.head_dim, c.d_model
    heads_in = lambda w: w.reshape(d, h, dh).transpose(1, 0, 2)  # [D, H*dh] -> [H, D, dh]
    state = {
        "embed.W_E": gpt2["transformer.wte.weight"],
        "pos_embed.W_pos": gpt2["transformer.wpe.weight"],
        "ln_final.w": gpt2["transformer.ln_f.weight"],
        "ln_final.b": gpt2["transformer.ln_f.bias"],
        "unembed.W_U": (
            gpt2["lm_head.weight"] if "lm_head.weight" in gpt2 else gpt2["transformer.wte.weight"]
        ).T,
        "unembed.b_U": np.zeros(c.vocab_size, np.float32),
    }
    for i in range(c.n_layers):
        g = lambda name, i=i: gpt2[f"transformer.h.{i}.{name}"]
        w_q, w_k, w_v = np.split(g("attn.c_attn.weight"), 3, axis=1)
        b_q, b_k, b_v = np.split(g("attn.c_attn.bias"), 3)
        p = f"blocks.{i}."
        state |= {
            p + "ln1.w": g("ln_1.weight"),
            p + "ln1.b": g("ln_1.bias"),
            p + "attn.W_Q": heads_in(w_q),
            p + "attn.W_K": heads_in(w_k),
            p + "attn.W_V": heads_in(w_v),
            p + "attn.b_Q": b_q.reshape(h, dh),
            p + "attn.b_K": b_k.reshape(h, dh),
            p + "attn.b_V": b_v.reshape(h, dh),
            p + "attn.W_O": g("attn.c_proj.weight").reshape(h, dh, d),
            p + "attn.b_O": g("attn.c_proj.bias"),
            p + "ln2.w": g("ln_2.weight"),
            p + "ln2.b": g("ln_2.bias"),
            p + "mlp.W_in": g("mlp.c_fc.weight"),
            p + "mlp.b_in": g("mlp.c_fc.bias"),
            p + "mlp.W_out": g("mlp.c_proj.weight"),
            p + "mlp.b_out": g("mlp.c_proj.bias"),
        }
    return {k: np.ascontiguousarray(v, np.float32) for k, v in state.items()}


def _build(config: dict[str, Any], state: dict[str, np.ndarray]) -> Any:
    torch, hooked_transformer, hooked_config = _imports()
    with warnings.catch_warnings():  # 3.x deprecates it for 4.0's bridge; it is what we want
        warnings.filterwarnings("ignore", "HookedTransformer is deprecated", DeprecationWarning)
        lens = hooked_transformer(hooked_config(**config, dtype=torch.float32))
    tensors = {k: torch.tensor(np.array(v)) for k, v in state.items()}
    lens.load_and_process_state_dict(
        tensors,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
    )
    return lens.eval()


def hooked_transformer(model: GPT) -> Any:
    """``model`` as a ``transformer_lens.HookedTransformer`` (float32, eval mode)."""
    return _build(lens_config(model), lens_state_dict(model))


def save_lens(model: GPT, out: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``out/transformer_lens.pt`` (config + state dict; ``load_lens`` reads it)."""
    torch, _, _ = _imports()
    state = lens_state_dict(model)  # refuses before touching the disk
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": lens_config(model),
        "state_dict": {k: torch.tensor(np.array(v)) for k, v in state.items()},
        "myojax": {"model_config": model.config.to_dict(), **(metadata or {})},
    }
    tmp = out / f".{LENS_FILE}.tmp"
    torch.save(payload, tmp)
    tmp.replace(out / LENS_FILE)
    return out / LENS_FILE


def load_lens(path: str | Path) -> Any:
    """The ``HookedTransformer`` saved by ``save_lens`` (a file or its directory)."""
    torch, _, _ = _imports()
    path = Path(path)
    payload = torch.load(path / LENS_FILE if path.is_dir() else path, weights_only=True)
    return _build(payload["config"], {k: v.numpy() for k, v in payload["state_dict"].items()})


def check_lens(run: Run, out: str | Path) -> tuple[float, int]:
    """``check_logits`` of the HookedTransformer saved in ``out`` against the run's model."""
    lens = load_lens(out)
    return check_logits(run, lambda tokens: lens_logits(lens, tokens))


def export_lens_run(run: Run, out: str | Path) -> Path:
    """``save_lens`` of a run's model, recording the run and step in the file."""
    return save_lens(
        run.model, out, metadata={"run_dir": str(run.path.resolve()), "step": run.step}
    )


def lens_logits(lens: Any, tokens: np.ndarray) -> np.ndarray:
    """Logits [B, T, V] of a ``HookedTransformer`` for ``tokens`` [B, T]."""
    torch, _, _ = _imports()
    with torch.no_grad():
        return lens(torch.as_tensor(np.asarray(tokens, np.int64))).numpy()
