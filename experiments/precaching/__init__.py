"""Pre-caching (``python -m experiments.precaching --task sine|facts|map``): do standard models
compute, at position s, features that only later positions need — and do myopic models not?

- ``task``: the generators (lagged map, lagged sine, synthetic facts), from explicit PRNG keys;
- ``training``: myojax's optimizer and train step fed a task's batches (optional mode switch);
- ``sine``, ``facts``, ``map``: one experiment each (train, probe, plot, report);
- ``sine_page``: the lagged-sine page (summary, plots, report);
- ``__main__``: the command line. Probes come from ``myojax.analysis.probes``.
"""
