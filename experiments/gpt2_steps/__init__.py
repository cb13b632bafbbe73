"""Real optimizer steps at GPT-2 small's shape on this CPU, on a simulated 2-device mesh.

    python -m experiments.gpt2_steps            # -> results/gpt2_steps.md (+ .json)
    python -m experiments.gpt2_steps --steps 6 --out runs/gpt2-steps --report /tmp/steps.md
    python -m experiments.gpt2_steps --from-json results/gpt2_steps.json   # redraw the page

The gpt2-117m shape (12 layers x 768, 12 heads, T = 1024, vocabulary 50257, tied embeddings;
124M parameters) trained by the real trainer (``myojax.train.run``: grain pipeline, AdamW,
FSDP over ``data=1,fsdp=2``, orbax checkpoints) in both gradient modes, from the same seed, on
synthetic token shards: Zipf-distributed random ids over the whole vocabulary, so the loss has
something to learn (the unigram distribution) and every row of the embedding is in play.

Checked, and written to the report with the machine's load: every loss finite; the loss falls
over the run; the first step's loss (same parameters, same batch) is bitwise equal between the
modes; the trained standard model's forward outputs (per-position losses, on the mesh) are
bitwise equal under both modes; the final checkpoint restores onto the mesh and reproduces the
run's held-out loss exactly.

Modules: ``run`` (the shards, the training subprocess, the checks and the page), ``__main__``
(the command line, and the subprocess's worker).
"""
