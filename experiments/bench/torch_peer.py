"""A PyTorch peer of myojax's GPT and train step, for ``python -m experiments.bench --peer torch``.

The same architecture as ``myojax.model.GPT`` written the way a PyTorch user would: pre-LN
blocks, one fused QKV ``nn.Linear``, ``F.scaled_dot_product_attention(is_causal=True)``, tanh-GELU
(myojax uses ``jax.nn.gelu(approximate=True)``), tied token embedding as the readout, and the
same optimizer (global-norm clipping, then AdamW over every parameter), in eager mode with
``torch.set_num_threads(os.cpu_count())``. ``from_myojax`` copies a myojax model's weights so the
two can be checked against each other (``tests/test_torch_peer.py``).

torch is an optional dependency (``pip install -e '.[bench]'``, pinned to the 2.13.0 CPU build).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from myojax.config import ModelConfig
from myojax.model import GPT


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.scale = cfg.n_heads, cfg.attn_scale
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, cfg.ff_dim)
        self.proj = nn.Linear(cfg.ff_dim, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (a.view(b, t, self.n_heads, -1).transpose(1, 2) for a in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        x = x + self.out(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class TorchGPT(nn.Module):
    """Token + position embeddings, the blocks, final LayerNorm, tied readout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if not cfg.tie_embeddings:
            raise ValueError("the torch peer implements tied embeddings only (tie_embeddings=True)")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.lnf = nn.LayerNorm(cfg.d_model, eps=1e-5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = (self.wte(tokens) + self.wpe(pos)) * self.cfg.input_multiplier
        for block in self.blocks:
            x = block(x)
        return (self.lnf(x) @ self.wte.weight.T) * self.cfg.output_multiplier


def from_myojax(model: GPT) -> TorchGPT:
    """A ``TorchGPT`` holding ``model``'s weights (float32; myojax stores ``h @ W`` matrices,
    torch's ``nn.Linear`` the transpose)."""
    peer = TorchGPT(model.config)

    def t(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    with torch.no_grad():
        peer.wte.weight.copy_(t(model.wte))
        peer.wpe.weight.copy_(t(model.wpe))
        peer.lnf.weight.copy_(t(model.lnf_gain))
        peer.lnf.bias.copy_(t(model.lnf_bias))
        for i, block in enumerate(peer.blocks):
            src = model.layer(i)
            for ln, gain, bias in (
                (block.ln1, src.ln1_gain, src.ln1_bias),
                (block.ln2, src.ln2_gain, src.ln2_bias),
            ):
                ln.weight.copy_(t(gain))
                ln.bias.copy_(t(bias))
            for lin, w, b in (
                (block.qkv, src.w_qkv, src.b_qkv),
                (block.out, src.w_out, src.b_out),
                (block.fc, src.w_fc, src.b_fc),
                (block.proj, src.w_proj, src.b_proj),
            ):
                lin.weight.copy_(t(w).T)
                lin.bias.copy_(t(b))
    return peer


def batch_tensors(windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of T+1 tokens -> (inputs, next-token targets) as int64 tensors."""
    w = torch.from_numpy(np.array(windows, dtype=np.int64))
    return w[:, :-1], w[:, 1:]


def mean_loss(model: TorchGPT, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def make_train_step(
    model: TorchGPT, *, lr: float, weight_decay: float, grad_clip: float
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """Eager train step: loss, backward, clip the global norm, AdamW (torch's fused CPU kernel)
    over every parameter — optax's ``chain(clip_by_global_norm, adamw)`` with default betas/eps."""
    torch.set_num_threads(os.cpu_count() or 1)
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay,
        fused=True,
    )  # fmt: skip

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        loss = mean_loss(model, inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
        opt.step()
        return float(loss.detach())

    return step


def count_params(model: TorchGPT) -> int:
    return sum(p.numel() for p in model.parameters())
