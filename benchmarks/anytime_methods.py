"""The methods of ``anytime.py``: a registry where a budgeted and an anytime method are one entry each.

* A **budgeted** method is called once per budget: ``run(problem, budget_seconds, seed)`` returns
  its pick and total cost (:meth:`anytime_data.Problem.total_cost`), or None without a pick. A
  pick that costs more than the budget counts as no pick.
* An **anytime** method is run once, up to the largest budget: ``run(problem, horizon_seconds,
  seed)`` returns its :class:`anytime_data.Trajectory`, and each budget is read off it
  (:meth:`anytime_data.Trajectory.read`).

To add one: a function of either shape and a :class:`Method` in :func:`registry`. ``requires``
names a module the method imports (a peer library): without it the row is skipped, with the
reason in the JSON.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from anytime_data import Pick, Problem, Trajectory, read_moments
from real_curves import halving_rungs_doubling

from hfselect.core.halving import replay_halving

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Method:
    name: str
    kind: Literal["budgeted", "anytime"]
    run: Callable[[Problem, float, int], Any]
    randomized: bool = True  # False: one run stands for every seed
    requires: str | None = None  # a module the method needs (its peer library)
    note: str = ""  # what the README and the JSON say of it


def evaluate(
    method: Method, problem: Problem, budgets: Sequence[float], seed: int
) -> tuple[list[Pick], dict]:
    """The method's pick and total cost at each budget (None: no pick within it), and its details."""
    if method.kind == "budgeted":
        picks: list[Pick] = []
        for budget in budgets:
            pick = method.run(problem, budget, seed)
            picks.append(pick if pick is not None and pick[1] <= budget else None)
        return picks, {}
    trajectory: Trajectory = method.run(problem, max(budgets), seed)
    return read_moments(trajectory.moments(), budgets), {
        "trainings": trajectory.trainings,
        **trajectory.details,
    }


# -- successive halving (deterministic, budgeted) -------------------------------------------------


def halving_costs(problem: Problem) -> list[tuple[str, float]]:
    """Successive halving over the first ``n`` candidates of :meth:`Problem.interleaved`, n = 1, 2, ...

    Synchronous, every candidate from epoch 1, the better half by current score goes on at
    epochs 1, 2, 4, ..., the winner is trained to the full budget
    (:func:`hfselect.core.halving.replay_halving` without predictors). Returns (winner, total
    cost) for each ``n``.
    """
    cached = problem.__dict__.get("_halving_costs")
    if cached is None:
        order = problem.interleaved()
        rungs = halving_rungs_doubling(problem.budget_epochs)
        cached = []
        for n in range(1, len(order) + 1):
            replay = replay_halving(
                {config: problem.curves[config] for config in order[:n]},
                problem.budget_epochs,
                rungs=rungs,
                reduction_factor=2,
            )
            cached.append((replay.selected, problem.total_cost(replay.epochs.items(), replay.selected)))
        problem.__dict__["_halving_costs"] = cached
    return cached


def successive_halving(problem: Problem, budget: float, seed: int) -> Pick:
    """Successive halving over as many candidates as fit the budget (the most ``n`` whose cost does)."""
    fitting = [pick for pick in halving_costs(problem) if pick[1] <= budget]
    return fitting[-1] if fitting else None


# -- Optuna's pruners (anytime) -------------------------------------------------------------------


def optuna_trajectory(pruner_name: str, problem: Problem, horizon: float, seed: int) -> Trajectory:
    """Optuna's TPE sampler over the candidates (categorical) with a pruner, trials replayed on the curves.

    In-memory study; each trial reports its score after each epoch (``trial.report``) and stops
    when ``trial.should_prune()``; a trial that is not pruned trains to the full budget. Trials
    go on until the seconds trained reach ``horizon``. ``SuccessiveHalvingPruner``: minimum
    resource 1 epoch, its default reduction factor 4; ``HyperbandPruner``: 1 to the full budget,
    its default reduction factor 3. TPE may suggest a configuration again: that is a new trial,
    trained (and paid for) again.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if pruner_name == "sh":
        pruner: optuna.pruners.BasePruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    else:
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=problem.budget_epochs)
    study = optuna.create_study(
        # Named: HyperbandPruner assigns a trial's bracket from a hash of the study's name
        # (a random one by default), so an unnamed study is not reproducible.
        study_name=f"anytime-{problem.target}-{problem.candidate_set}-{pruner_name}-{seed}",
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
    )
    trajectory, spent = Trajectory(problem), 0.0
    while True:
        trial = study.ask()
        config = trial.suggest_categorical("config", problem.configs)
        for epoch in range(1, problem.budget_epochs + 1):
            spent += problem.seconds[config][epoch - 1]
            if spent > horizon:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return trajectory
            trajectory.add(trial.number, config, epoch)
            trial.report(problem.curves[config][epoch - 1], epoch)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, problem.curves[config][-1])


# -- the registry ---------------------------------------------------------------------------------


def _syne(name: str) -> Callable[[Problem, float, int], Trajectory]:
    def run(problem: Problem, horizon: float, seed: int) -> Trajectory:
        from anytime_syne import syne_trajectory

        return syne_trajectory(name, problem, horizon, seed)

    return run


def _optuna(name: str) -> Callable[[Problem, float, int], Trajectory]:
    def run(problem: Problem, horizon: float, seed: int) -> Trajectory:
        return optuna_trajectory(name, problem, horizon, seed)

    return run


def _hfselect() -> Callable[[Problem, float, int], Pick] | None:
    """hfselect's row, from ``anytime_hfselect.py`` where that file exists (None: it does not)."""
    if not (HERE / "anytime_hfselect.py").is_file():
        return None
    from anytime_hfselect import hfselect_pick  # an error inside it is an error, not a skip

    return hfselect_pick


QUICKTUNE_SKIPPED = (
    "quicktune 0.0.4 does not install beside torch 2: `pip install quicktune==0.0.4` (Python 3.11, "
    "fresh venv) ends in ResolutionImpossible: 'quicktune 0.0.4 depends on torch<2 and >=1.12.1' "
    "while every torchvision with a Python 3.11 wheel (0.15.1 to 0.29.1) depends on torch>=2. "
    "Installed with --no-deps, `import quicktune` fails (ModuleNotFoundError: No module named "
    "'torchvision': its __init__ imports its fine-tuning code); see benchmarks/README.md"
)


def registry() -> dict[str, Method]:
    """Every method, in report order (hfselect only where ``anytime_hfselect.py`` exists)."""
    methods = [
        Method("successive_halving", "budgeted", successive_halving, randomized=False),
        Method("random_search", "anytime", _syne("random_search"), requires="syne_tune"),
        Method("syne_asha", "anytime", _syne("syne_asha"), requires="syne_tune"),
        Method("syne_hyperband", "anytime", _syne("syne_hyperband"), requires="syne_tune"),
        Method("syne_bohb", "anytime", _syne("syne_bohb"), requires="syne_tune"),
        Method("syne_bounding_box", "anytime", _syne("syne_bounding_box"), requires="syne_tune"),
        Method("optuna_sh", "anytime", _optuna("sh"), requires="optuna"),
        Method("optuna_hyperband", "anytime", _optuna("hyperband"), requires="optuna"),
    ]
    hfselect = _hfselect()
    if hfselect is not None:
        methods.insert(0, Method("hfselect", "budgeted", hfselect))
    return {method.name: method for method in methods}


def skipped_methods() -> dict[str, str]:
    """Rows that cannot run here, and why."""
    skipped = {"quicktune": QUICKTUNE_SKIPPED}
    if not (HERE / "anytime_hfselect.py").is_file():
        skipped["hfselect"] = "benchmarks/anytime_hfselect.py is not there yet (it adds the hfselect row)"
    for method in registry().values():
        if method.requires and importlib.util.find_spec(method.requires) is None:
            skipped[method.name] = f"{method.requires} is not installed (pip install -e '.[bench]')"
    return skipped


# -- one target, every method (a worker process's task) -------------------------------------------


def run_target(task: tuple[str, str, Sequence[str], Sequence[str], int]) -> tuple[str, dict[str, Any]]:
    """Every method on one target, for each candidate set and seed.

    ``task``: (data folder, target, candidate sets, method names, seeds). The worker reads the data
    itself (a spawned process shares nothing), so ``--jobs`` changes nothing but the wall time.
    Returns the target and, per candidate set (None: fewer than two candidates), its budgets and
    per method and seed the pick, cost and normalized regret at each budget.
    """
    import time

    from anytime_data import load_hyperparameters, make_problem
    from real_curves_data import load_curves

    folder, target, sets, names, seeds = task
    data = load_curves(Path(folder))
    hyperparameters = load_hyperparameters(Path(folder))
    methods = registry()
    out: dict[str, Any] = {}
    for candidate_set in sets:
        problem = make_problem(data, target, candidate_set, hyperparameters)
        if len(problem.configs) < 2:
            out[candidate_set] = None
            continue
        budgets = problem.budgets()
        rows: dict[str, Any] = {}
        for name in names:
            method = methods[name]
            started = time.perf_counter()
            runs = []
            for seed in range(seeds) if method.randomized else [0]:
                picks, details = evaluate(method, problem, budgets, seed)
                runs.append(
                    {
                        "pick": [pick[0] if pick else None for pick in picks],
                        # no pick within a budget: the candidate set's worst (regret 1), the budget spent
                        "cost_seconds": [
                            pick[1] if pick else budget for pick, budget in zip(picks, budgets, strict=True)
                        ],
                        "normalized_regret": [
                            problem.normalized_regret(pick[0] if pick else None) for pick in picks
                        ],
                        "details": details,
                    }
                )
            rows[name] = {
                "runs": runs * (1 if method.randomized else seeds),
                "seconds": time.perf_counter() - started,
            }
        out[candidate_set] = {
            "candidates": len(problem.configs),
            "median_run_seconds": problem.median_run_seconds,
            "budgets_seconds": budgets,
            "methods": rows,
        }
    return target, out
