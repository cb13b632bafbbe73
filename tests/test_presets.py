"""myojax.presets: model shapes (GPT-2 family, tiny, small); they need only myojax.config."""

from __future__ import annotations

import math

import jax
import pytest

from myojax.model import GPT, param_counts
from myojax.presets import GPT2_SHAPES, MODEL_PRESETS
from myojax.presets import model_preset as preset

# Published GPT-2 parameter counts (tied embeddings, 1024 positions): 124M, 355M, 774M, 1.56B.
EXPECTED_PARAMS = {
    "gpt2-117m": 124_439_808,
    "gpt2-345m": 354_823_168,
    "gpt2-762m": 774_030_080,
    "gpt2-1.5b": 1_557_611_200,
}


def _n_params(name: str) -> int:
    shapes = jax.eval_shape(lambda: GPT(preset(name), key=jax.random.key(0)))  # no allocation
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_gpt2_shapes_and_parameter_counts(name: str) -> None:
    config = preset(name)
    n_layers, d_model, n_heads = GPT2_SHAPES[name]
    assert (config.n_layers, config.d_model, config.n_heads) == (n_layers, d_model, n_heads)
    assert (config.vocab_size, config.seq_len, config.ff_dim) == (50257, 1024, 4 * d_model)
    assert config.tie_embeddings
    assert _n_params(name) == EXPECTED_PARAMS[name] == param_counts(config)[0]


def test_overrides_and_factories() -> None:
    config = preset("gpt2-117m", gradient_mode="myopic", remat="full", seq_len=256)
    assert (config.gradient_mode, config.remat, config.seq_len) == ("myopic", "full", 256)
    assert MODEL_PRESETS["gpt2-345m"] == preset("gpt2-345m")
    with pytest.raises(ValueError, match="d_model"):
        preset("gpt2-1.5b", n_heads=7)  # validated by ModelConfig


def test_unknown_names_are_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'gpt2-xl'"):
        preset("gpt2-xl")


def test_model_shapes_import_nothing_but_the_config() -> None:
    """Model shapes sit below the trainer and the sharding plan (no folder-level loop)."""
    import ast
    from pathlib import Path

    import myojax.presets

    tree = ast.parse(Path(myojax.presets.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {m for m in imported if m.startswith("myojax")} == {"myojax.config"}
