"""muP coordinate check: do activation scales stay put as width grows?

For every width and parametrization, train a few Adam steps on one fixed batch of the embedded
corpus and record, after each step t, for every module output x (embedding, attention logits,
attention output, MLP output, residual stream per layer, logits; ``GPT.activations``):

* ``value``  — mean |x_t|, and
* ``update`` — mean |x_t - x_0|, the part training moved (same input, initial parameters),

averaged over the batch and over seeds. Verdict, per activation and step, on the ratio
widest/narrowest width of the *value*: under muP it must stay within [1/tol, tol] at every step,
with one documented exception: the logits may start small (never large) and must be within the
band by the last step, because muP's readout starts at variance ∝ 1/width², so the logits at
init vanish like m^-1/2 by design (docs/mup.md) until training takes over. The *update* rows are
printed and plotted as a diagnostic. SP is the negative control: its logits must blow up
(ratio >= 2). Exits 1 if muP fails or the control does not fire.

    python -m experiments.coord_check                 # widths 64..1024 (default)
    python -m experiments.coord_check --quick --out /tmp/cc
    python -m experiments.coord_check --quick --gradient-mode myopic --widths 32,64,256

Finished (parametrization, width) runs are cached in ``OUT/coord_check.json``; rerunning with
the same settings skips them.

Modules: ``check`` (the runs, the cache, the verdicts, the plots), ``__main__`` (the command
line).
"""
