"""Predictions of Yang, Kailkhura, Wang, Liang (NeurIPS 2024) for the co-occurrence model.

The paper's statements are Θ/Õ bounds with unspecified constants, so what can be checked is
signs, bands, orders of magnitude and rate exponents; each function cites the statement it
encodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.maxmargin import solve_max_margin
from gradflow.trajectory import Trajectory

__all__ = [
    "ATTENTION_TRENDS",
    "KQ_PAIRS",
    "RHO23_BAND",
    "R_AT_T1_BAND",
    "R_BAND",
    "VALUE_TRENDS",
    "VV_PAIRS",
    "balancing_ratios",
    "band_ratio",
    "max_margin_limit",
    "phase1_time_scale",
    "phase2_loss",
    "rate_constant",
    "theory_checks",
    "u_norm_sq_rate",
]

RHO23_BAND = (0.5, 2.0)
"""Def. F.1: ρ23 = s_I2/s_I3 stays in [½, 2] through Phase 2 (Lemma 4.4: |ρ23 − 1| ≤ C ≪ 1)."""

R_BAND = (1.0, 2.0)
"""Lemma 4.5 / F.6: R has a contracting fixed point R* ∈ (1, 2) during Phase 2."""

R_AT_T1_BAND = (1.0, 3.0)
"""The proof of Lemma F.6 assumes R(T1) ∈ [1, 3]."""

ATTENTION_TRENDS = {("mu2", "mu1"): +1, ("mu1", "mu2"): +1, ("mu3", "mu1"): -1, ("mu3", "mu2"): -1}
"""Thm 3.2: sign of the Phase-2 change of KQ(key, query) = keyᵀ W_Kᵀ W_Q query."""

VALUE_TRENDS = {("mu1", "mu2"): +1, ("mu1", "mu1"): +1, ("mu2", "mu2"): +1,
                ("mu1", "mu3"): -1, ("mu2", "mu3"): -1}
"""Cor. 4.6 / F.13: sign of the Phase-2 change of VV(μ, ν) = μᵀ W_Vᵀ W_V ν."""

KQ_PAIRS = {("mu2", "mu1"): (1, 0), ("mu1", "mu2"): (0, 1), ("mu3", "mu1"): (2, 0),
            ("mu3", "mu2"): (2, 1)}
"""Index pairs (key, query) of the KQ observable for the pairs of :data:`ATTENTION_TRENDS`."""

VV_PAIRS = {("mu1", "mu2"): (0, 1), ("mu1", "mu1"): (0, 0), ("mu2", "mu2"): (1, 1),
            ("mu1", "mu3"): (0, 2), ("mu2", "mu3"): (1, 2)}
"""Index pairs of the VV observable for the pairs of :data:`VALUE_TRENDS`."""


def phase1_time_scale(sigma1: float, m: int, m1: int) -> float:
    """The order of the end of Phase 1, T1 = C/(σ1² m m1) (Thm 3.1 / E.28), with C = 1.

    ``σ1² m m1`` is the expected ‖u(0)‖² at initialisation, so the measured ``T1·‖u(0)‖²``
    is the paper's constant C (44 with s1_mult = 1, 0.64 with the default s1_mult = 0.1:
    ``docs/findings/cooccurrence.md``).
    """
    return 1.0 / (sigma1**2 * m * m1)


def rate_constant(t: np.ndarray, loss: np.ndarray, u_norm_sq: np.ndarray) -> np.ndarray:
    """``1/(L̂(t)·t·‖u(t)‖²)``: constant in Phase 2 if Thm F.8 holds with the current ‖u‖².

    Thm F.8: dL̂/dt = −Θ(‖u‖²)L̂², so L̂ ≈ 1/(c·‖u‖²·t) for t ≫ T1. Returns NaN at t = 0.
    """
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, 1.0 / (np.asarray(loss) * t * np.asarray(u_norm_sq)), np.nan)


def phase2_loss(
    t: np.ndarray, t1: float, loss_t1: float, c: float, u_norm_sq: np.ndarray
) -> np.ndarray:
    """Thm F.8's loss curve L̂(t) = 1/(c·‖u‖²·(t − T1) + 1/L̂(T1)) for t ≥ T1."""
    return 1.0 / (c * np.asarray(u_norm_sq) * (np.asarray(t) - t1) + 1.0 / loss_t1)


def u_norm_sq_rate(m1: int, margins: np.ndarray, g: np.ndarray) -> float:
    """The exact identity d‖u‖²/dt = 2·m1·(1/n)·Σ_i g_i y_i F_i (Lemma F.4).

    Parameters
    ----------
    m1 : int
    margins : ndarray, shape (n,)
        y_i F_i.
    g : ndarray, shape (n,)
        1/(1 + exp(y_i F_i)).
    """
    return float(2.0 * m1 * np.mean(g * margins))


def band_ratio(values: np.ndarray) -> float:
    """max/min of positive values: the width (as a factor) of the band they stay in."""
    values = np.asarray(values, dtype=float)
    return float(values.max() / values.min())


def balancing_ratios(g: np.ndarray, types: np.ndarray) -> dict[str, float]:
    """The automatic-balancing ratios of paper Lemmas 4.4, 4.5 (F.5, F.6).

    With ``s_I = Σ_{i∈I} g_i`` and ``g_i = 1/(1 + exp(y_i F_i))``:

    * ``rho23 = s_I2 / s_I3`` (claim: within [½, 2], near 1),
    * ``R = (s_I2∪I3∪I4 − s_I1) / (s_I1 − s_I2)`` (claim: in (1, 2) in Phase 2),
    * ``B1 = s_all / (s_I2∪I3∪I4 − s_I1)`` and ``B2 = s_all / (s_I1 − s_I2)`` (claim: O(1)).

    Parameters
    ----------
    g : ndarray, shape (n,)
        Per-sample gradient weights.
    types : ndarray of int, shape (n,)
        Sample types 1..4.

    Returns
    -------
    dict with keys ``rho23``, ``R``, ``B1``, ``B2`` (NaN where a denominator is zero).
    """
    s = {k: float(np.sum(g[types == k])) for k in (1, 2, 3, 4)}
    s_all = sum(s.values())
    s_neg = s[2] + s[3] + s[4]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "rho23": np.float64(s[2]) / s[3],
            "R": np.float64(s_neg - s[1]) / (s[1] - s[2]),
            "B1": np.float64(s_all) / (s_neg - s[1]),
            "B2": np.float64(s_all) / (s[1] - s[2]),
        }


def max_margin_limit(features: np.ndarray, y: np.ndarray, types: np.ndarray) -> dict[str, Any]:
    """The t → ∞ limit of the balancing quantities, from the hard-margin problem of the data.

    Not a statement of the paper: the reference the ledger measures the paper's fixed points
    against. While attention stays uniform (Cor. F.17), F_i = Gᵀφ_i with φ_i = Σ_h c_ih x_ih
    (= the token counts when c ≡ 1) and G = W_Vᵀu the product of the linear layers, so the
    flow is that of a deep linear model on the features φ_i under the logistic loss. Its
    direction converges to the L2 max-margin solution min ‖w‖ s.t. y_iφ_iᵀw ≥ 1 (Soudry et
    al., JMLR 2018; Ji & Telgarsky, ICLR 2019), and the gradient weights g_i become
    proportional to the solution's multipliers λ_i (the negative gradient Σ g_i y_iφ_i must
    point along w = Σ λ_i y_iφ_i, and λ is unique when the support rows are linearly
    independent: ``support_rank`` = the support's size). So
    ρ23, R, B1, B2 tend to :func:`balancing_ratios` of λ, and a sample off the support
    (λ_i = 0, normalised margin y_iφ_iᵀw > 1) has a loss that vanishes faster than the others'.

    Parameters
    ----------
    features : ndarray, shape (n, d)
        φ_i (e.g. ``data.X.sum(axis=1)``, the token counts).
    y : ndarray, shape (n,)
    types : ndarray of int, shape (n,)

    Returns
    -------
    dict with ``multipliers`` λ (n,), ``normalized_margins`` y_iφ_iᵀw (n,), ``w`` (d,),
    ``support_per_type`` (counts of λ_i > 0 for types 1..4), ``support_size`` and
    ``support_rank`` (rank of the support rows), ``loss_ratio`` (mean λ of types
    2, 3, 4 over that of type 1: the limits of L_k/L_1) and the keys of
    :func:`balancing_ratios` evaluated at λ.
    """
    rows = np.asarray(y, dtype=float)[:, None] * np.asarray(features, dtype=float)
    solution = solve_max_margin(rows)
    lam = solution.multipliers
    types = np.asarray(types)
    mean1 = float(np.mean(lam[types == 1]))
    return {
        "multipliers": lam,
        "normalized_margins": rows @ solution.w,
        "w": solution.w,
        "support_per_type": [int(np.sum((lam > 0) & (types == k))) for k in (1, 2, 3, 4)],
        "support_size": int(solution.support.size),
        "support_rank": int(np.linalg.matrix_rank(rows[solution.support])),
        "loss_ratio": [float(np.mean(lam[types == k])) / mean1 for k in (2, 3, 4)],
        **{k: float(v) for k, v in balancing_ratios(lam, types).items()},
    }


def theory_checks(traj: Trajectory) -> dict[str, dict[str, Any]]:
    """Evaluate the paper's claims on a trajectory; each entry has ``value`` and ``holds``.

    Phase 1 is t ≤ T1 (the ``phase1_end`` event), Phase 2 is t > T1. A claim whose phase was
    not reached is reported with ``holds: None``.
    """
    obs, t = traj.observables, traj.t
    if traj.events["phase1_end"].size == 0:
        return {"phase1_end": {"value": None, "holds": None,
                               "note": "Phase 1 did not end before t_end"}}
    t1 = float(traj.events["phase1_end"][0])
    phase1, phase2 = t <= t1, t > t1
    after = int(np.argmax(phase2))
    checks: dict[str, dict[str, Any]] = {}
    checks["all_correct_after_T1"] = {"value": int(obs["n_misclassified"][after]),
                                      "holds": bool(obs["n_misclassified"][after] == 0)}
    loss_t1 = float(np.interp(t1, t, obs["loss"]))
    checks["loss_at_T1_order_one"] = {"value": loss_t1, "band": [0.01, 1.0],
                                      "holds": bool(0.01 <= loss_t1 <= 1.0)}
    for k in (2, 3):
        curve = obs[f"loss_type{k}"][phase1]
        peak = int(np.argmax(curve))
        checks[f"loss_type{k}_rises_then_falls_in_phase1"] = {
            "value": {"initial": float(curve[0]), "peak": float(curve[peak]),
                      "peak_t": float(t[phase1][peak]), "at_T1": float(curve[-1])},
            "holds": bool(curve[peak] > curve[0] and curve[-1] < curve[peak]),
        }
    for name, band in (("rho23", RHO23_BAND), ("R", R_BAND)):
        values = obs[name][phase2]
        checks[f"{name}_in_band_phase2"] = {
            "value": [float(values.min()), float(values.max())], "band": list(band),
            "holds": bool(values.min() >= band[0] and values.max() <= band[1]),
        }
    window = (t >= 1.0) & (t <= 1e6) & phase2
    if window.any():
        c = rate_constant(t[window], obs["loss"][window], obs["u_norm_sq"][window])
        checks["rate_constant_band_1_to_1e6"] = {
            "value": [float(c.min()), float(c.max())], "factor": band_ratio(c),
            "holds": bool(band_ratio(c) <= 2.0),
        }
    for label, matrix, pairs, trends in (("KQ", obs["KQ"], KQ_PAIRS, ATTENTION_TRENDS),
                                         ("VV", obs["VV"], VV_PAIRS, VALUE_TRENDS)):
        for pair, (i, j) in pairs.items():
            change = float(matrix[-1, i, j] - matrix[after, i, j])
            checks[f"{label}({pair[0]},{pair[1]})_phase2_sign"] = {
                "value": change, "expected_sign": trends[pair],
                "holds": bool(np.sign(change) == trends[pair]),
            }
    return checks
