"""Predictions of Yang, Kailkhura, Wang, Liang (NeurIPS 2024) for the co-occurrence model.

The paper's statements are Θ/Õ bounds with unspecified constants, so what can be checked is
signs, bands, orders of magnitude and rate exponents; each function cites the statement it
encodes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ATTENTION_TRENDS",
    "RHO23_BAND",
    "R_AT_T1_BAND",
    "R_BAND",
    "VALUE_TRENDS",
    "band_ratio",
    "phase1_time_scale",
    "phase2_loss",
    "rate_constant",
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


def phase1_time_scale(sigma1: float, m: int, m1: int) -> float:
    """The order of the end of Phase 1, T1 = C/(σ1² m m1) (Thm 3.1 / E.28), with C = 1.

    ``σ1² m m1`` is the expected ‖u(0)‖² at initialisation, so the measured ``T1·‖u(0)‖²``
    is the paper's constant C (≈ 20 in the reference runs of the spec).
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
