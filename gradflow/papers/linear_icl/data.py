"""The populations and prompt samples of in-context linear regression (Zhang, Frei, Bartlett, JMLR
2024): x_i, x_q ~ N(0, Λ), w ~ N(0, I_d), y = ⟨w, x⟩."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.validate import generator, integer

__all__ = ["LinearICLMixtureTask", "LinearICLTask", "PromptSample", "exponential_spectrum_task",
           "make_task", "sample_prompts"]


@dataclass(frozen=True, eq=False)
class LinearICLTask:
    """The population of prompts: x_i, x_q ~ N(0, Λ), w ~ N(0, I_d), y = ⟨w, x⟩, N examples.

    Attributes
    ----------
    Lambda : ndarray, shape (d, d)
        Covariance (symmetric positive definite).
    N : int
        Prompt length used in training.
    """

    Lambda: np.ndarray
    N: int

    @property
    def d(self) -> int:
        return self.Lambda.shape[0]

    @property
    def Gamma(self) -> np.ndarray:
        """Γ = (1 + 1/N) Λ + (tr Λ / N) I_d."""
        return (1 + 1 / self.N) * self.Lambda + np.trace(self.Lambda) / self.N * np.eye(self.d)

    def sigma_bound(self) -> float:
        """Assumption 3.3's bound on the init scale: σ < (2/(√d ‖Γ‖_op))^{1/2}."""
        return float(np.sqrt(2.0 / (np.sqrt(self.d) * np.linalg.norm(self.Gamma, 2))))


def make_task(d: int, N: int, Lambda: Any = "random", rng: Any = None) -> LinearICLTask:
    """The paper's task: x_i, x_q ~ N(0, Λ), w ~ N(0, I_d), noiseless y = ⟨w, x⟩
    (``docs/derivations/linear_icl.md``, §Reduced population flow).

    Parameters
    ----------
    d, N : int
    Lambda : "identity", "random" or ndarray (d, d)
        ``"random"``: Q diag(U[0.5, 2]) Qᵀ with a random rotation Q (not diagonal).
    rng : int or numpy.random.Generator
    """
    d, N = integer(d, "d"), integer(N, "N")
    if isinstance(Lambda, str):
        if Lambda == "identity":
            Lam = np.eye(d)
        elif Lambda == "random":
            gen = generator(rng)
            q, _ = np.linalg.qr(gen.standard_normal((d, d)))
            Lam = (q * gen.uniform(0.5, 2.0, d)) @ q.T
        else:
            raise ArgumentError(f"Lambda must be 'identity', 'random' or an array, got {Lambda!r}")
    else:
        Lam = np.asarray(Lambda, dtype=float)
    if Lam.shape != (d, d) or not np.allclose(Lam, Lam.T) or np.linalg.eigvalsh(Lam).min() <= 0:
        raise ArgumentError(f"Lambda must be a symmetric positive definite ({d}, {d}) matrix")
    return LinearICLTask(Lambda=(Lam + Lam.T) / 2, N=int(N))


@dataclass(frozen=True, eq=False)
class PromptSample:
    """A fixed sample of B prompts: X (B, N, d), x_q (B, d), w (B, d); y = X w, y_q = ⟨w, x_q⟩."""

    X: np.ndarray
    x_q: np.ndarray
    w: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]


def sample_prompts(task: LinearICLTask, B: int, rng: Any = None) -> PromptSample:
    """B prompts antithetic in w: the second half repeats the first with −w, which makes the
    empirical gradient of the off-manifold entries exactly zero on the manifold
    (``docs/derivations/linear_icl.md``, §Full-parameter model)."""
    B = integer(B, "B", minimum=2, why=" and even (antithetic pairs)")
    if B % 2:
        raise ArgumentError(f"B must be an even integer >= 2 (antithetic pairs), got {B!r}")
    gen = generator(rng)
    root = np.linalg.cholesky(task.Lambda)
    half = B // 2
    X = gen.standard_normal((half, task.N, task.d)) @ root.T
    x_q = gen.standard_normal((half, task.d)) @ root.T
    w = gen.standard_normal((half, task.d))
    return PromptSample(X=np.concatenate([X, X]), x_q=np.concatenate([x_q, x_q]),
                        w=np.concatenate([w, -w]))


@dataclass(frozen=True, eq=False)
class LinearICLMixtureTask:
    """Prompts whose covariance is itself random (the setting of ZFB's Theorem 4.5): Λ = Λ_j
    with probability ``weights[j]``, then x_i, x_q ~ N(0, Λ), w ~ N(0, I_d), y = ⟨w, x⟩.

    Attributes
    ----------
    Lambdas : ndarray, shape (n, d, d)
        The covariances (symmetric positive definite).
    weights : ndarray, shape (n,)
        Their probabilities (positive, summing to 1).
    N : int
        Prompt length used in training.
    """

    Lambdas: np.ndarray
    weights: np.ndarray
    N: int

    @property
    def d(self) -> int:
        return self.Lambdas.shape[1]

    @property
    def Gammas(self) -> np.ndarray:
        """Γ_j = (1 + 1/N) Λ_j + (tr Λ_j / N) I_d, shape (n, d, d)."""
        traces = np.trace(self.Lambdas, axis1=1, axis2=2)
        return ((1 + 1 / self.N) * self.Lambdas
                + traces[:, None, None] / self.N * np.eye(self.d)[None])

    def sigma_bound(self) -> float:
        """The smallest of Assumption 3.3's bounds over the components (a conservative init
        scale for the mixture)."""
        norms = np.linalg.norm(self.Gammas, ord=2, axis=(1, 2)).max()
        return float(np.sqrt(2.0 / (np.sqrt(self.d) * norms)))


def exponential_spectrum_task(d: int, N: int) -> LinearICLMixtureTask:
    """Λ = diag(λ_1, …, λ_d) with λ_i iid Exp(1) (Theorem 4.5's example as gradflow reads it:
    ``docs/derivations/linear_icl.md``, §Readings of the paper), as an
    exact finite mixture.

    The reduced population loss and its gradient are polynomials of degree ≤ 3 in each λ_i
    (``docs/derivations/linear_icl.md``), and the 2-point Gauss–Laguerre rule (nodes 2 ∓ √2,
    weights (2 ± √2)/4) integrates x^k e^{−x} exactly for k ≤ 3; its tensor product over the d
    eigenvalues (2^d diagonal covariances) is therefore the Exp(1) population itself, not an
    approximation of it.
    """
    d, N = integer(d, "d"), integer(N, "N")
    nodes = np.array([2 - np.sqrt(2), 2 + np.sqrt(2)])
    node_weights = np.array([(2 + np.sqrt(2)) / 4, (2 - np.sqrt(2)) / 4])
    grid = np.array(np.meshgrid(*[[0, 1]] * d, indexing="ij")).reshape(d, -1).T  # (2^d, d)
    Lambdas = np.stack([np.diag(nodes[row]) for row in grid])
    weights = np.prod(node_weights[grid], axis=1)
    return LinearICLMixtureTask(Lambdas=Lambdas, weights=weights, N=int(N))
