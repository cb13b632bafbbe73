"""Training on self-generated text over generations (issue 17, part 2).

Generation 0 trains a tiny byte-level GPT on the embedded Shakespeare corpus. Generation k+1
trains a fresh model on a pool that mixes human windows with windows sampled from generation k,
for each mix fraction, in each gradient mode, over seeds. Every model is measured on held-out
human text, on its own samples, and by how far its samples drift from human text.

    python -m experiments.self_training [--quick] [--publish]

Modules: ``grid`` (data pools, training, sampling, measuring), ``report`` (plots and the
results page), ``run`` (the run record), ``__main__`` (the command line).
"""
