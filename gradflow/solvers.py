"""The solver classes ``simulate`` accepts, the ``"auto"`` rule, and finite-difference Jacobians.

``method="auto"`` (the default of :func:`gradflow.simulate`) is a rule measured with
``scripts/bench_solvers.py`` (table in ``docs/performance.md``):

1. Normalised flows on states of at most :data:`AUTO_IMPLICIT_STATE` entries start with
   :data:`AUTO_IMPLICIT`: near their max-margin directions they are stiff (transverse
   deviations relax at an O(1) rate while t grows), so an implicit method's steps grow ∝ t
   where an explicit method's stay bounded by stability (NTP stage 2, the attention SVM:
   RK45 does not reach t = 1e4 in 20,000 evaluations; BDF reaches 1e8 in 1,000-3,000).
2. Plain flows, and normalised flows on larger states, start with :data:`AUTO_EXPLICIT`:
   the papers' plain logistic flows are not stiff (RK45 is the cheapest on co-occurrence,
   even pairs, parity and the balanced ICL flow, 2-10× fewer evaluations than BDF, whose
   dense Jacobian costs P + 1 evaluations), and the flows to a finite minimum that are stiff
   (the ICL representation and linear-attention flows) are caught by rule 3.
3. While an explicit method runs, its steps are watched: when they sit at the method's
   stability limit (h·ρ ≥ half the limit, ρ a secant estimate of the Jacobian's spectral
   radius) over :data:`STIFF_WINDOW` steps and the state is small enough for a dense Jacobian
   (≤ :data:`MAX_DENSE_JACOBIAN_STATE`), the run switches to :data:`AUTO_IMPLICIT`.
4. When an implicit method fails (LSODA's "repeated convergence failures", a step size
   below spacing) or stalls, the run falls back along :data:`FALLBACK` from the last
   accepted state (BDF, the cheapest on most cases, fails on the NTP stage-2 flow past
   t ≈ 2e7, where LSODA goes on).

Every implicit method gets :func:`finite_difference_jacobian` with
:func:`jacobian_increment` unless the caller gives a Jacobian or its structure.

Every switch is recorded in ``Trajectory.stats["switches"]``, and ``stats["method"]`` is the
method that finished the run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import integrate

__all__ = [
    "AUTO_EXPLICIT",
    "AUTO_IMPLICIT",
    "AUTO_IMPLICIT_STATE",
    "FALLBACK",
    "IMPLICIT",
    "MAX_DENSE_JACOBIAN_STATE",
    "METHODS",
    "STABILITY_LIMIT",
    "STIFF_WINDOW",
    "auto_method",
    "finite_difference_jacobian",
    "jacobian_increment",
]

METHODS: dict[str, type[integrate.OdeSolver]] = {
    "RK45": integrate.RK45,
    "RK23": integrate.RK23,
    "DOP853": integrate.DOP853,
    "Radau": integrate.Radau,
    "BDF": integrate.BDF,
    "LSODA": integrate.LSODA,
}
"""The ``scipy.integrate`` solver classes ``simulate`` accepts, by name (and ``"auto"``)."""

IMPLICIT = frozenset({"Radau", "BDF", "LSODA"})

MAX_DENSE_JACOBIAN_STATE = 2000
"""Largest state for which an implicit method may build a dense finite-difference Jacobian
(2000² float64 = 32 MB). At the co-occurrence paper size (57,344 entries) a dense Jacobian
would need 24.5 GiB."""

AUTO_IMPLICIT = "BDF"
AUTO_EXPLICIT = "RK45"
AUTO_IMPLICIT_STATE = 1000
"""``"auto"`` starts implicit on states up to this size (see the module notes)."""

FALLBACK = {"BDF": "LSODA", "LSODA": "Radau", "Radau": None, "RK45": None, "RK23": None,
            "DOP853": None}
"""Where ``"auto"`` goes when a method fails; None: nowhere (the failure is raised)."""

STABILITY_LIMIT = {"RK23": 2.5, "RK45": 3.3, "DOP853": 6.0}
"""Approximate extent of each explicit method's stability region on the negative real axis
(h·λ for the test equation y' = λy): steps pinned near it are limited by stability, not by
accuracy — the signature of a stiff flow."""

STIFF_WINDOW = 50
"""Accepted steps over which an explicit method must sit at its stability limit before the
flow is called stiff (a transient of a few limited steps is not stiffness)."""


def auto_method(size: int, normalized: bool) -> str:
    """The method ``"auto"`` starts with for a state of ``size`` entries (rules 1-2)."""
    return AUTO_IMPLICIT if normalized and size <= AUTO_IMPLICIT_STATE else AUTO_EXPLICIT


def jacobian_increment(theta: np.ndarray) -> float:
    """The absolute forward-difference increment ``h = √(ε · max(1, ‖θ‖∞))``.

    The field is evaluated from θ, whose entries carry rounding errors of ε·‖θ‖∞; for the
    papers' models the field varies on an O(1) scale in θ whatever ‖θ‖ (softmax scores are
    differences of entries), so a difference over h has a rounding error ≈ ε‖θ‖∞/h and a
    truncation error ≈ h, balanced at this h. An increment relative to |θ_j| (LSODA's own,
    √ε·|θ_j|) is ≈ 10 at ‖θ‖ = 1e9: far beyond that O(1) scale, and Newton stops converging.
    """
    return float(np.sqrt(np.finfo(float).eps * max(1.0, float(np.max(np.abs(theta))))))


def finite_difference_jacobian(
    field: Callable[[float, np.ndarray], np.ndarray], step: float | None = None
) -> Callable[[float, np.ndarray], np.ndarray]:
    """``jac(τ, θ)``: forward differences of ``field``, shape (P, P), P + 1 field evaluations.

    Parameters
    ----------
    field : callable (τ, θ) -> ndarray, shape (P,)
    step : float, optional
        A fixed absolute increment; default :func:`jacobian_increment` at each θ.
    """

    def jac(tau: float, theta: np.ndarray) -> np.ndarray:
        base = field(tau, theta)
        h = jacobian_increment(theta) if step is None else step
        columns = np.empty((theta.size, theta.size))
        probe = np.array(theta, dtype=float)
        for j in range(theta.size):
            probe[j] += h
            columns[j] = (field(tau, probe) - base) / (probe[j] - theta[j])  # the rounded step
            probe[j] = theta[j]
        return columns.T

    return jac
