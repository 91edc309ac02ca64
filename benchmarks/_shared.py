"""What the benchmark scripts share: the machine they ran on and plain text tables.

The scripts import it as ``_shared`` (run as ``python benchmarks/NAME.py``, their folder is on the path).
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from typing import Any


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, CPU count and load average (the machine is shared: say how loaded it was), plus ``extra``."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
        "cpu_count": os.cpu_count(),
        "load_average": [round(value, 2) for value in load],
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """A plain text table: the first ``left`` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])
