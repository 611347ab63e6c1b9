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

from dataclasses import dataclass, fields

import numpy as np

from gradflow.attention import LastTokenModel, softmax_positions
from gradflow.model import Observable, per_member_data
from gradflow.numerics import cross_entropy, log_softmax, logsumexp
from gradflow.papers.ntp.data import NTPData

__all__ = ["Forward", "NTPTransformer"]

_CHUNK_ENTRIES = 16_384
"""Entries (float64) of the largest temporary of one chunk of members: 128 KiB, glibc's
default threshold above which an allocation is a fresh mmap (page-faulted on every use)."""


@dataclass(frozen=True)
class _Members:
    """The token-index arrays of B datasets padded to one (L, N) and stacked on a leading
    member axis M (1 for data shared by every member), for
    :meth:`NTPTransformer.batched_scaled_grad`. Padding sentences (beyond a member's own N)
    hold one real position (token 0) and are masked out through ``valid``.

    pair, column : (M, L, N) int    flat (token, query) index into K × K; flat (token, sentence)
                                    index into K × N
    pad : (M, L, N)                 0 on real positions, −inf on padding
    pair_pad : (M, L, L, N)         0 where l ≠ m are both real, −inf elsewhere
    label : (M, N) int              flat index of (y_n, n) into K × N
    label_pad : (M, K, N)           −inf at (y_n, n), 0 elsewhere
    valid : (M, N) bool             the member's own sentences
    log_n : (M,)                    log of each member's N (the mean's 1/N)
    embedding : (M, d, K) or None   None when every member's E is the identity
    """

    pair: np.ndarray
    column: np.ndarray
    pad: np.ndarray
    pair_pad: np.ndarray
    label: np.ndarray
    label_pad: np.ndarray
    valid: np.ndarray
    log_n: np.ndarray
    embedding: np.ndarray | None
    K: int

    def rows(self, lo: int, hi: int) -> _Members:
        """The members lo..hi−1 (all of them when the data are shared, M = 1)."""
        if self.valid.shape[0] == 1:
            return self
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        return _Members(**{k: v[lo:hi] if isinstance(v, np.ndarray) else v
                           for k, v in arrays.items()})

    @classmethod
    def of(cls, data: tuple[NTPData, ...]) -> _Members:
        K = data[0].K
        N = max(d.n for d in data)
        L = max(d.tokens.shape[1] for d in data)
        M = len(data)
        tokens = np.zeros((M, L, N), dtype=np.intp)
        query = np.zeros((M, N), dtype=np.intp)
        real = np.zeros((M, L, N), dtype=bool)
        real[:, 0, :] = True  # padding sentences: one real position, so their softmax is 1
        y = np.zeros((M, N), dtype=np.intp)
        valid = np.zeros((M, N), dtype=bool)
        for m, d in enumerate(data):
            index = d.token_index
            length = index.tokens.shape[0]
            tokens[m, :length, : d.n] = index.tokens
            real[m, :length, : d.n] = np.isfinite(index.pad)
            query[m, : d.n] = index.query
            y[m, : d.n] = d.y
            valid[m, : d.n] = True
        sentence = np.arange(N)
        label_pad = np.zeros((M, K, N))
        np.put_along_axis(label_pad, y[:, None, :], -np.inf, axis=1)
        pairs = real[:, :, None, :] & real[:, None, :, :] & ~np.eye(L, dtype=bool)[:, :, None]
        one_hot = all(d.token_index.one_hot for d in data)
        return cls(pair=tokens * K + query[:, None, :], column=tokens * N + sentence,
                   pad=np.where(real, 0.0, -np.inf), pair_pad=np.where(pairs, 0.0, -np.inf),
                   label=y * N + sentence, label_pad=label_pad, valid=valid,
                   log_n=np.log([d.n for d in data]),
                   embedding=None if one_hot else np.stack([d.embedding for d in data]), K=K)


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
    hash_exclude = ("_members_cache",)  # batched_scaled_grad's stacked per-member data

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

    @per_member_data("_members_cache")
    def _members(self, key: tuple, shared: bool) -> _Members | None:
        """The padded, stacked index arrays of ``data`` (one dataset or a list of per-member
        datasets), or None when the members' vocabularies or embedding shapes differ.

        Kept by :func:`gradflow.model.per_member_data` for the identity of the datasets.
        """
        shape = key[0].embedding.shape
        members = (_Members.of(key) if all(d.embedding.shape == shape for d in key)
                   else None)
        return members

    def batched_scaled_grad(
        self, params: dict[str, np.ndarray], data: NTPData | list[NTPData]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`scaled_grad` of B members at once, vectorised over the members.

        The token-index form of :meth:`scaled_grad` with a leading member axis: the members'
        sentences padded to one (L, N) (padding sentences carry ρ = −inf, so they add exact
        zeros and never set a scale), gathers and ``np.bincount`` scatters offset by member,
        and each member's largest exponential factored out of its own blocks; one member goes
        to :meth:`scaled_grad` (faster). Real θ only, as :meth:`scaled_grad`.

        Parameters
        ----------
        params : dict
            ``W_kq`` and ``W_ov``, each (B, d, d).
        data : NTPData or list of B NTPData
            Shared by every member, or one per member (any numbers and lengths of sentences;
            one vocabulary size and embedding shape, else computed member by member).

        Returns
        -------
        blocks : dict of (B, d, d) arrays
        log_scales : dict of (B,) arrays
            Member b's true gradient of block k is ``exp(log_scales[k][b]) · blocks[k][b]``;
            −inf for a zero block.
        """
        one = params["W_kq"].shape[0] == 1  # one member: scaled_grad is faster (52 vs 75 µs)
        members = None if one else self._members(data)
        if members is None:
            return self._scaled_grad_loop(params, data if isinstance(data, list) else [data])
        # Members in chunks whose largest temporary, the (chunk, L, L, N) pair weights, stays
        # under 128 KiB: larger arrays are mmapped and page-faulted afresh on every call, which
        # measured 1.5x slower per member (B = 16 against B = 10 on random instances).
        B = params["W_kq"].shape[0]
        L, N = members.pad.shape[1:]
        chunk = max(1, _CHUNK_ENTRIES // (L * L * N))
        if B <= chunk:
            return self._scaled_grad_chunk(params, members)
        parts = [self._scaled_grad_chunk({k: v[lo:lo + chunk] for k, v in params.items()},
                                         members.rows(lo, lo + chunk))
                 for lo in range(0, B, chunk)]
        return ({k: np.concatenate([p[0][k] for p in parts]) for k in self.layout.names},
                {k: np.concatenate([p[1][k] for p in parts]) for k in self.layout.names})

    def _scaled_grad_chunk(self, params: dict[str, np.ndarray], members: _Members
                           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`batched_scaled_grad` of one chunk of members, fully vectorised."""
        W_kq, W_ov = params["W_kq"], params["W_ov"]
        B, K = W_kq.shape[0], members.K
        E = members.embedding
        Et = None if E is None else E.swapaxes(1, 2)
        N = members.pad.shape[2]
        offsets = np.arange(B)[:, None, None]
        P = W_ov if E is None else Et @ W_ov @ E  # (B, K, K): logits u_n = P C_n
        M_kq = W_kq if E is None else Et @ W_kq @ E
        pair = members.pair + offsets * (K * K)
        scores = M_kq.reshape(-1)[pair] + members.pad  # (B, L, N)
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=1, keepdims=True)
        phi = e / total
        column = members.column + offsets * (K * N)
        C = np.bincount(column.ravel(), phi.ravel(), B * K * N).reshape(B, K, N)
        u = P @ C  # (B, K, N)
        flat = u.reshape(B, -1)
        label = np.broadcast_to(members.label, (B, N))
        v_off = u - np.take_along_axis(flat, label, axis=1)[:, None, :] + members.label_pad
        top = v_off.max(axis=1, keepdims=True)
        e_off = np.exp(v_off - top)
        total_off = e_off.sum(axis=1)
        log_odds = top[:, 0, :] + np.log(total_off)  # log Σ_{c≠y} e^{u_c − u_y}
        rho = np.where(members.valid, log_odds - np.logaddexp(0.0, log_odds), -np.inf)
        r_tilde = e_off / total_off[:, None, :]
        np.put_along_axis(r_tilde.reshape(B, -1), label, -1.0, axis=1)
        top_rho = rho.max(axis=1)  # (B,): each member's own largest residual scale
        weight = np.exp(rho - top_rho[:, None])
        g_ov = (r_tilde * weight[:, None, :]) @ C.swapaxes(1, 2)  # (B, K, K)
        a_tilde = (P.swapaxes(1, 2) @ r_tilde).reshape(-1)[column]  # (B, L, N)
        log_phi = z - np.log(total)
        # the largest pair weight of sentence n is its two largest log φ plus ρ_n (−inf with
        # fewer than two real positions), so the (B, L, L, N) weights are formed once, shifted
        top2 = np.sort(log_phi, axis=1)[:, -2:, :] if log_phi.shape[1] > 1 else None
        top_w = (np.full(B, -np.inf) if top2 is None
                 else np.max(top2[:, 0] + top2[:, 1] + rho, axis=1))
        finite = np.isfinite(top_w)  # False: no pair carries weight, the block is zero
        shift = np.where(finite, top_w, 0.0)[:, None, None]
        log_w = ((log_phi - shift)[:, :, None, :] + (log_phi + rho[:, None, :])[:, None, :, :]
                 + members.pair_pad)  # (B, L, L, N), at most 0
        diff = a_tilde[:, :, None, :] - a_tilde[:, None, :, :]
        g_s = np.einsum("blmn,blmn->bln", np.exp(log_w), diff)  # (B, L, N)
        g_kq = np.bincount(pair.ravel(), g_s.ravel(), B * K * K).reshape(B, K, K)
        g_kq[~finite] = 0.0
        if E is not None:
            g_kq, g_ov = E @ g_kq @ Et, E @ g_ov @ Et
        log_n = members.log_n
        return {"W_kq": g_kq, "W_ov": g_ov}, {"W_kq": top_w - log_n, "W_ov": top_rho - log_n}

    def _scaled_grad_loop(self, params: dict[str, np.ndarray], data: list[NTPData]
                          ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`batched_scaled_grad` member by member (datasets that do not stack, or one
        member); ``data`` has one dataset per member, or one for all."""
        B = params["W_kq"].shape[0]
        rows = [self.scaled_grad({k: v[b] for k, v in params.items()},
                                 data[b if len(data) == B else 0]) for b in range(B)]
        return ({k: np.stack([r[0][k] for r in rows]) for k in self.layout.names},
                {k: np.array([r[1][k] for r in rows]) for k in self.layout.names})

    def batched_grad(self, params: dict[str, np.ndarray], data: NTPData | list[NTPData]
                     ) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11): the
        :meth:`batched_scaled_grad` blocks times their scales. Real θ only.

        Parameters
        ----------
        params : dict
            ``W_kq`` and ``W_ov``, each (B, d, d).
        data : NTPData or list of B NTPData

        Returns
        -------
        dict of (B, d, d) arrays
        """
        blocks, log_scales = self.batched_scaled_grad(params, data)
        # exp(−inf) = 0: a zero block stays zero, as in grad
        return {k: v * np.exp(log_scales[k])[:, None, None] for k, v in blocks.items()}

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
