"""The training procedure of Yang, Huang, Liang, Chi (NeurIPS 2024): the exact population
gradient flow of the multi-head model, with the head weights w trained at rate γ² against Q."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.flow import simulate
from gradflow.papers.representation_icl.data import RepresentationTask
from gradflow.papers.representation_icl.model import RepresentationTransformer
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "head_flow"]

SOLVER = {"method": "LSODA", "rtol": 1e-10, "atol": 1e-12}
"""The solver defaults of this paper's flows, declared once (``scripts/bench_icl.py``)."""


def head_flow(task: RepresentationTask, H: int, T: float, *, gamma: float = 1.0,
              rng: Any = 0, records: int = 201, progress: bool = False,
              **solver: Any) -> Trajectory:
    """The flow of the H-head model from its random initialisation (``rng``) to time T,
    recorded at ``records`` equally spaced times (the loss gap decays linearly, so a linear
    grid resolves its rate). ``solver``: :data:`SOLVER` fills the keywords not given."""
    model = RepresentationTransformer(task.d, task.K, H)
    return simulate(model.objective(task), model.init(rng=rng), T,
                    rates={"w": gamma**2}, record_at=np.linspace(0, T, records),
                    observables=model.observables(task), progress=progress,
                    **{**SOLVER, **solver})
