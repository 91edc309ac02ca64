"""The package's shape: one-way layers, no import cycle, SQL only in the store, modules under 600 lines.

The rules and the layers live in tools/check_architecture.py (also a command for maintainers).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_architecture.py"


@pytest.fixture(scope="module")
def architecture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_architecture", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_module_belongs_to_a_layer(architecture: ModuleType) -> None:
    orphans = [name for name in architecture.package_modules() if architecture.layer_of(name) < 0]
    assert orphans == []


def test_the_package_keeps_its_architecture(architecture: ModuleType) -> None:
    assert architecture.violations() == []


def test_a_cycle_through_a_function_level_import_is_found(architecture: ModuleType) -> None:
    graph = {
        "hfselect.a": {"hfselect.b"},
        "hfselect.b": {"hfselect.c"},
        "hfselect.c": {"hfselect.a"},
        "hfselect.d": set(),
    }
    assert architecture.find_cycles(graph) == [["hfselect.a", "hfselect.b", "hfselect.c"]]


def test_imports_inside_functions_count(architecture: ModuleType, tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from hfselect.store import studies\n    import hfselect.cli\n")
    modules = {"hfselect.store": tmp_path, "hfselect.store.studies": tmp_path, "hfselect.cli": tmp_path}
    assert sorted(architecture.imported_modules(source, modules)) == [
        "hfselect.cli",
        "hfselect.store.studies",
    ]


def test_a_higher_layer_import_is_a_violation(architecture: ModuleType) -> None:
    assert architecture.layer_of("hfselect.core.trend") < architecture.layer_of("hfselect.store.studies")
    assert architecture.layer_of("hfselect.cli") > architecture.layer_of("hfselect")
    # The root package is the public API: only the exact name matches it, not every submodule.
    assert architecture.layer_of("hfselect.errors") == 0
