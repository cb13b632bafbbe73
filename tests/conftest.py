"""Shared test settings: a bounded, deadline-free hypothesis profile (JAX compiles are slow)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "myojax",
    deadline=None,
    max_examples=int(os.environ.get("MYOJAX_HYPOTHESIS_EXAMPLES", "8")),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("myojax")
