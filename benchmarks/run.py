"""``make bench``: run every benchmark and print one table."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bookinfo_cost  # noqa: E402
import config_validate  # noqa: E402
import istiod_scale  # noqa: E402
import proxy_bench  # noqa: E402


def main() -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()} ({os.path.realpath(sys.executable)}), {platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d')}")
    print("\n## Config: load and validate\n")
    print("\n".join(bookinfo_cost.markdown([("benchmark", "result", "notes"), *config_validate.run()])))
    print("\n## The local mesh: Bookinfo's cost\n")
    print("\n".join(bookinfo_cost.markdown([("measure", "result", "notes"), *bookinfo_cost.run()])))
    print("\n## Control plane: istiod at scale (each measurement bounded by BENCH_ISTIOD_BUDGET s)\n")
    print("\n".join(istiod_scale.table(istiod_scale.run(budget_s=float(os.environ.get("BENCH_ISTIOD_BUDGET", "30"))))))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    print(f"\n## Proxy: HTTP/1.1, 100-byte responses (medians of {rounds} interleaved rounds of {seconds} s)\n")
    results = proxy_bench.run(rounds, seconds)
    print("\n".join(proxy_bench.table(results)))
    print()
    print("\n".join(proxy_bench.verdicts(results)))


if __name__ == "__main__":
    main()
