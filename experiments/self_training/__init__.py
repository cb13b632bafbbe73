"""Training on self-generated text over generations, paired and powered (issues 17 and 29).

A pilot on separate seeds sizes the number of seeds by a power calculation; within a seed every
model (both gradient modes, every generation, mix and feeding condition) shares its
initialisation and batch order, so every contrast is a paired per-seed difference. The
own-consequence condition puts a model's own samples, drawn during its training, into its own
batches, against a control fed by a frozen model.

    python -m experiments.self_training [--quick] [--publish]

Modules: ``config`` (the study's dataclass), ``data`` (a seed's keys, pools and batch order),
``train`` (vmapped training, sampling, the own-consequence condition), ``study`` (pilot and
conditions), ``stats`` (paired intervals, power), ``analysis`` (the contrasts), ``page``
(figure and page), ``run`` (the run record), ``__main__`` (the command line).
"""
