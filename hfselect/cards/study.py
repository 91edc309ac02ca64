"""A selection report built from a study in the model repository (no recall: the callback's studies).

The :class:`~hfselect.callbacks.ConvergenceTrendCallback` records every evaluation in
``study_curves`` and each run's state and stop reason in ``study_trials``. This module turns those
rows into a dict with the layout of ``report.json`` (its ``selection`` section as
``SelectionResult.to_dict()`` writes it), so the same card template renders it.
"""

from __future__ import annotations

import math
import os
from typing import Any

from hfselect._version import __version__
from hfselect.core.halving import decision_rounds, successive_halving_epochs
from hfselect.errors import HfSelectError
from hfselect.store import ModelRepository
from hfselect.store.studies import COMPLETED, STOPPED, Study


def study_report_dict(
    repository: ModelRepository | str | os.PathLike[str] | None,
    study_id: str,
    *,
    metric: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The ``report.json``-shaped dict of study ``study_id`` (see :meth:`SelectionReport.from_study`).

    Raises:
        HfSelectError: the repository has no study of that name, or the study has no evaluation.
    """
    owned = not isinstance(repository, ModelRepository)
    store = ModelRepository(repository) if owned else repository
    try:
        known = store.study_ids()
        if study_id not in known:
            raise HfSelectError(
                f"the repository {store.path} has no study {study_id!r}"
                + (f"; studies: {', '.join(known[:10])}" if known else "")
            )
        study = Study(store, study_id)
        info, trials, curves = study.info, study.trials(), study.curves()
    finally:
        if owned:
            store.close()
    if curves.empty:
        raise HfSelectError(f"study {study_id!r} has no recorded evaluation yet: nothing to report")

    candidates, last = [], {}
    for model_id in list(dict.fromkeys([*curves["model_id"], *trials])):
        frame = curves[curves["model_id"] == model_id].sort_values("epoch")
        trial = trials.get(model_id)
        epochs = [float(e) for e in frame["epoch"]]
        scores = [float(s) for s in frame["score"]]
        if epochs:
            last[model_id] = (epochs[-1], scores[-1])
        candidates.append(
            {
                "model_id": model_id,
                "spec": model_id,
                "epochs": len(epochs),
                "curve_epochs": epochs,
                "seconds": (trial.wall_time_s if trial else None) or 0.0,
                "curve": scores,
                "predicted_final": [
                    None if p is None or p != p else float(p) for p in frame["predicted_final"]
                ],
                "state": trial.state if trial else "running",
                "reason": trial.reason if trial else None,
                "stopped_at_round": None,
            }
        )
    # The winner: the best completed run at its last evaluation; while none completed, the best so far.
    completed = [c["model_id"] for c in candidates if c["state"] == COMPLETED and c["model_id"] in last]
    pool = completed or [c["model_id"] for c in candidates if c["state"] != STOPPED and c["model_id"] in last]
    pool = pool or list(last)
    winner = max(pool, key=lambda m: last[m][1])
    budget = max(epoch for epoch, _ in last.values())
    budget_epochs = math.ceil(budget - 1e-9)
    spent = sum(epoch for epoch, _ in last.values())

    stops = {m: (last[m][0], t.reason) for m, t in trials.items() if t.state == STOPPED and m in last}
    rounds = decision_rounds(curves, curves["epoch"].round(6), stops)

    target = info.get("target")  # None for the callback's studies: the card then names the study
    score = last[winner][1]
    return {
        "hfselect_version": __version__,
        "command": command,
        "source": "study",
        "target": target,
        "selected_model": winner,
        "selected_score": score,
        "test_score": None,
        "saved_to": None,
        "metric": metric or "score",
        "protocol": {"key": (info.get("config") or {}).get("protocol")} if info.get("config") else {},
        "recall": None,
        "selection": {
            "study": study_id,
            "target": target,
            "selected_model": winner,
            "selected_score": score,
            "test_score": None,
            "saved_to": None,
            "candidates": candidates,
            "rounds": rounds,
            "epochs_spent": round(spent, 2),
            "brute_force_epochs": len(last) * budget_epochs,
            "successive_halving_epochs": successive_halving_epochs(len(last), budget_epochs),
            "wall_time_s": sum(c["seconds"] or 0.0 for c in candidates),
        },
        "excluded_benchmark_datasets": [],
        "study_status": info.get("status"),
    }
