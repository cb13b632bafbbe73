"""The scaling study (``python -m experiments.scaling``): standard vs myopic transformers
across sizes, muP-tuned, with fitted scaling laws.

- ``protocol``: study presets (model ladders), token budgets, run specs — enough for --dry-run
  (``plan``, ``pods``);
- ``execute``: train / resume each run and evaluate its final model in the trainer, in protocol
  order; ``study``: the whole study, from the runs to the written pages;
- ``records`` (runs, results) and ``sections`` (the analysis): typed records, read and written
  as JSON by ``records`` alone;
- ``estimates``: the lr choice, gaps, slopes, the joint fit and the checks, with intervals;
- ``markdown``, ``findings``, ``caveats``, ``plots``: report.md and the PNGs, from the results
  alone; ``publishing`` and ``companions``: the repository's pages, through
  ``experiments.epilogue``;
- ``step_costs`` and ``interval_coverage``: the libraries of ``python -m
  experiments.scaling.costs`` and ``python -m experiments.scaling.coverage``.
"""
