"""GPT-2 small's shape trained for a few real steps in both gradient modes on a simulated
2-device mesh: the synthetic shards, the training subprocess and its checks, and the page."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments import epilogue

DEVICES = 2
MESH = "data=1,fsdp=2"
MODES = ("standard", "myopic")


def write_zipf_shards(directory: Path, vocab_size: int, seed: int = 0) -> None:
    """Train and val shards of Zipf(1.1)-ranked ids, the ranks shuffled over the vocabulary."""
    import numpy as np

    from myojax.data.prepare import write_shard

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
    ids = rng.permutation(vocab_size)
    for split, n in (("train", 400_000), ("val", 40_000)):
        tokens = ids[rng.choice(vocab_size, size=n, p=weights / weights.sum())]
        write_shard(
            directory / f"{split}_000000.bin", tokens, vocab_size=vocab_size, tokenizer="zipf"
        )


def worker(out: Path, steps: int) -> dict[str, Any]:
    """The subprocess's side (it needs the simulated devices): train both modes, restore the
    standard model onto the mesh and compare the modes' forward outputs."""
    import equinox as eqx
    import jax
    import numpy as np

    from myojax import evaluation
    from myojax import sharding as shd
    from myojax.checkpoint import restore
    from myojax.data import pipeline
    from myojax.model import GPT
    from myojax.presets import model_preset
    from myojax.train import TrainConfig, data_seeds, run

    assert jax.device_count() == DEVICES
    data = out / "data"
    # remat=full: one layer's activations at a time (a 124M model's full activations at
    # T = 1024 on two simulated devices crowd a shared 24 GiB machine).
    model_cfg = model_preset("gpt2-117m", remat="full")
    if not (data / "val_000000.json").exists():
        write_zipf_shards(data, model_cfg.vocab_size)
    result: dict[str, Any] = {"runs": {}}
    for mode in MODES:
        train_cfg = TrainConfig(
            steps=steps,
            batch_size=DEVICES,  # one 1024-token sequence per device
            lr=1e-3,
            warmup_steps=1,
            log_interval=1,
            eval_interval=steps,
            eval_batches=1,
            checkpoint_interval=steps,
            keep=1,
            seed=0,
            data=str(data),
            out=str(out / mode),
            mesh=MESH,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        final = run(
            train_cfg, model_cfg.replace(gradient_mode=mode), overwrite=True, progress=False
        )
        rows = [json.loads(x) for x in (out / mode / "metrics.jsonl").read_text().splitlines()]
        result["runs"][mode] = {
            "losses": [r["loss"] for r in rows if "loss" in r],
            "val_loss": final["val_loss"],
            "params": final["params"],
            "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "load_after": os.getloadavg(),
        }

    # The trained standard model, restored onto the mesh from its checkpoint.
    mesh = shd.make_mesh(shd.MeshConfig.parse(MESH))
    restored_cfg, model = restore(out / "standard", mesh=mesh)
    shardings = jax.tree.map(lambda a: a.sharding, model)
    _, k_eval = data_seeds(jax.random.split(jax.random.key(0))[1])
    rows = shd.process_batch_indices(DEVICES, shd.batch_sharding(mesh))
    windows = evaluation.heldout_windows(
        pipeline.load_data(str(data)).val,
        seq_len=model_cfg.seq_len,
        batch_size=DEVICES,
        num_batches=1,
        seed=k_eval,
        rows=rows,
    )
    batch_fn = functools.partial(shd.global_batch, mesh=mesh)
    losses_fn = evaluation.compile_losses("position", mesh, shardings)
    val = evaluation.evaluate(model, windows, losses_fn=losses_fn, batch_fn=batch_fn)
    per_mode = {}
    for mode in MODES:
        # The same parameters under the other mode's (static) config.
        skeleton = eqx.filter_eval_shape(
            GPT, restored_cfg.replace(gradient_mode=mode), key=jax.random.key(0)
        )
        m = jax.tree.unflatten(jax.tree.structure(skeleton), jax.tree.leaves(model))
        fn = evaluation.compile_losses("position", mesh, jax.tree.map(lambda a: a.sharding, m))
        per_mode[mode] = np.asarray(jax.device_get(fn(m, batch_fn(windows[0]))))
    first = [result["runs"][m]["losses"][0] for m in MODES]
    result["checks"] = {
        "restored_mode": restored_cfg.gradient_mode,
        "restored_val_loss": val["val_loss"],
        "restored_val_loss_equals_run": val["val_loss"] == result["runs"]["standard"]["val_loss"],
        "first_step_loss_bitwise_equal": first[0] == first[1],
        "forward_bitwise_equal": bool(np.array_equal(per_mode["standard"], per_mode["myopic"])),
        "forward_max_abs_diff": float(np.max(np.abs(per_mode["standard"] - per_mode["myopic"]))),
    }
    return result


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    import math

    out = {}
    for mode, r in result["runs"].items():
        losses = r["losses"]
        out[f"{mode}: all losses finite"] = all(math.isfinite(x) for x in losses)
        out[f"{mode}: loss falls (last < first - 0.5)"] = losses[-1] < losses[0] - 0.5
        out[f"{mode}: >= 5 steps"] = len(losses) >= 5
    c = result["checks"]
    out["first-step loss bitwise equal between modes"] = c["first_step_loss_bitwise_equal"]
    out["forward outputs bitwise equal between modes (restored model, on the mesh)"] = c[
        "forward_bitwise_equal"
    ]
    out["checkpoint restores onto the mesh and reproduces the run's val loss"] = c[
        "restored_val_loss_equals_run"
    ]
    return out


def _load(load: Sequence[float]) -> str:
    """A load triple as the run printed it, ``(1.0, 2.5, 3.0)``, whether a tuple or (read back
    from JSON) a list."""
    return "(" + ", ".join(map(repr, load)) + ")"


def render(result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# GPT-2 small's shape on this CPU",
        "",
        f"Written by `{meta['command']}` on {meta['date']}: {meta['wall_s']:.0f} s wall "
        f"(load average {_load(meta['load_start'])} at the start, {_load(meta['load_end'])} at "
        "the end, on a "
        f"shared {meta['cpu_count']}-core machine; JAX {meta['jax']}).",
        "",
        f"gpt2-117m ({result['runs']['standard']['params']:,} parameters, T = 1024, vocabulary "
        f"50257) trained by `myojax.train.run` on {DEVICES} simulated CPU devices, mesh {MESH}, "
        "one sequence per device, lr 1e-3 after one warmup step (step 1 has lr 0), synthetic "
        "Zipf token shards over the full vocabulary.",
        "",
        "| mode | steps | losses per step | val loss | wall s | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for mode, r in result["runs"].items():
        losses = ", ".join(f"{x:.4f}" for x in r["losses"])
        lines.append(
            f"| {mode} | {len(r['losses'])} | {losses} | {r['val_loss']:.4f} | "
            f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} |"
        )
    lines += ["", "| check | result |", "|---|---|"]
    for name, ok in verdicts(result).items():
        lines.append(f"| {name} | {'yes' if ok else '**NO**'} |")
    c = result["checks"]
    lines += [
        "",
        f"Forward max |standard - myopic| over the per-position losses: "
        f"{c['forward_max_abs_diff']:g}. Restored val loss {c['restored_val_loss']!r}.",
        "",
    ]
    return "\n".join(lines)


def train_in_subprocess(out: Path, steps: int) -> dict[str, Any]:
    """``worker`` in a fresh process with ``DEVICES`` simulated CPU devices."""
    env = {
        **os.environ,
        # A loaded machine can let one simulated device's thread fall minutes behind the other:
        # XLA's in-process collectives would abort after 40 s.
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES} "
        "--xla_cpu_collective_call_terminate_timeout_seconds=3600 "
        "--xla_cpu_collective_timeout_seconds=3600",
        "JAX_PLATFORMS": "cpu",
    }
    cmd = [sys.executable, "-m", "experiments.gpt2_steps", "--worker"]
    cmd += ["--steps", str(steps), "--out", str(out)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"the training subprocess failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_meta(command: str, t0: float, load_start: Sequence[float]) -> dict[str, Any]:
    """The run record the page prints."""
    import jax

    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_s": time.perf_counter() - t0,
        "load_start": tuple(round(x, 1) for x in load_start),
        "load_end": tuple(round(x, 1) for x in os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
    }


def page(report: Path) -> epilogue.Page:
    """The page ``report`` and its JSON beside it (``report`` with ``.json``)."""
    return epilogue.page_at(report, lambda doc, prefix: render(doc, doc["meta"]))
