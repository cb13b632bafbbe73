"""Hypothesis strategies over small model shapes (drawn from small sets so compiles are reused)."""

from hypothesis import strategies as st

from myojax.config import ModelConfig

SEQ_LENS = (1, 2, 3, 8, 17)
D_MODEL = 24  # divisible by every head count drawn below


@st.composite
def configs(draw: st.DrawFn, mode: str = "standard") -> ModelConfig:
    return ModelConfig(
        vocab_size=32,
        seq_len=draw(st.sampled_from(SEQ_LENS)),
        d_model=D_MODEL,
        n_layers=draw(st.integers(1, 3)),
        n_heads=draw(st.integers(1, 4)),
        gradient_mode=mode,
    )
