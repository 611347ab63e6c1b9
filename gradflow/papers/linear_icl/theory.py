"""Predictions of Zhang, Frei, Bartlett (JMLR 2024) for one linear self-attention layer."""

from __future__ import annotations

import numpy as np

from gradflow.papers.linear_icl.data import LinearICLMixtureTask, LinearICLTask, PromptSample

__all__ = ["conserved", "cor4_3_bound", "escape_rate", "exponential_spectrum_limit",
           "full_limit", "limit", "manifold_features", "mixture_optimum", "optimal_loss",
           "prediction_error", "sample_minimiser", "sampling_covariance",
           "thm4_2_coefficients"]


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


def prediction_error(task: LinearICLTask, P: np.ndarray, M: int | float | None = None,
                     c: float = 1.0) -> float:
    """E(ŷ − y_q)² of the predictor ŷ = hᵀ P x_q, h = (1/M) Σ_{i≤M} y_i x_i, on test prompts
    of length M (default the training length N; ``inf`` allowed) whose covariates are scaled
    by c (covariance c²Λ): tr(Λ_c Pᵀ Λ_c Γ_M P) − 2 tr(Λ_c² P) + tr Λ_c with Λ_c = c²Λ and
    Γ_M = (1 + 1/M) Λ_c + (tr Λ_c / M) I (``docs/derivations/linear_icl.md``)."""
    M = task.N if M is None else float(M)
    Lam = c * c * task.Lambda
    Gamma_M = (1 + 1 / M) * Lam + np.trace(Lam) / M * np.eye(task.d)
    P = np.asarray(P, dtype=float)
    return float(np.trace(Lam @ P.T @ Lam @ Gamma_M @ P) - 2 * np.trace(Lam @ Lam @ P)
                 + np.trace(Lam))


def thm4_2_coefficients(task: LinearICLTask) -> tuple[float, float]:
    """(a_N, b_N) of Theorem 4.2's error of the trained model, E(ŷ − y_q)² = a_N/M + b_N/N² at
    test length M: a_N = tr(Γ⁻² Λ² (Λ + tr Λ·I)), b_N = tr(Λ Γ⁻² (Λ + tr Λ·I)²)."""
    Lam, d = task.Lambda, task.d
    Gi = np.linalg.inv(task.Gamma)
    S = Lam + np.trace(Lam) * np.eye(d)
    return float(np.trace(Gi @ Gi @ Lam @ Lam @ S)), float(np.trace(Lam @ Gi @ Gi @ S @ S))


def cor4_3_bound(task: LinearICLTask, M: float) -> float:
    """Corollary 4.3: E(ŷ − y_q)² ≤ (d + 1) tr Λ / M + (1 + 2d + d²κ) tr Λ / N², κ the
    condition number of Λ."""
    d, N = task.d, task.N
    eig = np.linalg.eigvalsh(task.Lambda)
    kappa = eig[-1] / eig[0]
    return float((d + 1) * np.trace(task.Lambda) / M
                 + (1 + 2 * d + d * d * kappa) * np.trace(task.Lambda) / N**2)


def escape_rate(task: LinearICLTask) -> float:
    """‖Λ²‖_F, the growth rate of the reduced flow linearised at (U, u) = 0 (U̇ = uΛ²,
    u̇ = ⟨Λ², U⟩): from an init of scale σ the flow needs log(1/σ)/‖Λ²‖_F + O(1) to leave the
    origin, so the time to a fixed loss grows like log(1/σ), not like the 1/σ² of the PL bound
    (so the independent prototype found: ``docs/derivations/linear_icl.md``, §Reference values
    of an independent prototype)."""
    return float(np.linalg.norm(task.Lambda @ task.Lambda))


def mixture_optimum(task: LinearICLMixtureTask) -> np.ndarray:
    """The minimiser M* of the mixture's population loss: Σ_j w_j Λ_j Γ_j M Λ_j = Σ_j w_j Λ_j²,
    solved as a d² × d² linear system (row-major vec: vec(A M B) = (A ⊗ Bᵀ) vec M)."""
    d = task.d
    A = sum(w * np.kron(L @ G, L) for w, L, G in zip(task.weights, task.Lambdas, task.Gammas,
                                                         strict=True))
    b = sum(w * L @ L for w, L in zip(task.weights, task.Lambdas, strict=True))
    return np.linalg.solve(A, b.reshape(-1)).reshape(d, d)


def exponential_spectrum_limit(d: int, N: int) -> float:
    """Theorem 4.5 for Λ = diag(λ), λ_i iid Exp(1): M* = (E Γ Λ²)⁻¹ E Λ² = m* I with
    m* = E λ² / E[λ² γ] = 2 / (6 + (2d + 10)/N) = 1/(3 + (d + 5)/N), from the moments
    E λ = 1, E λ² = 2, E λ³ = 6 (so the prediction shrinks to about ⅓ of ⟨Λw, x_q⟩)."""
    return 1.0 / (3.0 + (d + 5.0) / N)


def manifold_features(sample: PromptSample) -> tuple[np.ndarray, np.ndarray]:
    """On the manifold ŷ = hᵀ M x_q = ⟨vec M, vec(h x_qᵀ)⟩ with h = (1/N) Σ y_i x_i: the
    features φ_b (B, d²) and the targets y_q (B,)."""
    y = np.einsum("bnd,bd->bn", sample.X, sample.w)
    h = np.einsum("bn,bnd->bd", y, sample.X) / sample.X.shape[1]
    phi = np.einsum("bi,bj->bij", h, sample.x_q).reshape(sample.n, -1)
    return phi, np.einsum("bd,bd->b", sample.w, sample.x_q)


def sample_minimiser(sample: PromptSample) -> np.ndarray:
    """The minimiser M̂ of the empirical loss mean_b ½(h_bᵀ M x_qb − y_qb)² on a fixed sample (a
    linear least-squares problem in vec M, solved by ``lstsq``): the limit a Monte-Carlo flow
    on that sample can reach on the manifold."""
    phi, target = manifold_features(sample)
    d = sample.X.shape[2]
    return np.linalg.lstsq(phi, target, rcond=None)[0].reshape(d, d)


def sampling_covariance(task: LinearICLTask, reference: PromptSample, n: int) -> np.ndarray:
    """The covariance C ≈ H⁻¹ S H⁻¹ / n of the least-squares error vec(M̂ − Γ⁻¹) of the sample
    minimiser on n independent prompts (the sandwich formula: H = E φφᵀ, S = E r²φφᵀ, r the
    residual at the population minimiser Γ⁻¹), the moments estimated on a large ``reference``
    sample. An antithetic sample of B prompts holds n = B/2 independent ones (a pair (w, −w)
    has the same φφᵀ and r²φφᵀ), so pass n = B/2 for it."""
    phi, target = manifold_features(reference)
    r = phi @ np.linalg.inv(task.Gamma).reshape(-1) - target
    H = phi.T @ phi / reference.n
    S = (phi * (r * r)[:, None]).T @ phi / reference.n
    Hi = np.linalg.inv(H)
    return Hi @ S @ Hi / n
