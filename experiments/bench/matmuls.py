"""The train step's matmul problems timed one by one in XLA and in torch: does the gap between
myojax and the PyTorch peer live in the matmul kernels? (``python -m experiments.bench
--matmuls``)

One training step of the benchmark's GPT multiplies, per layer: the four projections (QKV,
attention output, MLP in and out) forward, and for each the input gradient (dy·Wᵀ) and the weight
gradient (xᵀ·dy, contracting over the B·T rows); the attention's per-head products (q·kᵀ and
p·v forward, four more backward); and once, the tied logits and their two gradients. Each
distinct problem is timed alone, jitted in XLA and as ``torch.matmul``, on the same float32
operands already laid out as the product needs (best of ``repeats`` after a warm-up), and the
table weights each by how often a step runs it. Inside the step XLA may fuse a transpose or a
bias into a product, so the isolated kernels bound what the step can get from its matmuls; they
are not a breakdown of the step itself (``--profile`` is).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from myojax.config import ModelConfig


class Problem(NamedTuple):
    name: str
    batch: int  # independent products (B·H for attention, 1 otherwise)
    m: int
    k: int
    n: int
    per_step: int  # how many times one train step runs it

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.k * self.n


def step_problems(cfg: ModelConfig, batch_size: int) -> list[Problem]:
    """Every distinct matmul of one forward + backward step, with its count per step."""
    rows, d, f, v = batch_size * cfg.seq_len, cfg.d_model, cfg.ff_dim, cfg.vocab_size
    t, h, dh, n_layers = cfg.seq_len, cfg.n_heads, cfg.d_model // cfg.n_heads, cfg.n_layers
    out: list[Problem] = []
    for name, k, n in (("qkv", d, 3 * d), ("attn out", d, d), ("mlp in", d, f), ("mlp out", f, d)):
        out += [
            Problem(f"{name} x·W", 1, rows, k, n, n_layers),
            Problem(f"{name} dy·Wᵀ", 1, rows, n, k, n_layers),
            Problem(f"{name} xᵀ·dy", 1, k, rows, n, n_layers),
        ]
    bh = batch_size * h
    out += [
        Problem("q·kᵀ, and dO·vᵀ", bh, t, dh, t, 2 * n_layers),
        Problem("p·v, and dq, dk, dv", bh, t, t, dh, 4 * n_layers),
        Problem("logits x·Eᵀ", 1, rows, d, v, 1),
        Problem("logits dy·E", 1, rows, v, d, 1),
        Problem("logits dyᵀ·x", 1, v, rows, d, 1),
    ]
    return out


def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_problem(p: Problem, repeats: int, with_torch: bool) -> dict[str, float]:
    """Best seconds of the product in XLA (and in torch) on the same random operands."""
    rng = np.random.default_rng(0)
    shape_a = (p.batch, p.m, p.k) if p.batch > 1 else (p.m, p.k)
    shape_b = (p.batch, p.k, p.n) if p.batch > 1 else (p.k, p.n)
    a = rng.standard_normal(shape_a, dtype=np.float32)
    b = rng.standard_normal(shape_b, dtype=np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    mm = jax.jit(jnp.matmul)
    row = {"xla_s": _best(lambda: mm(ja, jb).block_until_ready(), repeats)}
    if with_torch:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        with torch.no_grad():
            row["torch_s"] = _best(lambda: torch.matmul(ta, tb), repeats)
    return row


def run(cfg: ModelConfig, batch_size: int, repeats: int = 20, with_torch: bool = True) -> dict:
    """Per problem: shape, count per step, XLA (and torch) time and GFLOP/s; and the totals."""
    if with_torch:
        import os

        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    for p in step_problems(cfg, batch_size):
        timed = time_problem(p, repeats, with_torch)
        rows.append({**p._asdict(), "flops": p.flops, **timed})
    totals = {
        key: sum(r[key] * r["per_step"] for r in rows)
        for key in ("xla_s", "torch_s")
        if key in rows[0]
    }
    return {"problems": rows, "per_step_s": totals}


def markdown(result: dict, command: str, shape: str, provenance: str) -> str:
    has_torch = "torch_s" in result["per_step_s"]
    lines = [
        f"```bash\n{command}\n```",
        "",
        f"{shape}; each distinct matmul of one train step timed alone (best of the run's "
        f"repeats, float32), weighted by how often a step runs it. {provenance}.",
        "",
        "| product | batch × (M×K)·(K×N) | per step | XLA ms | XLA GFLOP/s"
        + (" | torch ms | torch GFLOP/s | torch / XLA time |" if has_torch else " |"),
        "|---|---|---|---|---" + ("|---|---|---|" if has_torch else "|"),
    ]
    for r in result["problems"]:
        cells = [
            r["name"],
            f"{r['batch']} × ({r['m']}×{r['k']})·({r['k']}×{r['n']})",
            str(r["per_step"]),
            f"{1e3 * r['xla_s']:.3f}",
            f"{r['flops'] / r['xla_s'] / 1e9:.0f}",
        ]
        if has_torch:
            cells += [
                f"{1e3 * r['torch_s']:.3f}",
                f"{r['flops'] / r['torch_s'] / 1e9:.0f}",
                f"{r['torch_s'] / r['xla_s']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    total = result["per_step_s"]
    summary = "Matmul time per step if each product ran as fast as alone: "
    summary += f"XLA {1e3 * total['xla_s']:.1f} ms"
    if has_torch:
        summary += (
            f", torch {1e3 * total['torch_s']:.1f} ms (torch / XLA "
            f"{total['torch_s'] / total['xla_s']:.2f})"
        )
    lines += ["", summary + "."]
    return "\n".join(lines)


def report_matmuls(
    cfg: ModelConfig, batch_size: int, out: str | None, command: str, peer: bool
) -> str:
    """Time every problem; the per-problem table, also written as a section of ``out`` if
    given."""
    from experiments.bench.report import shape_text
    from myojax.provenance import environment, load_summary, write_section

    wall0, start = time.perf_counter(), environment()
    result = run(cfg, batch_size, with_torch=peer)
    provenance = (
        f"Measured {start['time']}, jax {start['jax']}; "
        f"{load_summary(environment(), start)}; wall {time.perf_counter() - wall0:.0f} s"
    )
    shape = shape_text(cfg.to_dict(), batch_size)
    text = markdown(result, command, shape, provenance)
    if out:
        key = f"bench matmuls d{cfg.d_model} L{cfg.n_layers} T{cfg.seq_len} B{batch_size}"
        write_section(out, key, text)
    return text
