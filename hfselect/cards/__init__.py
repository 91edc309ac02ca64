"""Selection reports as Hub cards, and pushing reports and model repositories to the Hub.

- :class:`SelectionReport`: the typed schema of ``report.json`` (``to_dict``/``from_dict``, JSON
  files, old reports upgraded); :func:`render_report_card`, :func:`write_report_folder`: the
  report as a card (``README.md``) with a learning-curves plot.
- :func:`push_report`, :func:`push_study_report`: push a report (or a study's) in one commit.
- :func:`push_repository`, :func:`pull_repository`, :func:`resolve_repository_path`: the model
  repository as a Hub dataset of Parquet tables, and ``--repository hf://datasets/USER/NAME``.

Everything Hub-facing imports lazily, so ``import hfselect.cards`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfselect.cards.names import redact_secrets
    from hfselect.cards.plot import plot_learning_curves
    from hfselect.cards.push import push_report, push_study_report, resolve_token
    from hfselect.cards.report import render_report_card, report_card_data, write_report_folder
    from hfselect.cards.selection_report import SCHEMA_VERSION, SelectionReport, winner_gap
    from hfselect.cards.snapshot import (
        pull_repository,
        push_repository,
        render_repository_card,
        repository_snapshot,
        resolve_repository_path,
    )
    from hfselect.cards.versions import environment_versions

_EXPORTS = {
    "SCHEMA_VERSION": "selection_report",
    "SelectionReport": "selection_report",
    "winner_gap": "selection_report",
    "redact_secrets": "names",
    "render_report_card": "report",
    "report_card_data": "report",
    "write_report_folder": "report",
    "plot_learning_curves": "plot",
    "push_report": "push",
    "push_study_report": "push",
    "resolve_token": "push",
    "pull_repository": "snapshot",
    "push_repository": "snapshot",
    "render_repository_card": "snapshot",
    "repository_snapshot": "snapshot",
    "resolve_repository_path": "snapshot",
    "environment_versions": "versions",
}

__all__ = [
    "SCHEMA_VERSION",
    "SelectionReport",
    "environment_versions",
    "plot_learning_curves",
    "pull_repository",
    "push_report",
    "push_repository",
    "push_study_report",
    "redact_secrets",
    "render_report_card",
    "render_repository_card",
    "report_card_data",
    "repository_snapshot",
    "resolve_repository_path",
    "resolve_token",
    "winner_gap",
    "write_report_folder",
]


def __getattr__(name: str) -> Any:
    # matplotlib and huggingface_hub's card machinery are only imported when used.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"hfselect.cards.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hfselect.cards' has no attribute {name!r}")
