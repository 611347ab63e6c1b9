"""Closed forms of the masked-pretraining model (docs/derivations/masked.md; the theorem
statements they stand for are reconstructed, §Status): the loss floor L*, the initial
attention masses, the exact initial FP velocities (binomial moments), their mean-field
approximations, the information-gap analogue Δ0, the mean-field estimates of t_half and
t_over, and the attention-diversity metric.

Every formula here is an independent route to a quantity the flow also produces: the tests
compare the two.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

from gradflow.errors import ArgumentError
from gradflow.papers.masked.data import MaskedDesign

__all__ = [
    "NORMALIZATIONS",
    "binomial_moments",
    "diversity",
    "dominant_area",
    "fitted_slope",
    "floor",
    "ideal_diversity",
    "information_gap",
    "initial_fp_velocity",
    "initial_masses",
    "mean_field_fp_velocity",
    "normalization",
    "ring_distance",
    "t_half_mean_field",
    "t_over_mean_field",
]

NORMALIZATIONS = ("sum", "mean_masked")
"""The loss summed over masked patches, or averaged (÷ E|M| = Pr(p ∈ M)·P): a pure rescaling of
time by that factor (docs/derivations/masked.md, §Ambiguities, 5)."""


def normalization(design: MaskedDesign, normalize: str) -> float:
    """The factor of the loss: 1 for ``"sum"``, 1/E|M| for ``"mean_masked"``."""
    if normalize not in NORMALIZATIONS:
        raise ArgumentError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return 1.0 if normalize == "sum" else 1.0 / (design.masked_probability * design.P)


def _hidden_probability(design: MaskedDesign, others: int) -> float:
    """Pr(the ``others`` other patches of the query's area are all masked | p ∈ M)."""
    if design.mask == "bernoulli":
        return design.gamma ** others
    P, m = design.P, design.m  # the m − 1 other masked patches contain all of them
    return math.comb(P - 1 - others, m - 1 - others) / math.comb(P - 1, m - 1) \
        if others <= m - 1 else 0.0


def floor(design: MaskedDesign, queries=None, normalize: str = "sum") -> float:
    """L* = inf L (softmax over all patches, content-only value; docs/derivations/masked.md,
    §The floor): Σ_p Pr(p ∈ M) Σ_k π_k Pr(own area hidden | p ∈ M) · ½ E z_t², over the given
    queries (default all). An infimum: approached as the target FP → +∞, never attained."""
    queries = range(design.P) if queries is None else queries
    total = 0.0
    for p in queries:
        for k in range(design.K):
            t = design.areas[k, p]
            hidden = _hidden_probability(design, int(design.area_sizes(k)[t]) - 1)
            z2 = float(design.amplitude_probs[k] @ design.amplitudes[k][:, t] ** 2)
            total += design.pi[k] * hidden * 0.5 * z2
    return design.masked_probability * total * normalization(design, normalize)


def initial_masses(design: MaskedDesign, k: int, p: int) -> np.ndarray:
    """a_{k,j} = (1 − γ)(C_{k,j} − 1{p ∈ P_{k,j}})/P, the expected attention mass on area j's
    unmasked patches at Q = 0 (softmax over all patches), shape (N_k,)."""
    sizes = design.area_sizes(k).astype(float)
    sizes[design.areas[k, p]] -= 1
    unmasked = 1 - design.gamma if design.mask == "bernoulli" else \
        (design.P - design.m) / (design.P - 1)  # Pr(another patch is unmasked | p ∈ M)
    return unmasked * sizes / design.P


def binomial_moments(n: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E X, E X², E X³ of X ~ Binomial(n, q) (raw moments, closed form)."""
    n = np.asarray(n, dtype=float)
    m1 = n * q
    m2 = n * q * (1 - q) + m1**2
    m3 = n * q * (1 - 3 * q + 2 * q**2 + 3 * n * q - 3 * n * q**2 + n**2 * q**2)
    return m1, m2, m3


def _fixed_amplitudes(design: MaskedDesign, k: int) -> np.ndarray:
    if len(design.amplitude_probs[k]) != 1:
        raise ArgumentError("the closed-form initial velocities take fixed amplitudes")
    return design.amplitudes[k][0]


def initial_fp_velocity(design: MaskedDesign, k: int, p: int, normalize: str = "sum"
                        ) -> np.ndarray:
    """ḃ_{p,(k,j)}(0) for every area j of cluster k, exactly (docs/derivations/masked.md,
    §Initial velocities): at Q = 0 the attention is 1/P, so A_j = n_j/P with n_j the unmasked
    count of area j (p excluded), independent binomials under Bernoulli masks, and

        ḃ_j(0) = −Pr(p∈M) π_k z_j E[x_j (z_j²(x_j − δ_jt) − Σ_i z_i² x_i (x_i − δ_it))],

    x = n/P: moments up to order 3. Softmax over all patches, content-only value, Bernoulli
    masks. Shape (N_k,)."""
    if design.mask != "bernoulli":
        raise ArgumentError("the closed-form initial velocities take Bernoulli masks (the "
                            "counts of a fixed-size mask are not independent)")
    z = _fixed_amplitudes(design, k)
    t = int(design.areas[k, p])
    sizes = design.area_sizes(k).astype(float)
    sizes[t] -= 1
    m1, m2, m3 = binomial_moments(sizes, 1 - design.gamma)
    P = design.P
    x1, x2, x3 = m1 / P, m2 / P**2, m3 / P**3
    delta = np.zeros(len(z))
    delta[t] = 1.0
    inner = z**2 * (x2 - delta * x1)                       # E[z_i² x_i (x_i − δ_it)]
    velocity = np.empty(len(z))
    for j in range(len(z)):
        own = z[j] ** 2 * (x2[j] - delta[j] * x1[j])
        cross = sum(inner[i] * x1[j] for i in range(len(z)) if i != j) + \
            z[j] ** 2 * (x3[j] - delta[j] * x2[j])
        velocity[j] = -(own - cross) * z[j]
    return design.masked_probability * design.pi[k] * velocity * normalization(design, normalize)


def mean_field_fp_velocity(design: MaskedDesign, k: int, p: int) -> np.ndarray:
    """The mean-field initial velocities (z ≡ 1, counts replaced by their means):
    v_t ≈ γπ_k a_t(1 − 2a_t + Σ_i a_i²), v_j ≈ −γπ_k a_j(a_j + a_t − Σ_i a_i²), shape (N_k,)."""
    _unit_amplitudes(design, k, "mean_field_fp_velocity")
    a = initial_masses(design, k, p)
    t = int(design.areas[k, p])
    s2 = float(a @ a)
    v = -a * (a + a[t] - s2)
    v[t] = a[t] * (1 - 2 * a[t] + s2)
    return design.masked_probability * design.pi[k] * v


def dominant_area(design: MaskedDesign, k: int, p: int) -> int:
    """g: the largest area of cluster k other than p's own (ties: the lowest label), the area
    whose FP decouples in docs/derivations/masked.md, §Phases."""
    sizes = design.area_sizes(k).astype(float)
    sizes[design.areas[k, p]] = -1.0
    return int(np.argmax(sizes))


def information_gap(velocity: np.ndarray, t: int, g: int) -> float:
    """Δ0 = |ḃ_g(0)| − ḃ_t(0) (the analogue of v3's information gap, docs/derivations/
    masked.md, §Phases), from initial FP velocities of the areas, shape (N_k,), the own area t
    and the dominant other area g (:func:`dominant_area`)."""
    return float(abs(velocity[g]) - velocity[t])


def _unit_amplitudes(design: MaskedDesign, k: int, what: str) -> None:
    if len(design.amplitude_probs[k]) != 1 or not np.all(design.amplitudes[k] == 1.0):
        raise ArgumentError(f"{what}: the mean-field formulas take z ≡ 1 (cluster {k} has other "
                            "amplitudes); use initial_fp_velocity or a flow")


def t_half_mean_field(design: MaskedDesign, k: int, p: int) -> float:
    """(γπ_k κ)⁻¹ ∫_{a_t}^{1/2} dA / (A²(1 − A)³), κ = 1 + Σ_o ρ_o² with ρ_o = a_o/(1 − a_t),
    area o's share of the initial non-own mass (masked patches and the query included): the
    mean-field time to own-area mass ½ (docs/derivations/masked.md, §Phases)."""
    _unit_amplitudes(design, k, "t_half_mean_field")
    a = initial_masses(design, k, p)
    t = int(design.areas[k, p])
    rho = np.delete(a, t) / (1 - a[t])
    kappa = 1 + float(rho @ rho)
    if a[t] >= 0.5:
        return 0.0
    value, _ = integrate.quad(lambda A: 1 / (A**2 * (1 - A) ** 3), a[t], 0.5)
    return value / (design.masked_probability * design.pi[k] * kappa)


def t_over_mean_field(design: MaskedDesign, k: int, p: int) -> float:
    """The end of the decoupling phase: A_g has fallen to A_g* with A_g*²(1 − A_g*) = a_t,
    t_over ≈ (2γπ_k)⁻¹ (A_g*⁻² − a_g⁻²), and 0 if A_g* ≥ a_g (no decoupling phase)."""
    _unit_amplitudes(design, k, "t_over_mean_field")
    a = initial_masses(design, k, p)
    a_t, a_g = a[design.areas[k, p]], a[dominant_area(design, k, p)]
    if a_t >= 4 / 27:  # A²(1 − A) ≤ 4/27 on [0, 1]: no root, no decoupling
        return 0.0
    star = optimize.brentq(lambda A: A**2 * (1 - A) - a_t, 0.0, 2 / 3)
    if star >= a_g:
        return 0.0
    return (star**-2 - a_g**-2) / (2 * design.masked_probability * design.pi[k])


def diversity(maps: np.ndarray) -> float:
    """The attention-diversity metric (docs/derivations/masked.md, §Diversity): for mask-averaged
    maps ᾱ_p of one cluster, Div = 1 − (1/(P(P−1))) Σ_{p≠p'} cos(ᾱ_p, ᾱ_p'), averaged over
    clusters. 0 for query-independent attention.

    Parameters
    ----------
    maps : ndarray, shape (K, P, P)
        ``maps[k, p]`` = ᾱ_p in cluster k.
    """
    unit = maps / np.linalg.norm(maps, axis=2, keepdims=True)
    cos = np.einsum("kpq,krq->kpr", unit, unit)
    P = maps.shape[1]
    off = cos.sum(axis=(1, 2)) - np.trace(cos, axis1=1, axis2=2)
    return float(np.mean(1 - off / (P * (P - 1))))


def ideal_diversity(design: MaskedDesign) -> float:
    """The diversity of exact area-wide attention: each masked query's map uniform on the other
    patches of its own area, so two queries of one area overlap on C − 2 of their C − 1 patches
    (cos = (C−2)/(C−1)) and queries of different areas not at all:
    1 − Σ_j C_j(C_j − 2)/(P(P − 1)), averaged over clusters. (Maps identical within an area,
    the query included, would give 1 − Σ_j C_j(C_j − 1)/(P(P − 1)).)"""
    P = design.P
    return float(np.mean([1 - np.sum(c * (c - 2)) / (P * (P - 1))
                          for c in (design.area_sizes(k) for k in range(design.K))]))


def ring_distance(P: int) -> np.ndarray:
    """min(q, P − q): the ring distance of patch q from patch 0, shape (P,)."""
    q = np.arange(P)
    return np.minimum(q, P - q)


def fitted_slope(t: np.ndarray, y: np.ndarray, low: float, high: float) -> float | None:
    """The least-squares slope of log y against log t over the records with low ≤ t ≤ high
    and y > 0 (None with fewer than two)."""
    window = (t >= low) & (t <= high) & (y > 0)
    if window.sum() < 2:
        return None
    return float(np.polyfit(np.log(t[window]), np.log(y[window]), 1)[0])
