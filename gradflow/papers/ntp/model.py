"""Next-token prediction with a one-layer transformer (Huang, Liang, Yang, NeurIPS 2024,
"Non-asymptotic convergence of training transformers for next-token prediction").

Model (the paper's one-layer transformer and its loss, Eq. (1); the details are modelling
choices of gradflow: ``docs/derivations/ntp.md``, §Model details): for a sentence
X = [x_1..x_L] (columns are token embeddings e_t = E[:, t]) with query q = x_L,

    s = Xᵀ W_kq q,   φ = softmax(s),   h = X φ,   u = Eᵀ W_ov h,   ℓ = −log softmax(u)_y,

and the mean of ℓ over the dataset. The derivation of the gradient, with the symbols used here
(``s``, ``log_phi``, ``h``, ``u``, ``rho``, ``r_tilde``, ``a_tilde``, ``g_s``), is in
``docs/derivations/ntp.md``.

The data and their realizability conditions are in :mod:`gradflow.papers.ntp.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradflow.attention import LastTokenModel, softmax_positions
from gradflow.model import Observable
from gradflow.numerics import cross_entropy, log_softmax, logsumexp
from gradflow.papers.ntp.data import NTPData

__all__ = ["Forward", "NTPTransformer"]


@dataclass(frozen=True)
class Forward:
    """Forward quantities (symbols of ``docs/derivations/ntp.md``).

    log_phi : (N, L)      log attention, log softmax of s = Xᵀ W_kq q (−inf on padding)
    h : (N, d)            attention output X φ
    u : (N, K)            logits Eᵀ W_ov h
    log_p : (N, K)        log softmax(u)
    """

    log_phi: np.ndarray
    h: np.ndarray
    u: np.ndarray
    log_p: np.ndarray


class NTPTransformer(LastTokenModel):
    """One-layer transformer for next-token prediction: blocks ``W_kq`` and ``W_ov`` (d × d).

    Parameters
    ----------
    d : int
        Embedding dimension (rows of the dataset's E).

    Initialisation: ``init(preset="zero")`` (both weights 0, uniform attention; a modelling
    choice of gradflow: docs/derivations/ntp.md, §Initialisation) or ``"normal"`` with entries
    N(0, 1).
    """

    data_type = NTPData

    def __init__(self, d: int):
        super().__init__(d, {"W_kq": (int(d), int(d)), "W_ov": (int(d), int(d))})

    def __repr__(self) -> str:
        return f"NTPTransformer(d={self.d})"

    def forward(self, params: dict[str, np.ndarray], data: NTPData) -> Forward:
        """Scores, attention, output and logits of every sentence (vectorised, padded)."""
        log_phi = self.log_attention(data, params["W_kq"])
        h = np.einsum("nl,nld->nd", np.exp(log_phi), data.X)
        u = (h @ params["W_ov"].T) @ data.embedding
        return Forward(log_phi=log_phi, h=h, u=u, log_p=log_softmax(u, axis=1))

    def sample_losses(self, params: dict[str, np.ndarray], data: NTPData) -> np.ndarray:
        """Cross-entropy −log p_y per sentence, shape (N,), accurate to the smallest double."""
        return cross_entropy(self.forward(params, data).u, data.y)

    def scaled_grad(
        self, params: dict[str, np.ndarray], data: NTPData
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The gradient with the largest exponential factored out of each block.

        Computed in token-index form (``docs/derivations/ntp.md`` §"Token-index form"): with
        C[k, n] the attention mass of sentence n on token k and P = Eᵀ W_ov E the logits are
        u = P C, and both gradients are scatters of (L, N) arrays mapped back by E · Eᵀ. Real θ
        only (the loss, not the gradient, is what the complex step differentiates).

        Returns
        -------
        blocks : dict of (d, d) arrays
        log_scales : dict of float
            True gradient of block b = exp(log_scales[b]) · blocks[b]; −inf for a zero block.
        """
        index, N = data.token_index, data.n
        P = index.token_matrix(params["W_ov"])  # logits u_n = P C_n
        phi, z, log_total = softmax_positions(index.scores(index.token_matrix(params["W_kq"])))
        C = index.counts(phi)  # (K, N): attention mass per token, h_n = E C_n
        u = P @ C  # (K, N)
        v_off = u - u.ravel()[data.label_flat] + data.label_pad  # u_c − u_y; −inf at c = y
        top = v_off.max(axis=0)
        e = np.exp(v_off - top)
        total = e.sum(axis=0)
        log_odds = top + np.log(total)  # log Σ_{c≠y} e^{u_c − u_y}
        rho = log_odds - np.logaddexp(0.0, log_odds)  # log Σ_{c≠y} p_c: residual scale
        r_tilde = e / total  # r = p − 1_y = e^ρ r̃
        r_tilde.ravel()[data.label_flat] = -1.0
        top_rho = float(rho.max())
        weight = np.exp(rho - top_rho)  # the 1/N of the mean goes into the scale
        g_ov = index.weight_matrix((r_tilde * weight) @ C.T)  # Σ_n w_n E r̃_n h_nᵀ
        # ∂ℓ/∂s_l = Σ_m φ_l φ_m (a_l − a_m) with a = X W_ovᵀ E r = e^ρ ã: the pairwise form
        # has no cancellation
        a_tilde = index.gather_columns(P.T @ r_tilde)  # (L, N)
        log_phi = z - log_total
        log_w = log_phi[:, None, :] + (log_phi + rho)[None, :, :] + index.pair_pad
        top_w = float(log_w.max())
        if np.isfinite(top_w):
            diff = a_tilde[:, None, :] - a_tilde[None, :, :]
            g_s = np.sum(np.exp(log_w - top_w) * diff, axis=1)
            g_kq = index.weight_matrix(index.scatter_pairs(g_s))
        else:
            g_kq = np.zeros((self.d, self.d))
        log_n = np.log(N)
        return {"W_kq": g_kq, "W_ov": g_ov}, {"W_kq": top_w - log_n, "W_ov": top_rho - log_n}

    def grad(self, params: dict[str, np.ndarray], data: NTPData) -> dict[str, np.ndarray]:
        """Closed-form gradient of the mean cross-entropy (``docs/derivations/ntp.md``): the
        :meth:`scaled_grad` blocks times their scales. Real θ only."""
        blocks, log_scales = self.scaled_grad(params, data)
        return {k: v * np.exp(log_scales[k]) if np.isfinite(log_scales[k]) else v * 0.0
                for k, v in blocks.items()}

    # ---------------------------------------------------------------- observables

    def accuracy(self, params: dict[str, np.ndarray], data: NTPData) -> float:
        """Fraction of sentences whose arg-max logit is the next token."""
        return float(np.mean(np.argmax(self.forward(params, data).u, axis=1) == data.y))

    def log_off_optimal_mass(self, params: dict[str, np.ndarray], data: NTPData) -> np.ndarray:
        """log of the attention mass on tokens other than x*, per sentence, shape (N,)."""
        fwd = self.forward(params, data)
        off = data.mask & (data.tokens != data.optimal[:, None])
        return logsumexp(np.where(off, fwd.log_phi, -np.inf), axis=1)

    def loss_excess(self, params: dict[str, np.ndarray], data: NTPData) -> float:
        """L − L_∞(W_ov), the loss above its floor with attention one-hot on x*
        (``docs/derivations/ntp.md``, §Two-stage normalised flow).

        Computed without cancellation: with δ = u − u_∞ − (u − u_∞)_y and p_∞ the floor's
        probabilities, ℓ − ℓ_∞ = log Σ_c p_∞,c e^{δ_c} = log1p(Σ_{c≠y} p_∞,c expm1(δ_c)) (the
        second form while the sum is small); u − u_∞ = Eᵀ W_ov Σ_{l: x_l ≠ x*} φ_l (x_l − e_x*)
        sums only the small off-optimal weights.
        """
        fwd = self.forward(params, data)
        E, W_ov = data.embedding, params["W_ov"]
        off = data.mask & (data.tokens != data.optimal[:, None])
        phi_off = np.where(off, np.exp(fwd.log_phi), 0.0)
        e_star = E.T[data.optimal]  # (N, d)
        shift = np.einsum("nl,nld->nd", phi_off, data.X - e_star[:, None, :])
        du = (shift @ W_ov.T) @ E  # (N, K)
        rows = np.arange(data.n)
        delta = du - du[rows, data.y][:, None]
        log_p_inf = log_softmax((e_star @ W_ov.T) @ E, axis=1)
        terms = np.exp(log_p_inf) * np.expm1(delta)
        terms[rows, data.y] = 0.0
        total = terms.sum(axis=1)
        # log1p is exact for a small excess; far from the floor, log Σ p_∞ e^δ directly
        near = np.abs(total) < 0.5
        excess = np.where(near, np.log1p(np.where(near, total, 0.0)),
                          logsumexp(log_p_inf + delta, axis=1))
        return float(np.mean(excess))

    def observables(
        self, data: NTPData, *, references: dict[str, np.ndarray] | None = None
    ) -> dict[str, Observable]:
        """Loss, accuracy, loss excess, off-optimal attention mass, and, for every block with a
        reference direction W* in ``references``, ``one_minus_cos_<block>`` and
        ``dist_<block>`` = ‖W/‖W‖ − W*/‖W*‖‖_F.

        ``one_minus_cos`` is computed as dist²/2, exact where 1 − cos would cancel.
        """
        layout = self.layout

        def params(theta: np.ndarray) -> dict[str, np.ndarray]:
            return layout.unpack(theta)

        obs: dict[str, Observable] = {
            "loss": lambda th: float(np.mean(self.sample_losses(params(th), data))),
            "accuracy": lambda th: self.accuracy(params(th), data),
            "loss_excess": lambda th: self.loss_excess(params(th), data),
            "log_off_optimal_mass": lambda th: float(
                logsumexp(self.log_off_optimal_mass(params(th), data)) - np.log(data.n)),
        }
        for name, reference in (references or {}).items():
            unit = reference / np.linalg.norm(reference)

            def dist(th: np.ndarray, name: str = name, unit: np.ndarray = unit) -> float:
                W = params(th)[name]
                norm = np.linalg.norm(W)
                return float(np.linalg.norm(W / norm - unit)) if norm > 0 else np.nan

            obs[f"dist_{name}"] = dist
            obs[f"one_minus_cos_{name}"] = lambda th, dist=dist: dist(th) ** 2 / 2
            obs[f"norm_{name}"] = lambda th, name=name: float(np.linalg.norm(params(th)[name]))
        return obs
