"""Predictions of Yang, Huang, Liang, Chi (NeurIPS 2024): the trained transformer's predictions
converge to ridge regression on the representations, and the loss to its infimum."""

from __future__ import annotations

import numpy as np

from gradflow.papers.representation_icl.data import RepresentationTask

__all__ = ["optimal_loss", "ridge", "ridge_test_errors"]


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
