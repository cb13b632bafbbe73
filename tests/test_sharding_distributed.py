"""myojax/sharding/distributed.py: the local-device assertion a SLURM GPU job relies on."""

from __future__ import annotations

import jax
import pytest

from myojax.sharding.distributed import (
    ENV_FORCE,
    ENV_LOCAL_DEVICES,
    check_local_devices,
    maybe_initialize_distributed,
)


def test_too_few_local_devices_is_an_error() -> None:
    """Issue 30, defect 5: a process handed one GPU of eight (JAX's SLURM detection without
    local device ids) or no GPU at all must stop, not train on what it got."""
    want = jax.local_device_count() + 7
    env = {ENV_FORCE: "0", ENV_LOCAL_DEVICES: str(want)}
    have = jax.local_device_count()
    message = f"drives {have} cpu device\\(s\\), expected {ENV_LOCAL_DEVICES}={want}"
    with pytest.raises(ValueError, match=message):
        maybe_initialize_distributed(env)


def test_the_right_local_device_count_passes() -> None:
    env = {ENV_FORCE: "0", ENV_LOCAL_DEVICES: str(jax.local_device_count())}
    assert maybe_initialize_distributed(env) is False
    check_local_devices({})  # unset: no check


@pytest.mark.parametrize("value", ["eight", "0", "-1"])
def test_local_device_count_must_be_positive(value: str) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        check_local_devices({ENV_LOCAL_DEVICES: value})
