"""The one-layer softmax attention of masked-patch reconstruction (Huang, Wen, Chi, Liang,
arXiv 2403.02233 v1/v2, §2; parametrisation reconstructed: docs/derivations/masked.md, §Status).

Token of patch q: h_q = u_q x_q + e_q (u_q = 1 if unmasked; content x_q = z v_{k,a_k(q)}); only
the merged key-query matrix Q is trained; a masked query p predicts F_p = W_V Σ_q α_pq h_q with
α_p = softmax_q(h_pᵀ Q h_q) and W_V the projection onto content; the loss is ½‖x_p − F_p‖²
summed over masked patches, in exact expectation over clusters, amplitudes and masks.

Three models of the same loss:

- :class:`MaskedAttention`: the reduced coordinates (FP correlations B_{p,(k,j)} = e_pᵀQv_{k,j},
  PP correlations C_pq = e_pᵀQe_q), one row per query, every mask enumerated; any design with
  P ≤ 16; every option of docs/derivations/masked.md, §Ambiguities.
- :class:`MaskedGrouped`: one query of a one-cluster design in the coordinates of its groups of
  exchangeable areas, the masks summarised by the unmasked counts per area; exact from Q(0) = 0
  (§Counts per area); P = 64 and beyond.
- :class:`MaskedFullQ`: the full d × d matrix Q on explicit tokens (d = F + P, + 1 with a mask
  token): the reference the reductions must equal (§Reductions).

Symbols (``S``, ``alpha``, ``A``, ``R``, ``Wt``, ``Omega``, ``omega_bar``, ``G``) follow
docs/derivations/masked.md, §The gradient.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model, Observable
from gradflow.papers.masked import theory
from gradflow.papers.masked.data import (
    MAX_ENUMERATED_PATCHES,
    CountConfigurations,
    Group,
    MaskedDesign,
    count_configurations,
    groups,
    query_masks,
)
from gradflow.validate import generator, integer

__all__ = ["MASK_TOKENS", "SOFTMAX", "MaskedAttention", "MaskedFullQ", "MaskedGrouped"]

SOFTMAX = ("all", "unmasked")
"""The keys of the softmax: every patch (masked ones have content 0; the query attends to
itself), or the unmasked patches only (§Ambiguities, 1)."""

MASK_TOKENS = ("zero", "orthogonal")
"""The [MASK] token: zero content (h = e_q), or a fixed unit vector m_0 orthogonal to every
feature and position (h = m_0 + e_q), whose logit terms e_pᵀQm_0 and m_0ᵀQh_q are then learned
through Q (§Ambiguities, 3)."""

PRESETS = ("zero", "normal")
"""Initialisations: Q(0) = 0 (uniform attention; the default, needed for the exact symmetry
reductions), or small Gaussian entries of the given scale (§Ambiguities, 6)."""


def _option(name: str, value: Any, allowed: tuple) -> Any:
    if value not in allowed:
        raise ArgumentError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _masked_softmax(S: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
    """Softmax over the last axis, over the entries with ``keys == 1`` only (None: all); a row
    without any key gets α = 0 (the prediction is 0). Shift by the real maximum: complex-step
    safe."""
    if keys is None:
        shift = np.max(S.real, axis=-1, keepdims=True)
        e = np.exp(S - shift)
        return e / e.sum(axis=-1, keepdims=True)
    real = np.where(keys > 0, S.real, -np.inf)
    shift = np.max(real, axis=-1, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    # non-keys are exponentiated at the shift, never at their own logit (which may overflow:
    # inf · 0 would be NaN)
    e = np.exp(np.where(keys > 0, S, shift) - shift) * keys
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total.real > 0, total, 1.0)


@functools.lru_cache(maxsize=16)
def _enumeration(design: MaskedDesign, queries: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Every array of the mask enumeration of ``queries`` that does not depend on θ (designs
    are immutable and compared by identity, so the cache is exact)."""
    U, mu = query_masks(design, queries)
    K, P = design.K, design.P
    N = max(design.n_areas)
    H = np.zeros((K, P, N))                       # one-hot areas, padded to N areas
    H[np.repeat(np.arange(K), P), np.tile(np.arange(P), K), design.areas.ravel()] = 1.0
    za = np.stack([np.pad(z, ((0, 0), (0, N - z.shape[1]))) for z in design.amplitudes])
    zq = np.take_along_axis(za, np.broadcast_to(design.areas[:, None, :],
                                                (K, za.shape[1], P)), axis=2)  # (K, Z, P)
    target = np.zeros((K, len(queries), N))
    target[np.repeat(np.arange(K), len(queries)), np.tile(np.arange(len(queries)), K),
           design.areas[:, list(queries)].ravel()] = 1.0
    E = np.zeros((K * P, design.F))               # (k, q) → feature f_k(q)
    E[np.arange(K * P), design.feature_index.ravel()] = 1.0
    weight = (design.masked_probability * design.pi[:, None, None]
              * np.stack(design.amplitude_probs)[:, :, None] * mu[None, None, :])  # (K, Z, n_u)
    own = np.stack([H[k][:, design.areas[k, list(queries)]].T for k in range(K)])  # (K, n_q, P)
    visible = np.einsum("iuq,kiq->kiu", U, own) > 0  # an unmasked patch in the own area
    return {"U": U, "H": H, "za": za, "zq": zq, "target": target, "E": E, "weight": weight,
            "visible": visible}


class _Enumerated(Model):
    """What the two mask-enumerating models share: the sizes (P, F), the initialisation and the
    data check."""

    data_type = MaskedDesign
    P: int
    F: int
    queries: tuple[int, ...]

    def init(self, rng: Any = None, preset: str = "zero", scale: float = 0.01) -> np.ndarray:
        """Q(0) = 0 (``"zero"``) or entries N(0, scale²) (``"normal"``)."""
        _option("preset", preset, PRESETS)
        if preset == "zero":
            return np.zeros(self.layout.size)
        if not (np.isfinite(scale) and scale > 0):
            raise ArgumentError(f"scale must be a positive number, got {scale!r}")
        return scale * generator(rng).standard_normal(self.layout.size)

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        if (data.P, data.F) != (self.P, self.F):
            raise ArgumentError(f"data: the model has P = {self.P}, F = {self.F}; the design "
                                f"has P = {data.P}, F = {data.F}")
        if data.P > MAX_ENUMERATED_PATCHES:
            query_masks(data, (0,))  # raises the size error, with its remedy


class MaskedAttention(_Enumerated):
    """The reduced masked-reconstruction model, every mask enumerated (docs/derivations/
    masked.md, §Reduced coordinates and §The gradient).

    Parameters
    ----------
    P : int
        Patches.
    F : int
        Features (Σ_k N_k).
    queries : sequence of int, optional
        The query positions whose rows are trained (default all P). The rows decouple
        (§Reductions, R2), so a subset is exact for its own rows; the loss is Σ over them.
    softmax : {"all", "unmasked"}
    value_pos : bool
        The value is the whole token (content and position) instead of the content projection
        (§Ambiguities, 2): adds ½ Σ_q α_pq² to the loss; the limit is a finite minimiser.
    normalize : {"sum", "mean_masked"}
    mask_token : {"zero", "orthogonal"}
        With ``"orthogonal"`` the blocks ``beta`` (e_pᵀQm_0 per query) and the shared row
        ``B0``, ``C0``, ``beta0`` (m_0ᵀQ on features, positions and m_0) are trained too; the
        shared row couples the queries, so every query must be trained.

    Notes
    -----
    Blocks: ``B`` (n_q, F), ``C`` (n_q, P) [+ ``B0`` (F,), ``C0`` (P,), and under
    ``softmax="all"`` ``beta`` (n_q,), ``beta0`` (1,)]. The data is the
    :class:`~gradflow.papers.masked.data.MaskedDesign`.
    """

    data_type = MaskedDesign

    def __init__(self, P: int, F: int, queries: Any = None, softmax: str = "all",
                 value_pos: bool = False, normalize: str = "sum", mask_token: str = "zero"):
        self.P, self.F = integer(P, "P", 2), integer(F, "F")
        qs = tuple(range(self.P)) if queries is None else tuple(
            integer(q, "queries", 0) for q in queries)
        if not qs or len(set(qs)) != len(qs) or max(qs) >= self.P:
            raise ArgumentError(f"queries must be distinct patches 0 … {self.P - 1}, got "
                                f"{queries!r}")
        self.queries = qs
        self.softmax = _option("softmax", softmax, SOFTMAX)
        if not isinstance(value_pos, bool | np.bool_):
            raise ArgumentError(f"value_pos must be True or False, got {value_pos!r}")
        self.value_pos = bool(value_pos)
        self.normalize = _option("normalize", normalize, theory.NORMALIZATIONS)
        self.mask_token = _option("mask_token", mask_token, MASK_TOKENS)
        if mask_token == "orthogonal" and len(qs) != self.P:
            raise ArgumentError("queries: a mask token couples every query through the shared "
                                "row m_0ᵀQ, so all P queries must be trained")

    @classmethod
    def for_design(cls, design: MaskedDesign, **options: Any) -> MaskedAttention:
        """The model of ``design``'s sizes."""
        return cls(design.P, design.F, **options)

    def __repr__(self) -> str:
        return (f"MaskedAttention(P={self.P}, F={self.F}, queries={self.queries}, softmax="
                f"{self.softmax!r}, value_pos={self.value_pos}, normalize={self.normalize!r}, "
                f"mask_token={self.mask_token!r})")

    @property
    def layout(self) -> Layout:
        n = len(self.queries)
        blocks: dict[str, tuple[int, ...]] = {"B": (n, self.F), "C": (n, self.P)}
        if self.mask_token == "orthogonal":
            blocks.update(B0=(self.F,), C0=(self.P,))
            if self.softmax == "all":  # the masked keys' logit terms; inert when they are no keys
                blocks.update(beta=(n,), beta0=(1,))
        return Layout(blocks)


    # ------------------------------------------------------------------ forward

    def effective_rows(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """The effective rows (B, C, beta) of the masked queries: with a mask token the query
        token is m_0 + e_p, so the shared row m_0ᵀQ adds to every query's row."""
        B, C = params["B"], params["C"]
        if self.mask_token == "zero":
            return B, C, None
        beta = params["beta"] + params["beta0"][0] if "beta" in params else None
        return B + params["B0"], C + params["C0"], beta

    def _forward(self, params: dict[str, np.ndarray], data: MaskedDesign) -> dict[str, Any]:
        en = _enumeration(data, self.queries)
        U, H, zq = en["U"], en["H"], en["zq"]
        B, C, beta = self.effective_rows(params)
        # S[k, i, z, u, q] = u_q z_{a_k(q)} B_{i, f_k(q)} + C_iq (+ (1 − u_q) β_i)
        Bq = B[:, data.feature_index].transpose(1, 0, 2)                        # (K, n_q, P)
        fp = zq[:, None, :, None, :] * Bq[:, :, None, None, :]                  # (K,n_q,Z,1,P)
        S = U[None, :, None, :, :] * fp + C[None, :, None, None, :]
        if beta is not None:
            S = S + (1 - U)[None, :, None, :, :] * beta[None, :, None, None, None]
        keys = None if self.softmax == "all" else np.broadcast_to(
            U[None, :, None, :, :], S.shape)
        alpha = _masked_softmax(S, keys)
        aU = alpha * U[None, :, None, :, :]
        A = np.einsum("kizuq,kqj->kizuj", aU, H)                              # (K,n_q,Z,n_u,N)
        z2 = en["za"][:, None, :, None, :] ** 2                                # (K,1,Z,1,N)
        R = A - en["target"][:, :, None, None, :]
        ell = 0.5 * np.sum(z2 * R * R, axis=-1)
        Wt = z2 * R
        index = np.broadcast_to(data.areas[:, None, None, None, :], (*A.shape[:4], data.P))
        Omega = U[None, :, None, :, :] * np.take_along_axis(Wt, index, axis=-1)
        omega_bar = np.sum(Wt * A, axis=-1, keepdims=True)
        G = alpha * (Omega - omega_bar)
        if self.value_pos:
            a2 = np.sum(alpha * alpha, axis=-1, keepdims=True)
            ell = ell + 0.5 * a2[..., 0]
            G = G + alpha * (alpha - a2)
            if self.mask_token == "orthogonal" and self.softmax == "all":
                # every masked key's value also carries the one vector m_0
                hidden = 1 - U[None, :, None, :, :]
                mass = np.sum(alpha * hidden, axis=-1, keepdims=True)
                ell = ell + 0.5 * mass[..., 0] ** 2
                G = G + alpha * mass * (hidden - mass)
        return {"alpha": alpha, "A": A, "ell": ell, "G": G, "en": en}

    def sample_weights(self, data: MaskedDesign) -> np.ndarray:
        """Pr(p ∈ M) π_k Pr(z) Pr(mask | p ∈ M) (× the normalisation) for every (cluster,
        query, amplitudes, mask), flattened like :meth:`sample_losses`."""
        en = _enumeration(data, self.queries)
        w = en["weight"][:, None, :, :] * theory.normalization(data, self.normalize)
        return np.broadcast_to(w, (data.K, len(self.queries), *w.shape[2:])).ravel()

    def sample_losses(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """ℓ_p = ½‖x_p − F_p‖² for every (cluster, query, amplitudes, mask), flattened."""
        return self._forward(params, data)["ell"].ravel()

    def grad(self, params: dict[str, np.ndarray], data: MaskedDesign) -> dict[str, np.ndarray]:
        f = self._forward(params, data)
        en, G = f["en"], f["G"]
        U = en["U"][None, :, None, :, :]
        w = (en["weight"] * theory.normalization(data, self.normalize))[:, None, :, :, None]
        gC = np.einsum("kizuq->iq", w * G)
        gBq = np.einsum("kizuq->kiq", w * U * en["zq"][:, None, :, None, :] * G)  # per patch
        n = len(self.queries)
        gB = gBq.transpose(1, 0, 2).reshape(n, -1) @ en["E"]                     # (n_q, F)
        out = {"B": gB, "C": gC}
        if self.mask_token == "orthogonal":
            out.update(B0=gB.sum(axis=0), C0=gC.sum(axis=0))
            if self.softmax == "all":
                gbeta = np.einsum("kizuq->i", w * (1 - U) * G)
                out.update(beta=gbeta, beta0=np.array([gbeta.sum()]))
        return out

    # ------------------------------------------------------------------ observables

    def attention_maps(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """ᾱ[k, i, q] = E[α_pq | cluster k, p = queries[i] ∈ M] (amplitudes and masks averaged),
        shape (K, n_q, P)."""
        f = self._forward(params, data)
        w = f["en"]["weight"] / data.masked_probability / data.pi[:, None, None]  # Pr(z, mask)
        return np.einsum("kzu,kizuq->kiq", w, f["alpha"])

    def own_mass(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """A_own[i, k] = E[attention on the own area's unmasked patches | cluster k, p ∈ M, the
        own area has an unmasked patch], shape (n_q, K) (→ 1: area-wide attention); NaN where
        the own area is never visible (it has one patch, or a fixed-size mask hides all)."""
        f = self._forward(params, data)
        en = f["en"]
        A_own = np.sum(f["A"] * en["target"][:, :, None, None, :], axis=-1)  # (K, n_q, Z, n_u)
        w = en["weight"][:, None, :, :] * en["visible"][:, :, None, :]
        total = np.sum(w, axis=(2, 3))
        # NaN (not a number that looks like one) where the own area is never visible: an area
        # of one patch, or a fixed-size mask of all P patches
        mass = np.sum(w * A_own, axis=(2, 3)) / np.where(total > 0, total, np.nan)
        return mass.T

    def own_fp(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """B_{p,(k,a_k(p))}, the target FP correlation of each query and cluster, (n_q, K)."""
        B = self.effective_rows(params)[0]
        return B[np.arange(len(self.queries))[:, None], data.feature_index[:, list(
            self.queries)].T]

    def observables(self, data: MaskedDesign) -> dict[str, Observable]:
        """``loss``, ``loss_gap`` (L − L*; only where the floor is known: softmax over all,
        content-only value), ``own_mass`` (n_q, K), ``own_fp`` (n_q, K), ``pp_sum`` (Σ_q C_pq,
        conserved: n_q), ``grad_norm``, and ``diversity`` when every query is trained (a
        translation-invariant ring's maps are rebuilt from one query by
        :func:`gradflow.papers.masked.protocol.ring_maps`)."""
        self.check_data(data)
        unpack = self.layout.unpack
        obs: dict[str, Observable] = {
            "loss": lambda th: float(self.loss(unpack(th), data)),
            "own_mass": lambda th: self.own_mass(unpack(th), data),
            "own_fp": lambda th: self.own_fp(unpack(th), data),
            "pp_sum": lambda th: self.effective_rows(unpack(th))[1].sum(axis=1),
            "grad_norm": lambda th: float(np.linalg.norm(self.layout.pack(
                self.grad(unpack(th), data)))),
        }
        if self.softmax == "all" and not self.value_pos:
            floor = theory.floor(data, self.queries, self.normalize)
            obs["loss_gap"] = lambda th: float(self.loss(unpack(th), data)) - floor
        if self.queries == tuple(range(self.P)):  # every query's map: the diversity metric
            obs["diversity"] = lambda th: theory.diversity(self.attention_maps(unpack(th), data))
        return obs


# ------------------------------------------------------------------------------ grouped


class MaskedGrouped(Model):
    """One query of a one-cluster design in its group coordinates, the masks summarised by
    the unmasked counts per area (docs/derivations/masked.md, §Counts per area).

    From Q(0) = 0 the flow keeps the FP correlations of exchangeable areas equal, and the PP
    correlations of the patches of a group equal (§Reductions, R3 and R4). The trained
    coordinates are those of the invariant subspace in an orthonormal basis: ``b[r] = √G_r ·
    b_r`` and ``c[r] = √(G_r s_r) · c_r`` (G_r areas of s_r patches), ``c_self`` = C_pp, so
    that the gradient flow of this model *is* the flow of the full model restricted to the
    subspace (the velocity of each tied coordinate is the summed gradient over its
    multiplicity: no rate needs to be passed to ``simulate``).

    Parameters
    ----------
    p : int
        The query.
    group_list : tuple of Group
        :func:`~gradflow.papers.masked.data.groups` of the design and p (use
        :meth:`for_query`).
    softmax : {"all", "unmasked"}
    normalize : {"sum", "mean_masked"}
    """

    data_type = MaskedDesign

    def __init__(self, p: int, group_list: tuple[Group, ...], softmax: str = "all",
                 normalize: str = "sum"):
        self.p = integer(p, "p", 0)
        self.groups = tuple(group_list)
        self.softmax = _option("softmax", softmax, SOFTMAX)
        self.normalize = _option("normalize", normalize, theory.NORMALIZATIONS)
        self.multiplicity_b = np.array([g.count for g in self.groups], dtype=float)
        self.multiplicity_c = np.array([g.count * g.size for g in self.groups], dtype=float)
        self.z = np.array([g.z for g in self.groups])

    @classmethod
    def for_query(cls, design: MaskedDesign, p: int, **options: Any) -> MaskedGrouped:
        return cls(p, groups(design, p), **options)

    def __repr__(self) -> str:
        return f"MaskedGrouped(p={self.p}, groups={len(self.groups)}, softmax={self.softmax!r})"

    @property
    def layout(self) -> Layout:
        R = len(self.groups)
        blocks = {"b": (R,), "c": (R,)}
        if self.softmax == "all":  # under "unmasked" the query is never a key: C_pp is inert
            blocks["c_self"] = (1,)
        return Layout(blocks)

    def init(self, rng: Any = None, preset: str = "zero") -> np.ndarray:
        """Q(0) = 0 only: a random Q(0) breaks the symmetries the groups stand for (use
        MaskedAttention)."""
        if preset != "zero":
            raise ArgumentError(f"preset: MaskedGrouped is exact only from Q(0) = 0 (a random "
                                f"init breaks the area symmetries); got {preset!r}, use "
                                "MaskedAttention for a random init")
        return np.zeros(self.layout.size)

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        if groups(data, self.p) != self.groups:
            raise ArgumentError(f"data: the design's groups for query {self.p} differ from "
                                "the model's; build the model with MaskedGrouped.for_query("
                                "design, p)")

    def configurations(self, data: MaskedDesign) -> CountConfigurations:
        return _configurations(data, self.groups)

    def correlations(self, params: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """(b_r, c_r, c_self): one FP and one PP correlation per group, and C_pp."""
        c_self = params["c_self"][0] if "c_self" in params else np.zeros(())
        return (params["b"] / np.sqrt(self.multiplicity_b),
                params["c"] / np.sqrt(self.multiplicity_c), c_self)

    def _forward(self, params: dict[str, np.ndarray], data: MaskedDesign) -> dict[str, Any]:
        cf = self.configurations(data)
        b, c, c_self = self.correlations(params)
        z = self.z
        unmasked_logit, masked_logit = z * b + c, c
        shift = np.max(unmasked_logit.real)  # a key's logit: exp(· − shift) cannot overflow
        if self.softmax == "all":
            shift = max(shift, np.max(masked_logit.real), c_self.real)
        eu, em = np.exp(unmasked_logit - shift), np.exp(masked_logit - shift)
        es = np.exp(c_self - shift)
        n_masked = self.multiplicity_c - cf.S1                     # (n_c, R)
        T_u = cf.S1 * eu                                          # unmasked keys' share of Z
        T_m = n_masked * em if self.softmax == "all" else np.zeros_like(T_u)
        if self.softmax != "all":
            es = 0.0 * es
        # Z without group r, summed term by term (never Z minus group r): the masses 1 − A_r
        # and the gradients below then keep their digits, and their complex step, when one
        # group holds almost all the attention (docs/derivations/masked.md, §Counts per area)
        R = len(self.groups)
        off = 1.0 - np.eye(R)
        outside = (T_u + T_m) @ off + es                          # (n_c, R)
        Z = T_u[:, 0] + T_m[:, 0] + outside[:, 0]
        keys = Z.real > 0                                         # no key at all: α = 0
        Zs = np.where(keys, Z, 1.0)[:, None]
        A, M = T_u / Zs, T_m / Zs
        one_minus_A = np.where(keys[:, None], (outside + T_m) / Zs, 1.0)
        one_minus_AM = np.where(keys[:, None], outside / Zs, 1.0)
        SA2 = cf.S2 * eu**2 / Zs**2
        z0 = z[0]
        deficit = one_minus_A[:, 0]                               # 1 − A_0
        # ℓ = ½ z_0²(1 − A_0)² + ½ Σ_{r ≥ 1} z_r² ΣA²_r (the own group is one area: ΣA²_0 = A_0²)
        ell = 0.5 * z0**2 * deficit**2 + 0.5 * (SA2[:, 1:] @ z[1:] ** 2)
        SAw = z**2 * SA2
        SAw[:, 0] = -z0**2 * A[:, 0] * deficit                    # z_0² (A_0² − A_0)
        others = SAw @ off                                        # Σ_{r' ≠ r} Σ(Aw)_{r'}
        # Σ over group r's unmasked keys of α_q(ω_q − ω̄), and over all its keys
        unmasked_part = SAw * one_minus_A - A * others
        full_part = SAw * one_minus_AM - (A + M) * others
        return {"cf": cf, "A": A, "M": M, "ell": ell, "omega_bar": SAw.sum(axis=1),
                "self_mass": es / Zs[:, 0], "unmasked_part": unmasked_part,
                "full_part": full_part}

    def sample_weights(self, data: MaskedDesign) -> np.ndarray:
        return (data.masked_probability * theory.normalization(data, self.normalize)
                * self.configurations(data).weight)

    def sample_losses(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        return self._forward(params, data)["ell"]

    def grad(self, params: dict[str, np.ndarray], data: MaskedDesign) -> dict[str, np.ndarray]:
        f = self._forward(params, data)
        w = self.sample_weights(data)
        g_b = w @ (self.z * f["unmasked_part"])            # group-summed ∂L/∂b_r
        g_c = w @ f["full_part"]
        out = {"b": g_b / np.sqrt(self.multiplicity_b), "c": g_c / np.sqrt(self.multiplicity_c)}
        if self.softmax == "all":
            out["c_self"] = np.array([w @ (-f["omega_bar"] * f["self_mass"])])
        return out

    def velocities(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """ḃ_r, the velocity of each group's FP correlation (one coordinate), shape (R,)."""
        return -self.grad(params, data)["b"] / np.sqrt(self.multiplicity_b)

    @property
    def dominant_group(self) -> int:
        """g: the group of the largest other area (ties: the first)."""
        return 1 + int(np.argmax([grp.size for grp in self.groups[1:]]))

    def velocity_gap(self, params: dict[str, np.ndarray], data: MaskedDesign) -> float:
        """Δ(θ) = |ḃ_g| − ḃ_t: at Q = 0 the initial-rate gap Δ0 (docs/derivations/masked.md,
        §Phases); its first fall through 0 is t_over."""
        v = self.velocities(params, data)
        return float(abs(v[self.dominant_group]) - v[0])

    def masses(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        """The expected attention mass on each group's unmasked patches, per area of the group,
        given p ∈ M, shape (R,). Entry 0 is conditional on the own area being visible (A_own)."""
        f = self._forward(params, data)
        weight = f["cf"].weight
        out = weight @ f["A"] / self.multiplicity_b
        visible = f["cf"].S1[:, 0] > 0
        out[0] = ((weight[visible] @ f["A"][visible, 0]) / weight[visible].sum()
                  if visible.any() else np.nan)  # never visible: a fixed-size mask of all P
        return out

    def observables(self, data: MaskedDesign) -> dict[str, Observable]:
        """``loss``, ``loss_gap`` (softmax over all), ``own_mass``, ``masses`` (per group, per
        area), ``b``, ``c`` (per group), ``c_self``, ``fp_velocity`` (ḃ_r), ``velocity_gap``
        (|ḃ_g| − ḃ_t: Δ0 at t = 0), ``pp_sum`` (Σ_q C_pq)."""
        self.check_data(data)
        unpack = self.layout.unpack
        obs: dict[str, Observable] = {
            "loss": lambda th: float(self.loss(unpack(th), data)),
            "own_mass": lambda th: float(self.masses(unpack(th), data)[0]),
            "masses": lambda th: self.masses(unpack(th), data),
            "b": lambda th: self.correlations(unpack(th))[0],
            "c": lambda th: self.correlations(unpack(th))[1],
            "c_self": lambda th: float(self.correlations(unpack(th))[2]),
            "fp_velocity": lambda th: self.velocities(unpack(th), data),
            "velocity_gap": lambda th: self.velocity_gap(unpack(th), data),
            "pp_sum": lambda th: float(unpack(th)["c"] @ np.sqrt(self.multiplicity_c)
                                       + self.correlations(unpack(th))[2]),
        }
        if self.softmax == "all":
            floor = theory.floor(data, (self.p,), self.normalize)
            obs["loss_gap"] = lambda th: float(self.loss(unpack(th), data)) - floor
        return obs

    def to_rows(self, theta: np.ndarray, data: MaskedDesign) -> tuple[np.ndarray, np.ndarray]:
        """The query's rows (B_p (F,), C_p (P,)) of the full reduced model, from the groups."""
        b, c, c_self = self.correlations(self.layout.unpack(theta))
        B, C = np.zeros(data.F, dtype=b.dtype), np.zeros(data.P, dtype=c.dtype)
        for r, g in enumerate(self.groups):
            for j in g.areas:
                B[j] = b[r]
                C[data.areas[0] == j] = c[r]
        C[self.p] = c_self
        return B, C


@functools.lru_cache(maxsize=16)
def _configurations(design: MaskedDesign, group_list: tuple[Group, ...]) -> CountConfigurations:
    return count_configurations(design, group_list)


# ------------------------------------------------------------------------------ full Q


class MaskedFullQ(_Enumerated):
    """The reference: the full matrix Q ∈ R^{d×d} on explicit tokens (features first, then
    positions, then the mask vector m_0 if any), every mask enumerated, one query at a time.

    It shares no formula with the reductions: the logits are h_pᵀQh_q of explicit vectors, the
    output W_V Σ_q α_pq h_q a vector, the gradient Σ_q G_pq h_p h_qᵀ with G_pq = α_pq r_pᵀ(V h_q
    − F_p) (docs/derivations/masked.md, §The gradient). Small designs only (a reference).

    Parameters
    ----------
    P, F : int
    softmax, value_pos, normalize, mask_token
        As for :class:`MaskedAttention`.
    """

    data_type = MaskedDesign

    def __init__(self, P: int, F: int, softmax: str = "all", value_pos: bool = False,
                 normalize: str = "sum", mask_token: str = "zero"):
        self.P, self.F = integer(P, "P", 2), integer(F, "F")
        self.softmax = _option("softmax", softmax, SOFTMAX)
        self.value_pos = bool(value_pos)
        self.normalize = _option("normalize", normalize, theory.NORMALIZATIONS)
        self.mask_token = _option("mask_token", mask_token, MASK_TOKENS)
        self.d = self.F + self.P + (self.mask_token == "orthogonal")
        self.queries = tuple(range(self.P))  # the loss sums every query

    @classmethod
    def for_design(cls, design: MaskedDesign, **options: Any) -> MaskedFullQ:
        return cls(design.P, design.F, **options)

    def __repr__(self) -> str:
        return f"MaskedFullQ(P={self.P}, F={self.F}, d={self.d})"

    @property
    def layout(self) -> Layout:
        return Layout({"Q": (self.d, self.d)})

    def reduced(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The reduced coordinates of Q (all queries): B = rows e_p, feature columns; C = rows
        e_p, position columns; with a mask token also beta, B0, C0, beta0."""
        Q = self.layout.unpack(theta)["Q"]
        F, P = self.F, self.P
        out = {"B": Q[F:F + P, :F], "C": Q[F:F + P, F:F + P]}
        if self.mask_token == "orthogonal":
            m = F + P
            out.update(beta=Q[F:F + P, m], B0=Q[m, :F], C0=Q[m, F:F + P], beta0=Q[m, m:m + 1])
        return out

    def _per_query(self, Q: np.ndarray, data: MaskedDesign, p: int):
        """(ℓ (K, Z, n_u), ∇_Q contributions (K, Z, n_u) summed with weights later, …)."""
        U, mu = query_masks(data, (p,))
        U = U[0]                                                 # (n_u, P)
        F, P, d = self.F, self.P, self.d
        K = data.K
        feat = np.zeros((K, P, d))                               # content direction of q
        feat[np.repeat(np.arange(K), P), np.tile(np.arange(P), K), data.feature_index.ravel()] = 1
        za = np.stack([np.take(z, data.areas[k], axis=1) for k, z in
                       enumerate(data.amplitudes)])              # (K, Z, P)
        content = za[..., None] * feat[:, None]                  # (K, Z, P, d): x_q
        pos = np.zeros((P, d))
        pos[np.arange(P), F + np.arange(P)] = 1.0
        tokens = U[None, None, :, :, None] * content[:, :, None] + pos   # (K, Z, n_u, P, d)
        if self.mask_token == "orthogonal":
            tokens = tokens.copy()
            tokens[..., F + P] = 1 - U[None, None]
        query = pos[p].copy()
        if self.mask_token == "orthogonal":
            query[F + P] = 1.0
        S = tokens @ (query @ Q)                                 # h_pᵀ Q h_q: (K, Z, n_u, P)
        keys = None if self.softmax == "all" else np.broadcast_to(U[None, None], S.shape)
        alpha = _masked_softmax(S, keys)
        value = tokens.copy() if self.value_pos else tokens * (np.arange(d) < F)  # V h_q
        out = np.einsum("kzuq,kzuqd->kzud", alpha, value)        # F_p
        x_p = content[:, :, p][:, :, None, :]                    # (K, Z, 1, d)
        r = out - x_p
        ell = 0.5 * np.sum(r * r, axis=-1)
        G = alpha * (np.einsum("kzud,kzuqd->kzuq", r, value) - np.sum(r * out, axis=-1)[..., None])
        weight = (data.masked_probability * data.pi[:, None, None]
                  * np.stack(data.amplitude_probs)[:, :, None] * mu[None, None])
        weight = weight * theory.normalization(data, self.normalize)
        key_sum = np.einsum("kzu,kzuq,kzuqd->d", weight, G, tokens)
        return ell, weight, np.outer(query, key_sum)

    def sample_weights(self, data: MaskedDesign) -> np.ndarray:
        Q = np.zeros((self.d, self.d))
        return np.concatenate([self._per_query(Q, data, p)[1].ravel() for p in range(self.P)])

    def sample_losses(self, params: dict[str, np.ndarray], data: MaskedDesign) -> np.ndarray:
        return np.concatenate([self._per_query(params["Q"], data, p)[0].ravel()
                               for p in range(self.P)])

    def grad(self, params: dict[str, np.ndarray], data: MaskedDesign) -> dict[str, np.ndarray]:
        return {"Q": sum(self._per_query(params["Q"], data, p)[2] for p in range(self.P))}

    def observables(self, data: MaskedDesign) -> dict[str, Observable]:
        self.check_data(data)
        return {"loss": lambda th: float(self.loss(self.layout.unpack(th), data))}
