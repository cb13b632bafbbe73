"""The page of the memory planner checked against XLA (``results/memory_plan.md``): planner
against XLA per case, the verdict and the negative control, from the saved rows alone.

Written by ``python -m experiments.memory_check`` (which imports the scaling study's gpt2
preset) and copied into the scaling report (``experiments.scaling.companions``): it sits apart
from both, and imports neither, so that neither folder imports the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments import epilogue

TOLERANCE = 0.25  # the planner must be within this fraction of XLA's peak
DEVICES = 32  # simulated CPU devices of every case
GIB = 2**30


def _load_line(meta: dict[str, Any]) -> str:
    from myojax.provenance import load_summary

    def env(load: Any) -> dict[str, Any]:
        return {"load_avg_1_5_15": load, "cpu_count": meta["cpu_count"], "time": meta["date"]}

    return load_summary(env(meta["load_end"]), env(meta["load_start"]))


def _case_rows(rows: list[dict[str, Any]]) -> list[str]:
    """One table row per case: XLA's and the planner's GiB, their ratio, the compile cost."""
    lines = []
    for r in rows:
        c = r["case"]
        per = c["batch_size"] // DEVICES // c["microbatches"]
        control = "" if c.get("fsdp_gather", True) else " (control: no per-layer gather)"
        impl = f" [{c['attention_impl']}]" if "attention_impl" in c else ""  # absent: before it
        head = (
            f"| {c['size']}{impl}{control} | {c['mesh']} | {c['microbatches']} | {c['remat']} | "
            f"{per} |"
        )
        if "error" in r:
            lines.append(f"{head} not compiled here: {r['error']} | | | | | | | | |")
            continue
        x, p = r["xla"], r["compare"]
        lines.append(
            f"{head} {x['argument'] / GIB:.3f} | {p['planner_state'] / GIB:.3f} | "
            f"{x['temp'] / GIB:.3f} | {x['peak'] / GIB:.3f} | {p['planner_total'] / GIB:.3f} | "
            f"{p['ratio']:.2f} | {'yes' if p['agrees'] else '**NO**'} | "
            f"{r['compile_wall_s']:.0f} / {r['compile_cpu_s']:.0f} | {r['max_rss_gib']:.1f} |"
        )
    return lines


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Memory planner vs XLA",
        "",
        f"Written by `{meta['command']}` on {meta['date']} ({meta['wall_s']:.0f} s wall, "
        f"{meta['cpu_s']:.0f} s CPU in the compile subprocesses; JAX {meta['jax']}; "
        f"{_load_line(meta)}).",
        "",
        f"Per-device bytes of one training step of the scaling study's gpt2 models (muP, float32, "
        f"T = {meta['seq_len']}, vocabulary {meta['vocab']}, global batch {meta['batch_size']}) "
        f"on {DEVICES} simulated CPU devices. **XLA** is `compiled.memory_analysis()` of the "
        "trainer's own sharded, donated train step built from abstract shapes (nothing "
        "allocated): arguments + outputs - aliased + temporaries. **Planner** is "
        "`python -m myojax.sharding plan` for the same mesh, batch, microbatches (K) and remat. "
        f"The planner must be within {TOLERANCE:.0%} of XLA in every case. XLA:CPU shares buffer "
        "assignment and SPMD partitioning with TPU and GPU but not their fusions, so this bounds "
        "the planner's model, not a TPU's exact allocation.",
        "",
        "| size | mesh | K | remat | seqs/device/microbatch | XLA args (state) GiB | "
        "planner state GiB | XLA temp GiB | XLA peak GiB | planner GiB | planner/XLA | "
        "within 25% | compile s (wall / CPU) | compile RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += _case_rows(rows)
    controls = [r for r in rows if "error" not in r and not r["case"].get("fsdp_gather", True)]
    done = [r for r in rows if "error" not in r and r["case"].get("fsdp_gather", True)]
    ok = sum(r["compare"]["agrees"] for r in done)
    failed = [r for r in rows if "error" in r]
    lines += [
        "",
        f"**{ok} of {len(done)} compiled cases agree within {TOLERANCE:.0%}**"
        + (f"; {len(failed)} case(s) could not be compiled here." if failed else "."),
        "",
        *(
            f"Negative control: the same step traced without its mesh, so the model does not "
            f"gather each layer's weights where it uses them: XLA then splits attention heads "
            f"and replicates the batch, {r['xla']['peak'] / GIB:.1f} GiB per device against the "
            f"planner's {r['compare']['planner_total'] / GIB:.1f} GiB "
            f"({'caught' if not r['compare']['agrees'] else '**not caught**'} by the check)."
            for r in controls
        ),
        "",
        "XLA args are the parameters, AdamW moments and the token batch of one device; the "
        "planner's state column is parameters + AdamW moments. The planner's model of the "
        "rest (gradients, the accumulator, FSDP gather buffers, activations per remat policy) "
        "is in `myojax/sharding/memory_plan.py`.",
        "",
    ]
    return "\n".join(lines)


def page(out: Path) -> epilogue.Page:
    """The page ``out`` and its JSON beside it (``out`` with ``.json``)."""
    return epilogue.page_at(out, lambda doc, prefix: render(doc["rows"], doc["meta"]))
