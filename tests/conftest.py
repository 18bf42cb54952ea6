"""Hypothesis in CI: the same examples every run (a failure there is reproducible, never a
roll of the dice on a shared machine) and no per-example deadline (a loaded machine is slow,
not wrong). Locally, fresh random examples each run keep searching."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if os.environ.get("CI"):
    settings.load_profile("ci")
