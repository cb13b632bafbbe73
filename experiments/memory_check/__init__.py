"""The memory planner checked against XLA: per-device bytes of the real sharded train step.

    python -m experiments.memory_check      # gpt2 sizes x meshes -> results/memory_plan.md
    python -m experiments.memory_check --sizes gpt2-117m --meshes fsdp=32 --out /tmp/plan.md
    python -m experiments.memory_check --from-json results/memory_plan.json   # redraw the page
    python -m experiments.memory_check --implementations fast,reference   # the two side by side

For every case (model size, mesh, microbatches, remat) a subprocess with
``--xla_force_host_platform_device_count`` simulated CPU devices builds the trainer's own
sharded train step (``myojax.train.step.compile_train_step``: AdamW, FSDP shardings, donated
state) from abstract shapes only — ``jax.eval_shape`` and ``ShapeDtypeStruct``s carrying
``NamedSharding``s, no parameter is ever allocated — lowers and compiles it, and reads XLA's
``memory_analysis()`` of the per-device program. Its peak, ``arguments + outputs - aliased +
temporaries``, is compared with ``myojax.sharding.memory_plan.make_plan`` for the same mesh,
batch, microbatches and remat (``python -m myojax.sharding plan``). The planner must agree within
``TOLERANCE`` in every case. The model is the scaling study's gpt2 configuration
(``experiments.scaling.protocol``: muP, float32, T = 1024, vocabulary 50257) at its global batch,
with the attention implementation of ``--implementations`` (``ModelConfig.attention_impl``;
the fast path by default, the reference formulation beside it to compare their memory).

Caveat: XLA:CPU is not XLA:TPU / XLA:GPU. Buffer assignment and the SPMD partitioner are shared,
but fusion decisions (hence temporaries) differ by backend; the check bounds the planner's
model of what the program holds, not a TPU's exact allocation.

Modules: ``check`` (the cases, XLA's memory analysis in a subprocess, the planner's figures),
``__main__`` (the command line, and the subprocess's worker); the page is
``experiments.memory_plan_page``, which the scaling report copies.
"""
