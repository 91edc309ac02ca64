"""Quick-Tune's learning curves in memory, and one held-out target with what is known without it.

The data half of ``real_curves.py`` (see its docstring for the protocol): ``--data`` holds
``curves/perf.json``, ``curves/cost.json`` and ``table.csv`` in Quick-Tune's layout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from real_curves_protocol import (
    PRIOR_TREES,
    PROTOCOL_PREDICTOR,
    BenchmarkRun,
    PriorObjective,
    ProtocolRegressions,
    ProtocolTrendPredictor,
    dataset_percentiles,
    run_regression,
)
from sklearn.ensemble import HistGradientBoostingRegressor

from hfselect.core.trend import Curve, TrendPredictor, make_predictor

MODEL_PREFIX = "cat:model:"
WARMUP_COLUMN = "warmup_epochs"


class DataError(Exception):
    """The data folder is missing something or is not in Quick-Tune's layout."""


@dataclass
class CurveData:
    """Quick-Tune's curves: scores in [0, 1] and seconds per epoch, per dataset and config id."""

    scores: dict[str, dict[str, list[float]]]  # dataset -> config id -> score after each epoch
    seconds: dict[str, dict[str, list[float]]]  # dataset -> config id -> seconds of each epoch
    model_of: dict[str, str]  # config id -> model name
    budget: int  # the full training budget in epochs (the longest curve)
    warmup_of: dict[str, int] = field(default_factory=dict)  # config id -> warmup epochs
    # config id -> its protocol: every numeric column of table.csv (the model's one-hot columns too)
    protocol_of: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # dataset -> its descriptors (meta/descriptors.json: examples, classes, ...), where the file has them
    descriptors: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # runs cut short on reading: at their first non-finite score, or where their timings end
    truncated: int = 0

    def run_features(self, dataset: str, config: str) -> tuple[float, ...]:
        """What is known of a run before it trains: its protocol, its model, its dataset's descriptors."""
        return self.protocol_of.get(config, ()) + self.descriptors.get(dataset, ())

    @property
    def datasets(self) -> list[str]:
        """Every dataset, in ``perf.json``'s order."""
        return list(self.scores)

    def runs(self, dataset: str) -> dict[str, str]:
        """Model -> its run on ``dataset``: the first config id (file order) with the full budget."""
        chosen: dict[str, str] = {}
        for config, curve in self.scores[dataset].items():
            model = self.model_of.get(config)
            if model is not None and model not in chosen and len(curve) >= self.budget:
                chosen[model] = config
        return chosen

    def has_choice(self, dataset: str) -> bool:
        """Whether ``dataset`` can be a target: two or more models with a full-length run to choose from."""
        return len(self.runs(dataset)) >= 2

    def full_curves(self, datasets: Sequence[str]) -> dict[str, list[Curve]]:
        """Model -> every full-budget curve it has on ``datasets`` (each config is one curve).

        Each curve's group is its dataset, as in the library's repository curves: a held-out error
        (the ``auto`` margin) leaves out every run of the held-out run's dataset, so another run
        on the same data cannot vouch for it.
        """
        grouped: dict[str, list[Curve]] = {}
        for dataset in datasets:
            for config, curve in self.scores[dataset].items():
                model = self.model_of.get(config)
                if model is not None and len(curve) >= self.budget:
                    grouped.setdefault(model, []).append(Curve(tuple(curve[: self.budget]), dataset))
        return grouped

    def performance(self, datasets: Sequence[str]) -> pd.DataFrame:
        """The performance matrix over ``datasets``: each model's run's final score (NaN: no run)."""
        columns = {}
        for dataset in datasets:
            runs = self.runs(dataset)
            columns[dataset] = {model: self.scores[dataset][config][-1] for model, config in runs.items()}
        frame = pd.DataFrame(columns)
        return frame.sort_index()


def chosen_targets(data: CurveData, requested: str | None) -> list[str]:
    """The targets a ``--targets A,B`` option names (every dataset without one); unknown names are an error."""
    targets = requested.split(",") if requested else list(data.datasets)
    unknown = [name for name in targets if name not in data.scores]
    if unknown:
        raise DataError(f"unknown target(s) {', '.join(unknown)}; the data has {', '.join(data.datasets)}")
    return targets


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} is missing: --data must be a folder in Quick-Tune's layout (see --help)")
    return json.loads(path.read_text())


def load_curves(folder: Path) -> CurveData:
    """Read ``curves/perf.json``, ``curves/cost.json`` and ``table.csv`` from ``folder``."""
    perf = _read_json(folder / "curves" / "perf.json")
    cost = _read_json(folder / "curves" / "cost.json")
    if not (folder / "table.csv").is_file():
        raise DataError(f"{folder / 'table.csv'} is missing: it maps each config id to its model")
    configs = pd.read_csv(folder / "table.csv", index_col=0, dtype={0: str})
    model_columns = [column for column in configs.columns if column.startswith(MODEL_PREFIX)]
    if not model_columns:
        raise DataError(f"{folder / 'table.csv'} has no {MODEL_PREFIX}NAME columns")
    names = configs[model_columns].to_numpy().argmax(axis=1)
    model_of = {
        str(config): model_columns[i][len(MODEL_PREFIX) :]
        for config, i in zip(configs.index, names, strict=True)
    }
    scores: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, dict[str, list[float]]] = {}
    truncated = 0
    for dataset, runs in perf.items():
        is_curves = isinstance(runs, dict) and all(isinstance(curve, list) for curve in runs.values())
        if not is_curves or dataset not in cost:
            continue  # the "info" entry, or a dataset without timings
        scores[dataset], seconds[dataset] = {}, {}
        for config, curve in runs.items():
            kept_scores, kept_seconds = _usable_epochs(curve, cost[dataset].get(config, []))
            truncated += len(kept_scores) < len(curve)
            # Accuracy in % -> [0, 1], the scale hfselect's rules (clustering threshold, margins) expect.
            scores[dataset][config] = [value / 100.0 for value in kept_scores]
            seconds[dataset][config] = kept_seconds
    if not scores:
        raise DataError(f"{folder / 'curves' / 'perf.json'} holds no dataset with timings in cost.json")
    budget = max((len(curve) for runs in scores.values() for curve in runs.values()), default=0)
    if budget == 0:
        raise DataError(f"{folder / 'curves' / 'perf.json'} holds no epoch with both a score and its seconds")
    warmup_of = {}
    if WARMUP_COLUMN in configs.columns:  # the protocol's learning-rate warmup, when the table has it
        warmup_of = {
            str(config): int(value)
            for config, value in configs[WARMUP_COLUMN].items()
            if pd.notna(value) and value > 0
        }
    numeric = configs.select_dtypes("number").fillna(-1.0)
    protocol_of = {
        str(config): tuple(map(float, row))
        for config, row in zip(numeric.index, numeric.to_numpy(), strict=True)
    }
    descriptors = _descriptors(folder, scores)
    return CurveData(scores, seconds, model_of, budget, warmup_of, protocol_of, descriptors, truncated)


def _usable_epochs(scores: Sequence[Any], seconds: Sequence[Any]) -> tuple[list[float], list[float]]:
    """A run's epochs up to its first non-finite score or missing timing, as floats.

    A NaN or infinite accuracy means the run diverged there, as a curve shorter than the budget
    means it stopped; an epoch without its seconds cannot be paid for in a replay. Either way the
    run ends at the last epoch that has both, so it is a candidate only if that is the budget.
    """
    kept_scores: list[float] = []
    kept_seconds: list[float] = []
    for score, spent in zip(scores, seconds, strict=False):
        if not _is_finite(score) or not _is_finite(spent):
            break
        kept_scores.append(float(score))
        kept_seconds.append(float(spent))
    return kept_scores, kept_seconds


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _descriptors(folder: Path, datasets: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    """``meta/descriptors.json`` (dataset -> numbers), when every dataset has the same count of them."""
    path = folder / "meta" / "descriptors.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    found = {name: tuple(float(v) for v in raw[name]) for name in datasets if isinstance(raw.get(name), list)}
    if len(found) < len(datasets) or len({len(values) for values in found.values()}) != 1:
        return {}  # descriptors that not every dataset has cannot be a feature of every run
    return found


@dataclass
class Target:
    """One held-out dataset: its candidates' curves and epoch seconds, and what is known without it."""

    name: str
    curves: dict[str, list[float]]  # model -> validation score after each epoch
    seconds: dict[str, list[float]]  # model -> seconds of each epoch
    benchmarks: list[str]
    performance: pd.DataFrame  # models x benchmark datasets (final scores)
    benchmark_curves: dict[str, list[Curve]]  # model -> its full curves on the benchmark datasets
    warmup: dict[str, int] = field(default_factory=dict)  # model -> its run's warmup epochs
    features: dict[str, tuple[float, ...]] = field(default_factory=dict)  # model -> its run's features
    benchmark_runs: list[BenchmarkRun] = field(default_factory=list)  # every full-length one
    # (predictor name, model) -> its fitted predictor: methods share them and their held-out errors
    _predictors: dict[tuple[str, str], TrendPredictor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _prior_regressions: dict[PriorObjective, HistGradientBoostingRegressor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def budget(self) -> int:
        """The full training budget in epochs (every candidate's curve has it)."""
        return len(next(iter(self.curves.values())))

    @property
    def final(self) -> dict[str, float]:
        """Each candidate's ground truth: its final validation score."""
        return {model: curve[-1] for model, curve in self.curves.items()}

    def cost(self, epochs: Mapping[str, int]) -> float:
        """Seconds of ``epochs[model]`` epochs of every model (resumed runs do not repeat epochs)."""
        return float(sum(sum(self.seconds[model][:count]) for model, count in epochs.items()))

    def normalized_regret(self, selected: str) -> float:
        """(best final - selected's final) / (best final - worst final); 0 when every final is equal."""
        finals = self.final
        spread = max(finals.values()) - min(finals.values())
        return float((max(finals.values()) - finals[selected]) / spread) if spread > 0 else 0.0

    def prior_regression(self, objective: PriorObjective = "percentile") -> HistGradientBoostingRegressor:
        """The learned prior's regression on a run's features, fitted once per objective on every benchmark run.

        ``"percentile"``: the run's percentile among its dataset's runs
        (:func:`real_curves_protocol.dataset_percentiles`); ``"final"``: its final score.
        """
        if objective not in self._prior_regressions:
            features = np.array([run.features for run in self.benchmark_runs])
            if objective == "percentile":
                outcome = dataset_percentiles(self.benchmark_runs)
            else:
                outcome = np.array([run.final for run in self.benchmark_runs])
            self._prior_regressions[objective] = run_regression(PRIOR_TREES).fit(features, outcome)
        return self._prior_regressions[objective]

    @cached_property
    def protocol_regressions(self) -> ProtocolRegressions:
        """The protocol-aware trend's regressions on every benchmark run, shared by the candidates."""
        return ProtocolRegressions(self.benchmark_runs)

    def predictors(self, name: str, models: Sequence[str]) -> dict[str, TrendPredictor]:
        """A trend predictor of kind ``name`` per model, fitted on its benchmark curves only.

        ``name`` is one of the library's (:data:`hfselect.core.trend.PREDICTORS`) or
        ``"protocol"`` (:class:`real_curves_protocol.ProtocolTrendPredictor`: every benchmark run,
        with its protocol). Fitted once per target (methods share them, and with them their cached
        held-out errors).
        """
        for model in models:
            if (name, model) in self._predictors:
                continue
            if name == PROTOCOL_PREDICTOR:
                predictor = ProtocolTrendPredictor(self.protocol_regressions, self.features[model])
            else:
                predictor = make_predictor(name, model, self.benchmark_curves)
            self._predictors[name, model] = predictor
        return {model: self._predictors[name, model] for model in models}


def make_target(data: CurveData, name: str) -> Target:
    """The target ``name`` with everything learned from the other datasets."""
    runs = data.runs(name)
    benchmarks = [dataset for dataset in data.datasets if dataset != name]
    performance = data.performance(benchmarks)
    return Target(
        name=name,
        curves={model: data.scores[name][config][: data.budget] for model, config in runs.items()},
        seconds={model: data.seconds[name][config][: data.budget] for model, config in runs.items()},
        benchmarks=benchmarks,
        performance=performance.reindex(sorted(set(performance.index) | set(runs))),
        benchmark_curves=data.full_curves(benchmarks),
        warmup={model: data.warmup_of[config] for model, config in runs.items() if config in data.warmup_of},
        features={model: data.run_features(name, config) for model, config in runs.items()},
        benchmark_runs=[
            BenchmarkRun(dataset, data.run_features(dataset, config), tuple(curve[: data.budget]))
            for dataset in benchmarks
            for config, curve in data.scores[dataset].items()
            if config in data.model_of and len(curve) >= data.budget
        ],
    )
