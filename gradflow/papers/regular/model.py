"""Regular-language recognition with a one-layer transformer (Huang, Liang, Yang, ICML 2025,
"How Transformers Learn Regular Language Recognition"): even pairs and parity with
chain-of-thought.

Model (the paper's forward pass and loss): each (position ℓ, symbol w) has its own embedding
E_ℓ^w (column 2(ℓ−1)+w of E), x_ℓ = E_ℓ^{x_ℓ}, the query is the last token, and

    a = Xᵀ W x_L / λ,   φ = softmax(a),   h = X φ,   T(X) = uᵀ h = Σ_ℓ φ_ℓ s_ℓ,   s_ℓ = ⟨u, x_ℓ⟩,

trained with the logistic loss summed over samples with weights (1/|I_L| per length; the data
are in :mod:`gradflow.papers.regular.data`). The
derivation, with the symbols used here (``s``, ``log_phi``, ``f``, ``g``, ``G_W``), is in
``docs/derivations/regular.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from gradflow.attention import LastTokenModel, softmax_positions
from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.model import Observable
from gradflow.numerics import logistic_loss
from gradflow.papers.regular.data import RegularData, make_dataset

__all__ = ["Forward", "RegularTransformer"]


@dataclass(frozen=True)
class Forward:
    """s, log_phi: (N, L); h: (N, d); f: (N,) — symbols of docs/derivations/regular.md."""

    s: np.ndarray
    log_phi: np.ndarray
    h: np.ndarray
    f: np.ndarray


class RegularTransformer(LastTokenModel):
    """T(X) = uᵀ X softmax(Xᵀ W x_L / λ): blocks ``u`` (d,) and ``W`` (d, d).

    Parameters
    ----------
    d : int
        Embedding dimension.
    lam : float
        Attention temperature λ > 0 (paper: 2); it also boosts W's rate in phase 1 of
        training (:func:`phase_rates`).

    Initialisation: ``init(preset="zero")`` (u = 0, W = 0; a modelling choice of gradflow:
    docs/derivations/regular.md, §Zero initialisation) or ``"normal"`` with entries N(0, 0.01²).
    """

    data_type = RegularData
    default_scale = 0.01

    def __init__(self, d: int, lam: float = 2.0):
        if not (np.isfinite(lam) and lam > 0):
            raise ArgumentError(f"lam must be a positive number, got {lam!r}")
        super().__init__(d, {"u": (int(d),), "W": (int(d), int(d))})
        self.lam = float(lam)

    def __repr__(self) -> str:
        return f"RegularTransformer(d={self.d}, lam={self.lam:g})"

    def forward(self, params: dict[str, np.ndarray], data: RegularData) -> Forward:
        """Token scores, attention, attention output and model output of every string."""
        s = data.X @ params["u"]
        log_phi = self.log_attention(data, params["W"], self.lam)
        phi = np.exp(log_phi)
        h = np.einsum("nl,nld->nd", phi, data.X)
        f = np.sum(np.where(data.mask, phi * s, 0.0), axis=1)
        return Forward(s=s, log_phi=log_phi, h=h, f=f)

    def sample_losses(self, params: dict[str, np.ndarray], data: RegularData) -> np.ndarray:
        """Unweighted logistic losses ℓ(y_n T(X_n)), shape (N,)."""
        return logistic_loss(data.y * self.forward(params, data).f)

    def sample_weights(self, data: RegularData) -> np.ndarray:
        """The paper's weights w_n: the loss is a sum over lengths of per-length means."""
        return data.weights

    def grad(self, params: dict[str, np.ndarray], data: RegularData) -> dict[str, np.ndarray]:
        """Closed-form gradient (``docs/derivations/regular.md``) in token-index form.

        With x_l = E[:, k_l], the scores are M[k_l, k_L] for M = Eᵀ W E / λ and s_l = (Eᵀu)[k_l];
        ∇_u L = E Σ_l (g φ)_l e_{k_l} and ∇_W L = E B Eᵀ / λ with B the (token, query) scatter
        of G_W (:class:`~gradflow.attention.TokenIndex`). Real θ only.
        """
        index = data.token_index
        phi = softmax_positions(index.scores(index.token_matrix(params["W"] / self.lam)))[0]
        s = index.gather(index.token_vector(params["u"]))  # (L, N)
        f = (phi * s).sum(axis=0)
        g = data.y * data.weights * -expit(-data.y * f)  # w_n ∂ℓ_n/∂f_n
        g_phi = phi * g
        grad_u = index.weight_vector(index.scatter_tokens(g_phi))
        G_W = g_phi * (s - f)  # ∂L/∂a_l · λ
        grad_W = index.weight_matrix(index.scatter_pairs(G_W / self.lam))
        return {"u": grad_u, "W": grad_W}

    # ---------------------------------------------------------------- observables

    def margins(self, params: dict[str, np.ndarray], data: RegularData) -> np.ndarray:
        """y_n ⟨u, h_n⟩, shape (N,)."""
        return data.y * self.forward(params, data).f

    def normalized_margin(self, data: RegularData) -> Observable:
        """θ ↦ min_n y_n⟨u, h_n⟩/‖u‖ (> 0 once u separates the attention outputs)."""

        def margin(theta: np.ndarray) -> float:
            params = self.layout.unpack(theta)
            norm = np.linalg.norm(params["u"])
            return float(np.min(self.margins(params, data)) / norm) if norm > 0 else -np.inf

        return margin

    def separable(self, data: RegularData, terminal: bool = False) -> Event:
        """The attention outputs become linearly separable by u itself (margin crosses 0)."""
        margin = self.normalized_margin(data)
        return Event("separable", lambda th: max(margin(th), -1e3), terminal=terminal,
                     direction=1)

    def observables(
        self, data: RegularData, *, W_ref: np.ndarray | None = None,
        u_refs: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Observable]:
        """Quantities of the paper's claims (Prop. 4.3, Thm 4.4; docs/derivations/regular.md,
        §Claims and their observables) as functions of θ.

        ==========================  ==================================================
        ``loss``                    the weighted loss
        ``scores`` (P, 2)           s_ℓ^w = ⟨u, E_ℓ^w⟩ for every position and symbol
        ``attention_pos`` (L,)      mean attention by position over positive strings
                                    of the longest length (``attention_neg``: negatives)
        ``u_norm``, ``W_norm``      ‖u‖, ‖W‖_F (``W_change``: ‖W − W_ref‖ with ``W_ref``)
        ``normalized_margin``       min_n y_n⟨u, h_n⟩/‖u‖
        ``cos_<name>``              cos(u, u_ref) for every ``u_refs`` entry
        ``accuracy``                fraction of strings with y·T > 0
        ==========================  ==================================================
        """
        layout = self.layout
        E = data.embedding
        longest = data.lengths == data.lengths.max()
        pos, neg = longest & (data.y > 0), longest & (data.y < 0)

        def params(th: np.ndarray) -> dict[str, np.ndarray]:
            return layout.unpack(th)

        def attention(rows: np.ndarray) -> Observable:
            return lambda th: np.mean(np.exp(self.forward(params(th), data).log_phi[rows]),
                                      axis=0)

        def cos(a: np.ndarray, b: np.ndarray) -> float:
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            return float(a @ b / (na * nb)) if na > 0 and nb > 0 else np.nan

        obs: dict[str, Observable] = {
            "loss": lambda th: float(self.loss(params(th), data)),
            "scores": lambda th: (E.T @ params(th)["u"]).reshape(-1, 2),
            "attention_pos": attention(pos),
            "attention_neg": attention(neg),
            "u_norm": lambda th: float(np.linalg.norm(params(th)["u"])),
            "W_norm": lambda th: float(np.linalg.norm(params(th)["W"])),
            "normalized_margin": self.normalized_margin(data),
            "accuracy": lambda th: float(np.mean(self.margins(params(th), data) > 0)),
        }
        if W_ref is not None:
            obs["W_change"] = lambda th: float(np.linalg.norm(params(th)["W"] - W_ref))
        for name, ref in (u_refs or {}).items():
            obs[f"cos_{name}"] = lambda th, ref=ref: cos(params(th)["u"], ref)
        return obs

    def predict(self, params: dict[str, np.ndarray], strings: Sequence[Sequence[int]],
                max_position: int, embedding: np.ndarray | None = None) -> np.ndarray:
        """T(X) for arbitrary strings (labels unused), shape (len(strings),)."""
        probe = make_dataset(strings, [1] * len(strings), [1.0] * len(strings),
                             max_position=max_position, embedding=embedding)
        return self.forward(params, probe).f
