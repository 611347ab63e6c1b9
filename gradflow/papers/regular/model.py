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
from scipy import sparse
from scipy.special import expit

from gradflow.attention import LastTokenModel, softmax_positions
from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.model import Observable, per_member_data
from gradflow.numerics import logistic_loss
from gradflow.papers.regular.data import RegularData, make_dataset

__all__ = ["Forward", "RegularTransformer"]

_TINY = 1e-280
"""The smallest softmax denominator :meth:`RegularTransformer.batched_grad` accepts: below it
(scores of one string all ≳ 640 below the largest score of its query's column) the shared
per-query shift would lose digits, and the members are computed one by one instead."""


_CHUNK_ENTRIES = 8_192
"""Entries (float64) of one (chunk, K, K) or (N, chunk) temporary of
:meth:`RegularTransformer.batched_grad`: 64 KiB, so that one call's temporaries stay in a 1 MiB
L2 cache (measured on even pairs: 12.9 µs per member at B = 1000 in one piece, against 9.5 at
B = 100)."""

_CANCELLATION = 100.0
"""The most by which the largest term of a gradient sum may exceed the block's largest entry
in :meth:`RegularTransformer.batched_grad` before the member is computed by :meth:`grad`
instead (the sums there cancel in another order)."""


class _PairIncidence:
    """The strings of a dataset as a sparse (string, token-pair) count matrix, for
    :meth:`RegularTransformer.batched_grad`.

    ``S[n, k·K + q_n]`` counts the positions of string n holding token k (q_n: its query), so
    for any K × K matrix P, ``(S @ P.ravel())[n] = Σ_l P[k_l, q_n]``: every sum over the
    positions of a string becomes one sparse product, for all members at once when P carries
    a trailing member axis.

    Parameters
    ----------
    data : RegularData
    """

    def __init__(self, data: RegularData):
        index = data.token_index
        self.K = index.K
        L, N = index.tokens.shape
        real = np.isfinite(index.pad)
        pair = (index.tokens * self.K + index.query)[real]
        rows = np.broadcast_to(np.arange(N), (L, N))[real]
        self.S = sparse.csr_matrix((np.ones(pair.size), (rows, pair)), (N, self.K**2))
        self.ST = self.S.T.tocsr()
        self.used = np.zeros(self.K**2, dtype=bool)
        self.used[pair] = True
        self.used = self.used.reshape(self.K, self.K)  # (token, query) pairs that occur


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
    hash_exclude = ("_incidence_cache",)  # batched_grad's sparse form of the last data

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

    @per_member_data("_incidence_cache")
    def _incidence(self, key: tuple, shared: bool
                   ) -> tuple[_PairIncidence, np.ndarray | None, RegularData] | None:
        """The sparse form of ``data``'s strings, the per-member embeddings (B, d, K) when
        they differ (None: shared), and one dataset carrying the strings; None when per-member
        datasets have different strings, labels or weights.

        Kept by :func:`gradflow.model.per_member_data` for the identity of the datasets.
        """
        first = key[0]
        same = all(np.array_equal(d.symbols, first.symbols)
                   and np.array_equal(d.lengths, first.lengths) and np.array_equal(d.y, first.y)
                   and np.array_equal(d.weights, first.weights)
                   and d.embedding.shape == first.embedding.shape for d in key[1:])
        if not same:
            answer = None
        else:
            shared = all(d.embedding is first.embedding
                         or np.array_equal(d.embedding, first.embedding) for d in key[1:])
            answer = (_PairIncidence(first),
                      None if shared else np.stack([d.embedding for d in key]), first)
        return answer

    def batched_grad(self, params: dict[str, np.ndarray], data: RegularData | list[RegularData]
                     ) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11), vectorised over the members.

        With P_b = exp(M_b − c_b) for M_b = Eᵀ W_b E / λ (c_b: each query column's largest
        occurring score, a shift every string of that query shares), the string sums are
        sparse products with the (string, token-pair) counts S (:class:`_PairIncidence`),
        all members at once:

            Z = S P,   f = S (P ∘ s_k) / Z,   h = g / Z,
            ∂L/∂M_kq = P_kq (s_k (Sᵀ h)_kq − (Sᵀ (h f))_kq),   ∂L/∂s_k = Σ_q P_kq (Sᵀ h)_kq,

        then ∇_W = E (∂L/∂M) Eᵀ / λ and ∇_u = E ∂L/∂s (``docs/derivations/regular.md``;
        g = w_n ∂ℓ_n/∂f_n). Elementwise work is on (K, K) and (N,) arrays per member instead
        of (L, N). If a denominator falls below :data:`_TINY` (the shared shift would lose
        digits), or per-member datasets differ in their strings, the members are computed one
        by one, as is a single member (faster through :meth:`grad`), and so is a member whose
        sums cancel by more than :data:`_CANCELLATION` (saturated attention: there the two
        forms round differently). Real θ only, as :meth:`grad`.

        Parameters
        ----------
        params : dict
            ``u`` (B, d) and ``W`` (B, d, d).
        data : RegularData or list of B RegularData
            Shared by every member, or one per member (vectorised when only the embeddings
            differ).

        Returns
        -------
        dict
            ``u`` (B, d) and ``W`` (B, d, d): row b is ``grad`` of member b, to rounding.
        """
        if params["W"].shape[0] == 1:  # one member: grad is faster (22 against 38 µs)
            return super().batched_grad(params, data)
        found = self._incidence(data)
        if found is None:
            return super().batched_grad(params, data)
        B = params["W"].shape[0]
        # members in chunks whose (chunk, K, K) temporaries stay in cache (_CHUNK_ENTRIES)
        chunk = max(2, _CHUNK_ENTRIES // max(found[0].K ** 2, found[0].S.shape[0]))
        if B > chunk:
            incidence, embeddings, strings = found
            parts = [self._batched_chunk(
                {k: v[lo:lo + chunk] for k, v in params.items()},
                (incidence, None if embeddings is None else embeddings[lo:lo + chunk], strings),
                data[lo:lo + chunk] if isinstance(data, list) else data)
                for lo in range(0, B, chunk)]
            return {k: np.concatenate([p[k] for p in parts]) for k in self.layout.names}
        return self._batched_chunk(params, found, data)

    def _batched_chunk(self, params: dict[str, np.ndarray],
                       found: tuple[_PairIncidence, np.ndarray | None, RegularData],
                       data: RegularData | list[RegularData]) -> dict[str, np.ndarray]:
        """:meth:`batched_grad` of one chunk of members, vectorised (``data``: the chunk's,
        for the members that go through :meth:`grad`)."""
        incidence, embeddings, strings = found
        u, W = params["u"], params["W"]
        B, K = W.shape[0], incidence.K
        E = strings.embedding if embeddings is None else embeddings
        one_hot = embeddings is None and strings.token_index.one_hot
        M = W / self.lam if one_hot else (np.swapaxes(E, -1, -2) @ W @ E) / self.lam
        M = np.where(incidence.used, M, -np.inf)  # pairs that never occur carry no weight
        P = np.exp(M - M.max(axis=1, keepdims=True))  # (B, K, K), shift per query column
        s = u if one_hot else (np.swapaxes(E, -1, -2) @ u[:, :, None])[:, :, 0]  # Eᵀu (B, K)
        both = np.empty((K * K, 2 * B))  # members last and contiguous, as the product wants
        both[:, :B] = P.reshape(B, -1).T
        both[:, B:] = (P * s[:, :, None]).reshape(B, -1).T
        Z, numerator = np.split(incidence.S @ both, 2, axis=1)  # (N, B) each
        if not np.all(Z > _TINY):
            return super().batched_grad(params, data)
        f = numerator / Z
        y, w = strings.y[:, None], strings.weights[:, None]
        h = y * w * -expit(-y * f) / Z  # g / Z
        hf = h * f
        # the sums of the terms' magnitudes too: they bound the rounding of the cancelling sums
        sums = (incidence.ST @ np.concatenate([h, hf, np.abs(h), np.abs(hf)], axis=1)).T
        A1, A2, A1_abs, A2_abs = sums.reshape(4, B, K, K)  # Sᵀ h, Sᵀ(h f) and |·| forms
        b_W = P * (s[:, :, None] * A1 - A2) / self.lam
        b_u = (P * A1).sum(axis=2)
        # Where the gradient is far below its terms (saturated attention: s − f ≈ 0), this
        # form and grad's round differently by up to ε·terms; such members go through grad,
        # so the two agree to ~_CANCELLATION·ε relative everywhere.
        terms_W = P * (np.abs(s)[:, :, None] * A1_abs + A2_abs) / self.lam
        terms_u = (P * A1_abs).sum(axis=2)
        ill = ((terms_W.max(axis=(1, 2)) > _CANCELLATION * np.abs(b_W).max(axis=(1, 2)))
               | (terms_u.max(axis=1) > _CANCELLATION * np.abs(b_u).max(axis=1)))
        if one_hot:
            out = {"u": b_u, "W": b_W}
        else:
            out = {"u": (E @ b_u[:, :, None])[:, :, 0], "W": E @ b_W @ np.swapaxes(E, -1, -2)}
        if ill.any():
            members = np.flatnonzero(ill)
            redo = super().batched_grad(
                {k: v[members] for k, v in params.items()},
                [data[b] for b in members] if isinstance(data, list) else data)
            for k in out:
                out[k][members] = redo[k]
        return out

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
