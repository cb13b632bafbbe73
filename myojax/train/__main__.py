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
import json
import sys

import jax

from myojax import cli
from myojax import sharding as shd
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.orbax_noise import quiet_failed_saves
from myojax.train.config import TrainConfig
from myojax.train.loop import run
from myojax.train.monitor import StopFlag, stop_on_signals
from myojax.train.presets import RUN_PRESETS, describe_presets
from myojax.train.track import TRACKERS, TrackerSpec

_PRESET_NOTE = "defaults shown are the dataclass's; the preset's values apply unless given"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.train", __doc__, epilog=describe_presets())
    p.add_argument(
        "--preset",
        required=True,
        choices=sorted(RUN_PRESETS),
        help="starting configuration; every field below overrides it",
    )
    p.add_argument(
        "--mode",
        dest="gradient_mode",
        choices=GRADIENT_MODES,
        default=None,
        help="alias of --gradient-mode",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing run directory (checkpoints included)",
    )
    p.add_argument(
        "--restore-config",
        action="store_true",
        help="rewrite a malformed config.json from the latest checkpoint, then resume",
    )
    p.add_argument(
        "--progress",
        type=cli.parse_bool,
        default=None,
        metavar="BOOL",
        help="progress bar (default: only on a terminal)",
    )
    p.add_argument(
        "--tracker",
        choices=TRACKERS,
        default=None,
        help="also log to TensorBoard (RUN_DIR/tensorboard) or W&B offline (RUN_DIR/wandb); "
        "default: tensorboard when tensorboardX is installed, else none",
    )
    cli.add_config_flags(p, TrainConfig, title=f"training (TrainConfig fields; {_PRESET_NOTE})")
    cli.add_config_flags(p, ModelConfig, title=f"model (ModelConfig fields; {_PRESET_NOTE})")
    return p


def main(argv: list[str] | None = None) -> int:
    # Before anything touches JAX, and before our signal handlers: jax.distributed installs
    # its own SIGTERM preemption notifier, which must not replace ours.
    shd.maybe_initialize_distributed()
    stop = StopFlag()
    with stop_on_signals(stop):  # a signal during start-up stops the run before its first step
        parser = build_parser()
        args = parser.parse_args(argv)
        preset = RUN_PRESETS[args.preset]
        try:
            train_cfg = cli.config_from_args(preset.train, args)
            model_cfg = cli.config_from_args(preset.model, args)
            train_cfg.microbatch_size(jax.device_count())  # batch / mesh / microbatches agree
        except ValueError as e:
            parser.error(str(e))
        if "float64" in (model_cfg.param_dtype, model_cfg.compute_dtype):
            jax.config.update("jax_enable_x64", True)  # before any array exists
        with contextlib.nullcontext() if cli.debug_requested(argv) else quiet_failed_saves():
            final = run(
                train_cfg,
                model_cfg,
                overwrite=args.overwrite,
                progress=args.progress,
                restore_config=args.restore_config,
                stop=stop,
                tracker=TrackerSpec(args.tracker),
            )
    summary = {
        k: v for k, v in final.items() if k not in ("val_loss_per_position", "heldout_losses")
    }
    for k in ("loss", "val_loss"):  # not measured (stopped before its first step or eval)
        if summary[k] is None:
            del summary[k]
    if shd.is_main_process():
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
