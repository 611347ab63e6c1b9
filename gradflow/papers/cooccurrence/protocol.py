"""The training procedure of the co-occurrence paper: one gradient flow from the paper's
initialisation, recorded densely over Phase 1 and on a log grid after it (Yang, Kailkhura,
Wang, Liang, NeurIPS 2024, Condition 1 and the experiment of Appendix A, Figure 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.flow import log_grid, simulate
from gradflow.papers.cooccurrence.data import CooccurrenceData
from gradflow.papers.cooccurrence.model import CooccurrenceTransformer
from gradflow.papers.cooccurrence.theory import rate_constant
from gradflow.trajectory import Trajectory

__all__ = ["REPORT_TIMES", "SOLVER", "flow", "record_grid"]

SOLVER = {"method": "RK45", "clock": "linear", "rtol": 1e-6, "atol": 1e-9}
"""The solver defaults of this paper's flows: the loss decays like 1/t (Thm 3.3), so the flow is
non-stiff and an explicit method on the linear clock is cheapest (``docs/performance.md``)."""

REPORT_TIMES = (1.0, 300.0, 1e4, 1e8)
"""Times at which the summary reports the loss (300 = the paper's 30,000 GD steps at lr 0.01)."""


def record_grid(t_end: float, per_decade: int) -> np.ndarray:
    """A fine linear grid over Phase 1 (t ≤ 1, step 0.01), the log grid, and the report times."""
    phase1 = np.linspace(0.0, min(1.0, t_end), 101)
    report = [t for t in REPORT_TIMES if t <= t_end]
    return np.unique(np.concatenate([phase1, log_grid(t_end, per_decade=per_decade), report]))


def flow(model: CooccurrenceTransformer, data: CooccurrenceData, theta0: np.ndarray,
         t_end: float, *, per_decade: int = 20, store_theta: bool = False,
         checkpoint: str | Path | None = None, progress: bool = False,
         config: dict[str, Any] | None = None, **solver: Any) -> Trajectory:
    """The gradient flow of the paper's loss from ``theta0`` to ``t_end``.

    Parameters
    ----------
    model, data, theta0 : the model, its training set and θ(0), shape (layout.size,)
    t_end : float
    per_decade : int
        Record points per decade of t after Phase 1 (:func:`record_grid`).
    store_theta, checkpoint, progress, config :
        As for :func:`gradflow.simulate`.
    **solver
        ``simulate``'s solver keywords; :data:`SOLVER` fills the ones not given.

    Returns
    -------
    Trajectory
        The model's observables, the ``phase1_end`` event and the derived observable
        ``rate_constant`` = 1/(L̂·t·‖u‖²) (Thm 3.3; NaN at t = 0).
    """
    traj = simulate(model.objective(data), theta0, t_end, **{**SOLVER, **solver},
                    record_at=record_grid(t_end, per_decade),
                    observables=model.observables(data), events=[model.phase1_end(data)],
                    store_theta=store_theta, checkpoint=checkpoint, progress=progress,
                    config=config)
    obs = traj.observables
    return traj.with_observables(rate_constant=rate_constant(traj.t, obs["loss"],
                                                             obs["u_norm_sq"]))
