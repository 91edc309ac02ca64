"""Syne Tune 0.16's schedulers over one target's curves, through its own simulator.

The target's candidates are a tabulated blackbox (``BlackboxTabular``: score and cumulative
seconds after each epoch) simulated by ``UserBlackboxBackend``; a ``Tuner`` with one worker, no real
sleep and ``SimulatorCallback`` runs the scheduler on simulated time until
``StoppingCriterion(max_wallclock_time=...)``. Every result the tuner hands out is recorded in a
:class:`anytime_data.Trajectory`, so the benchmark charges Syne Tune by its own accounting.

The search space. Syne Tune 0.16 samples each hyperparameter on its own (it has no
``restrict_configurations``), and the target's configurations are random draws of a grid of some
40 hyperparameters: no two datasets share a configuration, and a space of model x hyperparameters
would mostly propose configurations nobody trained. So every scheduler searches the candidate set
itself: a categorical ``config`` (the candidate ids) and a second, constant column ``set`` (a
blackbox with one hyperparameter column fails on lookup under pandas 3, see
``../shared/notes/peers.md``). The transfer scheduler gets model x hyperparameters (below).

Rows (Syne Tune's defaults unless said: grace period 1 epoch, reduction factor 3, stopping-type
ASHA, whose promotion continues the same run):

* ``random_search``: ``RandomSearch`` (each trial trained to the full budget).
* ``syne_asha``: ``ASHA``; ``syne_hyperband``: ``ASHA`` with ``brackets`` = its rung levels
  (4 for 50 epochs); ``syne_bohb``: ``BOHB`` (ASHA with a KDE searcher; its random phase and its
  proposals may start a configuration it has tried already: a new run, paid again).
* Random search and every ASHA (the two rows, and the one inside ``BoundingBox``) get each of their
  candidates in a seeded random order first (``points_to_evaluate``, see :func:`shuffled`): without
  replacement until the set is exhausted.
* Syne Tune's random draws (and ASHA's choice of bracket) use numpy's global generator, which is
  seeded with the run's seed before each run.
* ``syne_bounding_box``: ``BoundingBox`` (Perrone et al., NeurIPS 2019) given the repository's
  evaluations (every full-length run of every other dataset, its whole curve) in the space
  ``model`` (categorical) x ``lr``, ``batch_size``, ``weight_decay``, ``pct_to_freeze``,
  ``linear_probing`` (ranges; those ``table.csv`` has), for the ``models`` set the model only.
  It bounds that space by the best configuration of each other dataset (its default); its
  ``scheduler_fun`` then runs ``ASHA`` over the target's candidates inside the box (the models in
  it, each hyperparameter within its range). With none inside, the hyperparameter ranges are
  dropped (the models only), and with still none, every candidate is searched.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import random
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from anytime_data import Problem, Trajectory

METRIC = "score"
ELAPSED = "elapsed"
FIDELITY = "epoch"
REDUCTION_FACTOR = 3
#: The transfer scheduler's hyperparameters (numeric columns of table.csv), where the table has them.
BOX_HYPERPARAMETERS = ("lr", "batch_size", "weight_decay", "pct_to_freeze", "linear_probing")
#: The simulator's clock also counts the tuner's polling gaps (up to one poll after each stop
#: decision), which the benchmark's accounting (epochs only) does not: the tuner's clock is given this
#: much more than the largest budget, twice as much again while the epochs fall short of it.
HORIZON_MARGIN = 1.1
MAX_HORIZON_MARGIN = 8.8

SCHEDULERS = ("random_search", "syne_asha", "syne_hyperband", "syne_bohb", "syne_bounding_box")


@contextlib.contextmanager
def _quiet_tuner(folder: str) -> Iterator[None]:
    """The tuner's results under ``folder`` (never ``~/syne-tune``), its prints, logs and warnings silenced.

    The warnings: pandas' notice on Syne Tune's seeding, and statsmodels dividing by zero where
    BOHB's kernel density sees a single value (its kernel ignores the result there).
    """
    previous = os.environ.get("SYNETUNE_FOLDER")
    os.environ["SYNETUNE_FOLDER"] = folder
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)
        if previous is None:
            os.environ.pop("SYNETUNE_FOLDER", None)
        else:
            os.environ["SYNETUNE_FOLDER"] = previous


def _space(problem: Problem, configs: list[str], constant: bool = True) -> dict[str, Any]:
    """The schedulers' space: the candidate ids, and ``set`` as a constant (no searcher models it).

    The blackbox's own space has ``set`` as a one-value categorical (it needs a domain per column).
    """
    from syne_tune.config_space import choice

    return {
        "config": choice(configs),
        "set": problem.candidate_set if constant else choice([problem.candidate_set]),
    }


def _blackbox(problem: Problem) -> Any:
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.config_space import randint

    configs = problem.configs
    scores = np.array([problem.curves[config] for config in configs])
    elapsed = np.cumsum(np.array([problem.seconds[config] for config in configs]), axis=1)
    evaluations = np.stack([scores, elapsed], axis=-1)[:, None, :, :]  # (configs, seeds, epochs, objectives)
    return BlackboxTabular(
        hyperparameters=pd.DataFrame({"config": configs, "set": [problem.candidate_set] * len(configs)}),
        configuration_space=_space(problem, configs, constant=False),
        fidelity_space={FIDELITY: randint(1, problem.budget_epochs)},
        objectives_evaluations=evaluations,
        objectives_names=[METRIC, ELAPSED],
    )


def shuffled(problem: Problem, configs: list[str], seed: int) -> list[dict[str, Any]]:
    """``configs`` in a seeded random order, as ``points_to_evaluate``: sampling without replacement.

    Syne Tune 0.16's ``RandomSearcher`` draws each suggestion afresh (with replacement, though its
    docstring says otherwise), so over a finite candidate set it starts the same configuration
    again and again, each time from scratch. Given every candidate in a random order first, random
    search and ASHA try each once before any repeat, as one would over a finite pool.
    """
    order = np.random.default_rng(seed).permutation(len(configs))
    return [{"config": configs[i], "set": problem.candidate_set} for i in order]


def _asha(space: dict[str, Any], problem: Problem, seed: int, **kwargs: Any) -> Any:
    from syne_tune.optimizer.baselines import ASHA

    return ASHA(
        space,
        metric=METRIC,
        do_minimize=False,
        time_attr=FIDELITY,
        max_t=problem.budget_epochs,
        random_seed=seed,
        reduction_factor=REDUCTION_FACTOR,
        points_to_evaluate=shuffled(problem, space["config"].categories, seed),
        **kwargs,
    )


def hyperband_brackets(budget_epochs: int) -> int:
    """The rung levels of ASHA from 1 epoch at factor 3 (1, 3, 9, 27 for 50): Hyperband's brackets."""
    return math.floor(math.log(budget_epochs) / math.log(REDUCTION_FACTOR) + 1e-9) + 1


def box_columns(problem: Problem) -> list[str]:
    """The transfer space's hyperparameters: the model, and for ``joint`` those of the table's numeric ones."""
    if problem.candidate_set == "models":
        return []
    names = problem.hyperparameters
    return [name for name in BOX_HYPERPARAMETERS if name in names]


def _features(problem: Problem, config: str, columns: list[str]) -> dict[str, Any]:
    values = problem.hyperparameters
    return {"model": problem.data.model_of[config], **{name: values[name][config] for name in columns}}


def _repository_evaluations(problem: Problem, columns: list[str]) -> dict[str, Any]:
    """Each other dataset's evaluations in the transfer space: its runs (every full-length one for joint)."""
    from anytime_data import make_problem
    from syne_tune.config_space import choice, uniform
    from syne_tune.optimizer.schedulers.transfer_learning.transfer_learning_task_evaluation import (
        TransferLearningTaskEvaluations,
    )

    data = problem.data
    space: dict[str, Any] = {"model": choice(sorted(set(data.model_of.values())))}
    for name in columns:
        column = [value for value in problem.hyperparameters[name].values() if not math.isnan(value)]
        space[name] = uniform(min(column), max(column) + 1e-12)
    evaluations = {}
    for dataset in problem.repository:
        other = make_problem(data, dataset, problem.candidate_set, problem.hyperparameters)
        if not other.configs:
            continue
        rows = pd.DataFrame([_features(problem, config, columns) for config in other.configs])
        curves = np.array([other.curves[config] for config in other.configs])[:, None, :, None]
        evaluations[dataset] = TransferLearningTaskEvaluations(
            configuration_space=space,
            hyperparameters=rows,
            objectives_names=[METRIC],
            objectives_evaluations=curves,
        )
    return {"space": space, "evaluations": evaluations}


def box_candidates(problem: Problem, box: dict[str, Any], columns: list[str]) -> tuple[list[str], str]:
    """The target's candidates inside ``box`` (models in it, each hyperparameter within its range).

    Without any, the models in it alone; without any still, every candidate. Returns them and which
    of the three rules gave them (``"box"``, ``"box models"``, ``"every candidate"``).
    """
    models = set(box["model"].categories)

    def inside(config: str, check_ranges: bool) -> bool:
        features = _features(problem, config, columns)
        if features["model"] not in models:
            return False
        return not check_ranges or all(box[n].lower <= features[n] <= box[n].upper for n in columns)

    for check_ranges, rule in ((True, "box"), (False, "box models")):
        chosen = [config for config in problem.configs if inside(config, check_ranges)]
        if chosen:
            return chosen, rule
    return list(problem.configs), "every candidate"


def _bounding_box(problem: Problem, seed: int, report: dict[str, Any]) -> Any:
    from syne_tune.optimizer.schedulers.transfer_learning.bounding_box import BoundingBox

    columns = box_columns(problem)
    repository = _repository_evaluations(problem, columns)

    def scheduler_fun(box: dict[str, Any], metric: str, do_minimize: bool, random_seed: int) -> Any:
        inside, rule = box_candidates(problem, box, columns)
        report["box_candidates"], report["box_rule"] = len(inside), rule
        return _asha(_space(problem, inside), problem, random_seed)

    return BoundingBox(
        scheduler_fun,
        config_space=repository["space"],
        metric=METRIC,
        transfer_learning_evaluations=repository["evaluations"],
        do_minimize=False,
        random_seed=seed,
    )


def make_scheduler(name: str, problem: Problem, seed: int, report: dict[str, Any]) -> Any:
    from syne_tune.optimizer.baselines import BOHB, RandomSearch

    space = _space(problem, problem.configs)
    if name == "random_search":
        return RandomSearch(
            space,
            metrics=[METRIC],
            do_minimize=False,
            random_seed=seed,
            points_to_evaluate=shuffled(problem, problem.configs, seed),
        )
    if name == "syne_asha":
        return _asha(space, problem, seed)
    if name == "syne_hyperband":
        return _asha(space, problem, seed, brackets=hyperband_brackets(problem.budget_epochs))
    if name == "syne_bohb":
        return BOHB(
            space,
            metric=METRIC,
            do_minimize=False,
            time_attr=FIDELITY,
            max_t=problem.budget_epochs,
            random_seed=seed,
            reduction_factor=REDUCTION_FACTOR,
        )
    if name == "syne_bounding_box":
        return _bounding_box(problem, seed, report)
    raise ValueError(f"unknown Syne Tune scheduler {name!r}")


def syne_trajectory(name: str, problem: Problem, horizon: float, seed: int) -> Trajectory:
    """Syne Tune's scheduler ``name`` on the target's blackbox until its epochs reach ``horizon`` seconds.

    Seeded, so a longer run repeats a shorter one and goes on: a run whose epochs fall short of
    ``horizon`` (the simulator's clock ran ahead, see :data:`HORIZON_MARGIN`) is run again longer.
    """
    margin = HORIZON_MARGIN
    while True:
        trajectory = _simulate(name, problem, horizon * margin, seed)
        if trajectory.spent >= horizon or margin >= MAX_HORIZON_MARGIN:
            trajectory.details["clock_margin"] = margin
            return trajectory
        margin *= 2


def _simulate(name: str, problem: Problem, wallclock: float, seed: int) -> Trajectory:
    """One run of the tuner on simulated time, stopped at ``wallclock`` simulated seconds."""
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.tuner_callback import TunerCallback

    trajectory = Trajectory(problem)

    class Record(TunerCallback):
        def on_trial_result(self, trial: Any, status: str, result: dict[str, Any], decision: str) -> None:
            trajectory.add(trial.trial_id, trial.config["config"], int(result[FIDELITY]))

    random.seed(seed)
    np.random.seed(seed)  # Syne Tune's random draws use numpy's global generator
    # The tuner polls the simulator every tuner_sleep_time simulated seconds: below the fastest epoch,
    # each poll brings at most one result, so every stop decision is taken at the epoch it is about.
    fastest = min(min(problem.seconds[config]) for config in problem.configs)
    with tempfile.TemporaryDirectory(prefix="syne-tune-") as folder, _quiet_tuner(folder):
        scheduler = make_scheduler(name, problem, seed, trajectory.details)
        backend = UserBlackboxBackend(
            blackbox=_blackbox(problem), elapsed_time_attr=ELAPSED, tuner_sleep_time=0.99 * fastest
        )
        tuner = Tuner(
            trial_backend=backend,
            scheduler=scheduler,
            stop_criterion=StoppingCriterion(max_wallclock_time=wallclock),
            n_workers=1,
            sleep_time=0,
            callbacks=[SimulatorCallback(), Record()],
            save_tuner=False,
            results_update_interval=1e12,
            print_update_interval=1e12,
        )
        tuner.run()
    return trajectory
