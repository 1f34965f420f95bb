"""The benchmarks' load generator: `mlops_kit.capacity.loadgen` (which `plan-scaling --measure`
uses too), kept importable and runnable from here.

    python bench/loadgen.py --serve-trivial PORT   # answers every request with `200 ok`
"""

from __future__ import annotations

from mlops_kit.capacity.loadgen import LoadResult, LoadSpec, http_request, main, run_here, run_load

__all__ = ["LoadResult", "LoadSpec", "http_request", "main", "run_here", "run_load"]

if __name__ == "__main__":
    raise SystemExit(main())
