"""The scaling study (``python -m experiments.scaling``): standard vs myopic transformers
across sizes, muP-tuned, with fitted scaling laws.

- ``protocol``: study presets (model ladders), token budgets, run specs — enough for --dry-run;
- ``execute``: train / resume / restore / evaluate each run, orchestrated in protocol order;
- ``analysis``: fits, gaps and bootstrap intervals from the run rows (pure);
- ``report``: report.md and the plots, from results.json alone;
- ``cli``: the command line.
"""
