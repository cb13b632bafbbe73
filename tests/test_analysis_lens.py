"""TransformerLens export: a HookedTransformer built from a myojax GPT matches its logits within
1e-4 on corpus text (SP and muP, tied and untied, odd widths, heads and vocabularies), and the
documented capture -> hook-name map holds (residual streams and attention patterns)."""

import jax
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformer_lens")

from myojax.analysis.capture import capture
from myojax.analysis.lens import (
    CAPTURE_HOOKS,
    _build,
    hooked_transformer,
    lens_config,
    lens_logits,
    lens_state_dict,
    load_lens,
    save_lens,
)
from myojax.config import ModelConfig
from tests.test_analysis_export import corpus_tokens
from tests.test_analysis_sampling import trained_like

# Width 48 over 3 heads (d_head 16), 3 layers, a vocabulary that is not a power of two.
SP = ModelConfig(vocab_size=300, seq_len=24, d_model=48, n_layers=3, n_heads=3)
MUP = SP.replace(
    parametrization="mup",
    base_width=16,
    input_mult=2.0,
    output_mult=0.5,
    attn_mult=1.5,
    tie_embeddings=False,
)
CASES = {
    "sp-tied": SP,
    "sp-myopic-untied": SP.replace(gradient_mode="myopic", tie_embeddings=False),
    "mup-untied": MUP,
    "mup-tied": MUP.replace(tie_embeddings=True),
}


@pytest.mark.parametrize("config", CASES.values(), ids=CASES.keys())
def test_lens_reproduces_the_logits(config):
    model = trained_like(config)
    tokens = corpus_tokens(config)
    ours = np.asarray(jax.vmap(model)(tokens))
    theirs = lens_logits(hooked_transformer(model), tokens)
    assert np.abs(ours).max() > 0.5  # logits far from zero: the comparison has teeth
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)


def test_capture_fields_are_the_documented_hooks():
    import torch

    model = trained_like(MUP)
    tokens = corpus_tokens(MUP, rows=2)
    acts = capture(model, tokens, tokens)
    with torch.no_grad():
        _, cache = hooked_transformer(model).run_with_cache(torch.as_tensor(tokens.astype(int)))
    for field, hook in CAPTURE_HOOKS.items():
        for layer in range(MUP.n_layers):
            ours = np.asarray(getattr(acts, field)[:, layer])
            # 1e-4 as for logits, or float32 rounding at the stream's scale (entries reach ~25)
            atol = max(1e-4, 1e-5 * float(np.abs(ours).max()))
            np.testing.assert_allclose(
                cache[hook.format(l=layer)].numpy(), ours, atol=atol, rtol=0, err_msg=hook
            )


def test_heads_in_the_wrong_order_would_not_match():
    """Negative control: the same weights with the output heads permuted differ."""
    model = trained_like(SP)
    state = lens_state_dict(model)
    state["blocks.0.attn.W_O"] = state["blocks.0.attn.W_O"][::-1].copy()
    tokens = corpus_tokens(SP, rows=1)
    theirs = lens_logits(_build(lens_config(model), state), tokens)
    assert np.abs(theirs - np.asarray(jax.vmap(model)(tokens))).max() > 1e-2


def test_save_and_load_round_trip(tmp_path):
    model = trained_like(MUP)
    save_lens(model, tmp_path, metadata={"step": 7})
    tokens = corpus_tokens(MUP, rows=1)
    np.testing.assert_allclose(
        lens_logits(load_lens(tmp_path), tokens), np.asarray(jax.vmap(model)(tokens)), atol=1e-4
    )


def test_cli_exports_a_run_for_transformer_lens_and_checks_it(tmp_path, capsys):
    from myojax.export import main

    out = tmp_path / "tl"
    run = "tests/fixtures/run-v0.1-myopic"
    assert main([run, "--out", str(out), "--format", "transformer-lens", "--check"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'transformer_lens.pt'}" in printed
    assert "check: HookedTransformer logits vs myojax" in printed
    with pytest.raises(SystemExit) as e:  # the control: a non-empty --out is refused
        main([run, "--out", str(out), "--format", "transformer-lens"])
    assert e.value.code == 2
