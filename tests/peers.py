"""Shared by the benchmark peers' tests: a small model with perturbed weights and a batch."""

import jax
import numpy as np

from myojax.config import ModelConfig
from myojax.model import GPT, count_params

CFG = ModelConfig(vocab_size=32, seq_len=16, d_model=32, n_layers=2, n_heads=2)


def model_and_windows(cfg: ModelConfig = CFG) -> tuple[GPT, np.ndarray]:
    """A model whose LayerNorm gains and biases are non-trivial (so a misplaced one shows in the
    loss), and 4 windows of seq_len + 1 tokens."""
    model = GPT(cfg, key=jax.random.key(0))
    noise = jax.random.normal(jax.random.key(3), (count_params(model),)) * 0.05
    leaves, tree = jax.tree.flatten(model)
    offsets = np.cumsum([0] + [a.size for a in leaves])
    leaves = [a + noise[o : o + a.size].reshape(a.shape) for a, o in zip(leaves, offsets)]
    windows = np.asarray(jax.random.randint(jax.random.key(1), (4, cfg.seq_len + 1), 0, 32))
    return jax.tree.unflatten(tree, leaves), windows
