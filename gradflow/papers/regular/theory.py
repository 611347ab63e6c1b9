"""Predictions of Huang, Liang, Yang (ICML 2025) for regular-language recognition, and the
quantities of its theorems computed from trajectories.

Phase 1 (t < τ0; the paper's phase-1 scalings, ``docs/derivations/regular.md``): s_1 grows
like t, −s_ℓ (ℓ ≥ 2) and ‖W‖ like t². Phase 2: ‖u‖ grows like log t and u turns to the
max-margin direction of the current attention outputs, u*(W_t) (Thm 4.4); with saturated
attention that direction is :func:`saturated_max_margin`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gradflow.maxmargin import solve_max_margin
from gradflow.model import Observable
from gradflow.papers.regular.data import RegularData
from gradflow.trajectory import Trajectory

__all__ = ["cos_moving", "derived", "phase1_exponents", "saturated_features",
           "saturated_max_margin", "slope_per_decade"]


def saturated_max_margin(max_position: int) -> np.ndarray:
    """u*_∞ = E_1^a + E_1^b − E_2^a − E_2^b (one-hot coordinates), the max-margin u for
    saturated attention (positives attend to position 1, negatives to position 2), ‖u*_∞‖ = 2."""
    u = np.zeros(2 * max_position)
    u[[0, 1]] = 1.0
    u[[2, 3]] = -1.0
    return u


def saturated_features(data: RegularData) -> np.ndarray:
    """The attention outputs with saturated attention (the saturated target u*_∞ of
    docs/derivations/regular.md, §Claims and their observables): a positive string's h is its
    first token E_1^{x_1}, a negative string's h its second token E_2^{x_2} (for L = 2 the query
    itself); a length-1 string attends to its only token. Shape (N, d)."""
    rows = np.arange(data.n)
    position = np.where((data.y > 0) | (data.lengths < 2), 0, 1)
    return data.X[rows, position]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else np.nan


def cos_moving(model: Any, data: RegularData) -> Observable:
    """The observable θ ↦ cos(u, u*(W_t)) of Thm 4.4: u against the max-margin direction of the
    current attention outputs h_n(W_t); NaN while u does not separate them.

    Parameters
    ----------
    model : RegularTransformer
        Passed in (theory never imports the model).
    data : RegularData
    """

    def value(th: np.ndarray) -> float:
        p = model.layout.unpack(th)
        fwd = model.forward(p, data)
        if np.min(data.y * fwd.f) <= 0:
            return np.nan  # u does not separate the features yet
        # u separates them, so u*(W_t) exists: a solver error is an error, never a NaN
        return _cos(p["u"], solve_max_margin(data.y[:, None] * fwd.h).w)

    return value


def phase1_exponents(traj: Trajectory, t_max: float = 1.0) -> dict[str, list[float]]:
    """Local log-log exponents between consecutive record times in (0, t_max] of s_1 (position
    1), −s_ℓ for ℓ ≥ 2, and ‖W‖ (1, 2, 2 in phase 1: docs/derivations/regular.md, §Claims and
    their observables)."""
    keep = (traj.t > 0) & (traj.t <= t_max)
    log_t = np.log(traj.t[keep])
    scores = traj.observables["scores"][keep].mean(axis=2)  # (n, P): symbols agree at zero init

    def local(values: np.ndarray) -> list[float]:
        return (np.diff(np.log(values)) / np.diff(log_t)).tolist()

    out = {"s_1": local(scores[:, 0]), "W_norm": local(traj.observables["W_norm"][keep])}
    for ell in range(1, scores.shape[1]):
        out[f"minus_s_{ell + 1}"] = local(-scores[:, ell])
    return out


def derived(traj: Trajectory, data: RegularData, model: Any, tau0: float) -> dict[str, np.ndarray]:
    """Quantities computed from the stored states: ‖W − W(τ0)‖, cos(u, u*(W at first
    separability)), t·L(t), and the slope of ‖u‖ per unit ln t."""
    t, o = traj.t, traj.observables
    W = traj.block("W")
    W_tau0 = W[int(np.argmin(np.abs(t - tau0)))]
    out = {"W_change": np.linalg.norm((W - W_tau0).reshape(len(t), -1), axis=1),
           "t_loss": t * o["loss"]}
    separable = np.flatnonzero(o["normalized_margin"] > 0)
    u = traj.block("u")
    out["cos_first_separable"] = np.full(len(t), np.nan)
    if separable.size:
        first = traj.final_theta if separable[0] >= len(t) else traj.theta[separable[0]]
        fwd = model.forward(model.layout.unpack(first), data)
        # u separates these features, so the problem is feasible: a solver error propagates
        u_star = solve_max_margin(data.y[:, None] * fwd.h).w
        out["cos_first_separable"] = u @ u_star / (np.linalg.norm(u, axis=1)
                                                   * np.linalg.norm(u_star) + 1e-300)
    return out


def slope_per_decade(t: np.ndarray, values: np.ndarray, t_min: float = 10.0) -> list[list[float]]:
    """[t_from, t_to, Δvalues/Δln t] over consecutive decades of t from t_min."""
    rows = []
    edges = 10.0 ** np.arange(np.ceil(np.log10(t_min)), np.floor(np.log10(t[-1])) + 1)
    for lo, hi in itertools.pairwise(edges):
        i, j = int(np.argmin(np.abs(t - lo))), int(np.argmin(np.abs(t - hi)))
        rows.append([float(lo), float(hi), float((values[j] - values[i]) / np.log(hi / lo))])
    return rows
