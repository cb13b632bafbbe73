"""Hugging Face export: an unmodified transformers.GPT2LMHeadModel loads the export and matches
myojax's logits within 1e-4 on corpus text, SP and muP, in both gradient modes."""

import jax
import numpy as np
import pytest

from myojax.analysis.export import ExportError, export_gpt2, gpt2_problems
from myojax.config import ModelConfig
from myojax.data import corpus
from myojax.model import GPT
from tests.test_analysis_sampling import trained_like

pytest.importorskip("safetensors")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from myojax.analysis.export import transformers_logits

SP = ModelConfig(vocab_size=256, seq_len=32, d_model=32, n_layers=2, n_heads=2)
# Every multiplier away from 1 so each fold is exercised; untied readout with muP.
MUP = SP.replace(
    parametrization="mup",
    base_width=8,
    input_mult=2.0,
    output_mult=0.5,
    attn_mult=1.5,
    tie_embeddings=False,
)


def corpus_tokens(config: ModelConfig, rows: int = 3) -> np.ndarray:
    val = corpus.load().val
    return np.asarray(val[: rows * config.seq_len], np.int32).reshape(rows, config.seq_len)


# SP and muP in both gradient modes; tied and untied readouts each appear under both.
CASES = {
    "sp-standard": SP,
    "sp-myopic-untied": SP.replace(gradient_mode="myopic", tie_embeddings=False),
    "mup-standard-untied": MUP,
    "mup-myopic": MUP.replace(gradient_mode="myopic", tie_embeddings=True),
}


@pytest.mark.parametrize("config", CASES.values(), ids=CASES.keys())
def test_transformers_reproduces_the_logits(tmp_path, config):
    model = trained_like(config)
    tokens = corpus_tokens(config)
    export_gpt2(model, tmp_path)
    theirs = transformers_logits(tmp_path, tokens)
    ours = np.asarray(jax.vmap(model)(tokens))
    assert np.abs(ours).max() > 0.5  # logits far from zero: the comparison has teeth
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)


def test_unfolded_multipliers_would_not_match(tmp_path):
    """Negative control: the muP model's weights exported as if SP (no folds) differ."""
    model = trained_like(MUP)
    as_sp = MUP.replace(
        parametrization="sp", base_width=None, input_mult=1.0, output_mult=1.0, attn_mult=1.0
    )
    skeleton = GPT(as_sp, key=jax.random.key(0))
    unfolded = jax.tree.unflatten(jax.tree.structure(skeleton), jax.tree.leaves(model))
    export_gpt2(unfolded, tmp_path)
    tokens = corpus_tokens(MUP, rows=1)
    theirs = transformers_logits(tmp_path, tokens)
    assert np.abs(theirs - np.asarray(jax.vmap(model)(tokens))).max() > 1e-2


def test_refuses_what_gpt2_cannot_express(tmp_path):
    model = GPT(SP.replace(compute_dtype="bfloat16"), key=jax.random.key(0))
    assert gpt2_problems(model)
    with pytest.raises(ExportError, match="bfloat16"):
        export_gpt2(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()  # refused before writing anything
    assert gpt2_problems(GPT(SP, key=jax.random.key(0))) == []


def test_cli_exports_a_run_and_checks_it(tmp_path, capsys):
    from myojax.export import main

    out = tmp_path / "hf"
    assert main(["tests/fixtures/run-v0.1-myopic", "--out", str(out), "--check"]) == 0
    assert (out / "model.safetensors").is_file()
    assert "max |diff|" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # a non-empty --out is never overwritten silently
        main(["tests/fixtures/run-v0.1-myopic", "--out", str(out)])
    assert e.value.code == 2
