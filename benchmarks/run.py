"""``make bench``: run every benchmark and print one table."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import config_validate  # noqa: E402


def main() -> None:
    rows = [("benchmark", "result", "notes")]
    rows += config_validate.run()
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
