"""Shared test settings.

Hypothesis' per-example deadline and its "too slow" health check measure
wall time, which on a loaded 2-core CI machine says nothing about the code:
correctness is what the property tests check; speed lives in benchmarks/.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("activemine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("activemine")
