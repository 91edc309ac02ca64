"""The selection report: the typed schema of the ``report.json`` that ``hfselect select``/``demo`` write.

:class:`SelectionReport` is the one definition of that file: :func:`hfselect.select` builds it,
:meth:`SelectionReport.to_dict`/:meth:`~SelectionReport.to_json` write it, and the card, the plot
and ``hfselect report push`` read only its fields. ``schema_version`` says which layout a file has;
files without one (version 1, written before the schema existed, by ``hfselect select`` and by
:meth:`SelectionReport.from_study`) are read by :func:`upgrade_report_dict`, the only place that
knows their quirks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hfselect.cards.names import finite, is_hub_model_id, redact_secrets, split_hub_dataset
from hfselect.cards.report_schema import SCHEMA_VERSION, check_report_dict
from hfselect.core.recall_result import RecallResult
from hfselect.errors import HfSelectError
from hfselect.store.local_paths import public_spec, strip_local_paths

__all__ = [
    "REPORT_JSON",
    "SCHEMA_VERSION",
    "Candidate",
    "SelectionReport",
    "upgrade_report_dict",
    "winner_gap",
]

REPORT_JSON = "report.json"


@dataclasses.dataclass
class Candidate:
    """One fine-selection candidate as the card and the plot show it (NaN evaluations left out)."""

    model_id: str
    spec: str | None
    epochs: list[float]
    curve: list[float]
    predicted_final: list[float | None]
    state: str
    reason: str | None
    seconds: float | None
    selected: bool
    recall_rank: int | None

    @property
    def is_hub(self) -> bool:
        """Whether the candidate is a Hub model (linked in the card, named as ``base_model``)."""
        return is_hub_model_id(self.model_id, self.spec)

    @property
    def last_epoch(self) -> float | None:
        """The epoch of its last evaluation."""
        return self.epochs[-1] if self.epochs else None


@dataclasses.dataclass
class SelectionReport:
    """A selection report: what was selected for which target, how, and at what cost.

    Attributes:
        target: the target dataset as given (Hub id, ``ID:CONFIG`` or local path; ``""`` for a
            study written by the callback, which records none).
        selected_model: the model fine selection chose.
        selected_score: its validation score at the end of the budget.
        metric: the validation metric's name.
        selection: the fine selection's record (``SelectionResult.to_dict()``: candidates, rounds,
            cost against brute force and plain successive halving).
        test_score: its score on the target's test split, when one was computed.
        saved_to: where the selected, fine-tuned model was saved.
        protocol: the fine-tuning protocol (its fields and ``key``).
        schedule: the fine selection's schedule (``"sync"`` or ``"async"``; ``None`` when unknown).
        recall: the coarse recall (``None`` for a study report).
        excluded_benchmark_datasets: benchmark datasets held out of the repository (the demo's target).
        repository: a snapshot of what the model repository held.
        versions: the versions of hfselect and its main dependencies.
        hfselect_version: the version of hfselect that wrote the report.
        command: the command line that ran the selection.
        source: ``"select"`` (a recall and a fine selection) or ``"study"`` (a stored study).
        study_status: a study report's study status.
        schema_version: the layout of the report (:data:`SCHEMA_VERSION` when written now).
        extra_fields: top-level keys of the file that are none of the above (a user's ``notes``),
            kept as they were so that rewriting the file loses nothing.
    """

    target: str
    selected_model: str | None
    selected_score: float | None
    metric: str
    selection: dict[str, Any]
    test_score: float | None = None
    saved_to: str | None = None
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    schedule: str | None = None
    recall: RecallResult | None = None
    excluded_benchmark_datasets: list[str] = dataclasses.field(default_factory=list)
    repository: dict[str, Any] | None = None
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    hfselect_version: str | None = None
    command: str | None = None
    source: str = "select"
    study_status: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra_fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    # -- the file ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types: what ``report.json`` holds."""
        # A known field wins over an extra one of the same name (only a caller can build that).
        data = dict(self.extra_fields)
        data.update(
            (field.name, getattr(self, field.name))
            for field in dataclasses.fields(self)
            if field.name != "extra_fields"
        )
        data["recall"] = None if self.recall is None else self.recall.to_dict()
        data["schema_version"] = SCHEMA_VERSION
        for key in ("selected_score", "test_score"):
            data[key] = finite(data[key])
        return copy.deepcopy(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "the report") -> SelectionReport:
        """A report from its dict, in any layout hfselect has written (tokens are redacted).

        Raises:
            HfSelectError: ``data`` is not an hfselect selection report, or a field has the wrong type
                (one line naming ``where`` and the field; see :func:`check_report_dict`).
        """
        check_report_dict(data, where=where)  # before the upgrade, which reads the version-1 fields
        data = redact_secrets(upgrade_report_dict(data))
        # The upgrade fills the version-2 fields from wherever version 1 kept them: check those too.
        check_report_dict({**data, "schema_version": SCHEMA_VERSION}, where=where)
        names = {field.name for field in dataclasses.fields(cls)} - {"extra_fields"}
        values = {key: copy.deepcopy(value) for key, value in data.items() if key in names}
        values["extra_fields"] = {
            key: copy.deepcopy(value) for key, value in data.items() if key not in names
        }
        if values.get("recall") is not None:
            values["recall"] = RecallResult.from_dict(values["recall"])
        for key in ("selected_score", "test_score"):
            values[key] = finite(values.get(key))
        values["schema_version"] = SCHEMA_VERSION
        return cls(**values)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> SelectionReport:
        """Load a report from a dict, a ``report.json`` file, or a folder holding one.

        Raises:
            HfSelectError: the file is missing, is not JSON, or is not an hfselect report.
        """
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        path = Path(source)
        if path.is_dir():
            path = path / REPORT_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise HfSelectError(f"cannot read the selection report {path}: {error.strerror}") from error
        except ValueError as error:
            raise HfSelectError(f"{path} is not JSON: {error}") from error
        return cls.from_dict(data, where=str(path))

    def to_json(self, path: str | os.PathLike[str] | None = None, *, public: bool = False) -> str:
        """The report as JSON text (written to ``path`` too when given).

        Tokens are always redacted. ``public=True`` (what a push uses) also leaves out local paths
        (see :meth:`public`), so a published report does not reveal this machine's folders.
        """
        data = self.public().to_dict() if public else self.to_dict()
        text = json.dumps(redact_secrets(data), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_study(
        cls, repository: Any, study_id: str, *, metric: str | None = None, command: str | None = None
    ) -> SelectionReport:
        """A report of a selection study stored in a repository.

        Studies written by the :class:`~hfselect.callbacks.ConvergenceTrendCallback` hold no recall,
        and no budget: the report's brute-force cost is every run trained as far as the longest one.
        The selected model is the best completed run (or, while none completed, the best so far).

        Args:
            repository: a :class:`~hfselect.store.ModelRepository` or the path of one.
            study_id: the study's name.
            metric: the metric's name for the card (the callback's ``metric``); default ``score``.
            command: how the study was run, for the reproduction section.
        """
        from hfselect.cards.study import study_report_dict

        return cls.from_dict(study_report_dict(repository, study_id, metric=metric, command=command))

    def public(self) -> SelectionReport:
        """A copy fit to publish: no absolute local path anywhere in it, as ``hfselect repo export`` does.

        Every string (a command line, a saved model's folder, a local model's spec, a stop reason)
        has its absolute paths (``/...``, ``~/...``) reduced to their last component by
        :func:`~hfselect.store.local_paths.strip_local_paths`, the helper that keeps paths out of
        ``repo export`` and ``repo push``. A local target becomes ``./NAME``
        (:func:`~hfselect.store.local_paths.public_spec`), which still reads as a local dataset,
        not as the Hub dataset ``NAME``. Hub ids and URLs are left as they are.
        """
        original = self.to_dict()
        data = _without_local_paths(original)
        sections = [(original, data)]
        sections += [(original[key], data[key]) for key in ("selection", "recall") if original.get(key)]
        for before, after in sections:
            target = before.get("target")  # as given: once stripped, /data/ag_news reads as a Hub id
            if isinstance(target, str) and target and split_hub_dataset(target) is None:
                after["target"] = f"./{public_spec(target.removeprefix('./'))}"
        return SelectionReport.from_dict(data)

    # -- views ------------------------------------------------------------------------------------

    @property
    def study(self) -> str | None:
        """The study the fine selection recorded its runs in."""
        return self.selection.get("study")

    @property
    def is_study(self) -> bool:
        """Whether this report was built from a study (no recall, no budget)."""
        return self.source == "study" or self.recall is None

    @property
    def candidates(self) -> list[Candidate]:
        """Every fine-selection candidate, in the order fine selection listed them."""
        ranks = {entry.model_id: entry.rank for entry in self.recall.entries} if self.recall else {}
        out = []
        for raw in self.selection.get("candidates") or []:
            values = list(raw.get("curve") or [])
            x = raw.get("curve_epochs") or list(range(1, len(values) + 1))  # select's curves: one per epoch
            # A NaN evaluation (a diverged run) is left out with its epoch, keeping the two aligned.
            points = [(float(e), float(v)) for e, v in zip(x, values, strict=False) if finite(v) is not None]
            out.append(
                Candidate(
                    model_id=str(raw.get("model_id")),
                    spec=raw.get("spec"),
                    epochs=[e for e, _ in points],
                    curve=[v for _, v in points],
                    predicted_final=[finite(v) for v in raw.get("predicted_final") or []],
                    state=str(raw.get("state") or "running"),
                    reason=raw.get("reason"),
                    seconds=finite(raw.get("seconds")),
                    selected=raw.get("model_id") == self.selected_model,
                    recall_rank=ranks.get(raw.get("model_id")),
                )
            )
        return out


def _without_local_paths(value: Any) -> Any:
    """``value`` (a report's JSON types) with every string, keys included, through ``strip_local_paths``."""
    if isinstance(value, str):
        return strip_local_paths(value)
    if isinstance(value, Mapping):
        return {_without_local_paths(key): _without_local_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_local_paths(item) for item in value]
    return value


def upgrade_report_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` in the current layout; a version-1 report (no ``schema_version``) is converted.

    Version 1 kept some values only in its ``selection`` section (a study's target), the metric
    only in ``protocol``, and no schedule; a study report said ``source: "study"`` or had no recall.
    """
    data = dict(data)
    if data.get("schema_version") is not None:
        return data
    selection = data["selection"]
    for key in ("target", "selected_model"):
        data[key] = data.get(key) or selection.get(key)
    for key in ("selected_score", "test_score"):
        data[key] = data[key] if key in data else selection.get(key)
    data["target"] = str(data.get("target") or "")
    data["metric"] = str(data.get("metric") or (data.get("protocol") or {}).get("metric") or "score")
    data["source"] = "study" if data.get("source") == "study" else "select"
    data["schedule"] = (data.get("selection_config") or {}).get("schedule")
    return data


def winner_gap(candidates: Sequence[Candidate]) -> dict[str, Any] | None:
    """How far the winner was ahead of the worst recalled candidate, at an epoch all were evaluated at.

    The worst candidate is the lowest-scoring one at the first epoch every candidate reached
    (candidates stopped early have no later score to compare). None without a winner and a rival.
    """
    winner = next((c for c in candidates if c.selected and c.curve), None)
    rivals = [c for c in candidates if not c.selected and c.curve]
    if winner is None or not rivals:
        return None
    common = set(winner.epochs).intersection(*(c.epochs for c in rivals))
    if not common:
        return None
    epoch = min(common)

    def at(candidate: Candidate) -> float:
        return candidate.curve[candidate.epochs.index(epoch)]

    worst = min(rivals, key=at)
    return {
        "epoch": epoch,
        "winner": winner.model_id,
        "winner_score": at(winner),
        "winner_final": winner.curve[-1],
        "winner_final_epoch": winner.last_epoch,
        "worst": worst.model_id,
        "worst_score": at(worst),
        "worst_last": worst.curve[-1],
        "worst_last_epoch": worst.last_epoch,
        "gap": at(winner) - at(worst),
    }
