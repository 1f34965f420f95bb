"""Predefined Compute Engine machine types as vCPUs and memory (pure: no Google SDK, no kfp).

The training step's CPU and memory limits come from `gcp.training_machine_type`; the config
check (`adapters/gcp/rules.py`) and the pipeline renderer read it through the same function.
"""

from __future__ import annotations

import re

# Memory per vCPU (GB) of the predefined machine families the training machine may name.
MEMORY_PER_CPU = {("n1", "standard"): 3.75, ("n1", "highmem"): 6.5, ("n1", "highcpu"): 0.9,
                  ("standard",): 4.0, ("highmem",): 8.0, ("highcpu",): 1.0}


def machine_resources(machine_type: str) -> tuple[int, float]:
    """vCPUs and memory (GB) of a predefined machine type, e.g. n1-standard-4 -> (4, 15.0)."""
    match = re.fullmatch(r"([a-z0-9]+)-(standard|highmem|highcpu)-(\d+)", machine_type)
    if not match:
        raise ValueError(f"gcp.training_machine_type {machine_type!r}: expected a predefined "
                         "type such as n1-standard-4 or e2-highmem-8")
    family, kind, cpus = match.group(1), match.group(2), int(match.group(3))
    per_cpu = MEMORY_PER_CPU.get((family, kind), MEMORY_PER_CPU[(kind,)])
    return cpus, round(cpus * per_cpu, 2)
