"""Word co-occurrence: three attention matrices and a linear MLP (Yang, Kailkhura, Wang, Liang,
NeurIPS 2024, "Training Dynamics of Transformers to Recognize Word Co-occurrence via Gradient Flow
Analysis").

The model is the paper's Eq. (1)::

    F(X) = Σ_l Σ_j a_j w_jᵀ W_V X softmax(Xᵀ W_Kᵀ W_Q x_l / √m)
         = uᵀ W_V X A 1_L,      u = Wᵀ a,

summed over all L query positions, with the mean logistic loss. The derivation of the gradient,
with the symbols used here (``S``, ``A``, ``z``, ``c``, ``r``, ``Gamma``, ``D``, ``xc``), is in
``docs/derivations/cooccurrence.md``.

The data (Def. 2.1) are in :mod:`gradflow.papers.cooccurrence.data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.layout import Layout
from gradflow.model import Model, Observable, per_member_data
from gradflow.numerics import logistic_loss, scatter_add, sigmoid, softmax
from gradflow.papers.cooccurrence.data import MU1, MU2, MU3, N_SPECIAL, CooccurrenceData
from gradflow.papers.cooccurrence.theory import balancing_ratios
from gradflow.validate import generator, integer

__all__ = ["CooccurrenceTransformer", "Forward"]


@dataclass(frozen=True)
class Forward:
    """Forward quantities of all samples (symbols of ``docs/derivations/cooccurrence.md``).

    Attributes
    ----------
    u : (m,)        ``Wᵀa``, the MLP readout of the attention output.
    G : (d,)        ``W_Vᵀu``: ``G[k]`` is the value readout of embedding coordinate k.
    A : (n, L, L)   attention, ``A[i, h, l]`` = weight of key h for query l (columns sum to 1).
    z : (n, L)      ``z[i, h] = G(x_h)``, value readout of each token.
    c : (n, L)      ``c[i, h] = Σ_l A[i, h, l]``, attention mass received by key h.
    F : (n,)        model outputs ``Σ_h z c``.
    Q, K : (n, L, m) or None   per-token queries and keys (dense path only).
    """

    u: np.ndarray
    G: np.ndarray
    A: np.ndarray
    z: np.ndarray
    c: np.ndarray
    F: np.ndarray
    Q: np.ndarray | None = None
    K: np.ndarray | None = None


class CooccurrenceTransformer(Model):
    """The one-layer transformer of paper Eq. (1): W_Q, W_K, W_V (m × d) and a linear MLP W.

    Parameters
    ----------
    d : int
        Embedding size.
    m : int
        Attention width (the score scale is 1/√m).
    m1 : int
        MLP hidden width (rows of W).
    L : int
        Sequence length the ``"theory"`` initialisation is scaled for, σ0 = s0_mult/√(L m)
        (paper: 5). Data of another length is rejected, so the scale is never silently wrong.
    a : array_like of ±1, shape (m1,), optional
        The fixed, untrained output signs; drawn uniformly from ±1 with ``rng`` if omitted.
    rng : int or numpy.random.Generator
        Seeds ``a``.
    reduced : bool
        Replace W by the exact reduced state ``v = Wᵀa/√m1`` (so u = √m1·v). Under gradient flow
        W − W(0) stays a multiple of a, hence u̇ = −m1 ∂L/∂u, which is exactly the gradient flow
        of v: the block ``W`` (m1·m entries) becomes ``v`` (m entries) with identical F(t).
    path : {"auto", "tokens", "dense"}
        ``"tokens"`` gathers scores from M = W_Kᵀ W_Q at token pairs and scatters gradients with
        one bincount (standard-basis tokens only); ``"dense"`` works for any X; ``"auto"`` picks
        ``"tokens"`` when the data are one-hot.
    """

    data_type = CooccurrenceData
    hash_exclude = ("_members_cache",)  # batched_grad's stacked per-member data

    def __init__(
        self,
        d: int,
        m: int,
        m1: int,
        *,
        L: int = 5,
        a: Any = None,
        rng: Any = None,
        reduced: bool = False,
        path: Literal["auto", "tokens", "dense"] = "auto",
    ):
        self.d, self.m, self.m1, self.L = (integer(d, "d"), integer(m, "m"), integer(m1, "m1"),
                                           integer(L, "L"))
        if path not in ("auto", "tokens", "dense"):
            raise ArgumentError(f"path must be 'auto', 'tokens' or 'dense', got {path!r}")
        self.reduced = bool(reduced)
        self.path = path
        if a is None:
            a = generator(rng).choice([-1.0, 1.0], size=self.m1)
        a = np.asarray(a, dtype=float)
        if a.shape != (self.m1,) or not np.all(np.isin(a, (-1.0, 1.0))):
            raise ArgumentError(f"a must be a ±1 vector of shape ({self.m1},)")
        self.a = a
        last = ("v", (self.m,)) if self.reduced else ("W", (self.m1, self.m))
        self._layout = Layout(
            [("W_Q", (self.m, self.d)), ("W_K", (self.m, self.d)), ("W_V", (self.m, self.d)), last]
        )

    def __repr__(self) -> str:
        return (
            f"CooccurrenceTransformer(d={self.d}, m={self.m}, m1={self.m1}, L={self.L}, "
            f"reduced={self.reduced})"
        )

    @property
    def layout(self) -> Layout:
        return self._layout

    # ---------------------------------------------------------------- initialisation

    def init_scales(
        self, preset: str = "theory", s0_mult: float = 1.0, s1_mult: float = 1.0
    ) -> tuple[float, float]:
        """Standard deviations (σ0 of W_Q, W_K, W_V; σ1 of W) of an initialisation preset.

        ``"theory"``: σ0 = s0_mult/√(L m), σ1 = s1_mult/√m1 (Condition 1 without its logs).
        ``"kaiming_normal"``: σ0 = √(2/d), σ1 = √(2/m). ``"kaiming_uniform"`` (PyTorch's
        ``nn.Linear`` default) has the variances 1/(3·fan_in) of U(±1/√fan_in).
        """
        if preset == "theory":
            return s0_mult / np.sqrt(self.L * self.m), s1_mult / np.sqrt(self.m1)
        if preset == "kaiming_normal":
            return np.sqrt(2.0 / self.d), np.sqrt(2.0 / self.m)
        if preset == "kaiming_uniform":
            return 1.0 / np.sqrt(3.0 * self.d), 1.0 / np.sqrt(3.0 * self.m)
        raise ArgumentError(
            f"preset must be 'theory', 'kaiming_normal' or 'kaiming_uniform', got {preset!r}"
        )

    def init(
        self,
        rng: Any = None,
        preset: str = "theory",
        *,
        s0_mult: float = 1.0,
        s1_mult: float = 1.0,
    ) -> np.ndarray:
        """Draw θ₀ (the paper's Gaussian W_Q, W_K, W_V with std σ0 and W with std σ1).

        The same ``rng`` gives the same attention blocks and the same u = W(0)ᵀa for the full
        and the reduced model, so the two flows can be compared from one draw.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        preset : {"theory", "kaiming_normal", "kaiming_uniform"}
            See :meth:`init_scales`.
        s0_mult, s1_mult : float
            Multipliers of the theory scales (ignored by the Kaiming presets).

        Returns
        -------
        ndarray, shape (layout.size,)
        """
        sigma0, sigma1 = self.init_scales(preset, s0_mult, s1_mult)
        gen = generator(rng)
        shape = (self.m, self.d)
        if preset == "kaiming_uniform":
            def draw(std: float, size: tuple[int, ...]) -> np.ndarray:
                return gen.uniform(-np.sqrt(3) * std, np.sqrt(3) * std, size)
        else:
            def draw(std: float, size: tuple[int, ...]) -> np.ndarray:
                return std * gen.standard_normal(size)
        blocks = {"W_Q": draw(sigma0, shape), "W_K": draw(sigma0, shape),
                  "W_V": draw(sigma0, shape)}
        W = draw(sigma1, (self.m1, self.m))
        if self.reduced:
            blocks["v"] = W.T @ self.a / np.sqrt(self.m1)
        else:
            blocks["W"] = W
        return self.layout.pack(blocks)

    def reduce(self, theta_full: np.ndarray) -> np.ndarray:
        """Map a full-model θ (with W) to the reduced model's θ (with v = Wᵀa/√m1)."""
        if not self.reduced:
            raise ArgumentError("reduce() is a method of the reduced model (reduced=True)")
        full = Layout([(k, s) for k, s in self.layout.shapes.items() if k != "v"]
                      + [("W", (self.m1, self.m))])
        blocks = full.unpack(theta_full)
        v = blocks.pop("W").T @ self.a / np.sqrt(self.m1)
        return self.layout.pack({**blocks, "v": v})

    # ---------------------------------------------------------------- forward

    def u(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """The MLP readout u = Wᵀa (or √m1·v in the reduced model), shape (m,)."""
        return np.sqrt(self.m1) * params["v"] if self.reduced else params["W"].T @ self.a

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        X = np.asarray(data.X)
        if X.ndim != 3 or X.shape[2] != self.d:
            raise ArgumentError(f"data.X must have shape (n, L, d={self.d}), got {X.shape}")
        n, L, _ = X.shape
        if L != self.L:
            raise ArgumentError(
                f"data has sequence length L={L} but the model was built with L={self.L} "
                f"(its theory init scale σ0 = 1/√(L m)); build the model with L={L}"
            )
        if data.y.shape != (n,) or not np.all(np.isin(data.y, (-1.0, 1.0))):
            raise ArgumentError(f"data.y must be ±1 labels of shape ({n},)")
        if data.types.shape != (n,):
            raise ArgumentError(f"data.types must have shape ({n},), got {data.types.shape}")
        if not np.all(np.isfinite(X)):
            raise ArgumentError("data.X must be finite")
        embedding = np.asarray(data.embedding)
        if embedding.shape != (self.d, self.d) or not np.all(np.isfinite(embedding)):
            raise ArgumentError(
                f"data.embedding must be a finite ({self.d}, {self.d}) array, got shape "
                f"{embedding.shape}"
            )
        if data.tokens is not None:
            tokens = np.asarray(data.tokens)
            if (tokens.shape != (n, L) or tokens.dtype.kind not in "iu" or tokens.min() < 0
                    or tokens.max() >= self.d):
                raise ArgumentError(
                    f"data.tokens must be ints in [0, {self.d}) of shape ({n}, {L})"
                )
            # the token path reads the tokens, the dense path X: they must be the same data
            scale = max(1.0, float(np.abs(embedding).max()))
            mismatch = np.argwhere(np.any(np.abs(X - embedding[tokens]) > 1e-12 * scale, axis=2))
            if mismatch.size:
                i, h = (int(k) for k in mismatch[0])
                raise ArgumentError(
                    f"data.tokens disagree with data.X at {len(mismatch)} of {n * L} token "
                    "positions (first: "
                    f"sample {i}, position {h}: token {int(tokens[i, h])}, whose embedding is "
                    "not X[i, h]); X must be data.embedding[data.tokens]"
                )
        if self.path == "tokens" and not data.is_one_hot:
            raise ArgumentError("path='tokens' needs one-hot data (tokens with identity embedding)")

    def _use_tokens(self, data: CooccurrenceData) -> bool:
        return self.path == "tokens" or (self.path == "auto" and data.is_one_hot)

    def forward(self, params: dict[str, np.ndarray], data: CooccurrenceData) -> Forward:
        """All forward quantities of paper Eq. (1), vectorised over samples and positions."""
        W_Q, W_K, W_V = params["W_Q"], params["W_K"], params["W_V"]
        u = self.u(params)
        G = W_V.T @ u
        if self._use_tokens(data):
            M = W_K.T @ W_Q  # (d, d): M[ν, μ] = νᵀ W_Kᵀ W_Q μ
            S = M.ravel()[data.pair_index] / np.sqrt(self.m)
            z = G[data.tokens]
            Q = K = None
        else:
            Q = data.X @ W_Q.T
            K = data.X @ W_K.T
            S = K @ Q.swapaxes(1, 2) / np.sqrt(self.m)
            z = data.X @ G
        A = softmax(S, axis=1)  # softmax over keys h for each query l
        c = A.sum(axis=2)
        F = np.einsum("nh,nh->n", z, c)
        return Forward(u=u, G=G, A=A, z=z, c=c, F=F, Q=Q, K=K)

    def sample_losses(self, params: dict[str, np.ndarray], data: CooccurrenceData) -> np.ndarray:
        """Logistic losses ℓ(y_i F_i), shape (n,)."""
        return logistic_loss(data.y * self.forward(params, data).F)

    # ---------------------------------------------------------------- gradient

    def grad(
        self, params: dict[str, np.ndarray], data: CooccurrenceData
    ) -> dict[str, np.ndarray]:
        """Closed-form gradient of the mean logistic loss (derivation: docs/derivations).

        Returns
        -------
        dict with ``W_Q``, ``W_K``, ``W_V`` (m, d) and ``W`` (m1, m) or ``v`` (m,).
        """
        fwd = self.forward(params, data)
        n = data.n
        r = -data.y * sigmoid(-data.y * fwd.F) / n  # ∂L/∂F_i
        A, z = fwd.A, fwd.z
        zbar = np.einsum("nhl,nh->nl", A, z)  # Σ_h' A[h', l] z_h' per query
        Gamma = A * (z[:, :, None] - zbar[:, None, :])  # ∂F/∂S
        Gamma_r = Gamma * (r / np.sqrt(self.m))[:, None, None]
        rc = r[:, None] * fwd.c
        W_Q, W_K, W_V = params["W_Q"], params["W_K"], params["W_V"]
        if fwd.Q is None:
            D = scatter_add(data.pair_index, Gamma_r, self.d * self.d).reshape(self.d, self.d)
            grad_K = W_Q @ D.T
            grad_Q = W_K @ D
            xc = scatter_add(data.tokens, rc, self.d)
        else:
            X2 = data.X.reshape(-1, self.d)
            grad_K = (Gamma_r @ fwd.Q).reshape(-1, self.m).T @ X2
            grad_Q = (Gamma_r.swapaxes(1, 2) @ fwd.K).reshape(-1, self.m).T @ X2
            xc = X2.T @ rc.ravel()
        grad_u = W_V @ xc
        out = {"W_Q": grad_Q, "W_K": grad_K, "W_V": np.outer(fwd.u, xc)}
        if self.reduced:
            out["v"] = np.sqrt(self.m1) * grad_u
        else:
            out["W"] = np.outer(self.a, grad_u)
        return out

    @per_member_data("_members_cache")
    def _members(self, key: tuple, shared: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``pair_index`` (M, n, L, L), ``tokens`` (M, n, L) and ``y`` (M, n) with a leading
        member axis (M = 1 for shared data), or None unless every dataset takes the token path
        and per-member datasets have one shape.

        Kept by :func:`gradflow.model.per_member_data` for the identity of the datasets.
        """
        shape = key[0].X.shape
        if all(self._use_tokens(d) and d.X.shape == shape for d in key):
            members = (np.stack([d.pair_index for d in key]), np.stack([d.tokens for d in key]),
                       np.stack([d.y for d in key]))
        else:
            members = None
        return members

    def batched_grad(self, params: dict[str, np.ndarray],
                     data: CooccurrenceData | list[CooccurrenceData]) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11): the token path with a leading
        member axis, scores gathered from the B matrices M_b = W_Kᵀ W_Q and both scatters one
        bincount with member b's bins offset by b·d² (b·d). Complex-step safe, as
        :meth:`grad`. The dense path (data that are not one-hot) goes member by member.

        Parameters
        ----------
        params : dict
            ``W_Q``, ``W_K``, ``W_V`` (B, m, d) and ``W`` (B, m1, m) or ``v`` (B, m).
        data : CooccurrenceData or list of B CooccurrenceData
            Shared by every member, or one per member (of one shape).

        Returns
        -------
        dict
            The blocks of ``params``' shapes: row b is ``grad`` of member b.
        """
        members = self._members(data)
        if members is None:
            return super().batched_grad(params, data)
        pair_index, tokens, y = members
        W_Q, W_K, W_V = params["W_Q"], params["W_K"], params["W_V"]
        B, d = W_Q.shape[0], self.d
        n = tokens.shape[1]
        u = (np.sqrt(self.m1) * params["v"] if self.reduced
             else np.einsum("bjm,j->bm", params["W"], self.a))  # (B, m)
        G = (W_V.swapaxes(1, 2) @ u[:, :, None])[:, :, 0]  # (B, d)
        M = W_K.swapaxes(1, 2) @ W_Q  # (B, d, d)
        pairs = pair_index + (np.arange(B) * (d * d))[:, None, None, None]
        S = M.reshape(-1)[pairs] / np.sqrt(self.m)  # (B, n, L, L)
        columns = tokens + (np.arange(B) * d)[:, None, None]
        z = G.reshape(-1)[columns]  # (B, n, L)
        A = softmax(S, axis=2)  # over keys h for each query l
        c = A.sum(axis=3)
        F = np.einsum("bnh,bnh->bn", z, c)
        r = -y * sigmoid(-y * F) / n  # ∂L/∂F_i
        zbar = np.einsum("bnhl,bnh->bnl", A, z)
        Gamma_r = A * (z[:, :, :, None] - zbar[:, :, None, :]) * (r / np.sqrt(self.m))[
            :, :, None, None]
        D = scatter_add(pairs, Gamma_r, B * d * d).reshape(B, d, d)
        xc = scatter_add(columns, r[:, :, None] * c, B * d).reshape(B, d)
        grad_u = (W_V @ xc[:, :, None])[:, :, 0]  # (B, m)
        out = {"W_Q": W_K @ D, "W_K": W_Q @ D.swapaxes(1, 2),
               "W_V": u[:, :, None] * xc[:, None, :]}
        if self.reduced:
            out["v"] = np.sqrt(self.m1) * grad_u
        else:
            out["W"] = self.a[None, :, None] * grad_u[:, None, :]
        return out

    # ---------------------------------------------------------------- observables

    def observables(self, data: CooccurrenceData) -> dict[str, Observable]:
        """The quantities of the paper's Thms 3.1–3.3 and Lemmas 4.1–4.7 as functions of θ.

        ========================  ====================================================
        name                      meaning
        ========================  ====================================================
        ``loss``                  mean training loss L̂
        ``loss_type1..4``         mean loss of the samples of each type
        ``min_margin``            min_i y_i F_i (> 0: every sample correct)
        ``n_misclassified``       number of samples with y_i F_i ≤ 0
        ``G`` (3,)                G(μ1), G(μ2), G(μ3) = uᵀ W_V μ
        ``G_dot`` (3,)            their time derivatives under the plain gradient flow
        ``KQ`` (3, 3)             ``KQ[i, j] = μ_iᵀ W_Kᵀ W_Q μ_j`` (key i, query j)
        ``VV`` (3, 3)             ``VV[i, j] = μ_iᵀ W_Vᵀ W_V μ_j``
        ``p_mu1_to_mu2``          mean over type-1 samples of the attention of query μ1 on
                                  key μ2 (``p_mu1_to_mu3``: on key μ3)
        ``u_norm_sq``             ‖u‖² (the paper's neuron correlation)
        ``rho23, R, B1, B2``      balancing ratios, see :func:`balancing_ratios`
        ========================  ====================================================
        """
        layout = self.layout
        mu = data.embedding[:N_SPECIAL]  # (3, d)
        cache: dict[str, Any] = {}

        def state(theta: np.ndarray) -> dict[str, Any]:
            if cache.get("theta") is not theta or not np.array_equal(cache["copy"], theta):
                params = layout.unpack(theta)
                fwd = self.forward(params, data)
                margins = data.y * fwd.F
                g = sigmoid(-margins)
                cache.update(theta=theta, copy=theta.copy(), params=params, fwd=fwd,
                             margins=margins, losses=logistic_loss(margins), g=g,
                             balance=balancing_ratios(g, data.types))
            return cache

        def type_loss(k: int) -> Observable:
            mask = data.type_masks[k]
            return lambda th: float(np.mean(state(th)["losses"][mask])) if mask.any() else np.nan

        def G(th: np.ndarray) -> np.ndarray:
            return mu @ state(th)["fwd"].G

        def G_dot(th: np.ndarray) -> np.ndarray:
            s = state(th)
            grads = self.grad(s["params"], data)
            # u̇ = Ẇᵀa = −m1 ∂L/∂u (full) or √m1·v̇ (reduced): the same vector.
            u_dot = -(np.sqrt(self.m1) * grads["v"] if self.reduced else self.a @ grads["W"])
            return mu @ (s["params"]["W_V"].T @ u_dot - grads["W_V"].T @ s["fwd"].u)

        def KQ(th: np.ndarray) -> np.ndarray:
            p = state(th)["params"]
            return (mu @ p["W_K"].T) @ (p["W_Q"] @ mu.T)

        def VV(th: np.ndarray) -> np.ndarray:
            p = state(th)["params"]
            return (mu @ p["W_V"].T) @ (p["W_V"] @ mu.T)

        obs: dict[str, Observable] = {
            "loss": lambda th: float(np.mean(state(th)["losses"])),
            **{f"loss_type{k}": type_loss(k) for k in (1, 2, 3, 4)},
            "min_margin": lambda th: float(np.min(state(th)["margins"])),
            "n_misclassified": lambda th: int(np.sum(state(th)["margins"] <= 0)),
            "G": G,
            "G_dot": G_dot,
            "KQ": KQ,
            "VV": VV,
            "u_norm_sq": lambda th: float(state(th)["fwd"].u @ state(th)["fwd"].u),
        }
        if data.tokens is not None and data.type_masks[1].any():
            tok = data.tokens[data.type_masks[1]]
            pos = {t: np.argmax(tok == t, axis=1) for t in (MU1, MU2, MU3)}
            rows = np.flatnonzero(data.type_masks[1])

            def attention(key: int) -> Observable:
                return lambda th: float(np.mean(state(th)["fwd"].A[rows, pos[key], pos[MU1]]))

            obs["p_mu1_to_mu2"] = attention(MU2)
            obs["p_mu1_to_mu3"] = attention(MU3)

        def balance(key: str) -> Observable:
            return lambda th: state(th)["balance"][key]

        obs.update({key: balance(key) for key in ("rho23", "R", "B1", "B2")})
        return obs

    def min_margin(self, data: CooccurrenceData) -> Observable:
        """θ ↦ min_i y_i F_i."""
        return lambda th: float(np.min(data.y * self.forward(self.layout.unpack(th), data).F))

    def phase1_end(self, data: CooccurrenceData, terminal: bool = False) -> Event:
        """End of Phase 1: the first time every sample is correctly classified (min y F > 0)."""
        return Event("phase1_end", self.min_margin(data), terminal=terminal, direction=1)
