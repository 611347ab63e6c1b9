"""In-context linear regression with one linear self-attention layer (Zhang, Frei, Bartlett, JMLR
2024, "Trained transformers learn linear models in-context").

Two models, both from the initialisation of Assumption 3.3:

* :class:`LinearICLReduced` — the exact population flow in the reduced coordinates (U, u) of
  Lemma 5.2: ŷ = u hᵀ U x_q with h = (1/N) Σ y_i x_i, loss
  L(U, u) = ½ tr(Λ Mᵀ ΛΓ M) − tr(Λ² M) + ½ tr Λ with M = uU and Γ = (1 + 1/N)Λ + (tr Λ/N) I.
* :class:`LinearICLMixture` — the same reduced flow when Λ is itself random (a finite mixture
  of covariances; Theorem 4.5's setting).
* :class:`LinearICLFull` — the full-parameter layer f(E) = E + W^{PV} E (Eᵀ W^{KQ} E)/N on a
  fixed prompt sample, antithetic in w, as an off-manifold cross-check.

Derivations: ``docs/derivations/linear_icl.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model, Observable
from gradflow.papers.linear_icl.data import LinearICLMixtureTask, LinearICLTask, PromptSample
from gradflow.papers.linear_icl.theory import conserved, mixture_optimum, optimal_loss
from gradflow.validate import generator, integer

__all__ = ["LinearICLFull", "LinearICLMixture", "LinearICLReduced"]


class LinearICLReduced(Model):
    """The exact population gradient flow of ZFB in (U, u) (Lemma 5.2).

    Blocks ``U`` (d, d) and ``u`` (a scalar block, shape ()). On the invariant manifold of
    Assumption 3.3 every other entry of W^{KQ}, W^{PV} stays at its initial value (0, or the
    unused ones), so this flow *is* the full population flow there.

    Parameters
    ----------
    d : int
    """

    data_type = LinearICLTask

    def __init__(self, d: int):
        self.d = integer(d, "d")
        self._layout = Layout({"U": (self.d, self.d), "u": ()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.d})"

    @property
    def layout(self) -> Layout:
        return self._layout

    def init(self, rng: Any = None, preset: str = "theory", *, sigma: float | None = None,
             task: LinearICLTask | None = None) -> np.ndarray:
        """Assumption 3.3: U(0) = σ ΘΘᵀ with Θ Gaussian rescaled so ‖ΘΘᵀ‖_F = 1, u(0) = σ.

        Parameters
        ----------
        sigma : float, optional
            Default: half of ``task.sigma_bound()``; a σ at or above the bound is refused.
        task : LinearICLTask
            Needed for the bound.
        """
        if preset != "theory":
            raise ArgumentError(f"preset must be 'theory', got {preset!r}")
        if task is None:
            raise ArgumentError("init needs task= (Assumption 3.3's bound on σ depends on Γ)")
        bound = task.sigma_bound()  # a mixture's: the smallest over its components
        sigma = 0.5 * bound if sigma is None else float(sigma)
        if not 0 < sigma < bound:
            raise ArgumentError(
                f"sigma must lie in (0, {bound:.6g}): Assumption 3.3 needs σ²‖Γ‖_op√d < 2 "
                f"(for every component of a mixture), got sigma={sigma!r}"
            )
        theta = generator(rng).standard_normal((self.d, self.d))
        P = theta @ theta.T
        return self.layout.pack({"U": sigma * P / np.linalg.norm(P), "u": np.array(sigma)})

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        if data.d != self.d:
            raise ArgumentError(f"task has d={data.d}, the model has d={self.d}")

    def sample_losses(self, params: dict[str, np.ndarray], data: LinearICLTask) -> np.ndarray:
        """The population loss as a one-element array (it is exact; there are no samples)."""
        Lam, LG = data.Lambda, data.Lambda @ data.Gamma
        M = params["u"] * params["U"]
        value = (0.5 * np.trace(Lam @ M.T @ LG @ M) - np.trace(Lam @ Lam @ M)
                 + 0.5 * np.trace(Lam))
        return np.array([value])

    def grad(self, params: dict[str, np.ndarray], data: LinearICLTask) -> dict[str, np.ndarray]:
        """∂L/∂U = u G and ∂L/∂u = ⟨G, U⟩ with G = ΛΓ M Λ − Λ², M = uU."""
        Lam = data.Lambda
        U, u = params["U"], params["u"]
        G = Lam @ data.Gamma @ (u * U) @ Lam - Lam @ Lam
        return {"U": u * G, "u": np.array(np.sum(G * U))}

    def observables(self, data: LinearICLTask) -> dict[str, Observable]:
        """``loss``, ``excess`` = L − L*, ``balance`` = u² − ‖U‖_F² (conserved), and
        ``error_M`` = ‖uU − Γ⁻¹‖_F."""
        Gamma_inv = np.linalg.inv(data.Gamma)
        L_star = optimal_loss(data)

        def p(th):
            return self.layout.unpack(th)

        return {
            "loss": lambda th: float(self.loss(p(th), data)),
            "excess": lambda th: float(self.loss(p(th), data) - L_star),
            "balance": lambda th: conserved(p(th)["U"], p(th)["u"]),
            "error_M": lambda th: float(np.linalg.norm(p(th)["u"] * p(th)["U"] - Gamma_inv)),
        }


class LinearICLFull(Model):
    """The full LSA layer ŷ = [W^{PV} E Eᵀ W^{KQ} E / N]_{d+1, N+1} on a :class:`PromptSample`,
    with the query column included in E Eᵀ; blocks ``W_PV``, ``W_KQ`` ((d+1) × (d+1)); loss
    the sample mean of ½(ŷ − y_q)²."""

    data_type = PromptSample

    def __init__(self, d: int, N: int):
        self.d, self.N = integer(d, "d"), integer(N, "N")
        self._layout = Layout({"W_PV": (self.d + 1, self.d + 1), "W_KQ": (self.d + 1, self.d + 1)})

    @property
    def layout(self) -> Layout:
        return self._layout

    def embed(self, reduced: LinearICLReduced, theta_reduced: np.ndarray) -> np.ndarray:
        """The full θ of a reduced state: W^{PV} = [[0, 0], [0, u]], W^{KQ} = [[U, 0], [0, 0]]."""
        p = reduced.layout.unpack(theta_reduced)
        W_PV = np.zeros((self.d + 1, self.d + 1))
        W_KQ = np.zeros((self.d + 1, self.d + 1))
        W_PV[-1, -1] = p["u"]
        W_KQ[: self.d, : self.d] = p["U"]
        return self.layout.pack({"W_PV": W_PV, "W_KQ": W_KQ})

    def init(self, rng: Any = None, preset: str = "theory", **kwargs: Any) -> np.ndarray:
        """Assumption 3.3 embedded in the full matrices (see :meth:`LinearICLReduced.init`)."""
        reduced = LinearICLReduced(self.d)
        return self.embed(reduced, reduced.init(rng, preset, **kwargs))

    def check_data(self, data: Any) -> None:
        if not isinstance(data, PromptSample):
            raise ArgumentError(f"data must be a PromptSample, got {type(data).__name__}")
        if data.X.shape[1:] != (self.N, self.d):
            raise ArgumentError(f"prompts must have shape (B, {self.N}, {self.d}), "
                                f"got {data.X.shape}")

    def _parts(self, params, data):
        y = np.einsum("bnd,bd->bn", data.X, data.w)
        Z = np.concatenate([np.concatenate([data.X, y[:, :, None]], axis=2),
                            np.concatenate([data.x_q, np.zeros((data.n, 1))], axis=1)[:, None]],
                           axis=1)  # (B, N+1, d+1): columns of E as rows
        S = np.einsum("bni,bnj->bij", Z, Z) / self.N
        z_q = Z[:, -1]
        p = params["W_PV"][-1]
        v = np.einsum("bij,jk,bk->bi", S, params["W_KQ"], z_q)  # S W^{KQ} z_q
        y_hat = v @ p
        return S, z_q, p, v, y_hat - np.einsum("bd,bd->b", data.w, data.x_q)

    def sample_losses(self, params: dict[str, np.ndarray], data: PromptSample) -> np.ndarray:
        return 0.5 * self._parts(params, data)[-1] ** 2

    def grad(self, params: dict[str, np.ndarray], data: PromptSample) -> dict[str, np.ndarray]:
        """∂ŷ/∂W^{PV} = e_{d+1}(S W^{KQ} z_q)ᵀ and ∂ŷ/∂W^{KQ} = S p z_qᵀ, averaged with r."""
        S, z_q, p, v, r = self._parts(params, data)
        r = r / data.n
        grad_PV = np.zeros((self.d + 1, self.d + 1))
        grad_PV[-1] = r @ v
        grad_KQ = ((S @ p) * r[:, None]).T @ z_q
        return {"W_PV": grad_PV, "W_KQ": grad_KQ}

    def observables(self, data: PromptSample) -> dict[str, Observable]:
        """``loss`` and ``off_manifold`` = max |entry| outside W^{PV}[d, d] and W^{KQ}[:d, :d]."""
        mask_PV = np.ones((self.d + 1, self.d + 1), dtype=bool)
        mask_PV[-1, -1] = False
        mask_KQ = np.ones((self.d + 1, self.d + 1), dtype=bool)
        mask_KQ[: self.d, : self.d] = False

        def off(th: np.ndarray) -> float:
            p = self.layout.unpack(th)
            return float(max(np.abs(p["W_PV"][mask_PV]).max(), np.abs(p["W_KQ"][mask_KQ]).max()))

        return {"loss": lambda th: float(self.loss(self.layout.unpack(th), data)),
                "off_manifold": off}


class LinearICLMixture(LinearICLReduced):
    """The reduced population flow of ZFB in (U, u) when the covariance is random: the loss is
    Σ_j w_j L_j(U, u), L_j the reduced loss of covariance Λ_j (Theorem 4.5's setting). Every
    component keeps the w → −w symmetry, so the reduction to (U, u) stays exact and u² − ‖U‖_F²
    is still conserved. Layout, initialisation (with σ below every component's bound) and the
    data check are :class:`LinearICLReduced`'s.

    Parameters
    ----------
    d : int
    """

    data_type = LinearICLMixtureTask

    def sample_losses(self, params: dict[str, np.ndarray], data: LinearICLMixtureTask
                      ) -> np.ndarray:
        """The reduced loss L_j of each component, shape (n,)."""
        M = params["u"] * params["U"]
        return np.array([0.5 * np.trace(Lam @ M.T @ Lam @ Gamma @ M) - np.trace(Lam @ Lam @ M)
                         + 0.5 * np.trace(Lam)
                         for Lam, Gamma in zip(data.Lambdas, data.Gammas, strict=True)])

    def sample_weights(self, data: LinearICLMixtureTask) -> np.ndarray:
        """The components' probabilities: the population loss is Σ_j w_j L_j."""
        return data.weights

    def grad(self, params: dict[str, np.ndarray], data: LinearICLMixtureTask
             ) -> dict[str, np.ndarray]:
        """∂L/∂U = u G and ∂L/∂u = ⟨G, U⟩ with G = Σ_j w_j (Λ_j Γ_j M Λ_j − Λ_j²), M = uU."""
        U, u = params["U"], params["u"]
        M = u * U
        G = sum(w * (Lam @ Gamma @ M @ Lam - Lam @ Lam)
                for w, Lam, Gamma in zip(data.weights, data.Lambdas, data.Gammas, strict=True))
        return {"U": u * G, "u": np.array(np.sum(G * U))}

    def observables(self, data: LinearICLMixtureTask) -> dict[str, Observable]:
        """``loss``, ``balance`` = u² − ‖U‖_F² (conserved) and ``error_M`` = ‖uU − M*‖_F with M*
        the mixture's minimiser (:func:`~gradflow.papers.linear_icl.theory.mixture_optimum`)."""
        M_star = mixture_optimum(data)

        def p(th):
            return self.layout.unpack(th)

        return {
            "loss": lambda th: float(self.loss(p(th), data)),
            "balance": lambda th: conserved(p(th)["U"], p(th)["u"]),
            "error_M": lambda th: float(np.linalg.norm(p(th)["u"] * p(th)["U"] - M_star)),
        }
