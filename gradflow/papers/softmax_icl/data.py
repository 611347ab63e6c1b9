"""The populations of in-context learning on a finite feature dictionary (Huang, Cheng, Liang,
ICML 2024): K orthonormal features drawn with probabilities p, and the multinomial count vectors
over which the population loss is an exact finite sum."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy.special import gammaln

from gradflow.errors import ArgumentError
from gradflow.validate import integer

__all__ = ["MAX_COUNT_VECTORS", "FeatureTask", "count_vectors", "make_task", "n_count_vectors"]


MAX_COUNT_VECTORS = 2_000_000
"""Largest enumeration accepted (C(N+K−1, K−1) count vectors)."""


def n_count_vectors(N: int, K: int) -> float:
    """C(N+K−1, K−1), the number of count vectors, as a float (``inf`` when it overflows)."""
    log_size = float(gammaln(N + K) - gammaln(K) - gammaln(N + 1))
    return float(np.exp(log_size)) if log_size < 709.0 else float("inf")


def count_vectors(N: int, K: int) -> np.ndarray:
    """Every c ∈ ℕ^K with Σ c = N (stars and bars), shape (C(N+K−1, K−1), K)."""
    bars = np.array(list(itertools.combinations(range(N + K - 1), K - 1)), dtype=int)
    if K == 1:
        return np.array([[N]])
    edges = np.concatenate([np.full((len(bars), 1), -1), bars,
                            np.full((len(bars), 1), N + K - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


@dataclass(frozen=True, eq=False)
class FeatureTask:
    """The prompt distribution: K features with probabilities ``p``, prompt length N.

    Attributes
    ----------
    p : ndarray, shape (K,)
    N : int
    include_query : bool
        Whether the query token enters the softmax (logit s_kk, label 0); default excluded.
    mean_field : bool
        Replace the multinomial counts by their means c = N p (deterministic counts).
    """

    p: np.ndarray
    N: int
    include_query: bool = False
    mean_field: bool = False

    @property
    def K(self) -> int:
        return self.p.size

    @cached_property
    def counts(self) -> np.ndarray:
        """The count vectors summed over, shape (C, K)."""
        if self.mean_field:
            return (self.N * self.p)[None, :]
        return count_vectors(self.N, self.K)

    @cached_property
    def weights(self) -> np.ndarray:
        """Multinomial probabilities of :attr:`counts` (log-gamma), shape (C,)."""
        if self.mean_field:
            return np.ones(1)
        c = self.counts
        with np.errstate(divide="ignore"):
            log_p = np.log(self.p)
        log_w = gammaln(self.N + 1) - gammaln(c + 1).sum(axis=1) + np.where(
            c > 0, c * log_p, 0.0).sum(axis=1)
        return np.exp(log_w)

    @cached_property
    def squared_counts(self) -> np.ndarray:
        """:attr:`counts` squared (the gradient's second moments), shape (C, K)."""
        return np.asarray(self.counts, dtype=float) ** 2

    @cached_property
    def log_counts(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.counts)


def make_task(K: int = 4, N: int | None = None, p: Any = "balanced", *,
                 include_query: bool = False, mean_field: bool = False) -> FeatureTask:
    """The paper's task: K orthonormal features drawn with probabilities p, w with E[wwᵀ] = I,
    noiseless labels (``docs/derivations/softmax_icl.md``, §Exact population loss).

    Parameters
    ----------
    K : int
        Number of orthonormal features.
    N : int, optional
        Prompt length; default 20K (so the floor ½(1 − p_k)^N is negligible).
    p : "balanced" or array_like (K,)
        Feature probabilities.
    include_query, mean_field : bool
        See :class:`FeatureTask`.
    """
    K = integer(K, "K", minimum=2)
    N = 20 * K if N is None else integer(N, "N")
    if not mean_field:  # before anything of size K is allocated
        size = n_count_vectors(N, K)
        if size > MAX_COUNT_VECTORS:
            raise ArgumentError(
                f"the exact sum needs C(N+K−1, K−1) = {size:.4g} count vectors (K={K}, N={N}), "
                f"more than {MAX_COUNT_VECTORS}; use mean_field=True or, for balanced p, "
                "BalancedICL"
            )
    probs = np.full(K, 1.0 / K) if isinstance(p, str) and p == "balanced" else np.asarray(
        p, dtype=float)
    if probs.shape != (K,) or np.any(probs <= 0) or not np.isclose(probs.sum(), 1.0):
        raise ArgumentError(f"p must be 'balanced' or K={K} positive probabilities summing to 1")
    task = FeatureTask(p=probs / probs.sum(), N=int(N), include_query=bool(include_query),
                       mean_field=bool(mean_field))
    return task
