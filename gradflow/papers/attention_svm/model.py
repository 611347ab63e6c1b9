"""The one-layer attention model of the attention-SVM papers (Tarzanagh, Li, Zhang, Oymak,
NeurIPS 2023; Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as support vector machines"):

    s_it = x_itᵀ W z_i,   φ_i = softmax(s_i),   f_i = vᵀ X_iᵀ φ_i = Σ_t φ_it a_it,   a_it = vᵀx_it,

with the loss ℓ(y_i f_i) averaged over the n sequences: logistic ℓ(m) = log(1 + e^{−m}) or
correlation ℓ(m) = −m. W is trained directly (``parametrization="W"``) or as W = K Qᵀ with
K, Q ∈ R^{d×m} (``"KQ"``); the head v is fixed (the data's) or trained.

The gradient, its pairwise form and the factored scale (contract rule 7), with the symbols used
here (``s``, ``log_phi``, ``a``, ``log_c``, ``log_w``, ``M``, ``g_s``, ``G``), are derived in
``docs/derivations/attention_svm.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model, Observable, per_member_data
from gradflow.numerics import log_softmax, logistic_loss, logsumexp, softmax_readout
from gradflow.papers.attention_svm.data import AttentionSVMData
from gradflow.validate import generator, integer

__all__ = ["HEADS", "LOSSES", "PARAMETRIZATIONS", "PRESETS", "AttentionSVMModel"]

_CHUNK_ENTRIES = 16_384
"""Entries (float64) of the largest temporary, the (chunk, n, T, T) pair weights, of one chunk
of members in :meth:`AttentionSVMModel.batched_scaled_grad`: 128 KiB, glibc's default
threshold above which an allocation is a fresh mmap, page-faulted on every call."""

PARAMETRIZATIONS = ("W", "KQ")
HEADS = ("fixed", "trained")
LOSSES = ("logistic", "correlation")
PRESETS = ("uniform", "normal", "zero")
"""Initialisations: ``"uniform"`` entries U(−1/√d, 1/√d), the default of the authors'
``nn.Linear`` layers (``docs/derivations/attention_svm.md``, §The authors' protocol);
``"normal"`` entries N(0, 1/d²); ``"zero"`` (W only: W = 0 is a saddle of the (K, Q) flow)."""


class AttentionSVMModel(Model):
    """One-layer softmax attention f(X_i) = vᵀX_iᵀ softmax(X_i W z_i) on ±1 labels.

    Parameters
    ----------
    d : int
        Token dimension.
    parametrization : {"W", "KQ"}
        Train W (block ``W``, d × d) or its factors (blocks ``K`` and ``Q``, d × m; W = KQᵀ).
    head : {"fixed", "trained"}
        Use the data's head v, or train it (block ``v``, shape (d,)).
    loss : {"logistic", "correlation"}
    m : int, optional
        The inner width of K and Q (default d).
    """

    data_type = AttentionSVMData
    hash_exclude = ("_members_cache",)  # batched_scaled_grad's stacked per-member data

    def __init__(self, d: int, parametrization: str = "W", head: str = "fixed",
                 loss: str = "logistic", m: int | None = None):
        self.d = integer(d, "d")
        for name, value, allowed in (("parametrization", parametrization, PARAMETRIZATIONS),
                                     ("head", head, HEADS), ("loss", loss, LOSSES)):
            if value not in allowed:
                raise ArgumentError(f"{name} must be one of {allowed}, got {value!r}")
        self.parametrization = parametrization
        self.head = head
        self.loss_name = loss
        self.m = self.d if m is None else integer(m, "m")
        if parametrization == "W" and m is not None:
            raise ArgumentError("m: only the KQ parametrization has an inner width")

    def __repr__(self) -> str:
        extra = f", m={self.m}" if self.parametrization == "KQ" else ""
        return (f"AttentionSVMModel(d={self.d}, parametrization={self.parametrization!r}, "
                f"head={self.head!r}, loss={self.loss_name!r}{extra})")

    @property
    def layout(self) -> Layout:
        d = self.d
        blocks: dict[str, tuple[int, ...]] = (
            {"W": (d, d)} if self.parametrization == "W" else {"K": (d, self.m), "Q": (d, self.m)})
        if self.head == "trained":
            blocks["v"] = (d,)
        return Layout(blocks)

    def init(self, rng: Any = None, preset: str = "uniform", scale: float = 1.0) -> np.ndarray:
        """θ0 by ``preset`` (:data:`PRESETS`), every weight entry multiplied by ``scale``; a
        trained head starts as a unit vector drawn after the weights."""
        if preset not in PRESETS:
            raise ArgumentError(f"preset must be one of {PRESETS}, got {preset!r}")
        if preset == "zero" and self.parametrization == "KQ":
            raise ArgumentError("preset 'zero': K = Q = 0 is a saddle of the (K, Q) flow (its "
                                "gradient vanishes); use 'uniform' or 'normal' with a small scale")
        if not (np.isfinite(scale) and scale > 0):
            raise ArgumentError(f"scale must be a positive number, got {scale!r}")
        gen = generator(rng)
        params = {}
        for name in [b for b in self.layout.names if b != "v"]:
            shape = self.layout.shapes[name]
            if preset == "uniform":
                bound = 1.0 / np.sqrt(self.d)
                params[name] = scale * gen.uniform(-bound, bound, shape)
            elif preset == "normal":
                params[name] = scale * gen.standard_normal(shape) / self.d
            else:
                params[name] = np.zeros(shape)
        if self.head == "trained":
            v = gen.standard_normal(self.d)
            params["v"] = v / np.linalg.norm(v)
        return self.layout.pack(params)

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        if data.X.ndim != 3 or data.X.shape[2] != self.d:
            raise ArgumentError(f"data.X: the model has d = {self.d}, the tokens have shape "
                                f"{np.shape(data.X)}")
        n, _, d = data.X.shape
        if np.shape(data.z) != (n, d):
            raise ArgumentError(f"data.z must have shape ({n}, {d}), got {np.shape(data.z)}")
        if np.shape(data.y) != (n,):
            raise ArgumentError(f"data.y must have shape ({n},), got {np.shape(data.y)}")
        if self.head == "fixed" and np.shape(data.v) != (d,):
            raise ArgumentError(f"data.v must have shape ({d},), got {np.shape(data.v)}")

    # ------------------------------------------------------------------ forward

    def weight(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """W, or W = KQᵀ."""
        return params["W"] if self.parametrization == "W" else params["K"] @ params["Q"].T

    def value_head(self, params: dict[str, np.ndarray], data: AttentionSVMData) -> np.ndarray:
        return params["v"] if self.head == "trained" else data.v

    def scores(self, params: dict[str, np.ndarray], data: AttentionSVMData) -> np.ndarray:
        """s_it = x_itᵀ W z_i, shape (n, T)."""
        Wz = data.z @ self.weight(params).T  # (n, d): W z_i
        return np.einsum("ntd,nd->nt", data.X, Wz)

    def selection(self, params: dict[str, np.ndarray], data: AttentionSVMData) -> np.ndarray:
        """The selected token of each sequence: argmax_t s_it, shape (n,)."""
        return np.argmax(self.scores(params, data).real, axis=1)

    def outputs(self, params: dict[str, np.ndarray], data: AttentionSVMData) -> np.ndarray:
        """f_i, shape (n,); complex-step safe at saturation (``softmax_readout``)."""
        a = data.X @ self.value_head(params, data)
        return softmax_readout(self.scores(params, data), a, axis=1)

    def sample_losses(self, params: dict[str, np.ndarray], data: AttentionSVMData) -> np.ndarray:
        """ℓ(y_i f_i), shape (n,)."""
        margin = data.y * self.outputs(params, data)
        return logistic_loss(margin) if self.loss_name == "logistic" else -margin

    # ------------------------------------------------------------------ gradient

    def scaled_grad(
        self, params: dict[str, np.ndarray], data: AttentionSVMData
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The gradient with the largest exponential factored out of each block (contract
        rule 7; ``docs/derivations/attention_svm.md``, §Gradient and §Scaled gradient).

        ∂L/∂s_it = −(y_i/n) Σ_{τ≠t} e^{log_w[i,t,τ]} (a_it − a_iτ) with
        log_w = log_c_i + log φ_it + log φ_iτ; M = max log_w is factored out, so the blocks stay
        exact after every e^{log_w} underflows. Real θ only.

        Returns
        -------
        blocks : dict of str to ndarray
        log_scales : dict of str to float
        """
        s = self.scores(params, data)
        v = self.value_head(params, data)
        a = data.X @ v  # (n, T)
        log_phi = log_softmax(s, axis=1)
        f = softmax_readout(s, a, axis=1)
        n, T = a.shape
        if self.loss_name == "logistic":
            log_c = -np.logaddexp(0.0, data.y * f)  # log(−ℓ'(y f)) = log σ(−y f)
        else:
            log_c = np.zeros(n)
        log_w = log_c[:, None, None] + log_phi[:, :, None] + log_phi[:, None, :]
        log_w = log_w - np.diag(np.full(T, np.inf))  # τ = t is not a pair
        M = float(log_w.max())
        g_s = -data.y[:, None] * np.sum(np.exp(log_w - M) * (a[:, :, None] - a[:, None, :]),
                                        axis=2)  # (n, T): ∂L/∂s = e^M/n · g_s
        G = np.einsum("nt,ntd,ne->de", g_s, data.X, data.z)  # ∂L/∂W = e^M/n · G
        log_n = float(np.log(n))
        if self.parametrization == "W":
            blocks, scales = {"W": G}, {"W": M - log_n}
        else:
            blocks = {"K": G @ params["Q"], "Q": G.T @ params["K"]}
            scales = {"K": M - log_n, "Q": M - log_n}
        if self.head == "trained":
            top = float(log_c.max())
            h = np.einsum("nt,ntd->nd", np.exp(log_phi), data.X)  # X_iᵀ φ_i
            blocks["v"] = -(data.y * np.exp(log_c - top)) @ h
            scales["v"] = top - log_n
        return blocks, scales

    def grad(self, params: dict[str, np.ndarray], data: AttentionSVMData
             ) -> dict[str, np.ndarray]:
        """Closed-form gradient of the mean loss: the :meth:`scaled_grad` blocks times their
        scales. Real θ only."""
        blocks, scales = self.scaled_grad(params, data)
        return {k: b * np.exp(scales[k]) for k, b in blocks.items()}

    # ------------------------------------------------------------------ batched gradient

    @per_member_data("_members_cache")
    def _members(self, key: tuple, shared: bool) -> dict[str, np.ndarray] | None:
        """``X`` (M, n, T, d), ``z`` (M, n, d), ``y`` (M, n) and ``v`` (M, d) with a leading
        member axis (M = 1 for shared data), or None when per-member datasets differ in shape.

        Kept by :func:`gradflow.model.per_member_data` for the identity of the datasets.
        """
        names = ("X", "z", "y", "v")
        first = key[0]
        stack = all(np.shape(getattr(d, f)) == np.shape(getattr(first, f))
                    for d in key[1:] for f in names)
        members = ({f: np.stack([np.asarray(getattr(d, f), dtype=float) for d in key])
                    for f in names} if stack else None)
        return members

    def batched_scaled_grad(
        self, params: dict[str, np.ndarray], data: AttentionSVMData | list[AttentionSVMData]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`scaled_grad` of B members at once, vectorised over the members.

        The same formulas with a leading member axis, each member's largest exponential M_b
        factored out of its own blocks; members in chunks whose (chunk, n, T, T) pair weights
        stay under 128 KiB (:data:`_CHUNK_ENTRIES`). Real θ only, as :meth:`scaled_grad`.

        Parameters
        ----------
        params : dict
            The layout's blocks, each with a leading member axis: ``W`` (B, d, d) or ``K``,
            ``Q`` (B, d, m); ``v`` (B, d) for a trained head.
        data : AttentionSVMData or list of B AttentionSVMData
            Shared by every member, or one per member (member by member when their shapes
            differ).

        Returns
        -------
        blocks : dict of str to ndarray, each (B, *block shape)
        log_scales : dict of str to (B,) ndarray
            Member b's true gradient of block k is ``exp(log_scales[k][b]) · blocks[k][b]``.
        """
        members = self._members(data)
        names = self.layout.names
        if members is None:
            rows = [self.scaled_grad({k: v[b] for k, v in params.items()}, d)
                    for b, d in enumerate(data)]
            return ({k: np.stack([r[0][k] for r in rows]) for k in names},
                    {k: np.array([r[1][k] for r in rows]) for k in names})
        B = params[names[0]].shape[0]
        _, n, T, _ = members["X"].shape
        chunk = max(1, _CHUNK_ENTRIES // (n * T * T))
        shared = members["X"].shape[0] == 1
        parts = [self._scaled_grad_chunk(
            {k: v[lo:lo + chunk] for k, v in params.items()},
            members if shared else {f: a[lo:lo + chunk] for f, a in members.items()})
            for lo in range(0, B, chunk)]
        if len(parts) == 1:
            return parts[0]
        return ({k: np.concatenate([p[0][k] for p in parts]) for k in names},
                {k: np.concatenate([p[1][k] for p in parts]) for k in names})

    def _scaled_grad_chunk(self, params: dict[str, np.ndarray], members: dict[str, np.ndarray]
                           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`batched_scaled_grad` of one chunk of members (symbols of ``scaled_grad``)."""
        X, z, y = members["X"], members["z"], members["y"]
        W = (params["W"] if self.parametrization == "W"
             else params["K"] @ params["Q"].swapaxes(1, 2))  # (B, d, d)
        B = W.shape[0]
        Wz = z @ W.swapaxes(1, 2)  # (B, n, d): W z_i
        s = (X @ Wz[:, :, :, None])[..., 0]  # (B, n, T)
        v = params["v"] if self.head == "trained" else members["v"]
        a = (X @ v[:, None, :, None])[..., 0]  # (B or 1, n, T)
        log_phi = log_softmax(s, axis=2)
        f = softmax_readout(s, a, axis=2)
        n, T = s.shape[1:]
        if self.loss_name == "logistic":
            log_c = -np.logaddexp(0.0, y * f)  # log(−ℓ'(y f)) = log σ(−y f)
        else:
            log_c = np.zeros((B, n))
        log_w = (log_c[:, :, None, None] + log_phi[:, :, :, None] + log_phi[:, :, None, :]
                 - np.diag(np.full(T, np.inf)))  # τ = t is not a pair
        M = log_w.max(axis=(1, 2, 3))  # (B,)
        weights = np.exp(log_w - M[:, None, None, None])
        g_s = -y[:, :, None] * np.einsum("bntu,bntu->bnt", weights,
                                         np.broadcast_to(a[:, :, :, None] - a[:, :, None, :],
                                                         weights.shape))
        h_s = (g_s[:, :, None, :] @ X)[:, :, 0, :]  # (B, n, d): Σ_t g_s x_it
        G = h_s.swapaxes(1, 2) @ z  # (B, d, d): Σ_i (Σ_t g_s x_it) z_iᵀ
        log_n = float(np.log(n))
        if self.parametrization == "W":
            blocks, scales = {"W": G}, {"W": M - log_n}
        else:
            blocks = {"K": G @ params["Q"], "Q": G.swapaxes(1, 2) @ params["K"]}
            scales = {"K": M - log_n, "Q": M - log_n}
        if self.head == "trained":
            top = log_c.max(axis=1)
            h = (np.exp(log_phi)[:, :, None, :] @ X)[:, :, 0, :]  # X_iᵀ φ_i, (B, n, d)
            blocks["v"] = np.einsum("bn,bnd->bd", -(y * np.exp(log_c - top[:, None])), h)
            scales["v"] = top - log_n
        return blocks, scales

    def batched_grad(self, params: dict[str, np.ndarray],
                     data: AttentionSVMData | list[AttentionSVMData]) -> dict[str, np.ndarray]:
        """:meth:`grad` of B members at once (contract rule 11): the
        :meth:`batched_scaled_grad` blocks times their scales. Real θ only.

        Parameters
        ----------
        params : dict of str to ndarray, each (B, *block shape)
        data : AttentionSVMData or list of B AttentionSVMData

        Returns
        -------
        dict of str to ndarray, each (B, *block shape)
        """
        blocks, scales = self.batched_scaled_grad(params, data)
        return {k: b * np.exp(scales[k]).reshape(-1, *([1] * (b.ndim - 1)))
                for k, b in blocks.items()}

    # ------------------------------------------------------------------ observables

    def log_attention(self, params: dict[str, np.ndarray], data: AttentionSVMData
                      ) -> np.ndarray:
        """log φ_it, shape (n, T)."""
        return log_softmax(self.scores(params, data), axis=1)

    def off_selection(self, params: dict[str, np.ndarray], data: AttentionSVMData
                      ) -> tuple[np.ndarray, np.ndarray]:
        """log φ on the tokens other than the selected one (−inf at the selected) and the
        selection, shapes (n, T) and (n,)."""
        log_phi = self.log_attention(params, data)
        selected = np.argmax(log_phi, axis=1)
        off = log_phi.copy()
        off[np.arange(data.n), selected] = -np.inf
        return off, selected

    def observables(
        self, data: AttentionSVMData, *, reference: np.ndarray | None = None
    ) -> dict[str, Observable]:
        """``loss``; ``norm_W`` (‖W‖_F, W = KQᵀ for the factors; also ``norm_K``, ``norm_Q``
        and ``norm_v`` for trained blocks); ``selected`` (argmax_t s_it per sequence);
        ``selection_mass`` (mean_i φ_iα_i); ``log_off_mass`` (log of mean_i Σ_{t≠α_i} φ_it,
        summed from the off-selection weights, so it does not cancel); ``log_max_off_weight``
        (max over i and t ≠ α_i of log φ_it).

        With ``reference`` (a d × d direction, e.g. W^mm of a selection, solved in
        ``theory``): ``cos``, ``dist`` = ‖Ŵ − R̂‖_F and ``one_minus_cos`` = dist²/2 (exact where
        1 − cos would cancel). The SVM of the *current* selection needs a solve, so it is
        tracked after the flow (``protocol.svm_track``), not here (contract rule 8).
        """
        layout = self.layout

        def params(theta: np.ndarray) -> dict[str, np.ndarray]:
            return layout.unpack(theta)

        def off_mass(theta: np.ndarray) -> float:
            off, _ = self.off_selection(params(theta), data)
            return float(logsumexp(off.ravel()) - np.log(data.n))

        def max_off(theta: np.ndarray) -> float:
            off, _ = self.off_selection(params(theta), data)
            return float(off.max())

        def mass(theta: np.ndarray) -> float:
            off, _ = self.off_selection(params(theta), data)
            return float(np.mean(-np.expm1(logsumexp(off, axis=1))))

        obs: dict[str, Observable] = {
            "loss": lambda th: float(self.loss(params(th), data)),
            "norm_W": lambda th: float(np.linalg.norm(self.weight(params(th)))),
            "selected": lambda th: self.selection(params(th), data),
            "selection_mass": mass,
            "log_off_mass": off_mass,
            "log_max_off_weight": max_off,
        }
        for name in layout.names:
            if name != "W":
                obs[f"norm_{name}"] = lambda th, name=name: float(np.linalg.norm(params(th)[name]))
        if reference is not None:
            unit = np.asarray(reference, dtype=float) / np.linalg.norm(reference)

            def dist(th: np.ndarray) -> float:
                W = self.weight(params(th))
                norm = np.linalg.norm(W)
                return float(np.linalg.norm(W / norm - unit)) if norm > 0 else np.nan

            obs["dist"] = dist
            obs["one_minus_cos"] = lambda th: dist(th) ** 2 / 2
            obs["cos"] = lambda th: 1.0 - dist(th) ** 2 / 2
        return obs
