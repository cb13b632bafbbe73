"""Benchmarks: the train step per gradient mode against a PyTorch peer (``python -m
experiments.bench``) and decoding throughput with the KV cache (``python -m
experiments.decode_throughput``).

- ``timing``: the interleaved train-step timing, XLA's compiled costs, the sweeps;
- ``report``: markdown sections, terminal tables and sweep plots;
- ``matmuls``, ``profile``: the step's matmuls timed alone, and its op time per category;
- ``torch_peer``: the eager PyTorch model and optimizer step;
- ``decode``: decoding throughput and its page.
"""
