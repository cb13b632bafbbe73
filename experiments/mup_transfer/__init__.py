"""muP learning-rate transfer: is the best learning rate the same at every width?

Sweeps learning rate (powers of 2) x width x {sp, mup} x {standard, myopic} with short runs of
the trainer on the embedded Shakespeare corpus, and reports the held-out loss of each run and
the best learning rate per width. Under muP the optimum should stay within one grid step across
widths; under SP it is expected to move down as width grows.

Each run is the trainer's own step (``myojax.train.train_step``) with the trainer's optimizer
(``make_optimizer`` + ``myojax.mup.lr_multipliers``: warmup, cosine decay, clipping, AdamW, muP's
per-label multipliers) and the trainer's grain data pipeline. The learning rates of one width
train side by side under ``vmap``: the optimizer is built with lr = 1 and its update scaled by
each grid value (``optax.scale``), which is the same update since AdamW's step is linear in lr.
All runs share the initial parameters and the batch order.

    python -m experiments.mup_transfer                # ~15-20 min on 2 shared CPU cores
    python -m experiments.mup_transfer --quick --out /tmp/t

Finished (parametrization, mode, width) sweeps are cached in ``OUT/transfer.json``; a rerun with
the same settings skips them. Outputs: ``OUT/transfer.json`` (all losses), ``OUT/optimum.json``
(best lr per width), ``OUT/mup_transfer.png``.

Modules: ``sweep`` (the vmapped learning-rate sweeps, the cache, the optima, the plot),
``__main__`` (the command line).
"""
