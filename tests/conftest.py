"""Shared test settings: a bounded, deadline-free hypothesis profile (JAX compiles are slow)."""

import os

# One BLAS thread per test process: with pytest-xdist, NumPy/SciPy worker threads spinning next
# to XLA's thread pool in the other worker slow both down several-fold on a 2-core machine.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402 (after the BLAS thread settings)

settings.register_profile(
    "myojax",
    deadline=None,
    max_examples=int(os.environ.get("MYOJAX_HYPOTHESIS_EXAMPLES", "8")),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("myojax")
