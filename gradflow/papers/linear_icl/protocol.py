"""The training procedure of Zhang, Frei, Bartlett (JMLR 2024): gradient flow on the exact
population loss in the reduced coordinates (U, u) of their Lemma 5.2, from Assumption 3.3's
initialisation."""

from __future__ import annotations

from typing import Any

from gradflow.flow import simulate
from gradflow.papers.linear_icl.data import LinearICLTask
from gradflow.papers.linear_icl.model import LinearICLReduced
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "reduced_flow"]

SOLVER = {"method": "LSODA", "rtol": 1e-10, "atol": 1e-12}
"""The reduced flow is smooth and tiny (d² + 1 entries): tight tolerances cost little."""


def reduced_flow(task: LinearICLTask, T: float, *, rng: Any = None, sigma: float | None = None,
                 progress: bool = False, **solver: Any) -> Trajectory:
    """The reduced flow from ``init(rng, task=task, sigma=sigma)`` to time ``T``, with the
    model's observables; :data:`SOLVER` fills the solver keywords not given."""
    model = LinearICLReduced(task.d)
    return simulate(model.objective(task), model.init(rng=rng, task=task, sigma=sigma), T,
                    observables=model.observables(task), progress=progress,
                    **{**SOLVER, **solver})
