"""Train one model (or resume its run directory).

    python -m myojax.train --preset tiny --out runs/tiny --mode myopic

Every TrainConfig and ModelConfig field is a flag; the preset supplies the starting values.
Rerunning the same command on an existing run directory resumes from its last good checkpoint
(model, optimizer, data iterator); on CPU the continued run is bitwise identical to an
uninterrupted one. SIGTERM/SIGINT save a checkpoint and exit cleanly (exit 0), also before
the first step. Sharded: --mesh data=A,fsdp=B over all devices of all processes; multi-host: the
same command on every host. Errors are one line; --debug (or MYOJAX_DEBUG=1) shows tracebacks.
More steps on a finished run extend it (the cosine schedule is recomputed over the new total).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import typing
from collections.abc import Iterator
from typing import Any

import jax

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.data import pipeline
from myojax.model import param_counts
from myojax.presets import RUN_PRESETS
from myojax.train.config import TrainConfig
from myojax.train.loop import run
from myojax.train.monitor import StopFlag, stop_on_signals

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
        "--restore-config",
        action="store_true",
        help="rewrite a malformed config.json from the latest checkpoint, then resume",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks (also MYOJAX_DEBUG=1); by default every error is one line",
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
    # Before anything (the presets' summary too) touches JAX, and before our signal handlers:
    # jax.distributed installs its own SIGTERM preemption notifier, which must not replace ours.
    shd.maybe_initialize_distributed()
    stop = StopFlag()
    with stop_on_signals(stop):  # a signal during start-up stops the run before its first step
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = args.debug or os.environ.get("MYOJAX_DEBUG", "") not in ("", "0")
        try:
            train_cfg, model_cfg = configs_from_args(args)
            train_cfg.microbatch_size(jax.device_count())  # batch / mesh / microbatches agree
        except ValueError as e:
            parser.error(str(e))
        if "float64" in (model_cfg.param_dtype, model_cfg.compute_dtype):
            jax.config.update("jax_enable_x64", True)  # before any array exists
        try:
            with contextlib.nullcontext() if debug else _quiet():
                final = run(
                    train_cfg,
                    model_cfg,
                    overwrite=args.overwrite,
                    progress=args.progress,
                    restore_config=args.restore_config,
                    stop=stop,
                )
        except Exception as e:
            if debug:
                raise
            print(f"error: {_describe(e)}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
    summary = {k: v for k, v in final.items() if k != "val_loss_per_position"}
    for k in ("loss", "val_loss"):  # not measured (stopped before its first step or eval)
        if summary[k] is None:
            del summary[k]
    if shd.is_main_process():
        print(json.dumps(summary), flush=True)
    return final


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """orbax's background noise off (see below and ``ckpt.quiet_orbax``); the absl filter stays
    for the process's life, as orbax's save threads outlive a failed run."""
    logging.getLogger("absl").addFilter(_drop_orbax_background_errors)
    with ckpt.quiet_orbax():
        yield


def _drop_orbax_background_errors(record: logging.LogRecord) -> bool:
    """orbax logs every failure of its background save threads, with a traceback, before
    re-raising it in the main thread, where ``main`` reports it in one line: drop the copies
    (``--debug`` keeps them)."""
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


_NO_SPACE = re.compile(r"No space left on device|os_error_code='28'|ENOSPC")
_WHERE = re.compile(r'(?:local file|Failed writing:) "([^"]+)"')


def _describe(e: BaseException) -> str:
    """One line: the message of the errors myojax raises; type and message for the rest."""
    text = " ".join(str(e).split())
    if (isinstance(e, OSError) and e.errno == 28) or _NO_SPACE.search(text):
        where = e.filename if isinstance(e, OSError) and e.filename else None
        match = _WHERE.search(text)
        where = where or (match.group(1) if match else "the run directory")
        return (
            f"no space left on device while writing {where}; free space (or lower --keep) "
            "and rerun the same command: it resumes from the last complete checkpoint"
        )
    known = (ValueError, OSError, pipeline.DataError, ckpt.CheckpointError, RuntimeError)
    return text if isinstance(e, known) and text else f"{type(e).__name__}: {text}"
