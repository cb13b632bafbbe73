"""Single-run training: config, presets, optimizer, the pure step, the run directory, the
resumable loop.

- ``config``: ``TrainConfig`` (frozen, validated);
- ``presets``: ``RUN_PRESETS``, a model shape and how to train it;
- ``optim``: AdamW with warmup + cosine, clipping, per-label weight decay and lr multipliers;
- ``step``: ``TrainState``, ``init_state``, the pure ``train_step``, ``compile_train_step`` (the
  one jit, where mesh shardings go);
- ``rundir``: the run lock, config check on resume, the metrics log;
- ``monitor``: stop signals;
- ``faults``: ``MYOJAX_FAULT=PHASE:STEP`` kill points for the fault-injection tests;
- ``setup``: a run's mesh, data, state layout and starting state;
- ``loop``: ``run(train_cfg, model_cfg)``, resumable, SIGTERM-safe, multi-host;
- ``__main__``: ``python -m myojax.train``.

Held-out evaluation is ``myojax.evaluation``'s.
"""

from myojax.train.config import TrainConfig
from myojax.train.loop import NonFiniteLoss, run
from myojax.train.optim import learning_rate_schedule, make_optimizer
from myojax.train.rundir import CONFIG_FILE, METRICS_FILE, RunDirError
from myojax.train.setup import data_seeds
from myojax.train.step import TrainState, compile_train_step, init_state, train_step

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "NonFiniteLoss",
    "RunDirError",
    "TrainConfig",
    "TrainState",
    "compile_train_step",
    "data_seeds",
    "init_state",
    "learning_rate_schedule",
    "make_optimizer",
    "run",
    "train_step",
]
