"""Selection studies: the shared record of the runs competing for one target.

A study lives in the model repository (tables ``studies``, ``study_trials``, ``study_curves``), so
runs in other processes, and later runs after an interruption, see each other's curves. The
:class:`~hfselect.callbacks.ConvergenceTrendCallback` writes one point per evaluation and one trial
row per run; ``hfselect select`` reads them to resume without redoing finished epochs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hfselect.store.repository import ModelRepository
from hfselect.store.sql import utcnow

RUNNING, STOPPED, COMPLETED, FAILED = "running", "stopped", "completed", "failed"


@dataclass
class Trial:
    """One model's run in a study."""

    model_id: str
    state: str
    epochs_trained: float | None = None
    final_score: float | None = None
    predicted_final: float | None = None
    wall_time_s: float | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None


class Study:
    """A named selection study in a repository.

    Args:
        repository: where the study is stored.
        study_id: its name; the study is created on first use.
        target: the target dataset, recorded when the study is created.
        config: JSON-friendly settings recorded when the study is created.
    """

    def __init__(
        self,
        repository: ModelRepository,
        study_id: str,
        *,
        target: str | None = None,
        config: dict | None = None,
    ) -> None:
        self.repository = repository
        self.study_id = study_id
        with repository._transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO studies (study_id, target, config, status, created_at, updated_at) "
                "VALUES (?, ?, ?, 'running', ?, ?)",
                (study_id, target, json.dumps(config or {}, sort_keys=True), utcnow(), utcnow()),
            )

    @property
    def info(self) -> dict[str, Any]:
        """The study's row: target, config (decoded), status, timestamps."""
        row = dict(self.repository._query("SELECT * FROM studies WHERE study_id = ?", (self.study_id,))[0])
        row["config"] = json.loads(row["config"] or "{}")
        return row

    def set_status(self, status: str) -> None:
        """Mark the study running, completed, ..."""
        with self.repository._transaction() as connection:
            connection.execute(
                "UPDATE studies SET status = ?, updated_at = ? WHERE study_id = ?",
                (status, utcnow(), self.study_id),
            )

    def add_wall_time(self, seconds: float) -> float:
        """Add a run's wall time to the study's total (runs of an interrupted study add up); return the total."""
        with self.repository._transaction() as connection:
            connection.execute(
                "UPDATE studies SET wall_time_s = COALESCE(wall_time_s, 0) + ?, updated_at = ? "
                "WHERE study_id = ?",
                (float(seconds), utcnow(), self.study_id),
            )
        return self.wall_time_s or 0.0

    @property
    def wall_time_s(self) -> float | None:
        """The study's total wall time so far (None before any run finished or was interrupted)."""
        rows = self.repository._query("SELECT wall_time_s FROM studies WHERE study_id = ?", (self.study_id,))
        return rows[0]["wall_time_s"] if rows else None

    def record_point(self, model_id: str, epoch: float, score: float, predicted_final: float | None) -> None:
        """Store a run's evaluation (replacing an earlier one at the same epoch, as a resumed run does)."""
        with self.repository._transaction() as connection:
            connection.execute(
                "INSERT INTO study_curves (study_id, model_id, epoch, score, predicted_final, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (study_id, model_id, epoch) DO UPDATE SET "
                "score = excluded.score, predicted_final = excluded.predicted_final, recorded_at = excluded.recorded_at",
                (self.study_id, model_id, float(epoch), float(score), predicted_final, utcnow()),
            )

    def set_trial(self, trial: Trial) -> None:
        """Create or update a run's trial row."""
        with self.repository._transaction() as connection:
            connection.execute(
                "INSERT INTO study_trials (study_id, model_id, state, epochs_trained, final_score, predicted_final, "
                "wall_time_s, reason, details, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (study_id, model_id) DO UPDATE SET state = excluded.state, "
                "epochs_trained = excluded.epochs_trained, final_score = excluded.final_score, "
                "predicted_final = excluded.predicted_final, wall_time_s = excluded.wall_time_s, "
                "reason = excluded.reason, details = excluded.details, updated_at = excluded.updated_at",
                (
                    self.study_id,
                    trial.model_id,
                    trial.state,
                    trial.epochs_trained,
                    trial.final_score,
                    trial.predicted_final,
                    trial.wall_time_s,
                    trial.reason,
                    json.dumps(trial.details) if trial.details is not None else None,
                    utcnow(),
                ),
            )

    def trials(self) -> dict[str, Trial]:
        """Every run's trial, by model id."""
        rows = self.repository._query(
            "SELECT * FROM study_trials WHERE study_id = ? ORDER BY model_id", (self.study_id,)
        )
        return {
            row["model_id"]: Trial(
                model_id=row["model_id"],
                state=row["state"],
                epochs_trained=row["epochs_trained"],
                final_score=row["final_score"],
                predicted_final=row["predicted_final"],
                wall_time_s=row["wall_time_s"],
                reason=row["reason"],
                details=json.loads(row["details"]) if row["details"] else None,
            )
            for row in rows
        }

    def curves(self) -> pd.DataFrame:
        """Every recorded point: model_id, epoch, score, predicted_final."""
        rows = self.repository._query(
            "SELECT model_id, epoch, score, predicted_final FROM study_curves WHERE study_id = ? "
            "ORDER BY model_id, epoch",
            (self.study_id,),
        )
        return pd.DataFrame(
            [dict(row) for row in rows], columns=["model_id", "epoch", "score", "predicted_final"]
        )
