"""What the benchmark scripts share: the machine they ran on and plain text tables.

The scripts import it as ``_shared`` (run as ``python benchmarks/NAME.py``, their folder is on the path).
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
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


#: Packages whose versions change benchmark numbers; recorded with every run.
PACKAGES = (
    "hfselect",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "tokenizers",
    "safetensors",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
)


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_revision() -> str | None:
    """The checkout's git commit (with ``+dirty`` when files differ from it); None outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(script: str, arguments: Sequence[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Everything needed to rerun a benchmark: its command line, the machine, threads and package versions.

    The command is ``python SCRIPT ARGUMENTS`` (``arguments``: what ``main(argv)`` parsed; the
    process's own when None). ``extra`` adds what the benchmark itself knows (seeds, protocol).
    """
    import torch  # every benchmark that records provenance has torch loaded already

    return {
        "command": shlex.join(["python", script, *(sys.argv[1:] if arguments is None else arguments)]),
        "cwd": os.getcwd(),
        "source_revision": source_revision(),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "packages": package_versions(),
        **machine_info(**extra),
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
