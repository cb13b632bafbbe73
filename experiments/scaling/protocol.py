"""The scaling study's protocol: model ladders (study presets), token budgets and run specs.

Per gradient mode: a muP learning-rate sweep on the base-width proxy, then every size at the
mode's best lr, the same seed, data order and held-out windows, for a token budget
D(N) = D_ref · (N / N_ref)^β. Nothing here runs anything: ``--dry-run`` needs only this module.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.model import param_counts
from myojax.presets import GPT2_SHAPES, model_preset
from myojax.train.config import TrainConfig

EVAL_SEED = 20240601  # the held-out windows: one fixed set for every run of every study


@dataclasses.dataclass(frozen=True)
class Size:
    """One rung of the ladder: a named transformer shape."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """A ladder of sizes and everything about how each is trained and evaluated.

    Token budget: D(N) = ``ref_tokens`` · (N / N_proxy)^``budget_exponent`` (N = non-embedding
    parameters), rounded up to whole steps. β = 1 is Chinchilla's fixed tokens-per-parameter;
    β < 1 trains larger models on relatively fewer tokens (what a CPU budget allows).
    """

    name: str
    sizes: tuple[Size, ...]
    proxy: Size  # base-width proxy for the lr sweep; muP base_width = proxy.d_model
    lrs: tuple[float, ...]
    seq_len: int
    batch_size: int
    vocab_size: int
    ref_tokens: int
    budget_exponent: float
    warmup_frac: float
    eval_batches: int
    n_boot: int
    data: str
    description: str
    seed: int = 0
    param_dtype: str = "float32"
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if len(self.sizes) < 3:
            raise ValueError(f"preset {self.name}: a 3-parameter fit needs >= 3 sizes")
        if len(self.lrs) < 2 or sorted(self.lrs) != list(self.lrs):
            raise ValueError(f"preset {self.name}: lrs must be >= 2 increasing values")
        for s in (*self.sizes, self.proxy):
            if (
                s.d_model % s.n_heads
                or s.d_model // s.n_heads != self.proxy.d_model // self.proxy.n_heads
            ):
                raise ValueError(
                    f"preset {self.name}: size {s.name} must keep the proxy's head "
                    "dimension (muP's width family)"
                )

    @property
    def base_width(self) -> int:
        return self.proxy.d_model

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


def _ladder(widths: Sequence[int], n_layers: int, head_dim: int) -> tuple[Size, ...]:
    return tuple(Size(f"w{d}", n_layers, d, d // head_dim) for d in widths)


_CPU_SIZES = _ladder((32, 48, 80, 112), n_layers=2, head_dim=16)
_SMOKE_SIZES = _ladder((16, 32, 48), n_layers=1, head_dim=16)
_GPT2_SIZES = tuple(Size(name, *GPT2_SHAPES[name]) for name in GPT2_SHAPES)

STUDY_PRESETS: dict[str, StudyPreset] = {
    "cpu": StudyPreset(
        name="cpu",
        sizes=_CPU_SIZES,
        proxy=_CPU_SIZES[0],
        lrs=(2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2),
        seq_len=64,
        batch_size=32,
        vocab_size=256,
        ref_tokens=200 * 32 * 64,
        budget_exponent=0.5,
        warmup_frac=0.1,
        eval_batches=8,
        n_boot=300,
        data="shakespeare",
        description="2-layer byte-level GPTs, widths 32-112 (head dim 16), embedded Shakespeare; "
        "about 12 CPU-minutes (results/scaling.md has the measured wall time)",
    ),
    "smoke": StudyPreset(
        name="smoke",
        sizes=_SMOKE_SIZES,
        proxy=_SMOKE_SIZES[0],
        lrs=(4e-3, 1.6e-2),  # 2 values only: the smoke preset tests plumbing, not science
        seq_len=32,
        batch_size=8,
        vocab_size=256,
        ref_tokens=12 * 8 * 32,
        budget_exponent=0.0,
        warmup_frac=0.1,
        eval_batches=4,
        n_boot=40,
        data="shakespeare",
        description="1-layer widths 16-48, 12 steps each: end-to-end plumbing test (minutes)",
    ),
    "gpt2": StudyPreset(
        name="gpt2",
        sizes=_GPT2_SIZES,
        proxy=Size("proxy-w256", 12, 256, 4),
        lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3),
        seq_len=1024,
        batch_size=512,
        vocab_size=50257,
        ref_tokens=0,
        budget_exponent=1.0,
        warmup_frac=0.02,
        eval_batches=8,
        n_boot=1000,
        data="",
        description="GPT-2 shapes 117M-1.5B on token shards (--data), 20 tokens per "
        "non-embedding parameter (Chinchilla's ratio), muP proxy at width 256",
    ),
}
GPT2_TOKENS_PER_PARAM = 20


def model_config(p: StudyPreset, size: Size, mode: str) -> ModelConfig:
    if mode not in GRADIENT_MODES:
        raise ValueError(f"unknown gradient mode {mode!r}; modes are {GRADIENT_MODES}")
    base = model_preset("gpt2-117m") if p.name == "gpt2" else ModelConfig()
    return base.replace(
        vocab_size=p.vocab_size,
        seq_len=p.seq_len,
        d_model=size.d_model,
        n_layers=size.n_layers,
        n_heads=size.n_heads,
        gradient_mode=mode,
        parametrization="mup",
        base_width=p.base_width,
        param_dtype=p.param_dtype,
        compute_dtype=p.compute_dtype,
    )


def token_budget(p: StudyPreset, non_embedding: int) -> tuple[int, int]:
    """(steps, tokens) for a model of ``non_embedding`` parameters under the preset's rule."""
    n_ref = param_counts(model_config(p, p.proxy, "standard"))[1]
    ref = p.ref_tokens if p.ref_tokens > 0 else GPT2_TOKENS_PER_PARAM * n_ref
    tokens = ref * (non_embedding / n_ref) ** p.budget_exponent
    steps = max(1, math.ceil(tokens / p.tokens_per_step))
    return steps, steps * p.tokens_per_step


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run. ``role`` is "sweep" (proxy, lr grid) or "size" (a ladder rung)."""

    mode: str
    role: str
    size: Size
    lr: float
    steps: int
    tokens: int
    model: ModelConfig

    @property
    def name(self) -> str:
        return f"{self.size.name}-lr{self.lr:.3g}"

    def run_dir(self, out: Path) -> Path:
        return out / "runs" / self.mode / self.name


def sweep_specs(p: StudyPreset, modes: Sequence[str]) -> list[RunSpec]:
    cfgs = {m: model_config(p, p.proxy, m) for m in modes}
    steps, tokens = token_budget(p, param_counts(cfgs[modes[0]])[1])
    return [RunSpec(m, "sweep", p.proxy, lr, steps, tokens, cfgs[m]) for m in modes for lr in p.lrs]


def size_specs(p: StudyPreset, mode: str, lr: float) -> list[RunSpec]:
    specs = []
    for size in p.sizes:
        cfg = model_config(p, size, mode)
        steps, tokens = token_budget(p, param_counts(cfg)[1])
        specs.append(RunSpec(mode, "size", size, lr, steps, tokens, cfg))
    return specs


def same_run(a: RunSpec, b: RunSpec) -> bool:
    """True when two specs train the identical model (e.g. the best sweep run is size 0)."""
    return (a.mode, a.lr, a.steps, a.model) == (b.mode, b.lr, b.steps, b.model)


def n_runs(p: StudyPreset, modes: Sequence[str]) -> int:
    """Distinct runs of the whole study (one size run coincides with a sweep run when the proxy
    is the smallest size)."""
    reused = 1 if p.proxy in p.sizes else 0
    return len(modes) * (len(p.lrs) + len(p.sizes) - reused)


def train_config(
    p: StudyPreset, spec: RunSpec, run_dir: Path, data: str, mesh: str | None = None
) -> TrainConfig:
    extra = {} if mesh is None else {"mesh": mesh}
    return TrainConfig(
        **extra,
        steps=spec.steps,
        batch_size=p.batch_size,
        lr=spec.lr,
        warmup_steps=min(spec.steps - 1, max(1, round(p.warmup_frac * spec.steps))),
        log_interval=max(1, spec.steps // 10),
        eval_interval=spec.steps,
        eval_batches=1,
        checkpoint_interval=max(1, spec.steps // 4),
        keep=1,
        seed=p.seed,
        data=data,
        out=str(run_dir),
    )
