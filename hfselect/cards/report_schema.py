"""The shape of ``report.json``, checked before anything reads (or rewrites) it.

A report is a file users keep, edit and pass around, so ``hfselect report render``/``push`` may be
handed one that is truncated, hand-edited or crafted. :func:`check_report_dict` checks every field
the card, the plot and the schema read, and turns the first wrong one into one
:class:`~hfselect.errors.HfSelectError` line naming it (``selection.candidates[0].curve_epochs[1]``),
so a bad file is refused before the report folder is touched, never half-rendered.

Unknown keys are allowed (a user's ``notes``; keys a later hfselect adds to a section): they are
kept, not checked. A report written by a newer hfselect (a higher ``schema_version``) is refused,
as this version cannot know what its fields mean.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

from hfselect.cards.names import redact_secrets
from hfselect.errors import HfSelectError

__all__ = ["SCHEMA_VERSION", "check_report_dict"]

# 2: the typed schema (schema_version, schedule, source); 1: the dicts written before it (no key).
SCHEMA_VERSION = 2

_TEXT, _NUMBER, _MAPPING, _LIST = "a string", "a number", "an object", "a list"
# Top-level fields: (what it must be, whether null is allowed). Version 1 lacked the first three.
_TOP = {
    "target": (_TEXT, False),
    "metric": (_TEXT, False),
    "selected_model": (_TEXT, True),
    "selected_score": (_NUMBER, True),
    "test_score": (_NUMBER, True),
    "saved_to": (_TEXT, True),
    "protocol": (_MAPPING, True),
    "schedule": (_TEXT, True),
    "recall": (_MAPPING, True),
    "excluded_benchmark_datasets": (_LIST, True),
    "repository": (_MAPPING, True),
    "versions": (_MAPPING, True),
    "hfselect_version": (_TEXT, True),
    "command": (_TEXT, True),
    "source": (_TEXT, True),
    "study_status": (_TEXT, True),
}
_SELECTION = {
    "study": (_TEXT, True),
    "candidates": (_LIST, True),
    "rounds": (_LIST, True),
    "epochs_spent": (_NUMBER, True),
    "brute_force_epochs": (_NUMBER, True),
    "brute_force_repository_epochs": (_NUMBER, True),
    "successive_halving_epochs": (_NUMBER, True),
    "repository_models": (_NUMBER, True),
    "wall_time_s": (_NUMBER, True),
}
_CANDIDATE = {
    "model_id": (_TEXT, False),
    "spec": (_TEXT, True),
    "epochs": (_NUMBER, True),
    "seconds": (_NUMBER, True),
    "state": (_TEXT, True),
    "reason": (_TEXT, True),
}
_DECISION = {
    "model_id": (_TEXT, False),
    "score": (_NUMBER, True),
    "predicted_final": (_NUMBER, True),
    "decision": (_TEXT, True),
    "reason": (_TEXT, True),
}


def _shown(value: Any) -> str:
    """The wrong value as the error line quotes it: short, one line, never a token."""
    text = redact_secrets(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _is(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _NUMBER:  # numpy numbers count (a report built in memory holds them); booleans do not
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == _MAPPING:
        return isinstance(value, Mapping)
    return isinstance(value, list)


class _Checker:
    """Checks fields of one report; :meth:`fail` raises the one-line error naming the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, expected: str, value: Any) -> None:
        raise HfSelectError(
            f"{self.where} is not a valid hfselect selection report: {field} must be {expected}, "
            f"not {_shown(value)}"
        )

    def value(self, field: str, value: Any, kind: str, nullable: bool) -> None:
        if value is None and nullable:
            return
        if not _is(value, kind):
            self.fail(field, kind + (" or null" if nullable else ""), value)

    def fields(self, prefix: str, data: Mapping[str, Any], spec: Mapping[str, tuple[str, bool]]) -> None:
        for key, (kind, nullable) in spec.items():
            if key not in data and not nullable:
                raise HfSelectError(
                    f"{self.where} is not a valid hfselect selection report: it has no {prefix}{key}"
                )
            self.value(prefix + key, data.get(key), kind, nullable)

    def items(self, field: str, values: Any, kind: str, nullable: bool) -> None:
        for index, item in enumerate(values or []):
            self.value(f"{field}[{index}]", item, kind, nullable)

    def records(self, field: str, values: Any) -> list[tuple[str, Mapping[str, Any]]]:
        """``values`` (a list) as (field name, object) pairs, each checked to be an object."""
        out = []
        for index, item in enumerate(values or []):
            self.value(f"{field}[{index}]", item, _MAPPING, False)
            out.append((f"{field}[{index}]", item))
        return out


def check_report_dict(data: Any, *, where: str = "the report") -> None:
    """Raise :class:`HfSelectError` naming the first field of ``data`` that a report cannot hold.

    ``data`` is a parsed ``report.json`` of any version hfselect wrote (version 1 has no
    ``schema_version`` and keeps some values in ``selection`` only). Checked: the schema version
    (refused when newer than this hfselect's), the type of every field the card and the plot read,
    down to each candidate's curve and each round's decisions, and that the recall section loads.
    """
    checker = _Checker(where)
    if not isinstance(data, Mapping) or not isinstance(data.get("selection"), Mapping):
        raise HfSelectError(
            f"{where} is not an hfselect selection report (no 'selection' section); "
            "make one with `hfselect select` or `hfselect demo`"
        )
    version = data.get("schema_version")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            checker.fail("schema_version", "a whole number >= 1", version)
        if version > SCHEMA_VERSION:
            raise HfSelectError(
                f"{where} has schema version {version}, written by a newer hfselect (this one reads up to "
                f"version {SCHEMA_VERSION}): upgrade hfselect (pip install -U hfselect)"
            )
        checker.fields("", data, _TOP)
    else:  # version 1: the fields that version 2 requires may be missing, or only in `selection`
        checker.fields("", data, {key: (kind, True) for key, (kind, _) in _TOP.items()})
        checker.value("selection_config", data.get("selection_config"), _MAPPING, True)
    checker.items("excluded_benchmark_datasets", data.get("excluded_benchmark_datasets"), _TEXT, False)

    selection = data["selection"]
    checker.fields("selection.", selection, _SELECTION)
    for field, candidate in checker.records("selection.candidates", selection.get("candidates")):
        checker.fields(field + ".", candidate, _CANDIDATE)
        for key, nullable in (("curve", True), ("curve_epochs", False), ("predicted_final", True)):
            checker.value(f"{field}.{key}", candidate.get(key), _LIST, True)
            checker.items(f"{field}.{key}", candidate.get(key), _NUMBER, nullable)
    for field, round_ in checker.records("selection.rounds", selection.get("rounds")):
        checker.value(field + ".round", round_.get("round"), _NUMBER, True)
        checker.value(field + ".decisions", round_.get("decisions"), _LIST, True)
        for name, decision in checker.records(field + ".decisions", round_.get("decisions")):
            checker.fields(name + ".", decision, _DECISION)
    _check_recall(checker, data.get("recall"))


def _check_recall(checker: _Checker, recall: Mapping[str, Any] | None) -> None:
    """The recall section loads as a :class:`~hfselect.core.recall_result.RecallResult`."""
    if recall is None:
        return
    from hfselect.core.recall_result import RecallEntry, RecallResult

    for key in ("models", "scores", "entries", "ranking", "clusters", "new_models"):
        checker.value(f"recall.{key}", recall.get(key), _LIST, True)
    checker.value("recall.representatives", recall.get("representatives"), _MAPPING, True)
    # What is wrong inside the recall is the recall's own schema: name the entry, quote the reason.
    loads: list[tuple[str, Callable[[], Any]]] = [
        (field, lambda entry=entry: RecallEntry.from_dict(entry))
        for key in ("entries", "ranking")
        for field, entry in checker.records(f"recall.{key}", recall.get(key))
    ]
    loads.append(("recall", lambda: RecallResult.from_dict(recall)))
    for field, load in loads:
        try:
            load()
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            reason = redact_secrets(" ".join(str(error).split()))
            reason = reason if len(reason) <= 100 else reason[:97] + "..."
            raise HfSelectError(
                f"{checker.where} is not a valid hfselect selection report: {field} is not what hfselect "
                f"writes there ({reason})"
            ) from error
