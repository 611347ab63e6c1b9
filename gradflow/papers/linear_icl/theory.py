"""Predictions of Zhang, Frei, Bartlett (JMLR 2024) for one linear self-attention layer."""

from __future__ import annotations

import numpy as np

from gradflow.papers.linear_icl.data import LinearICLTask

__all__ = ["conserved", "full_limit", "limit", "optimal_loss"]


def conserved(U: np.ndarray, u: float) -> float:
    """u² − ‖U‖_F², constant along the reduced flow (0 under Assumption 3.3's balanced init)."""
    return float(u**2 - np.sum(np.asarray(U) ** 2))


def limit(task: LinearICLTask) -> tuple[np.ndarray, float]:
    """Theorem 4.1 in reduced coordinates: U(∞) = ‖Γ⁻¹‖_F^{−1/2} Γ⁻¹, u(∞) = ‖Γ⁻¹‖_F^{1/2}
    (independent of Θ and σ)."""
    Gamma_inv = np.linalg.inv(task.Gamma)
    norm = np.linalg.norm(Gamma_inv)
    return Gamma_inv / np.sqrt(norm), float(np.sqrt(norm))


def full_limit(task: LinearICLTask) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 4.1 in the full matrices: W^{KQ}_* = [[tr(Γ⁻²)^{−1/4} Γ⁻¹, 0], [0, 0]],
    W^{PV}_* = [[0, 0], [0, tr(Γ⁻²)^{1/4}]]."""
    Gamma_inv = np.linalg.inv(task.Gamma)
    c = np.trace(Gamma_inv @ Gamma_inv)
    d = task.d
    W_KQ = np.zeros((d + 1, d + 1))
    W_KQ[:d, :d] = c ** -0.25 * Gamma_inv
    W_PV = np.zeros((d + 1, d + 1))
    W_PV[d, d] = c**0.25
    return W_KQ, W_PV


def optimal_loss(task: LinearICLTask) -> float:
    """L* = ½ tr Λ − ½ tr(Λ² Γ⁻¹), the minimum of the population loss (attained iff uU = Γ⁻¹)."""
    Lam = task.Lambda
    return float(0.5 * np.trace(Lam) - 0.5 * np.trace(Lam @ Lam @ np.linalg.inv(task.Gamma)))
