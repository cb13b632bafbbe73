"""Pre-caching (``python -m experiments.precaching``): do standard models compute, at position
s, features that only later positions need — and do myopic models not?

- ``task``: the synthetic lagged-map task, generated from explicit PRNG keys;
- ``probes``: linear ridge probes;
- ``cli``: training, probing and the report.
"""
