"""Single-run training: config, optimizer, the pure step, the run directory, the resumable loop.

- ``config``: ``TrainConfig`` (frozen, validated);
- ``optim``: AdamW with warmup + cosine, clipping, per-label weight decay and lr multipliers;
- ``step``: ``TrainState``, ``init_state``, the pure ``train_step``, ``compile_train_step`` (the
  one jit, where mesh shardings go), held-out evaluation;
- ``rundir``: the run lock, config check on resume, the metrics log, atomic JSON;
- ``monitor``: progress bars and stop signals;
- ``faults``: ``MYOJAX_FAULT=PHASE:STEP`` kill points for the fault-injection tests;
- ``loop``: ``run(train_cfg, model_cfg)``, resumable, SIGTERM-safe, multi-host;
- ``cli``: ``python -m myojax.train``.
"""

from myojax.train.config import TrainConfig
from myojax.train.loop import NonFiniteLoss, data_seeds, run
from myojax.train.optim import learning_rate_schedule, make_optimizer
from myojax.train.rundir import CONFIG_FILE, METRICS_FILE, RunDirError
from myojax.train.step import (
    TrainState,
    compile_eval_losses,
    compile_train_step,
    eval_losses,
    evaluate,
    init_state,
    train_step,
)

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "NonFiniteLoss",
    "RunDirError",
    "TrainConfig",
    "TrainState",
    "compile_eval_losses",
    "compile_train_step",
    "data_seeds",
    "eval_losses",
    "evaluate",
    "init_state",
    "learning_rate_schedule",
    "make_optimizer",
    "run",
    "train_step",
]
