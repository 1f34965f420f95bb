"""Predefined Compute Engine machine types as vCPUs and memory (pure: no Google SDK, no kfp).

The training step's CPU and memory limits come from `gcp.training_machine_type`; the config
check (`adapters/gcp/rules.py`) and the pipeline renderer read it through the same function.
A type is `family-kind-vCPUs` where that family sells that kind at that size (Compute Engine's
machine-family tables); anything else Vertex AI would refuse at `pulumi up` or at job start.
"""

from __future__ import annotations

import re

_N1 = (1, 2, 4, 8, 16, 32, 64, 96)
_N2 = (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)
# The vCPU counts of each predefined (family, kind).
SIZES: dict[tuple[str, str], tuple[int, ...]] = {
    ("n1", "standard"): _N1, ("n1", "highmem"): _N1[1:], ("n1", "highcpu"): _N1[1:],
    ("e2", "standard"): (2, 4, 8, 16, 32), ("e2", "highmem"): (2, 4, 8, 16),
    ("e2", "highcpu"): (2, 4, 8, 16, 32),
    ("n2", "standard"): _N2, ("n2", "highmem"): _N2, ("n2", "highcpu"): _N2[:-1],
    ("n2d", "standard"): (*_N2, 224), ("n2d", "highmem"): _N2[:-1],
    ("n2d", "highcpu"): (*_N2, 224),
    ("c2", "standard"): (4, 8, 16, 30, 60),
    ("c2d", "standard"): (2, 4, 8, 16, 32, 56, 112), ("c2d", "highmem"): (2, 4, 8, 16, 32, 56, 112),
    ("c2d", "highcpu"): (2, 4, 8, 16, 32, 56, 112),
    ("c3", "standard"): (4, 8, 22, 44, 88, 176), ("c3", "highmem"): (4, 8, 22, 44, 88, 176),
    ("c3", "highcpu"): (4, 8, 22, 44, 88, 176),
}
# Memory per vCPU (GB): n1's own, c2's, else the newer families' common figures.
MEMORY_PER_CPU = {("n1", "standard"): 3.75, ("n1", "highmem"): 6.5, ("n1", "highcpu"): 0.9,
                  ("c2", "standard"): 4.0, ("standard",): 4.0, ("highmem",): 8.0,
                  ("highcpu",): 1.0}


def machine_resources(machine_type: str, field: str = "gcp.training_machine_type"
                      ) -> tuple[int, float]:
    """vCPUs and memory (GB) of a predefined machine type, e.g. n1-standard-4 -> (4, 15.0);
    ValueError naming `field` for a type Compute Engine does not sell."""
    match = re.fullmatch(r"([a-z0-9]+)-(standard|highmem|highcpu)-(\d+)", machine_type)
    if not match:
        raise ValueError(f"{field} {machine_type!r}: expected a predefined type such as "
                         "n1-standard-4 or e2-highmem-8")
    family, kind, cpus = match.group(1), match.group(2), int(match.group(3))
    sizes = SIZES.get((family, kind))
    if sizes is None:
        kinds = sorted({f"{f}-{k}" for f, k in SIZES})
        raise ValueError(f"{field} {machine_type!r}: {family}-{kind} is not a predefined "
                         f"machine family; use one of {', '.join(kinds)}")
    if cpus not in sizes:
        raise ValueError(f"{field} {machine_type!r}: {family}-{kind} comes with "
                         f"{', '.join(map(str, sizes))} vCPUs, not {cpus}")
    per_cpu = MEMORY_PER_CPU.get((family, kind), MEMORY_PER_CPU[(kind,)])
    return cpus, round(cpus * per_cpu, 2)
