"""Train one model (or resume its run directory).

    python -m myojax.train --preset tiny --out runs/tiny --mode myopic

Every TrainConfig and ModelConfig field is a flag; the preset supplies the starting values.
Rerunning the same command on an existing run directory resumes from its last good checkpoint
(model, optimizer, data iterator); on CPU the continued run is bitwise identical to an
uninterrupted one. SIGTERM/SIGINT save a checkpoint and exit cleanly. Sharded: --mesh
data=A,fsdp=B over all devices of all processes; multi-host: the same command on every host.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any

import jax

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.data import pipeline
from myojax.model import param_counts
from myojax.presets import RUN_PRESETS
from myojax.train.config import TrainConfig
from myojax.train.loop import NonFiniteLoss, run
from myojax.train.rundir import RunDirError

_MODEL_HELP = {
    "vocab_size": "vocabulary size (>= the data's)",
    "seq_len": "context length; training windows are seq_len + 1 tokens",
    "d_model": "residual width",
    "n_layers": "number of transformer blocks",
    "n_heads": "attention heads (must divide d_model)",
    "d_ff": "MLP width (none = 4 * d_model)",
    "gradient_mode": "attention gradient mode",
    "tie_embeddings": "share the token embedding with the readout",
    "param_dtype": "parameter dtype",
    "compute_dtype": "matmul dtype",
    "remat": "rematerialize blocks in the backward pass",
    "parametrization": "'sp' or 'mup' (docs/mup.md)",
    "base_width": "muP base width (none = d_model)",
}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _argument(
    parser: argparse._ActionsContainer, cls: type, f: dataclasses.Field, hint: Any, help: str
) -> None:
    kwargs: dict[str, Any] = {"dest": f.name, "default": None}
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        kwargs.update(choices=list(args), type=str)
    elif hint is bool:
        kwargs.update(type=_parse_bool, metavar="BOOL")
    elif type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        kwargs.update(
            type=lambda s, t=inner: None if s.lower() == "none" else t(s),
            metavar=f"{inner.__name__.upper()}|none",
        )
    else:
        kwargs.update(type=hint, metavar=hint.__name__.upper())
    default = f.default if f.default is not dataclasses.MISSING else None
    parser.add_argument(
        f"--{f.name.replace('_', '-')}",
        help=f"{help} [{cls.__name__}.{f.name}, default {default!r}]",
        **kwargs,
    )


def _preset_summary() -> str:
    lines = []
    for name, p in RUN_PRESETS.items():
        m, t = p.model, p.train
        lines.append(
            f"  {name}: {param_counts(m)[0] / 1e6:.2f}M params (d_model {m.d_model}, "
            f"{m.n_layers} layers, seq_len {m.seq_len}); {t.steps} steps, batch {t.batch_size}, "
            f"lr {t.lr}, out {t.out}"
        )
    return "presets:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m myojax.train",
        description=__doc__,
        epilog=_preset_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        required=True,
        choices=sorted(RUN_PRESETS),
        help="starting configuration; every field below overrides it",
    )
    parser.add_argument(
        "--mode",
        dest="gradient_mode",
        choices=GRADIENT_MODES,
        default=None,
        help="alias of --gradient-mode",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing run directory (checkpoints included)",
    )
    parser.add_argument(
        "--progress",
        type=_parse_bool,
        default=None,
        metavar="BOOL",
        help="progress bar (default: only on a terminal)",
    )
    for cls, title, helps in ((TrainConfig, "training", None), (ModelConfig, "model", _MODEL_HELP)):
        group = parser.add_argument_group(
            f"{title} ({cls.__name__} fields)",
            "defaults shown are the dataclass's; the preset's values apply unless given",
        )
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            help = f.metadata.get("help", "") if helps is None else helps.get(f.name, "")
            _argument(group, cls, f, hints[f.name], help)
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, ModelConfig]:
    preset = RUN_PRESETS[args.preset]
    model_cfg, train_cfg = preset.model, preset.train
    given = {k: v for k, v in vars(args).items() if v is not None}
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_cfg = model_cfg.replace(**{k: v for k, v in given.items() if k in model_fields})
    train_cfg = train_cfg.replace(**{k: v for k, v in given.items() if k in train_fields})
    return train_cfg, model_cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    shd.maybe_initialize_distributed()  # before anything (the presets' summary too) touches JAX
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train_cfg, model_cfg = configs_from_args(args)
        train_cfg.microbatch_size(jax.device_count())  # batch / mesh / microbatches agree
    except ValueError as e:
        parser.error(str(e))
    try:
        final = run(train_cfg, model_cfg, overwrite=args.overwrite, progress=args.progress)
    except (
        ValueError,
        OSError,
        RunDirError,
        NonFiniteLoss,
        pipeline.DataError,
        ckpt.CheckpointError,
        RuntimeError,
    ) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    summary = {k: v for k, v in final.items() if k != "val_loss_per_position"}
    if shd.is_main_process():
        print(json.dumps(summary), flush=True)
    return final
