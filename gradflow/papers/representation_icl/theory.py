"""Predictions of Yang, Huang, Liang, Chi (NeurIPS 2024): the trained transformer's predictions
converge to ridge regression on the representations, and the loss to its infimum."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from gradflow.papers.representation_icl.data import RepresentationTask

__all__ = ["best_penalty", "combination_distance", "optimal_loss", "prediction_errors", "ridge",
           "ridge_combinations", "ridge_test_errors"]


def ridge(task: RepresentationTask, y: np.ndarray, penalty: float) -> np.ndarray:
    """The ridge predictor of all K labels from prompt labels y (B, N): the given labels for
    k ≤ N and f_kᵀ λ̂ for k > N, λ̂ = argmin ‖y − Zᵀλ‖² + penalty‖λ‖²; shape (B, K)."""
    Z = task.Z
    lam_hat = np.linalg.solve(Z @ Z.T + penalty * np.eye(task.m), Z @ y.T)  # (m, B)
    out = (task.features.T @ lam_hat).T
    out[:, : task.N] = y
    return out


def optimal_loss(task: RepresentationTask) -> float:
    """inf L, attained at a_k = a_k* (reachable when the heads' softmax vectors span R^N)."""
    a = task.a_star
    err_f = task.Z @ a - task.features
    target = np.zeros_like(a)
    target[:, : task.N] = np.eye(task.N)
    mt = task.m * task.tau
    return float(0.5 * (np.sum(err_f**2) + mt * np.sum((a - target) ** 2)
                        + mt * (task.K - task.N)))


def ridge_test_errors(task: RepresentationTask, rng: np.random.Generator,
                      n_tasks: int = 2000) -> dict[str, float]:
    """Test MSE on the K − N tokens outside the prompt of ridge regression fitted on the
    prompt's N labels, over ``n_tasks`` fresh tasks λ ~ N(0, I_m) with label noise of
    variance τ, at the two penalties the paper compares: mτ (the trained transformer's limit)
    and Nτ.

    Returns
    -------
    dict
        ``{"m_tau": mse, "N_tau": mse}``.
    """
    lam = rng.standard_normal((n_tasks, task.m))
    noise = np.sqrt(task.tau) * rng.standard_normal((n_tasks, task.m, task.K))
    labels = lam @ task.features + np.einsum("bm,bmk->bk", lam, noise)
    errors = {}
    for name, penalty in (("m_tau", task.m * task.tau), ("N_tau", task.N * task.tau)):
        pred = ridge(task, labels[:, : task.N], penalty)
        errors[name] = float(np.mean((pred[:, task.N:] - labels[:, task.N:]) ** 2))
    return errors


def ridge_combinations(task: RepresentationTask, penalty: float) -> np.ndarray:
    """The ridge predictor written as prompt-label combinations, ŷ_k = yᵀ a_k: a_k = e_k for
    k ≤ N (the given labels) and a_k = (ZᵀZ + penalty·I)⁻¹ Zᵀ f_k for k > N; shape (N, K).
    With penalty mτ this is the population optimum ``task.a_star`` (Theorem 2)."""
    Z = task.Z
    a = np.linalg.solve(Z.T @ Z + penalty * np.eye(task.N), Z.T @ task.features)
    a[:, : task.N] = np.eye(task.N)
    return a


def prediction_errors(task: RepresentationTask, a: np.ndarray) -> np.ndarray:
    """E(ŷ_k − y_k)² over λ ~ N(0, I) and the label noise for the predictor ŷ_k = yᵀ a_k,
    per token, shape (K,): ‖Z a_k − f_k‖² + mτ‖a_k − 1{k≤N} e_k‖² + mτ 1{k>N} (twice the
    population loss's terms; for k > N it is the test error on an unseen token)."""
    target = np.zeros_like(a)
    target[:, : task.N] = np.eye(task.N)
    mt = task.m * task.tau
    err_f = task.Z @ a - task.features
    extra = np.where(np.arange(task.K) >= task.N, mt, 0.0)
    return np.sum(err_f**2, axis=0) + mt * np.sum((a - target) ** 2, axis=0) + extra


def best_penalty(task: RepresentationTask) -> float:
    """The ridge penalty ρ minimising the summed test error of the unseen tokens,
    Σ_{k>N} E(ŷ_k − y_k)² with a = :func:`ridge_combinations` (task, ρ), by a bounded scalar
    search over log ρ ∈ [log 1e-4, log 1e4] (xatol 1e-10)."""
    def total(log_rho: float) -> float:
        a = ridge_combinations(task, float(np.exp(log_rho)))
        return float(prediction_errors(task, a)[task.N:].sum())

    result = minimize_scalar(total, bounds=(np.log(1e-4), np.log(1e4)), method="bounded",
                             options={"xatol": 1e-10})
    return float(np.exp(result.x))


def combination_distance(task: RepresentationTask, a: np.ndarray, b: np.ndarray) -> float:
    """E‖ŷ_a − ŷ_b‖²/K over λ ~ N(0, I) and the noise for two predictors ŷ_k = yᵀ a_k,
    yᵀ b_k: Σ_k (a_k − b_k)ᵀ M (a_k − b_k)/K, since E[y yᵀ] = ZᵀZ + mτ I = M."""
    delta = a - b
    return float(np.sum(delta * (task.M @ delta)) / task.K)
