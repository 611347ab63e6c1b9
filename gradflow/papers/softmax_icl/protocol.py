"""The training procedure of Huang, Cheng, Liang (ICML 2024): the exact population gradient
flow from S = 0, on balanced features in the one-parameter reduction and on imbalanced
features by enumeration of the count vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.events import Event
from gradflow.flow import log_grid, simulate
from gradflow.papers.softmax_icl.data import FeatureTask
from gradflow.papers.softmax_icl.model import BalancedICL, FeatureICL
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "balanced_flow", "balanced_flow_at", "feature_flow", "imbalanced_flow"]

SOLVER = {"method": "LSODA", "rtol": 1e-10, "atol": 1e-12}
"""The solver defaults of this paper's flows, declared once: the exact population flows are
smooth and small, so tight tolerances cost little (``scripts/bench_icl.py``)."""


def balanced_flow(K: int, N: int, T: float, *, per_decade: int = 20, progress: bool = False,
                  loss_levels: Sequence[float] = (), **solver: Any) -> Trajectory:
    """The balanced flow of K features and prompt length N from S = 0 to time T, with the
    ``alpha_0.5`` event (α = E[a_k | x_q = v_k] reaching ½: the end of Phase I) and, for each
    of ``loss_levels``, the event ``loss_<level>`` (the loss falling below it).

    ``solver``: ``simulate``'s solver keywords; :data:`SOLVER` fills the ones not given.
    """
    model = BalancedICL(K, N)
    objective = model.objective(None)

    def below(level: float) -> Event:
        return Event(f"loss_{level:g}", lambda th: float(np.log(objective.value(th))
                                                         - np.log(level)), direction=-1)

    return simulate(objective, model.init(), T, rates={"A": model.rate},
                    record_at=log_grid(T, per_decade=per_decade),
                    observables=model.observables(None),
                    events=[model.alpha_crosses(0.5), *map(below, loss_levels)],
                    progress=progress, **{**SOLVER, **solver})


def imbalanced_flow(task: FeatureTask, T: float, *, per_decade: int = 20,
                    progress: bool = False, extra_times: Sequence[float] = (),
                    extra_events: Sequence[Event] = (), **solver: Any) -> Trajectory:
    """The flow of the exact population loss of ``task`` from S = 0 to time T, with the events
    α_k = ½ of the first two query features (and ``extra_events``); records on a log grid
    plus ``extra_times``."""
    model = FeatureICL(task.K)
    grid = log_grid(T, per_decade=per_decade)
    if len(extra_times):
        grid = np.union1d(grid, np.asarray(extra_times, dtype=float))
    return simulate(model.objective(task), model.init(), T,
                    record_at=grid,
                    observables=model.observables(task),
                    events=[*(model.alpha_crosses(task, k) for k in (0, 1)), *extra_events],
                    progress=progress, **{**SOLVER, **solver})


def balanced_flow_at(K: int, N: int, T: float, record_at: Sequence[float], *,
                     progress: bool = False, **solver: Any) -> Trajectory:
    """The balanced scalar flow (K features, prompt length N) from S = 0 to T, recorded at
    ``record_at`` (no events)."""
    model = BalancedICL(K, N)
    return simulate(model.objective(None), model.init(), T, rates={"A": model.rate},
                    record_at=record_at, observables=model.observables(None),
                    progress=progress, **{**SOLVER, **solver})


def feature_flow(task: FeatureTask, T: float, record_at: Sequence[float], *,
                 progress: bool = False, **solver: Any) -> Trajectory:
    """The flow of the exact population loss of ``task`` (any p, query in or out of the
    softmax) from S = 0 to T, recorded at ``record_at`` (no events)."""
    model = FeatureICL(task.K)
    return simulate(model.objective(task), model.init(), T, record_at=record_at,
                    observables=model.observables(task), progress=progress,
                    **{**SOLVER, **solver})
