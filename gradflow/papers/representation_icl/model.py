"""In-context learning with representations: multi-head softmax attention learns ridge
regression (Yang, Huang, Liang, Chi, NeurIPS 2024, "In-context learning with representations:
contextual generalization of trained transformers").

The paper's model and loss (its eq. (9); the normalisation ½ Σ_k is a modelling choice of
gradflow: ``docs/derivations/representation_icl.md``, §Exact population loss). Every prompt
holds the same N tokens v_1..v_N of a dictionary of K with
labels y_i = λᵀ(f_i + ε_i); head h predicts token k's label from softmax(Vᵀ Q_h v_k) over the
prompt, and ŷ_k = Σ_h w_{h,k} yᵀ softmax(Vᵀ Q_h v_k). With a_k = Σ_h w_{h,k} s_{h,k} and
M = ZᵀZ + mτ I_N the exact population loss is

    L = ½ Σ_k [‖Z a_k − f_k‖² + mτ‖a_k − 1{k≤N} e_k‖² + mτ 1{k>N}].

Derivation: ``docs/derivations/representation_icl.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model, Observable
from gradflow.numerics import softmax
from gradflow.papers.representation_icl.data import RepresentationTask
from gradflow.papers.representation_icl.theory import ridge
from gradflow.validate import generator, integer

__all__ = ["RepresentationTransformer"]


class RepresentationTransformer(Model):
    """H softmax heads: blocks ``Q`` (H, d, d) and ``w`` (H, K).

    Parameters
    ----------
    d, K : int
    H : int
        Number of heads; the optimum is reachable when H ≥ N (Proposition 1).
    """

    data_type = RepresentationTask

    def __init__(self, d: int, K: int, H: int):
        self.d, self.K, self.H = integer(d, "d"), integer(K, "K"), integer(H, "H")
        self._layout = Layout({"Q": (self.H, self.d, self.d), "w": (self.H, self.K)})

    def __repr__(self) -> str:
        return f"RepresentationTransformer(d={self.d}, K={self.K}, H={self.H})"

    @property
    def layout(self) -> Layout:
        return self._layout

    def init(self, rng: Any = None, preset: str = "paper", beta: float = 1.0) -> np.ndarray:
        """``"paper"``: Q_h entries N(0, β²), w = 0."""
        if preset != "paper":
            raise ArgumentError(f"preset must be 'paper', got {preset!r}")
        Q = beta * generator(rng).standard_normal((self.H, self.d, self.d))
        return self.layout.pack({"Q": Q, "w": np.zeros((self.H, self.K))})

    def check_data(self, data: Any) -> None:
        if not isinstance(data, RepresentationTask):
            raise ArgumentError(f"data must be a RepresentationTask, got {type(data).__name__}")
        if (data.d, data.K) != (self.d, self.K):
            raise ArgumentError(f"task has (d, K) = {(data.d, data.K)}, the model "
                                f"{(self.d, self.K)}")

    def attention(self, Q: np.ndarray, data: RepresentationTask) -> np.ndarray:
        """s[h, k] = softmax over the N prompt tokens of Vᵀ Q_h v_k; shape (H, K, N)."""
        V = data.tokens[:, : data.N]
        logits = np.einsum("di,hde,ek->hki", V, Q, data.tokens)
        return softmax(logits, axis=2)

    def combinations(self, params: dict[str, np.ndarray], data: RepresentationTask):
        s = self.attention(params["Q"], data)
        return s, np.einsum("hk,hki->ik", params["w"], s)  # a: (N, K)

    def sample_losses(self, params: dict[str, np.ndarray], data: RepresentationTask) -> np.ndarray:
        """Per-token terms of L, shape (K,)."""
        _, a = self.combinations(params, data)
        err_f = data.Z @ a - data.features
        target = np.zeros((data.N, data.K))
        target[:, : data.N] = np.eye(data.N)
        err_a = a - target
        mt = data.m * data.tau
        extra = np.where(np.arange(data.K) >= data.N, mt, 0.0)
        return 0.5 * (np.sum(err_f * err_f, axis=0) + mt * np.sum(err_a * err_a, axis=0) + extra)

    def sample_weights(self, data: RepresentationTask) -> float:
        """1: the population loss is the sum of the per-token terms."""
        return 1.0

    def grad(self, params: dict[str, np.ndarray], data: RepresentationTask
             ) -> dict[str, np.ndarray]:
        """g_k = M(a_k − a_k*); ∂L/∂w_{h,k} = s_{h,k}ᵀ g_k;
        ∂L/∂Q_h = Σ_k w_{h,k} V [s_{h,k} ⊙ (g_k − (s_{h,k}ᵀ g_k) 1)] v_kᵀ."""
        s, a = self.combinations(params, data)
        g = data.M @ a - data.targets  # (N, K)
        sg = np.einsum("hki,ik->hk", s, g)
        grad_w = sg
        inner = params["w"][:, :, None] * s * (g.T[None, :, :] - sg[:, :, None])  # (H, K, N)
        V = data.tokens[:, : data.N]
        grad_Q = np.einsum("di,hki,ek->hde", V, inner, data.tokens)
        return {"Q": grad_Q, "w": grad_w}

    def grad_batch(self, thetas: np.ndarray, data: RepresentationTask) -> np.ndarray:
        """The gradient of the loss at many points at once (the formulas of :meth:`grad`
        with a leading batch axis), for finite-difference Jacobians: ``thetas`` (B, P) →
        (B, P). Real θ only."""
        thetas = np.asarray(thetas, dtype=float)
        B = thetas.shape[0]
        Q = thetas[:, : self.H * self.d * self.d].reshape(B, self.H, self.d, self.d)
        w = thetas[:, self.H * self.d * self.d:].reshape(B, self.H, self.K)
        V = data.tokens[:, : data.N]
        logits = np.matmul(np.matmul(V.T, Q), data.tokens)  # (B, H, N, K): v_iᵀ Q_h v_k
        s = softmax(logits, axis=2).transpose(0, 1, 3, 2)  # (B, H, K, N)
        a = np.einsum("bhk,bhki->bik", w, s)  # (B, N, K)
        g = np.matmul(data.M, a) - data.targets  # (B, N, K)
        sg = np.einsum("bhki,bik->bhk", s, g)
        inner = w[..., None] * s * (g.transpose(0, 2, 1)[:, None] - sg[..., None])
        grad_Q = np.matmul(np.matmul(V, inner.transpose(0, 1, 3, 2)), data.tokens.T)
        return np.concatenate([grad_Q.reshape(B, -1), sg.reshape(B, -1)], axis=1)

    def observables(self, data: RepresentationTask, *, n_tasks: int = 200,
                    rng: Any = 0) -> dict[str, Observable]:
        """``loss``, ``gap`` = L − inf L computed as ½ Σ_k (a_k − a_k*)ᵀ M (a_k − a_k*) (exact,
        no cancellation: L is quadratic in a with Hessian M), and ``ridge_error`` /
        ``ridge_error_ood``: the mean of ‖ŷ − ŷ_ridge‖²/K over ``n_tasks`` fixed fresh task
        vectors λ ~ N(0, I) (OOD: λ ~ N(1, 4I)) with label noise, ŷ_ridge the ridge predictor
        with penalty mτ."""
        gen = generator(rng)
        draws = {}
        for name, mean, std in (("ridge_error", 0.0, 1.0), ("ridge_error_ood", 1.0, 2.0)):
            lam = mean + std * gen.standard_normal((n_tasks, data.m))
            noise = np.sqrt(data.tau) * gen.standard_normal((n_tasks, data.m, data.N))
            y = lam @ data.Z + np.einsum("bm,bmi->bi", lam, noise)
            draws[name] = (y, ridge(data, y, data.m * data.tau))

        def gap(th: np.ndarray) -> float:
            _, a = self.combinations(self.layout.unpack(th), data)
            delta = a - data.a_star
            return float(0.5 * np.sum(delta * (data.M @ delta)))

        def predictions(th: np.ndarray, y: np.ndarray) -> np.ndarray:
            _, a = self.combinations(self.layout.unpack(th), data)
            return y @ a

        def ridge_error(name: str) -> Observable:
            y, reference = draws[name]
            return lambda th: float(np.mean(np.sum((predictions(th, y) - reference) ** 2,
                                                   axis=1)) / data.K)

        return {
            "loss": lambda th: float(self.loss(self.layout.unpack(th), data)),
            "gap": gap,
            "ridge_error": ridge_error("ridge_error"),
            "ridge_error_ood": ridge_error("ridge_error_ood"),
        }
