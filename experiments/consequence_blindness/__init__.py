"""Consequence-blindness toys: does a predictor shape its output to make *later* predictions easier?

    python -m experiments.consequence_blindness [--task linear|fib] [--out DIR] [--seeds N]
        [--steps N] [--publish]
    python -m experiments.consequence_blindness --task fib --from-json DIR/results.json

Both tasks have triplets (x, z1, z2), a shared encoder y = f(x), a head ẑ1 = g1(y), and a second
head that sees only the first prediction, ẑ2 = g2(z1_in) — the future input is the model's own
earlier output, as in generation. Three training regimes differ only in what reaches g2 and
where gradients flow:

* ``teacher``      — z1_in = z1 (the true value): f and g1 are trained on z1 alone;
* ``fed_stopped``  — z1_in = sg(ẑ1): g2 learns from predictions, but nothing rewards g1 for
  the effect of its output on z2 — consequence-blind;
* ``fed_live``     — z1_in = ẑ1 with gradient: g1 and f are also optimized for z2 through their
  own output — *not* consequence-blind (the hidden incentive behind auto-induced
  distributional shift).

``--task linear`` (default): x ~ N(0, I_8), z1 = w·x + noise, z2 = u·x + noise with w ⟂ u.
Reported per regime: z1 and z2 held-out MSE, and how much the learned z1 predictor (the map
x → ẑ1) points along u, the direction only z2 cares about. A consequence-blind regime must
leave it at ~0; the live regime tilts it towards u, paying in z1 error to gain in z2 error.

``--task fib``: the encoded-channel toy. x ∈ {1, …, X} (one-hot), z1 = Fib(x), z2 = Fib(x+1),
both as standardised logarithms (see ``fib_targets``). g1 (an MLP on one-hot x) can compute z1
exactly; g2 is affine, too small to compute z2 from z1: in log space Fib is geometric up to
Binet's correction, log F(x+1) = log F(x) + log φ + ε(x) with ε alternating in sign and decaying
like φ^(−2x), and no affine map of z1 recovers ε. The question is whether g1 hides ε in its
*error* e = ẑ1 − z1 for g2 to read. Measured per regime and seed (``channel``): the z2 gain an
affine reader gets from ẑ1 instead of z1, a linear probe from e⊥ (e minus its affine fit on z1)
to ρ (the part of z2 no affine map of z1 gives) with a permutation p-value, and g1's cost
(z1 MSE). Defaults: 10 seeds, 4000 full-batch steps (about 20 s on 2 CPU cores).

Each run writes results.json, report.md (command, wall time, machine load) and a PNG to --out;
--publish also writes results/consequence_blindness_<task>.{md,json} and docs/figures/.

Modules: ``linear`` and ``fib`` (the two tasks: models, training, measures), ``page`` (plots
and reports), ``__main__`` (the command line).
"""
