"""The seed's claims about value non-myopia on a finished scaling study's language models
(``python -m experiments.lm_myopia --study runs/scaling-cpu``).

- ``study``: the study's size runs, models and test windows, read through its typed records;
- ``sacrifice``: myopic − standard loss per position and token class, the share of tokens
  myopic predicts better, trends over sizes (crossed intervals over seeds and sequences);
- ``future_probes``: linear probes for the token at s + k from the stream at s, every layer;
- ``switch``: a study run retrained with the gradient mode switched halfway;
- ``analysis``: all of it for one study, into ``records.LmMyopiaResults``;
- ``claims``, ``page``, ``plots``: the generated reading, page, figures and README paragraph.
"""
