"""Capacity planning: traffic traces, a minute-by-minute autoscaling simulator, the search for
the cheapest step-scaling policy, and the measurement of one instance's capacity.

Nothing here imports a cloud SDK: the policies are simulated the way Application Auto Scaling
and CloudWatch alarms behave (see docs/scaling.md), and the cloud apps apply the result.
"""

from mlops_kit.capacity.trace import Trace, TraceError, load_trace, week_profile

__all__ = ["Trace", "TraceError", "load_trace", "week_profile"]
