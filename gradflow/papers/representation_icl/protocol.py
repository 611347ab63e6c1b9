"""The training procedure of Yang, Huang, Liang, Chi (NeurIPS 2024): the exact population
gradient flow of the multi-head model, with the head weights w trained at rate γ² against Q."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.events import Event
from gradflow.flow import simulate
from gradflow.papers.representation_icl.data import RepresentationTask
from gradflow.papers.representation_icl.model import RepresentationTransformer
from gradflow.solvers import jacobian_increment
from gradflow.threads import one_blas_thread
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "batched_jacobian", "gap_flow", "gradient_descent", "head_flow", "hessian",
           "one_blas_thread", "sharpness"]  # one_blas_thread: re-exported from gradflow.threads

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


def batched_jacobian(model: RepresentationTransformer, task: RepresentationTask,
                     gamma: float = 1.0):
    """``jac(t, θ)`` of the flow θ̇ = −R ∇L(θ) (R = γ² on w, 1 on Q) by forward differences
    with :func:`~gradflow.solvers.jacobian_increment`, all P columns from one batched gradient
    (:meth:`RepresentationTransformer.grad_batch`) instead of P separate evaluations; LSODA
    uses it only for its Newton iterations, so it changes the cost, not the accuracy."""
    rates = model.layout.pack({"Q": np.ones((model.H, model.d, model.d)),
                               "w": np.full((model.H, model.K), gamma**2)})

    def jac(t: float, theta: np.ndarray) -> np.ndarray:
        h = jacobian_increment(theta)
        probes = theta[None, :] + h * np.eye(theta.size)
        steps = np.diagonal(probes) - theta  # the rounded increments
        grads = model.grad_batch(np.vstack([theta[None, :], probes]), task)
        return -rates[:, None] * ((grads[1:] - grads[0]).T / steps[None, :])

    return jac


def gap_flow(task: RepresentationTask, H: int, T: float, *, gamma: float = 1.0, rng: Any = 0,
             levels: Sequence[float] = (1e-8, 1e-12, 1e-16, 1e-20),
             stop_at: float | None = 1e-20, records: int = 11,
             record_at: Sequence[float] | None = None, progress: bool = False,
             **solver: Any) -> Trajectory:
    """:func:`head_flow` with events ``gap_<level>`` where the loss gap L − inf L falls below
    each level (located on the solver's dense output, so rates between levels need no record
    grid), stopping when it falls below ``stop_at`` (None: run to T); LSODA gets
    :func:`batched_jacobian`, and runs under :func:`one_blas_thread`. Records:
    ``record_at`` if given, else ``records`` equally spaced times (and the stop)."""
    model = RepresentationTransformer(task.d, task.K, H)
    observables = model.observables(task)
    gap = observables["gap"]

    def below(level: float, terminal: bool = False) -> Event:
        return Event(f"gap_{level:g}", lambda th: float(np.log(max(gap(th), 1e-300))
                                                        - np.log(level)),
                     direction=-1, terminal=terminal)

    events = [below(level) for level in levels if level != stop_at]
    if stop_at is not None:
        events.append(below(stop_at, terminal=True))
    options = {**SOLVER, **solver}
    if options.get("method") == "LSODA":
        options["solver_options"] = {"jac": batched_jacobian(model, task, gamma),
                                     **options.get("solver_options", {})}
    with one_blas_thread():
        return simulate(model.objective(task), model.init(rng=rng), T, rates={"w": gamma**2},
                        record_at=(np.linspace(0, T, records) if record_at is None
                                   else record_at), observables=observables,
                        events=events, progress=progress, **options)


def gradient_descent(task: RepresentationTask, H: int, eta: float, steps: int, *,
                     rng: Any = 0) -> np.ndarray:
    """Plain gradient descent θ ← θ − η∇L from the model's init (``rng``), ``steps`` steps;
    returns the loss after each step (a step that overflows stops the record with inf)."""
    model = RepresentationTransformer(task.d, task.K, H)
    objective = model.objective(task)
    theta = model.init(rng=rng)
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            theta = theta - eta * objective.gradient(theta)
            value = float(objective.value(theta))
            if not np.isfinite(value):
                losses += [np.inf] * (steps - len(losses))
                break
            losses.append(value)
    return np.array(losses)


def hessian(model: RepresentationTransformer, task: RepresentationTask, theta: np.ndarray,
            step: float = 1e-5) -> np.ndarray:
    """∇²L(θ) by central differences of the closed-form gradient (all 2P points in one batched
    call), symmetrised; truncation error ~step² ≈ 1e-10 relative."""
    P = theta.size
    probes = np.vstack([theta + step * np.eye(P), theta - step * np.eye(P)])
    grads = model.grad_batch(probes, task)
    H = (grads[:P] - grads[P:]).T / (2 * step)
    return (H + H.T) / 2


def sharpness(task: RepresentationTask, H: int, *, rng: Any = 0, iterations: int = 40,
              step: float = 1e-6) -> float:
    """The largest Hessian eigenvalue of the loss at the H-head model's init (``rng``), by power
    iteration on Hessian-vector products (central differences of the gradient)."""
    model = RepresentationTransformer(task.d, task.K, H)
    objective = model.objective(task)
    theta = model.init(rng=rng)
    v = np.random.default_rng(0).standard_normal(theta.size)
    v /= np.linalg.norm(v)
    value = 0.0
    for _ in range(iterations):
        hv = (objective.gradient(theta + step * v) - objective.gradient(theta - step * v)) / (
            2 * step)
        value = float(v @ hv)
        v = hv / np.linalg.norm(hv)
    return value
