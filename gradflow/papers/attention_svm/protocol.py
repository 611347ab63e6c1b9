"""The training procedures of the attention-SVM papers: gradflow's normalised gradient flow, the
authors' normalised gradient descent rewritten from its description (step η, ``eps``, iteration
count; ``docs/derivations/attention_svm.md``, §The authors' protocol), and the SVM of the
current selection tracked along a trajectory.

Iteration k of normalised GD with step η corresponds to time t = ηk of the normalised flow: both
move W by arc length η per step while ‖∇L‖ ≫ eps, and GD is the flow's explicit Euler scheme,
so they agree to first order in η on a fixed horizon (``tests/test_attention_svm.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradflow.ensemble import EnsembleTrajectory, simulate_ensemble
from gradflow.errors import ArgumentError, InfeasibleError
from gradflow.flow import log_grid, simulate
from gradflow.layout import Layout
from gradflow.maxmargin import MaxMarginSolution
from gradflow.numerics import sigmoid
from gradflow.papers.attention_svm import theory
from gradflow.papers.attention_svm.data import AttentionSVMData
from gradflow.papers.attention_svm.model import AttentionSVMModel
from gradflow.trajectory import Trajectory

__all__ = ["EPS", "GRADIENTS", "LR", "SOLVER", "STEPS", "PeerRun", "SVMTrack",
           "autograd_gradient", "normalized_flow", "normalized_flow_ensemble", "peer_gd",
           "record_grid", "svm_track"]

SOLVER = {"method": "auto", "rtol": 1e-6, "atol": 1e-9}
"""The flow's solver defaults: ``simulate``'s own. ``"auto"`` starts this normalised flow (100
entries for d = 10) with BDF, which reaches t = 1e8 in ~1,200-5,400 evaluations (0.5-1.7 s);
rtol 1e-9, atol 1e-6 give the same 1 − cos to three digits at t = 1e4, 1e6 and 1e8 on four
instances at 1.1-1.4× the evaluations, and LSODA with ``jacobian_step`` 1e-6 (the NTP recipe)
1.0-2.0× (measured for ``docs/derivations/attention_svm.md``, §Solver)."""

LR = 0.1
"""The authors' step η (normalised GD: W moves by η per iteration while ‖∇L‖ ≫ eps)."""
STEPS = 2000
"""The authors' iteration count."""
EPS = float(np.finfo(float).eps)
"""The authors' ``eps`` in W ← W − η ∇L/(‖∇L‖ + eps): float64's machine epsilon, 2.2e-16."""
GRADIENTS = ("autograd", "exact", "direction")
"""The gradient :func:`peer_gd` steps with: the authors' autograd numerics
(:func:`autograd_gradient`), gradflow's closed form (``grad``: exact, but it underflows like
autograd's once every softmax pair weight does), or the exact direction ``scaled_grad``
normalised (no eps: the update rule the authors' description intends, without its stall)."""


def record_grid(t_end: float, per_decade: int, extra: Any = ()) -> np.ndarray:
    """``log_grid(t_end, per_decade=...)`` with the times ``extra`` (within (0, t_end]) added."""
    extra = np.asarray(extra, dtype=float)
    return np.union1d(log_grid(t_end, per_decade=per_decade), extra[(extra > 0)
                                                                     & (extra <= t_end)])


def normalized_flow(model: AttentionSVMModel, data: AttentionSVMData, T: float, *,
                    theta0: np.ndarray, record_at: Any = None, per_decade: int = 10,
                    reference: np.ndarray | None = None, progress: bool = False,
                    **solver: Any) -> Trajectory:
    """The normalised gradient flow dθ/dt = −∇L/‖∇L‖ (all trained blocks together) to time
    ``T``: the continuous-time limit of the authors' normalised GD.

    Parameters
    ----------
    model, data
    T : float
    theta0 : ndarray
    record_at : array_like, optional
        Record times (default ``log_grid(T, per_decade=per_decade)``).
    per_decade : int
    reference : ndarray, optional
        A d × d direction for the ``cos``/``one_minus_cos`` observables.
    progress : bool
    **solver
        ``simulate``'s solver keywords; :data:`SOLVER` fills those not given.
    """
    grid = log_grid(T, per_decade=per_decade) if record_at is None else record_at
    return simulate(model.objective(data), theta0, T, normalize="global", record_at=grid,
                    observables=model.observables(data, reference=reference),
                    progress=progress, **{**SOLVER, **solver})


def normalized_flow_ensemble(models: Sequence[AttentionSVMModel],
                             datas: Sequence[AttentionSVMData], T: float, *,
                             thetas0: np.ndarray, record_at: Any = None, per_decade: int = 10,
                             progress: bool = False, **solver: Any) -> EnsembleTrajectory:
    """:func:`normalized_flow` of B instances (models, their data, θ0 of shape (B, P)) as one
    :func:`gradflow.simulate_ensemble`; each member is integrated to the tolerances its own
    :func:`normalized_flow` would use. ``solver["method"]`` must be explicit (RK45): this
    flow is stiff near its max-margin direction, so to long horizons prefer
    :func:`normalized_flow` with ``method="auto"``."""
    grid = log_grid(T, per_decade=per_decade) if record_at is None else record_at
    options = {**SOLVER, **solver}
    return simulate_ensemble([m.objective(d) for m, d in zip(models, datas, strict=True)],
                             thetas0, T, normalize="global", record_at=grid,
                             observables=[m.observables(d) for m, d in zip(models, datas,
                                                                           strict=True)],
                             progress=progress, **options)


# ------------------------------------------------------------------------------ SVM tracking


@dataclass(frozen=True)
class SVMTrack:
    """The Frobenius SVM of the current selection along a trajectory (what an observable may
    not compute, contract rule 8).

    Attributes
    ----------
    t : ndarray, shape (R,)
    selected : ndarray of int, shape (R, n)
        argmax_t s_it at each record.
    one_minus_cos : ndarray, shape (R,)
        1 − cos(W(t), W^mm(selected(t))) as ‖Ŵ − Ŵ^mm‖²/2; NaN where that SVM is infeasible.
    norm : ndarray, shape (R,)
        ‖W(t)‖_F.
    solutions : dict of tuple to MaxMarginSolution or None
        Every selection met, with its SVM (None: infeasible).
    changes : ndarray, shape (c,)
        The record times at which the selection differs from the previous record's.
    """

    t: np.ndarray
    selected: np.ndarray
    one_minus_cos: np.ndarray
    norm: np.ndarray
    solutions: dict[tuple[int, ...], MaxMarginSolution | None] = field(repr=False)
    changes: np.ndarray

    @property
    def final(self) -> np.ndarray:
        return self.selected[-1]

    @property
    def final_solution(self) -> MaxMarginSolution | None:
        return self.solutions[tuple(self.final.tolist())]

    @property
    def last_change(self) -> float:
        """The last record time at which the selection changed (0 if it never did)."""
        return float(self.changes[-1]) if self.changes.size else 0.0


def svm_track(model: AttentionSVMModel, data: AttentionSVMData, traj: Trajectory
              ) -> SVMTrack:
    """Solve the SVM of every selection the trajectory passes through (once each) and compare
    W(t) with the SVM of its own selection at every record. Needs ``traj.theta``."""
    if traj.theta is None:
        raise ArgumentError("traj: svm_track needs the stored θ (simulate with store_theta=True)")
    weights = [model.weight(model.layout.unpack(th)) for th in traj.theta]
    selected = np.array([model.selection(model.layout.unpack(th), data) for th in traj.theta])
    solutions: dict[tuple[int, ...], MaxMarginSolution | None] = {}
    values = np.full(len(traj.t), np.nan)
    for k, (W, sel) in enumerate(zip(weights, selected, strict=True)):
        key = tuple(sel.tolist())
        if key not in solutions:
            try:
                solutions[key] = theory.max_margin(data, sel)
            except InfeasibleError:
                solutions[key] = None
        solution = solutions[key]
        if solution is not None and np.linalg.norm(W) > 0:
            values[k] = theory.one_minus_cos(W, solution.w)
    changed = np.flatnonzero(np.any(selected[1:] != selected[:-1], axis=1)) + 1
    return SVMTrack(t=np.asarray(traj.t), selected=selected, one_minus_cos=values,
                    norm=np.array([np.linalg.norm(W) for W in weights]),
                    solutions=solutions, changes=np.asarray(traj.t)[changed])


# ------------------------------------------------------------------------------ authors' GD


def autograd_gradient(model: AttentionSVMModel, params: dict[str, np.ndarray],
                      data: AttentionSVMData) -> dict[str, np.ndarray]:
    """∇L as reverse-mode autodiff computes it (the authors' PyTorch numerics): softmax as
    e^{s − max}/Σ, its backward φ ⊙ (g − Σ φ g) with g = ∂L/∂φ, then the chain rule.

    At saturation φ ⊙ (g − Σ φ g) is a difference of O(1) numbers whose true value is
    exponentially small: it returns rounding noise, then exact zeros once the off-selection
    weights underflow (``docs/derivations/attention_svm.md``, §The authors' protocol). Real θ.
    """
    s = model.scores(params, data)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    phi = e / e.sum(axis=1, keepdims=True)
    v = model.value_head(params, data)
    a = data.X @ v
    f = np.sum(phi * a, axis=1)
    n = data.n
    if model.loss_name == "logistic":
        dL_df = -data.y * sigmoid(-data.y * f) / n
    else:
        dL_df = -data.y / n
    g = dL_df[:, None] * a  # ∂L/∂φ
    dL_ds = phi * (g - np.sum(phi * g, axis=1, keepdims=True))
    G = np.einsum("nt,ntd,ne->de", dL_ds, data.X, data.z)
    out = ({"W": G} if model.parametrization == "W"
           else {"K": G @ params["Q"], "Q": G.T @ params["K"]})
    if model.head == "trained":
        out["v"] = np.einsum("n,nt,ntd->d", dL_df, phi, data.X)
    return out


@dataclass(frozen=True)
class PeerRun:
    """A run of the authors' normalised GD.

    Attributes
    ----------
    theta : ndarray, shape (steps + 1, P)
        θ_k for k = 0..steps.
    grad_norm : ndarray, shape (steps,)
        ‖∇L(θ_k)‖ of the gradient each step used.
    stall : int or None
        The first iteration with ‖∇L‖ < eps: from there each step moves by η‖∇L‖/(‖∇L‖ + eps)
        < η/2, and GD freezes as ‖∇L‖ keeps falling (None if it never happens).
    lr, eps : float
    gradient : str
        One of :data:`GRADIENTS`.
    seconds : float
        Wall time of the loop.
    """

    theta: np.ndarray
    grad_norm: np.ndarray
    stall: int | None
    lr: float
    eps: float
    gradient: str
    seconds: float

    def time(self) -> np.ndarray:
        """The flow time of each iterate, t_k = η k."""
        return self.lr * np.arange(self.theta.shape[0])


def peer_gd(model: AttentionSVMModel, data: AttentionSVMData, theta0: np.ndarray, *,
            lr: float = LR, steps: int = STEPS, eps: float = EPS,
            gradient: str = "autograd") -> PeerRun:
    """The authors' normalised GD, θ ← θ − η ∇L/(‖∇L‖ + eps), for ``steps`` iterations.

    Parameters
    ----------
    model, data
    theta0 : ndarray
    lr, steps, eps
        Their step, iteration count and ``eps`` (:data:`LR`, :data:`STEPS`, :data:`EPS`).
    gradient : {"autograd", "exact", "direction"}
        :data:`GRADIENTS`; ``"direction"`` ignores ``eps``.
    """
    if gradient not in GRADIENTS:
        raise ArgumentError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    layout, objective = model.layout, model.objective(data)
    theta = np.array(theta0, dtype=float)
    history = np.empty((steps + 1, theta.size))
    history[0] = theta
    norms = np.empty(steps)
    start = time.perf_counter()
    for k in range(steps):
        params = layout.unpack(theta)
        if gradient == "direction":
            blocks, log_scales = objective.scaled_gradient(theta)
            g = _direction(blocks, log_scales, layout)
            norms[k] = float(np.linalg.norm(layout.pack(model.grad(params, data))))
            theta = theta - lr * g
        else:
            g = layout.pack(autograd_gradient(model, params, data) if gradient == "autograd"
                            else model.grad(params, data))
            norms[k] = float(np.linalg.norm(g))
            theta = theta - lr * g / (norms[k] + eps)
        history[k + 1] = theta
    seconds = time.perf_counter() - start
    below = np.flatnonzero(norms < eps)
    return PeerRun(theta=history, grad_norm=norms, stall=int(below[0]) if below.size else None,
                   lr=lr, eps=eps, gradient=gradient, seconds=seconds)


def _direction(blocks: np.ndarray, log_scales: dict[str, float], layout: Layout) -> np.ndarray:
    """The unit vector of the gradient whose blocks are e^{log_scales[b]}·blocks[b]."""
    top = max(log_scales.values())
    scaled = blocks.copy()
    for name in layout.names:
        scaled[layout.slices[name]] *= np.exp(log_scales[name] - top)
    return scaled / np.linalg.norm(scaled)
