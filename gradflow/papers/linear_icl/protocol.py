"""The training procedure of Zhang, Frei, Bartlett (JMLR 2024): gradient flow on the exact
population loss in the reduced coordinates (U, u) of their Lemma 5.2, from Assumption 3.3's
initialisation; the same flow when the covariance is random (Theorem 4.5); and the
full-parameter flow on a fixed Monte-Carlo sample of prompts (``docs/derivations/linear_icl.md``,
§Full-parameter model, §Readings of the paper)."""

from __future__ import annotations

from typing import Any

from gradflow.events import Event
from gradflow.flow import simulate
from gradflow.papers.linear_icl.data import (
    LinearICLMixtureTask,
    LinearICLTask,
    PromptSample,
    sample_prompts,
)
from gradflow.papers.linear_icl.model import LinearICLFull, LinearICLMixture, LinearICLReduced
from gradflow.papers.linear_icl.theory import optimal_loss
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "mixture_flow", "reduced_flow", "sample_flow", "time_to_optimum"]

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


def time_to_optimum(task: LinearICLTask, sigma: float, T: float = 200.0, *, rng: Any = None,
                    level: float = 1e-8, progress: bool = False, **solver: Any) -> Trajectory:
    """:func:`reduced_flow` from init scale ``sigma``, with the event ``"converged"``: the
    first time the excess loss L − L* falls below ``level``·L* (the convergence time of
    the independent prototype, ``docs/derivations/linear_icl.md``, §Reference values of an
    independent prototype), located by the solver's dense output."""
    model = LinearICLReduced(task.d)
    objective = model.objective(task)
    L_star = optimal_loss(task)
    event = Event("converged", lambda th: float(objective.value(th) - L_star - level * L_star),
                  direction=-1)
    return simulate(objective, model.init(rng=rng, task=task, sigma=sigma), T,
                    observables=model.observables(task), events=[event], progress=progress,
                    **{**SOLVER, **solver})


def mixture_flow(task: LinearICLMixtureTask, T: float, *, rng: Any = None,
                 sigma: float | None = None, progress: bool = False,
                 **solver: Any) -> Trajectory:
    """The reduced flow of the random-covariance population (Theorem 4.5) from the balanced
    init of :meth:`LinearICLMixture.init`."""
    model = LinearICLMixture(task.d)
    return simulate(model.objective(task), model.init(rng=rng, task=task, sigma=sigma), T,
                    observables=model.observables(task), progress=progress,
                    **{**SOLVER, **solver})


def sample_flow(task: LinearICLTask, B: int, T: float, *, rng: Any = None,
                sample_rng: Any = None, progress: bool = False,
                **solver: Any) -> tuple[PromptSample, Trajectory]:
    """The full-parameter flow (W^{PV}, W^{KQ}) on a fixed sample of B prompts antithetic in w
    (``sample_prompts(task, B, sample_rng)``), from Assumption 3.3's init embedded in the full
    matrices; returns the sample and the trajectory (observables ``loss``, ``off_manifold``)."""
    model = LinearICLFull(task.d, task.N)
    sample = sample_prompts(task, B, rng=sample_rng)
    traj = simulate(model.objective(sample), model.init(rng=rng, task=task), T,
                    observables=model.observables(sample), progress=progress,
                    **{**SOLVER, **solver})
    return sample, traj
