"""Designs of the masked-pretraining model (Huang, Wen, Chi, Liang, arXiv 2403.02233 v1/v2,
§2 "Problem setup"): K clusters of images, each with its own partition of the P patches into
areas, one orthonormal feature per area, patch content = amplitude × feature, and a random
mask.

What the paper fixes and what gradflow reconstructs is listed in ``docs/derivations/masked.md``
(§Status): the data structure (clusters, per-cluster partitions into areas, one feature per
area, an amplitude per area "arbitrary within a support set") is the paper's; the masking law,
the amplitude law and the cluster weights are options with recommended defaults.

A design is the whole data law: the population loss is an exact expectation over it (mask
enumeration, :func:`query_masks`, or counts per area, :func:`count_configurations`); no
samples are drawn.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.validate import integer, integer_array

__all__ = ["MASKS", "MAX_CONFIGURATIONS", "MAX_ENUMERATED_PATCHES", "CountConfigurations",
           "Group", "MaskedDesign", "balanced", "count_configurations", "groups", "imbalanced",
           "make_design", "query_masks", "ring"]

MASKS = ("bernoulli", "fixed")
"""Masking laws (docs/derivations/masked.md, §Ambiguities, 4): each patch masked independently
with probability γ, or a uniformly random set of exactly m patches."""

MAX_ENUMERATED_PATCHES = 16
"""Mask enumeration visits every mask of the other P − 1 patches (2^{P−1} under Bernoulli
masks): P = 16 is 32,768 masks per query, the largest that fits a gradient in memory for every
query at once. Larger one-cluster designs go through the counts per area
(:class:`gradflow.papers.masked.model.MaskedGrouped`)."""

MAX_AMPLITUDE_CONFIGURATIONS = 4096


@dataclass(frozen=True, eq=False)
class MaskedDesign:
    """The data law of masked-patch reconstruction.

    Attributes
    ----------
    areas : ndarray of int, shape (K, P)
        ``areas[k, q]`` = a_k(q), the area of patch q in cluster k, labels 0 … N_k − 1.
    gamma : float
        Masking ratio γ: the probability that a patch is masked (Bernoulli masks), or m/P.
    pi : ndarray, shape (K,)
        Cluster weights π_k (sum 1).
    amplitudes : tuple of K ndarrays, shapes (n_z, N_k)
        The amplitude configurations z_k of cluster k (one amplitude per area, shared by its
        patches); ``n_z`` is the same for every cluster (padded with zero-probability rows).
    amplitude_probs : tuple of K ndarrays, shapes (n_z,)
        Their probabilities (sum 1 per cluster).
    mask : {"bernoulli", "fixed"}
    m : int or None
        The number of masked patches of a fixed-size mask (``mask="fixed"``).
    """

    areas: np.ndarray
    gamma: float
    pi: np.ndarray
    amplitudes: tuple[np.ndarray, ...]
    amplitude_probs: tuple[np.ndarray, ...]
    mask: str = "bernoulli"
    m: int | None = None

    @property
    def K(self) -> int:
        return self.areas.shape[0]

    @property
    def P(self) -> int:
        return self.areas.shape[1]

    @property
    def n_areas(self) -> tuple[int, ...]:
        """N_k, the number of areas of each cluster."""
        return tuple(int(row.max()) + 1 for row in self.areas)

    @property
    def F(self) -> int:
        """The number of features, Σ_k N_k (one per area per cluster)."""
        return sum(self.n_areas)

    @property
    def feature_offset(self) -> np.ndarray:
        """Index of cluster k's first feature among the F, shape (K,)."""
        return np.concatenate([[0], np.cumsum(self.n_areas)[:-1]]).astype(int)

    @property
    def feature_index(self) -> np.ndarray:
        """f_k(q) = offset_k + a_k(q), the feature of patch q in cluster k, shape (K, P)."""
        return self.areas + self.feature_offset[:, None]

    @property
    def masked_probability(self) -> float:
        """Pr(p ∈ M), the same for every patch: γ, or m/P."""
        return self.gamma if self.mask == "bernoulli" else self.m / self.P

    def area_sizes(self, k: int) -> np.ndarray:
        """C_{k,j} = |P_{k,j}|, shape (N_k,)."""
        return np.bincount(self.areas[k], minlength=self.n_areas[k])

    def own_area(self, k: int, p: int) -> np.ndarray:
        """The patches of p's area in cluster k, p included."""
        return np.flatnonzero(self.areas[k] == self.areas[k, p])

    def describe(self) -> str:
        law = f"Bernoulli(γ = {self.gamma:g})" if self.mask == "bernoulli" else \
            f"fixed size m = {self.m}"
        return f"P = {self.P}, K = {self.K}, areas per cluster {self.n_areas}, masks {law}"


def _areas(areas: Any) -> np.ndarray:
    a = integer_array(areas, "areas")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] < 2:
        raise ArgumentError(f"areas must have shape (K, P) with P >= 2, got {a.shape}")
    for k, row in enumerate(a):
        if row.min() < 0:
            raise ArgumentError(f"areas[{k}]: labels must be >= 0, got {row.min()}")
        missing = sorted(set(range(row.max() + 1)) - set(row.tolist()))
        if missing:
            raise ArgumentError(f"areas[{k}]: labels must be 0 … N_k − 1 with every area "
                                f"non-empty; label(s) {missing} have no patch")
    return a


def _probabilities(values: Any, name: str, size: int) -> np.ndarray:
    p = np.asarray(values, dtype=float)
    if p.shape != (size,) or not np.all(np.isfinite(p)) or np.any(p < 0) \
            or abs(p.sum() - 1) > 1e-12:
        raise ArgumentError(f"{name} must be {size} non-negative numbers summing to 1, got "
                            f"{values!r}")
    return p


def make_design(areas: Any, gamma: float, *, pi: Any = None, mask: str = "bernoulli",
                m: int | None = None, z: Any = None, z_support: Any = None,
                z_probs: Any = None) -> MaskedDesign:
    """A validated :class:`MaskedDesign`.

    Parameters
    ----------
    areas : array_like of int, shape (K, P) or (P,)
        The partition of each cluster.
    gamma : float
        Masking ratio in (0, 1) (Bernoulli masks); ignored for ``mask="fixed"`` except as a
        label (it is set to m/P).
    pi : array_like, shape (K,), optional
        Cluster weights (default uniform; §Ambiguities, 10).
    mask : {"bernoulli", "fixed"}
    m : int, optional
        Masked patches of a fixed-size mask, 1 ≤ m ≤ P.
    z : sequence of K array_likes of shape (N_k,), optional
        Fixed amplitudes (default z ≡ 1; §Ambiguities, 7).
    z_support, z_probs : array_like, optional
        Random amplitudes instead: each area's amplitude i.i.d. from the finite support
        ``z_support`` with probabilities ``z_probs`` (default uniform), enumerated exactly.
    """
    a = _areas(areas)
    K, P = a.shape
    if mask not in MASKS:
        raise ArgumentError(f"mask must be one of {MASKS}, got {mask!r}")
    if mask == "fixed":
        if m is None:
            raise ArgumentError("m: a fixed-size mask needs the number m of masked patches")
        m = integer(m, "m")
        if m > P:
            raise ArgumentError(f"m must be at most P = {P}, got {m}")
        gamma = m / P
    else:
        if m is not None:
            raise ArgumentError("m: only a fixed-size mask (mask='fixed') has a size m")
        if not (isinstance(gamma, int | float) and 0 < gamma < 1):
            raise ArgumentError(f"gamma must be a masking ratio in (0, 1), got {gamma!r}")
    pi_ = np.full(K, 1.0 / K) if pi is None else _probabilities(pi, "pi", K)
    if np.any(pi_ == 0):
        raise ArgumentError("pi: every cluster needs a positive weight (drop the cluster "
                            "instead)")
    n_areas = [int(row.max()) + 1 for row in a]
    if z is not None and z_support is not None:
        raise ArgumentError("z and z_support: give fixed amplitudes or a random law, not both")
    if z_support is not None:
        support = np.asarray(z_support, dtype=float).ravel()
        if support.size == 0 or not np.all(np.isfinite(support) & (support > 0)):
            raise ArgumentError(f"z_support must be positive finite amplitudes, got "
                                f"{z_support!r}")
        probs = (np.full(support.size, 1 / support.size) if z_probs is None
                 else _probabilities(z_probs, "z_probs", support.size))
        n_z = support.size ** max(n_areas)
        if n_z > MAX_AMPLITUDE_CONFIGURATIONS:
            raise ArgumentError(f"z_support: {support.size} amplitudes on {max(n_areas)} areas "
                                f"are {n_z} configurations, more than "
                                f"{MAX_AMPLITUDE_CONFIGURATIONS}; use fewer support points")
        amps, aprobs = [], []
        for N in n_areas:
            combos = np.array(list(itertools.product(range(support.size), repeat=N)))
            zz, pp = support[combos], np.prod(probs[combos], axis=1)
            pad = n_z - len(pp)  # zero-probability rows: every cluster has n_z rows
            amps.append(np.vstack([zz, np.ones((pad, N))]))
            aprobs.append(np.concatenate([pp, np.zeros(pad)]))
    else:
        if z_probs is not None:
            raise ArgumentError("z_probs: only random amplitudes (z_support) have "
                                "probabilities")
        if z is None:
            amps = [np.ones((1, N)) for N in n_areas]
        else:
            if len(z) != K:
                raise ArgumentError(f"z must give the amplitudes of each of the K = {K} "
                                    f"clusters, got {len(z)}")
            amps = []
            for k, (zk, N) in enumerate(zip(z, n_areas, strict=True)):
                zk = np.asarray(zk, dtype=float)
                if zk.shape != (N,) or not np.all(np.isfinite(zk) & (zk > 0)):
                    raise ArgumentError(f"z[{k}] must be {N} positive finite amplitudes, got "
                                        f"{zk!r}")
                amps.append(zk[None, :])
        aprobs = [np.ones(1) for _ in n_areas]
    return MaskedDesign(a, float(gamma), pi_, tuple(amps), tuple(aprobs), mask, m)


def ring(P: int = 12, C: int = 4, K: int = 4, gamma: float = 0.5, **options: Any) -> MaskedDesign:
    """The ring design (docs/derivations/masked.md, §Designs): P patches on a cycle; cluster k's
    areas are the arcs of length C starting at offset k, a_k(q) = ((q − k) mod P) // C.

    Every query's own area is a contiguous arc and differs between clusters: local and diverse
    attention. With K = C the design is translation invariant (query p's flow is query 0's
    flow rotated by p).
    """
    P, C, K = integer(P, "P", 2), integer(C, "C", 1), integer(K, "K", 1)
    if P % C:
        raise ArgumentError(f"C must divide P = {P} (the arcs tile the ring), got C = {C}")
    if K > C:
        raise ArgumentError(f"K must be at most C = {C}: offsets k and k + C give the same "
                            f"partition, got K = {K}")
    q = np.arange(P)
    return make_design([((q - k) % P) // C for k in range(K)], gamma, **options)


def imbalanced(P: int = 64, C_global: int = 40, n_local: int = 4, C_local: int = 6,
               gamma: float = 0.25, **options: Any) -> MaskedDesign:
    """One cluster: a dominant global area (patches 0 … C_global − 1, area 0) and ``n_local``
    local areas of ``C_local`` patches (docs/derivations/masked.md, §Designs)."""
    C_global, n_local = integer(C_global, "C_global"), integer(n_local, "n_local")
    C_local = integer(C_local, "C_local")
    if P != C_global + n_local * C_local:
        raise ArgumentError(f"P must equal C_global + n_local·C_local = "
                            f"{C_global + n_local * C_local}, got {P}")
    labels = [0] * C_global + [1 + i for i in range(n_local) for _ in range(C_local)]
    return make_design([labels], gamma, **options)


def balanced(N: int = 4, C: int = 8, gamma: float = 0.5, **options: Any) -> MaskedDesign:
    """One cluster of N areas of C patches each (P = N·C): the scaling design."""
    N, C = integer(N, "N"), integer(C, "C")
    return make_design([np.arange(N * C) // C], gamma, **options)


# ------------------------------------------------------------------------------ masks


@functools.lru_cache(maxsize=32)
def _mask_patterns(P: int, mask: str, m: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The unmasked indicators of the other P − 1 patches, shape (n_u, P − 1), and the number
    of unmasked ones per row, given that the query is masked."""
    if mask == "bernoulli":
        bits = (np.arange(2 ** (P - 1))[:, None] >> np.arange(P - 1)) & 1
    else:
        rows = list(itertools.combinations(range(P - 1), m - 1))  # the other masked patches
        bits = np.ones((len(rows), P - 1), dtype=int)
        if m > 1:
            bits[np.repeat(np.arange(len(rows)), m - 1), np.array(rows).ravel()] = 0
    return bits.astype(float), bits.sum(axis=1)


def query_masks(design: MaskedDesign, queries: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Every mask of the other patches, given that the query is masked.

    Parameters
    ----------
    design : MaskedDesign
    queries : sequence of int, optional
        Query positions p (default all P).

    Returns
    -------
    U : ndarray, shape (n_q, n_u, P)
        ``U[i, r, q]`` = 1 if patch q is unmasked in mask r of query ``queries[i]`` (always 0
        at q = p).
    mu : ndarray, shape (n_u,)
        Pr(mask r | p ∈ M): the same for every query (the rows are ordered alike).
    """
    P = design.P
    if P > MAX_ENUMERATED_PATCHES:
        raise ArgumentError(f"mask enumeration visits 2^(P−1) masks per query; P = {P} is "
                            f"above {MAX_ENUMERATED_PATCHES}: use MaskedGrouped (one cluster) "
                            "or a smaller design")
    bits, unmasked = _mask_patterns(P, design.mask, design.m)
    if design.mask == "bernoulli":
        g = design.gamma
        mu = (1 - g) ** unmasked * g ** (P - 1 - unmasked)
    else:
        mu = np.full(len(bits), 1.0 / len(bits))
    queries = range(P) if queries is None else queries
    U = np.stack([np.insert(bits, p, 0.0, axis=1) for p in queries])
    return U, mu


# ------------------------------------------------------------------------------ counts


@dataclass(frozen=True)
class Group:
    """Areas that are exchangeable as wholes for one query of a one-cluster design
    (docs/derivations/masked.md, §Counts per area): ``size`` patches each (the own area's
    group excludes the query), amplitude ``z``, ``count`` areas.

    Attributes
    ----------
    areas : tuple of int
        The area labels in the group (group 0 is the query's own area).
    size : int
        s_r, patches per area that can be unmasked (the own area: C_t − 1).
    z : float
    """

    areas: tuple[int, ...]
    size: int
    z: float

    @property
    def count(self) -> int:
        return len(self.areas)


def groups(design: MaskedDesign, p: int) -> tuple[Group, ...]:
    """The groups of query p of a one-cluster design with fixed amplitudes: the own area
    first, then the other areas grouped by (size, amplitude) in order of first appearance."""
    if design.K != 1:
        raise ArgumentError(f"counts per area need one cluster (K = 1), the design has "
                            f"K = {design.K}; use MaskedAttention (mask enumeration)")
    if len(design.amplitude_probs[0]) != 1:
        raise ArgumentError("counts per area need fixed amplitudes (random amplitudes make "
                            "every area distinct); use MaskedAttention")
    p = integer(p, "p", 0)
    if p >= design.P:
        raise ArgumentError(f"p must be a patch 0 … {design.P - 1}, got {p}")
    sizes, z = design.area_sizes(0), design.amplitudes[0][0]
    t = int(design.areas[0, p])
    if sizes[t] < 2:
        raise ArgumentError(f"p = {p}: its area has no other patch, so its target is never "
                            "visible; give the area at least two patches")
    out = [Group((t,), int(sizes[t] - 1), float(z[t]))]
    keys: dict[tuple[int, float], list[int]] = {}
    for j in range(len(sizes)):
        if j != t:
            keys.setdefault((int(sizes[j]), float(z[j])), []).append(j)
    out += [Group(tuple(js), s, zz) for (s, zz), js in keys.items()]
    return tuple(out)


@dataclass(frozen=True, eq=False)
class CountConfigurations:
    """The joint law of the unmasked counts of the groups of one query.

    Attributes
    ----------
    S1 : ndarray, shape (n_c, R)
        Σ_i n_i over the areas of group r (unmasked patches of the group).
    S2 : ndarray, shape (n_c, R)
        Σ_i n_i² (the loss sees a group only through S1 and S2).
    weight : ndarray, shape (n_c,)
        Pr(configuration | p ∈ M).
    """

    S1: np.ndarray
    S2: np.ndarray
    weight: np.ndarray


MAX_CONFIGURATIONS = 1_000_000
"""The most count configurations a grouped query may have: each gradient holds ~20 arrays of
(configurations × groups) floats, 1e6 × 4 groups ≈ 0.6 GiB."""


def _group_table(size: int, count: int) -> dict[tuple[int, int], int]:
    """(S1, S2) → Σ over count-tuples (n_1 … n_G) with these sums of Π C(size, n_i): the number
    of unmasked-patch sets of G areas of ``size`` patches with these statistics."""
    table: dict[tuple[int, int], int] = {(0, 0): 1}
    for _ in range(count):
        if len(table) * (size + 1) > MAX_CONFIGURATIONS:
            raise ArgumentError(f"counts per area: {count} exchangeable areas of {size} patches "
                                f"have more than {MAX_CONFIGURATIONS:,} (S1, S2) statistics; "
                                "use fewer or smaller areas")
        nxt: dict[tuple[int, int], int] = {}
        for (s1, s2), ways in table.items():
            for n in range(size + 1):
                key = (s1 + n, s2 + n * n)
                nxt[key] = nxt.get(key, 0) + ways * math.comb(size, n)
        table = nxt
    return table


def count_configurations(design: MaskedDesign, group_list: tuple[Group, ...]
                         ) -> CountConfigurations:
    """Every configuration of (S1_r, S2_r) over the groups, with its exact probability given
    that the query is masked: a product of binomial laws under Bernoulli masks, the
    multivariate hypergeometric law (exactly P − m unmasked among the other P − 1) for a
    fixed-size mask."""
    tables = [_group_table(g.size, g.count) for g in group_list]
    keys = [np.array(list(t.keys()), dtype=float) for t in tables]      # (n_r, 2)
    ways = [np.array(list(t.values()), dtype=float) for t in tables]   # (n_r,)
    total = math.prod(len(k) for k in keys)
    if total > MAX_CONFIGURATIONS:
        raise ArgumentError(f"counts per area: the query's groups have {total:,} count "
                            f"configurations, more than {MAX_CONFIGURATIONS:,}; use fewer or "
                            "smaller areas")
    index = np.array(list(itertools.product(*[range(len(k)) for k in keys])))
    if index.size == 0:
        index = np.zeros((1, len(tables)), dtype=int)
    S1 = np.stack([keys[r][index[:, r], 0] for r in range(len(tables))], axis=1)
    S2 = np.stack([keys[r][index[:, r], 1] for r in range(len(tables))], axis=1)
    count = np.prod(np.stack([ways[r][index[:, r]] for r in range(len(tables))], axis=1), axis=1)
    unmasked = S1.sum(axis=1)
    others = design.P - 1
    if design.mask == "bernoulli":
        g = design.gamma
        weight = count * (1 - g) ** unmasked * g ** (others - unmasked)
    else:
        weight = np.where(unmasked == design.P - design.m, count, 0.0) / math.comb(
            others, design.m - 1)
    keep = weight > 0
    return CountConfigurations(S1[keep], S2[keep], weight[keep])
