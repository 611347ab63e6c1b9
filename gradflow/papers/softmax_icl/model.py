"""In-context linear regression with one softmax attention layer on a finite feature dictionary
(Huang, Cheng, Liang, ICML 2024, "In-context convergence of transformers").

The paper's setting (``docs/derivations/softmax_icl.md``, §Modelling choices). Context tokens
and the query are drawn from K orthonormal features with
probabilities p; integrating out the task vector exactly, the loss of a prompt whose query is
v_k and whose feature counts are c is ℓ_k(c) = ½[(1 − a_k)² + Σ_{n≠k} a_n²], with attention mass
a_n = c_n e^{s_nk} / (Σ_m c_m e^{s_mk} [+ e^{s_kk} if the query is in the softmax]), and the
population loss L = Σ_k p_k Σ_c Mult(c; N, p) ℓ_k(c) is an exact finite sum over count vectors.
The trained parameter is the logit matrix S = Vᵀ Q V (K × K; column k = query feature k).
Derivation: ``docs/derivations/softmax_icl.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln

from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.layout import Layout
from gradflow.model import Model, Observable, per_member_data
from gradflow.papers.softmax_icl.data import FeatureTask
from gradflow.validate import generator, integer

__all__ = ["BalancedICL", "FeatureICL"]


_CHUNK_ENTRIES = 8_192
"""Entries (float64) of one (chunk, K, C) temporary of :meth:`FeatureICL.batched_grad`: 64 KiB,
so that the dozen such arrays of one call stay in a 1 MiB L2 cache. Measured at K = 4, N = 20
(C = 1,771): two members per call cost 1.8× one member's call each, ten members 2.1×."""


def _products(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` over a leading member axis of A (b, i, j); B is (j, k), shared — then the
    members are one matrix product (b·i, j) @ (j, k), not b small ones — or (b, j, k)."""
    if B.ndim == 2:
        return (A.reshape(-1, A.shape[-1]) @ B).reshape(*A.shape[:-1], B.shape[-1])
    return A @ B


class FeatureICL(Model):
    """The exact population flow of the HCL model in the logit matrix S (block ``S``, K × K).

    ``S[n, k] = v_nᵀ Q v_k``: key feature n, query feature k. Q itself follows as
    ∇_Q L = V (∂L/∂S) Vᵀ for any orthonormal dictionary V, and Q outside span(V) ⊗ span(V)
    never moves, so integrating S is exact.
    """

    data_type = FeatureTask
    hash_exclude = ("_members_cache",)  # batched_grad's stacked per-member tasks

    def __init__(self, K: int):
        self.K = integer(K, "K", minimum=2)
        self._layout = Layout({"S": (self.K, self.K)})

    def __repr__(self) -> str:
        return f"FeatureICL(K={self.K})"

    @property
    def layout(self) -> Layout:
        return self._layout

    def init(self, rng: Any = None, preset: str = "zero", scale: float = 1.0) -> np.ndarray:
        """``"zero"`` (Q0 = 0, the paper's) or ``"normal"`` (entries N(0, scale²))."""
        if preset == "zero":
            return self.layout.zeros()
        if preset == "normal":
            return scale * generator(rng).standard_normal(self.layout.size)
        raise ArgumentError(f"preset must be 'zero' or 'normal', got {preset!r}")

    def check_data(self, data: Any) -> None:
        if not isinstance(data, FeatureTask):
            raise ArgumentError(f"data must be a FeatureTask, got {type(data).__name__}")
        if data.K != self.K:
            raise ArgumentError(f"task has K={data.K} features, the model K={self.K}")

    def attention(self, S: np.ndarray, data: FeatureTask) -> tuple[np.ndarray, np.ndarray]:
        """Attention mass per feature ``a[k, n, c]`` (query k, key feature n, count vector c)
        and the query's own mass ``a_q[k, c]`` (0 unless the query is in the softmax).

        The softmax of the logits log c_n + s_nk is c_n e^{s_nk} / Σ_m c_m e^{s_mk}: one
        exponential of the K × K matrix S (shifted by each column's real maximum, so nothing
        overflows and the complex step stays exact), then products with the counts. The count
        axis is last, so sums over features run vectorised over the C count vectors.
        """
        E = np.exp(S - S.real.max(axis=0))  # E[n, k] = e^{s_nk − max_m s_mk}
        mass = E.T[:, :, None] * data.counts.T[None, :, :]  # (k, n, C)
        total = E.T @ data.counts.T  # (k, C)
        if not data.include_query:
            return mass / total[:, None, :], np.zeros(total.shape)
        own = np.diagonal(E)[:, None]  # the query token's e^{s_kk − max}, count 1
        total = total + own
        return mass / total[:, None, :], own / total

    def per_query_losses(self, params: dict[str, np.ndarray], data: FeatureTask) -> np.ndarray:
        """L_k = E_c[ℓ_k(c)], the prediction error given x_q = v_k, shape (K,)."""
        a, _ = self.attention(params["S"], data)
        err = a - np.eye(self.K)[:, :, None]
        return 0.5 * (err * err).sum(axis=1) @ data.weights

    def sample_losses(self, params: dict[str, np.ndarray], data: FeatureTask) -> np.ndarray:
        """p_k L_k per query feature, shape (K,); their sum is the population loss."""
        return data.p * self.per_query_losses(params, data)

    def sample_weights(self, data: FeatureTask) -> float:
        """1: the population loss is the sum of the per-query terms p_k L_k."""
        return 1.0

    def grad(self, params: dict[str, np.ndarray], data: FeatureTask) -> dict[str, np.ndarray]:
        """∂L/∂s_mk = p_k E_c[a_m((a_m − δ_mk) − Σ_n a_n(a_n − δ_nk))
        − δ_mk a_q Σ_n a_n(a_n − δ_nk)] (a_q = 0 unless the query is in the softmax).

        Computed from moments of the counts (``docs/derivations/softmax_icl.md``, "Moment
        form"): with a_n = c_n E_nk / T_k every term is E_mk or E_mk² times a weighted sum over
        count vectors of c_m or c_m², i.e. a (K, C) @ (C, K) product; nothing of size K·K·C is
        formed. Real θ only.
        """
        E = np.exp(params["S"] - params["S"].max(axis=0))  # E[n, k] = e^{s_nk − max_m s_mk}
        own = np.diagonal(E).copy()  # e^{s_kk − max}
        E_off = E - np.diag(own)  # off-target features only
        counts = data.counts  # (C, K)
        squares = data.squared_counts
        off = E_off.T @ counts.T  # Σ_{n≠k} c_n E_nk, (k, C)
        if data.include_query:
            off = off + own[:, None]  # the query token is off-target (label 0)
        target = own[:, None] * counts.T  # c_k E_kk
        total = off + target  # T_k(c): sums of positives, no cancellation
        a_k, o = target / total, off / total  # target mass and 1 − a_k
        r = ((E_off * E_off).T @ squares.T) / (total * total)  # Σ_{n≠k} a_n²
        inner = r - a_k * o  # Σ_n a_n(a_n − δ_nk), from small terms only
        w_over_t = data.weights / total
        first = (w_over_t / total) @ squares  # Σ_c w c_m² / T_k²
        second = (w_over_t * inner) @ counts  # Σ_c w c_m inner_k / T_k
        g_km = (E.T * E.T) * first - E.T * second  # m ≠ k entries
        # m = k: −a_k(o² + r) − a_q inner, again without cancellation
        diagonal = counts.T * (o * o + r)
        if data.include_query:
            diagonal = diagonal + inner
        g_km[np.diag_indices(self.K)] = -own * np.sum(w_over_t * diagonal, axis=1)
        g_km *= data.p[:, None]
        return {"S": g_km.T}

    @per_member_data("_members_cache")
    def _members(self, key: tuple, shared: bool) -> dict[str, Any] | None:
        """``counts``, ``squares`` ((C, K), or (B, C, K) per member), ``weights`` ((C,) or
        (B, 1, C)), ``p`` ((K,) or (B, K, 1)) and ``include_query``; None when per-member
        tasks differ in K, in the number of count vectors or in ``include_query``.

        Kept by :func:`gradflow.model.per_member_data` for the identity of the tasks. Counts
        are converted to float once here.
        """
        if shared:
            task = key[0]
            # float counts once: a float @ int product casts the counts on every call
            return {"counts": task.counts.astype(float), "squares": task.squared_counts,
                    "weights": task.weights, "p": task.p, "include_query": task.include_query}
        first = key[0]
        if not all(t.counts.shape == first.counts.shape and t.include_query == first.include_query
                   for t in key):
            return None
        return {"counts": np.stack([t.counts for t in key]).astype(float),
                "squares": np.stack([t.squared_counts for t in key]),
                "weights": np.stack([t.weights for t in key])[:, None, :],
                "p": np.stack([t.p for t in key])[:, :, None],
                "include_query": first.include_query}

    def batched_grad(self, params: dict[str, np.ndarray], data: FeatureTask | list[FeatureTask]
                     ) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11): the moment form with a
        leading member axis; on a shared task each (K, C) @ (C, K) moment product of the
        members is one (B·K, C) @ (C, K) product. The (K, C) elementwise work per member is
        what it was, so batching saves NumPy's per-call overhead only: it pays for few count
        vectors C (small N) and little for the paper's C ~ 10⁴. Complex-step safe as
        :meth:`grad` (its shift by the column maximum cancels in every ratio).

        Parameters
        ----------
        params : dict
            ``S`` (B, K, K).
        data : FeatureTask or list of B FeatureTask
            Shared, or one per member (e.g. other priors p; member by member when K, N or
            ``include_query`` differ).

        Returns
        -------
        dict
            ``S`` (B, K, K).
        """
        members = self._members(data)
        if members is None:
            return super().batched_grad(params, data)
        # Members in chunks whose (chunk, K, C) temporaries stay in cache (_CHUNK_ENTRIES)
        B = params["S"].shape[0]
        chunk = max(1, _CHUNK_ENTRIES // members["counts"].size * (
            1 if members["counts"].ndim == 2 else B))
        if B <= chunk:
            return self._batched_grad_chunk(params["S"], members)
        shared = members["counts"].ndim == 2
        parts = [self._batched_grad_chunk(params["S"][lo:lo + chunk], members if shared else {
            k: v[lo:lo + chunk] if isinstance(v, np.ndarray) else v
            for k, v in members.items()})["S"] for lo in range(0, B, chunk)]
        return {"S": np.concatenate(parts)}

    def _batched_grad_chunk(self, S: np.ndarray, members: dict[str, Any]
                            ) -> dict[str, np.ndarray]:
        """:meth:`batched_grad` of one chunk of members ``S`` (b, K, K), vectorised."""
        K = self.K
        E = np.exp(S - S.max(axis=1, keepdims=True))  # E[b, n, k] = e^{s_nk − max_m s_mk}
        own = np.diagonal(E, axis1=1, axis2=2)  # (B, K): e^{s_kk − max}
        E_off = E * (1.0 - np.eye(K))  # off-target features only
        Et = E.swapaxes(1, 2)  # [b, k, n]
        counts, squares = members["counts"], members["squares"]  # (C, K) or (B, C, K)
        counts_T, squares_T = counts.swapaxes(-1, -2), squares.swapaxes(-1, -2)
        off = _products(E_off.swapaxes(1, 2), counts_T)  # Σ_{n≠k} c_n E_nk, (B, K, C)
        if members["include_query"]:
            off = off + own[:, :, None]  # the query token is off-target (label 0)
        target = own[:, :, None] * counts_T  # c_k E_kk
        total = off + target  # T_k(c): sums of positives, no cancellation
        a_k, o = target / total, off / total  # target mass and 1 − a_k
        r = _products((E_off * E_off).swapaxes(1, 2), squares_T) / (total * total)
        inner = r - a_k * o  # Σ_n a_n(a_n − δ_nk), from small terms only
        w_over_t = members["weights"] / total
        first = _products(w_over_t / total, squares)  # Σ_c w c_m² / T_k², (B, K, K)
        second = _products(w_over_t * inner, counts)  # Σ_c w c_m inner_k / T_k
        g_km = (Et * Et) * first - Et * second  # m ≠ k entries
        diagonal = counts_T * (o * o + r)  # m = k: −a_k(o² + r) − a_q inner
        if members["include_query"]:
            diagonal = diagonal + inner
        rows = np.arange(K)
        g_km[:, rows, rows] = -own * np.sum(w_over_t * diagonal, axis=2)
        p = members["p"]
        g_km = g_km * (p[:, None] if p.ndim == 1 else p)
        return {"S": g_km.swapaxes(1, 2)}

    def observables(self, data: FeatureTask) -> dict[str, Observable]:
        """``loss``; ``alpha`` (K,) = E[a_k | x_q = v_k]; ``per_query_loss`` (K,); ``A`` (K,)
        = s_kk; ``S`` (K, K); ``column_sums`` (K,) (conserved at 0 from S = 0)."""

        def S(th: np.ndarray) -> np.ndarray:
            return self.layout.unpack(th)["S"]

        def alpha(th: np.ndarray) -> np.ndarray:
            a, _ = self.attention(S(th), data)
            return np.einsum("kkc,c->k", a, data.weights)

        return {
            "loss": lambda th: float(self.loss({"S": S(th)}, data)),
            "alpha": alpha,
            "per_query_loss": lambda th: self.per_query_losses({"S": S(th)}, data),
            "A": lambda th: np.diagonal(S(th)).copy(),
            "S": lambda th: S(th).copy(),
            "column_sums": lambda th: S(th).sum(axis=0),
        }

    def alpha_crosses(self, data: FeatureTask, k: int, level: float = 0.5) -> Event:
        """α_k reaches ``level`` (Phase I → Phase II marker)."""
        observables = self.observables(data)
        return Event(f"alpha_{k}_{level:g}", lambda th: float(observables["alpha"](th)[k] - level),
                     direction=1)


class BalancedICL(Model):
    """The balanced case's exact one-dimensional flow (``docs/derivations/softmax_icl.md``,
    §The balanced scalar flow): by symmetry s_kk = A and
    s_nk = B = −A/(K−1) for n ≠ k, and with j = c_k ~ Bin(N, 1/K),

        L(A) = E_j[½(1 − a_j)² + ½ e^{2B} E[Σ_{n≠k} c_n² | j] / Z_j²],
        a_j = j e^A/Z_j,   Z_j = j e^A + (N − j) e^B,

    an O(N) sum. The S-flow restricted to the balanced manifold is Ȧ = −∂L/∂s_kk =
    −((K − 1)/K²) dL/dA: integrate this block ``A`` with ``rates={"A": rate}`` (:attr:`rate`).
    Query excluded from the softmax; exact multinomial counts.
    """

    data_type = type(None)

    def __init__(self, K: int, N: int | None = None):
        self.K = integer(K, "K", minimum=2)
        self.N = 20 * self.K if N is None else integer(N, "N")
        self._layout = Layout({"A": ()})
        j = np.arange(self.N + 1)
        q = 1.0 / self.K
        self.j = j
        self.binom = np.exp(gammaln(self.N + 1) - gammaln(j + 1) - gammaln(self.N - j + 1)
                            + j * np.log(q) + (self.N - j) * np.log1p(-q))
        r = self.N - j
        self.off_sq = r * (1 - 1 / (self.K - 1)) + r**2 / (self.K - 1)  # E[Σ_{n≠k} c_n² | j]

    @property
    def rate(self) -> float:
        """(K − 1)/K²: the S-flow's speed along the balanced manifold, as a rate on A."""
        return (self.K - 1) / self.K**2

    @property
    def layout(self) -> Layout:
        return self._layout

    def init(self, rng: Any = None, preset: str = "zero") -> np.ndarray:
        if preset != "zero":
            raise ArgumentError(f"preset must be 'zero', got {preset!r}")
        return self.layout.zeros()

    def check_data(self, data: Any) -> None:
        if data is not None:
            raise ArgumentError("BalancedICL carries its own (K, N); pass data=None")

    def _parts(self, A):
        """a_j, 1 − a_j and o_j = e^{2B} E[Σ_{n≠k} c_n² | j]/Z_j², written with Z_j e^{−A}
        = j + (N − j) e^{B − A} so nothing overflows as A grows (j = 0 included: a_0 = 0).

        1 − a_j = (N − j) e^{B − A}/(Z_j e^{−A}) is computed as that quotient, not by
        subtracting a_j ≈ 1 from 1: the subtraction loses all digits once A ≳ 20, which made
        the gradient wrong by 4e-5 relative at A = 20 and 0.65 at A = 35.
        """
        ratio = np.exp(-A * self.K / (self.K - 1))  # e^{B − A} with B = −A/(K − 1)
        rest = (self.N - self.j) * ratio
        z = self.j + rest
        return self.j / z, rest / z, ratio**2 * self.off_sq / z**2

    def sample_losses(self, params: dict[str, np.ndarray], data: Any) -> np.ndarray:
        _, miss, o = self._parts(params["A"])
        return np.array([0.5 * np.sum(self.binom * (miss**2 + o))])

    def grad(self, params: dict[str, np.ndarray], data: Any) -> dict[str, np.ndarray]:
        """dL/dA = (K²/(K − 1)) ∂L/∂s_kk, ∂L/∂s_kk = (1/K) Σ_j Bin(j) a_j[(a_j − 1) −
        (a_j(a_j − 1) + o_j)] = −(1/K) Σ_j Bin(j) a_j[(1 − a_j)² + o_j]
        (docs/derivations/softmax_icl.md, §The balanced scalar flow): the second form has no
        cancellation (every term has one sign)."""
        a, miss, o = self._parts(params["A"])
        d_skk = -np.sum(self.binom * a * (miss**2 + o)) / self.K
        return {"A": np.array(self.K**2 / (self.K - 1) * d_skk)}

    def batched_grad(self, params: dict[str, np.ndarray], data: Any) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11): the O(N) sum with the
        members on a leading axis. Complex-step safe, as :meth:`grad`.

        Parameters
        ----------
        params : dict
            ``A`` (B,).
        data : None or list of B None
            This model carries its own (K, N).

        Returns
        -------
        dict
            ``A`` (B,).
        """
        a, miss, o = self._parts(np.asarray(params["A"])[:, None])  # (B, N + 1) each
        d_skk = -np.sum(self.binom * a * (miss**2 + o), axis=1) / self.K
        return {"A": self.K**2 / (self.K - 1) * d_skk}

    def observables(self, data: Any) -> dict[str, Observable]:
        """``loss``, ``A``, and ``alpha`` = E_j[a_j] (attention on the query's own feature)."""
        return {
            "loss": lambda th: float(self.loss(self.layout.unpack(th), None)),
            "A": lambda th: float(th[0]),
            "alpha": lambda th: float(np.sum(self.binom * self._parts(th[0])[0])),
        }

    def alpha_crosses(self, level: float = 0.5) -> Event:
        return Event(f"alpha_{level:g}",
                     lambda th: float(np.sum(self.binom * self._parts(th[0])[0]) - level),
                     direction=1)
