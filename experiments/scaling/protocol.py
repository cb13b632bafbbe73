"""The scaling study's protocol: model ladders (study presets), token budgets and run specs.

Per gradient mode and training seed: a muP learning-rate sweep on the base-width proxy (the
smallest size), scored on the validation split; then every size at the mode's chosen lr for a
token budget of a constant ``tokens_per_param`` times its non-embedding parameters; then two
checks: the undertraining check (one size at 2x and 4x that budget) and the muP transfer check
(the largest size re-swept one grid step either side of the transferred lr). Reported losses
are on the test split, which no choice ever looks at. Nothing here runs anything: ``--dry-run``
needs only this module.
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

EVAL_SEED = 20240601  # the validation and test windows: one fixed set for every run
ROLES = ("sweep", "size", "undertrain", "transfer")


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

    Token budget: D(N) = ``tokens_per_param`` · N (N = non-embedding parameters), rounded up to
    whole steps; Chinchilla's compute-optimal ratio is about 20. ``lrs`` is a geometric grid (one
    grid step = one constant factor). Every (mode, size) is trained once per seed in ``seeds``;
    the seed sets initialisation and data order.
    """

    name: str
    sizes: tuple[Size, ...]
    lrs: tuple[float, ...]
    seq_len: int
    batch_size: int
    vocab_size: int
    tokens_per_param: float
    seeds: tuple[int, ...]
    warmup_frac: float
    eval_batches: int  # per held-out split: eval_batches * batch_size validation (test) windows
    n_boot: int  # bootstrap replicates per level for gaps, slopes and losses
    data: str
    description: str
    undertrain_size: str | None = None  # the size trained again at 2x and 4x its budget
    undertrain_factors: tuple[int, ...] = (2, 4)
    transfer_steps: tuple[int, ...] = (-1, 1)  # grid steps around the transferred lr, largest size
    transfer_seeds: int | None = None  # the transfer check trains seeds[:transfer_seeds]
    sweep_size: Size | None = None  # the lr sweep's model when it is not the smallest size
    n_boot_fit: int = 60  # replicates per level for the joint fit (each one is a refit)
    param_dtype: str = "float32"
    compute_dtype: str = "float32"
    attention_impl: str = "fast"  # ModelConfig.attention_impl of every run; one per study
    disjoint_windows: bool = False  # no training token read twice within a run (isoFLOP)

    def __post_init__(self) -> None:
        if len(self.sizes) < 3:
            raise ValueError(f"preset {self.name}: a 3-parameter fit needs >= 3 sizes")
        if len(self.lrs) < 2 or sorted(self.lrs) != list(self.lrs):
            raise ValueError(f"preset {self.name}: lrs must be >= 2 increasing values")
        ratios = [b / a for a, b in zip(self.lrs, self.lrs[1:])]
        if max(ratios) / min(ratios) > 1.001:
            raise ValueError(f"preset {self.name}: lrs must be a geometric grid, got {self.lrs}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"preset {self.name}: seeds must be distinct, got {self.seeds}")
        if self.undertrain_size not in (None, *(s.name for s in self.sizes)):
            raise ValueError(f"preset {self.name}: undertrain_size {self.undertrain_size!r}")
        if 0 in self.transfer_steps or 1 in self.undertrain_factors:
            raise ValueError(f"preset {self.name}: the 1x / transferred run is the size run")
        for s in (*self.sizes, self.proxy):
            if s.d_model % s.n_heads or s.d_model // s.n_heads != self.head_dim:
                raise ValueError(
                    f"preset {self.name}: size {s.name} must keep the proxy's head "
                    "dimension (muP's width family)"
                )

    @property
    def proxy(self) -> Size:
        """The lr sweep's model (default: the smallest size); its width is muP's base width."""
        return self.sweep_size or self.sizes[0]

    @property
    def head_dim(self) -> int:
        return self.proxy.d_model // self.proxy.n_heads

    @property
    def base_width(self) -> int:
        return self.proxy.d_model

    @property
    def lr_step(self) -> float:
        """The factor between neighbouring lrs of the grid."""
        return self.lrs[1] / self.lrs[0]

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


def _ladder(shapes: Sequence[tuple[int, int]], head_dim: int) -> tuple[Size, ...]:
    return tuple(Size(f"L{n}w{d}", n, d, d // head_dim) for n, d in shapes)


_CPU_SIZES = _ladder(((2, 32), (2, 48), (3, 48), (3, 64), (4, 64)), head_dim=16)
# cpu-large extends the ladder downwards (L2w16, one head) rather than upwards: a 5-layer
# width-128 rung would cost ~40 minutes per run here (extrapolated as N^2 from the measured L4w80
# runs), against the ~7.5 measured for L4w96. The lr sweep
# stays on L2w32 (muP base width 32), so L2w16 runs at width multiplier 0.5.
_CPU_LARGE_SIZES = _ladder(((2, 16), (2, 32), (2, 48), (3, 64), (4, 80), (4, 96)), head_dim=16)
_SMOKE_SIZES = _ladder(((1, 16), (1, 32), (2, 32)), head_dim=16)
_GPT2_SIZES = tuple(Size(name, *GPT2_SHAPES[name]) for name in GPT2_SHAPES)
_LRS = (2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2)
GPT2_TOKENS_PER_PARAM = 20  # Chinchilla's compute-optimal ratio (Hoffmann et al., 2022)

_SMOKE = StudyPreset(
    name="smoke",
    sizes=_SMOKE_SIZES,
    lrs=(4e-3, 1.6e-2),  # 2 values only: the smoke preset tests plumbing, not science
    seq_len=32,
    batch_size=8,
    vocab_size=256,
    tokens_per_param=0.2,
    seeds=(0, 1),
    warmup_frac=0.1,
    eval_batches=2,
    n_boot=40,
    n_boot_fit=10,
    data="shakespeare",
    description="1-2 layers, widths 16-32, 2 seeds, a few steps each: end-to-end "
    "plumbing test (no undertraining or transfer runs: their analysis has unit tests)",
    undertrain_size=None,
    transfer_steps=(),
)

# smoke plus both checks, at their smallest: the transfer check on one seed and the
# undertraining check at 2x only, on the cheapest size; what the multi-process test runs so a
# pod's every run role goes through it
_SMOKE_FULL = dataclasses.replace(
    _SMOKE,
    name="smoke-full",
    description="the smoke preset plus the transfer check (largest size, one seed) and the "
    "undertraining check (L1w16 at 2x): every run role, end to end",
    undertrain_size="L1w16",
    undertrain_factors=(2,),
    transfer_steps=(-1, 1),
    transfer_seeds=1,
)

STUDY_PRESETS: dict[str, StudyPreset] = {
    "cpu": StudyPreset(
        name="cpu",
        sizes=_CPU_SIZES,
        lrs=_LRS,
        seq_len=64,
        batch_size=16,
        vocab_size=256,
        tokens_per_param=7.5,
        seeds=(0, 1, 2),
        warmup_frac=0.1,
        eval_batches=16,
        n_boot=400,
        data="shakespeare",
        description="byte-level GPTs of 2-4 layers and widths 32-64 (head dim 16), 3 seeds, "
        "7.5 tokens per parameter (below Chinchilla's 20: forced by the 20-minute budget), "
        "embedded Shakespeare; sized from measured per-step CPU costs for at most 20 minutes "
        "on an idle 2-core CPU",
        undertrain_size="L2w48",
        transfer_seeds=1,
    ),
    "cpu-large": StudyPreset(
        name="cpu-large",
        sizes=_CPU_LARGE_SIZES,
        lrs=_LRS,
        seq_len=64,
        batch_size=16,
        vocab_size=256,
        tokens_per_param=20.0,
        seeds=(0, 1, 2),
        warmup_frac=0.05,
        eval_batches=32,
        n_boot=1000,
        data="shakespeare",
        description="byte-level GPTs of 2-4 layers and widths 16-96, 1.8 decades of N, "
        "3 seeds, 20 tokens per parameter (Chinchilla's ratio), embedded Shakespeare, lr swept "
        "on L2w32; hours on a 2-core machine (resumable; --dry-run prints the FLOPs)",
        undertrain_size="L3w64",
        sweep_size=_CPU_LARGE_SIZES[1],
        transfer_seeds=1,
    ),
    "smoke": _SMOKE,
    "smoke-full": _SMOKE_FULL,
    "gpt2": StudyPreset(
        name="gpt2",
        sizes=_GPT2_SIZES,
        sweep_size=Size("proxy-w256", 12, 256, 4),
        lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3),
        seq_len=1024,
        batch_size=512,
        vocab_size=50257,
        tokens_per_param=GPT2_TOKENS_PER_PARAM,
        seeds=(0, 1, 2),
        warmup_frac=0.02,
        eval_batches=8,
        n_boot=1000,
        data="",
        description="GPT-2 shapes 117M-1.5B on token shards (--data, with test_*.bin shards), "
        "20 tokens per non-embedding parameter (Chinchilla's ratio), muP proxy at width 256",
        undertrain_size="gpt2-117m",
    ),
}


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
        attention_impl=p.attention_impl,
    )


def token_budget(p: StudyPreset, non_embedding: int, factor: float = 1.0) -> tuple[int, int]:
    """(steps, tokens) for ``factor`` x ``tokens_per_param`` x N tokens, in whole steps."""
    steps = max(1, math.ceil(factor * p.tokens_per_param * non_embedding / p.tokens_per_step))
    return steps, steps * p.tokens_per_step


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: ``role`` in ROLES; ``budget`` is the token-budget factor (1 = the
    preset's tokens_per_param)."""

    mode: str
    role: str
    size: Size
    lr: float
    steps: int
    tokens: int
    model: ModelConfig
    seed: int = 0
    budget: float = 1.0

    @property
    def name(self) -> str:
        x = "" if self.budget == 1 else f"-x{self.budget:g}"
        return f"{self.size.name}-lr{self.lr:.3g}{x}-s{self.seed}"

    def run_dir(self, out: Path) -> Path:
        return out / "runs" / self.mode / self.name


def _spec(p: StudyPreset, mode: str, role: str, size: Size, lr: float, seed: int, budget=1.0):
    cfg = model_config(p, size, mode)
    steps, tokens = token_budget(p, param_counts(cfg)[1], budget)
    return RunSpec(mode, role, size, lr, steps, tokens, cfg, seed, budget)


def sweep_specs(p: StudyPreset, modes: Sequence[str]) -> list[RunSpec]:
    """The lr grid on the proxy, for every mode and seed."""
    return [_spec(p, m, "sweep", p.proxy, lr, s) for m in modes for lr in p.lrs for s in p.seeds]


def size_specs(p: StudyPreset, mode: str, lr: float) -> list[RunSpec]:
    """Every size at ``lr``, every seed (size-major: a partial study has whole sizes)."""
    return [_spec(p, mode, "size", size, lr, s) for size in p.sizes for s in p.seeds]


def undertrain_specs(p: StudyPreset, mode: str, lr: float) -> list[RunSpec]:
    """The undertraining check's size at each budget factor above 1, every seed."""
    if p.undertrain_size is None:
        return []
    size = next(s for s in p.sizes if s.name == p.undertrain_size)
    return [
        _spec(p, mode, "undertrain", size, lr, s, float(f))
        for f in p.undertrain_factors
        for s in p.seeds
    ]


def transfer_lrs(p: StudyPreset, lr: float) -> list[float]:
    """The transfer check's lrs: ``transfer_steps`` grid steps from the transferred ``lr``."""
    return [float(f"{lr * p.lr_step**k:.6g}") for k in p.transfer_steps]


def transfer_specs(p: StudyPreset, mode: str, lr: float) -> list[RunSpec]:
    """The largest size re-swept around the lr transferred from the proxy, every seed."""
    seeds = p.seeds[: p.transfer_seeds]
    return [
        _spec(p, mode, "transfer", p.sizes[-1], x, s) for x in transfer_lrs(p, lr) for s in seeds
    ]


def plan_specs(p: StudyPreset, modes: Sequence[str]) -> list[RunSpec]:
    """Every distinct run for ``--dry-run`` (lr 0.0 stands for "the mode's chosen lr" and, in
    the transfer check, for a grid step from it: those lrs are known only after the sweep)."""
    specs = sweep_specs(p, modes)
    for m in modes:
        specs += [s for s in size_specs(p, m, 0.0) if s.size != p.proxy]
        specs += undertrain_specs(p, m, 0.0) + transfer_specs(p, m, 0.0)
    return specs


def same_run(a: RunSpec, b: RunSpec) -> bool:
    """True when two specs train the identical model (e.g. the best sweep run is size 0)."""
    return (a.mode, a.lr, a.steps, a.model, a.seed) == (b.mode, b.lr, b.steps, b.model, b.seed)


def n_runs(p: StudyPreset, modes: Sequence[str]) -> int:
    """Distinct runs of the whole study (the proxy's size runs, if any, are sweep runs)."""
    per_seed = (
        len(p.lrs)
        + len(p.sizes)
        - (1 if p.proxy in p.sizes else 0)
        + (len(p.undertrain_factors) if p.undertrain_size else 0)
    )
    transfer = len(p.transfer_steps) * len(p.seeds[: p.transfer_seeds])
    return len(modes) * (len(p.seeds) * per_seed + transfer)


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
        eval_interval=spec.steps,  # the trainer's own held-out loss: logged, never used here
        eval_batches=1,
        # short runs checkpoint only at the end (each save costs about a second on a small CPU);
        # long ones (gpt2-1.5b: 14k steps, ~12 h on a v4-32) also every 30 minutes, keeping two,
        # so a preemption loses at most half an hour and one unreadable save is survivable
        checkpoint_interval=max(min(250, spec.steps), spec.steps // 4),
        checkpoint_minutes=30.0,
        keep=2,
        seed=spec.seed,
        data=data,
        out=str(run_dir),
        disjoint_windows=p.disjoint_windows,
    )
