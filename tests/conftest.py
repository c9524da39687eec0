"""Shared test configuration: hypothesis profiles and reference-data paths.

Profiles (select with ``HYPOTHESIS_PROFILE``; ``ci`` is the default):

``ci``
    Bounded example counts so the whole suite fits the CI budget on 2 cores;
    derandomised, so a CI run is reproducible (exploration is the ``fuzz``
    profile's job).
``fuzz``
    Long runs for local fuzzing sessions; not used by CI.
``dev``
    Few examples, for a quick edit-test loop.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
