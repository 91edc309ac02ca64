"""The versions a selection ran with, for a report's reproduction section."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("hfselect", "transformers", "torch", "accelerate", "datasets", "huggingface_hub", "scikit-learn")


def environment_versions() -> dict[str, str]:
    """Python's and the key packages' installed versions (a package that is missing is left out)."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
