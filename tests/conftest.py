"""Shared test settings.

Hypothesis' per-example deadline and its "too slow" health check measure
wall time, which on a loaded 2-core CI machine says nothing about the code:
correctness is what the property tests check; speed lives in benchmarks/.
"""

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("activemine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("activemine")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs, started once per module (starting Ray is slow on small machines)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
