"""The population of in-context learning with representations (Yang, Huang, Liang, Chi, NeurIPS
2024): a dictionary of K tokens with representations f_k = Φ(v_k), N of them in every prompt."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.validate import generator, integer

__all__ = ["RepresentationTask", "make_task"]


@dataclass(frozen=True, eq=False)
class RepresentationTask:
    """The fixed dictionary and representation.

    Attributes
    ----------
    tokens : ndarray, shape (d, K)
        Unit-norm dictionary tokens v_k (columns); the first N form every prompt.
    features : ndarray, shape (m, K)
        Representations f_k = f(v_k).
    N : int
        Prompt length.
    tau : float
        Label-noise variance τ (ε_k ~ N(0, τ I_m)).
    """

    tokens: np.ndarray
    features: np.ndarray
    N: int
    tau: float

    @property
    def d(self) -> int:
        return self.tokens.shape[0]

    @property
    def K(self) -> int:
        return self.tokens.shape[1]

    @property
    def m(self) -> int:
        return self.features.shape[0]

    @cached_property
    def Z(self) -> np.ndarray:
        """Prompt representations, shape (m, N)."""
        return self.features[:, : self.N]

    @cached_property
    def M(self) -> np.ndarray:
        """ZᵀZ + mτ I_N."""
        return self.Z.T @ self.Z + self.m * self.tau * np.eye(self.N)

    @cached_property
    def targets(self) -> np.ndarray:
        """b_k = Zᵀ f_k + mτ 1{k≤N} e_k, shape (N, K); the optimum is a_k* = M⁻¹ b_k."""
        b = self.Z.T @ self.features
        b[:, : self.N] += self.m * self.tau * np.eye(self.N)
        return b

    @cached_property
    def a_star(self) -> np.ndarray:
        """Optimal attention combinations a_k* (columns), shape (N, K)."""
        return np.linalg.solve(self.M, self.targets)


def make_task(d: int = 6, K: int = 12, N: int = 4, m: int = 5, tau: float = 0.1,
                 rng: Any = None) -> RepresentationTask:
    """Standard Gaussian tokens (normalised to unit norm) and representations, as in the paper's
    synthetic experiments (Figs. 2–5)."""
    d, K, N, m = integer(d, "d"), integer(K, "K"), integer(N, "N"), integer(m, "m")
    if not N < K:
        raise ArgumentError(f"N must be smaller than K (prompt tokens among K), got N={N}, K={K}")
    if not (np.isfinite(tau) and tau > 0):
        raise ArgumentError(f"tau must be positive, got {tau!r}")
    gen = generator(rng)
    V = gen.standard_normal((d, K))
    return RepresentationTask(tokens=V / np.linalg.norm(V, axis=0), features=gen.standard_normal(
        (m, K)), N=int(N), tau=float(tau))
