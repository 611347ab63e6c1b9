"""Predictions of Huang, Cheng, Liang (ICML 2024) for softmax attention on a finite feature
dictionary: on balanced features Phase I (attention on the query's own feature reaching ½) lasts
a time of order K² (the paper's Phase I; ``docs/derivations/softmax_icl.md``)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln
from scipy.stats import binom

from gradflow.errors import ArgumentError
from gradflow.papers.softmax_icl.data import count_vectors

__all__ = ["balanced_floor", "fit_K_squared", "include_query_floor", "offtarget_drift",
           "phase1_coefficient", "phase2_extra_time", "phase2_slope", "rare_query_infimum"]


def fit_K_squared(K: np.ndarray, times: np.ndarray) -> dict[str, float]:
    """Least-squares c in T ≈ c·K², and the free log-log exponent of T against K.

    Raises
    ------
    ArgumentError
        Fewer than 2 distinct K with a positive finite time: a line through one point (or
        through repeats of it) is not a fit.
    """
    K = np.asarray(K, dtype=float)
    times = np.asarray(times, dtype=float)
    if K.shape != times.shape or K.ndim != 1:
        raise ArgumentError(f"K and times must be vectors of one length, got shapes {K.shape} "
                            f"and {times.shape}")
    usable = np.isfinite(K) & (K > 0) & np.isfinite(times) & (times > 0)
    if np.unique(K[usable]).size < 2:
        raise ArgumentError(
            f"a power-law fit needs at least 2 distinct K with a positive finite time, got "
            f"K = {K.tolist()}, times = {times.tolist()}"
        )
    K, times = K[usable], times[usable]
    c = float(np.sum(times * K**2) / np.sum(K**4))
    exponent = float(np.polyfit(np.log(K), np.log(times), 1)[0])
    return {"c": c, "exponent": exponent}


def _balanced_moments(K: int, N: int) -> tuple[float, float]:
    """Φ = E_j[((N−j)² + E[Σ_{n≠k} c_n² | j])/j²] and Ψ = E_j[(…)(N−j)/j³] over j = c_k ~
    Bin(N, 1/K), j ≥ 1 (an implementation of its own: binomial weights from scipy)."""
    j = np.arange(1, N + 1)
    w = binom.pmf(j, N, 1.0 / K)
    r = N - j
    q = 1.0 / (K - 1)
    num = r**2 + r * (1 - q) + r**2 * q
    return float(np.sum(w * num / j**2)), float(np.sum(w * num * r / j**3))


def phase1_coefficient(K: int, N: int) -> float:
    """The K log K coefficient of Phase I: T(α = ½) = K² + 3(1 + K/N)·K log K + O(K).

    With u = e^{A−B}/K (1/K at S = 0), large K and N/K = c fixed, j ~ Poisson(c) and
    L ≈ F(u) = ½E[(1 − ju/(ju + c))²], the flow is u̇ = −u²F'(u)/(K − 1) with
    F'(u) = −1 + 3(1 + 1/c)u + O(u²): integrating dt = (K − 1)du/(u²|F'|) from u = 1/K gives
    K² from the 1/u² and 3(1 + 1/c)K log K from the linear term
    (``docs/derivations/softmax_icl.md``)."""
    return 3.0 * (1.0 + K / N)


def balanced_floor(K: int, N: int) -> float:
    """The balanced loss's limit: prompts with c_k = 0 (probability (1 − 1/K)^N) keep
    ½(1 + Σ_{n≠k} a_n²) with uniform off-target logits, E[Σ a_n² | c_k = 0] = q + (1 − q)/N,
    q = 1/(K − 1); every other prompt's loss → 0."""
    q = 1.0 / (K - 1)
    return float(0.5 * (1 - 1 / K) ** N * (1 + q + (1 - q) / N))


def phase2_slope(K: int, N: int, excess: float) -> float:
    """Phase II: d(1/ℓ)/dt for the balanced flow at excess loss ℓ = L − :func:`balanced_floor`:
    (4/(K − 1))(1 − 2(Ψ/Φ)r), r = √(2ℓ/Φ) (see :func:`phase2_extra_time`). To leading order
    1/ℓ grows at 4/(K − 1) per unit time, so ℓ ≈ (K − 1)/(4t): an algebraic 1/t tail."""
    Phi, Psi = _balanced_moments(K, N)
    return float(4.0 / (K - 1) * (1 - 2 * (Psi / Phi) * np.sqrt(2 * excess / Phi)))


def phase2_extra_time(K: int, N: int, upper: float = 1e-3, lower: float = 1e-4) -> float:
    """The balanced flow's time from loss ``upper`` to ``lower`` (both ≫ the floor), to second
    order in r = e^{B−A}: L = ½Φr² − Ψr³ + O(r⁴) (:func:`_balanced_moments`) and
    dL/dt = −(r dL/dr)²/(K − 1) give dL/dt = −(4/(K − 1))L²(1 − 2(Ψ/Φ)r), r ≈ √(2L/Φ), so

        Δt = ((K − 1)/4)[(1/lower − 1/upper) + 4(Ψ/Φ)√(2/Φ)(lower^{−½} − upper^{−½})];

    the leading term is (9/4)(K − 1)·1e3 for 1e-3 → 1e-4, i.e. 0.225(K − 1)/K · K/ε."""
    Phi, Psi = _balanced_moments(K, N)
    lead = 1 / lower - 1 / upper
    correction = 4 * (Psi / Phi) * np.sqrt(2 / Phi) * (lower**-0.5 - upper**-0.5)
    return float((K - 1) / 4 * (lead + correction))


def _falling_factorial(N: int, r: int) -> float:
    return float(np.prod([N - i for i in range(r)]))


def offtarget_drift(p, N: int | None, n: int, k: int) -> float:
    """At S = 0 the off-target logit s_nk (n ≠ k) moves at ṡ_nk = p_k·D with
    D = E[a_n Σ_m a_m²] − E[a_n²] − E[a_n a_k], a = c/N, c ~ Mult(N, p): it rises iff D > 0.

    ``N=None``: the mean field a = p, D = p_n(Σ p² − p_n − p_k) (the independent prototype's rule
    p_n < Σp² − p_k, ``docs/derivations/softmax_icl.md``, §Reference values of an independent
    prototype). Otherwise the exact multinomial moments (factorial moments N^{(r)}):
    E c_n c_m² = N^{(3)}p_n p_m² + N^{(2)}p_n p_m (m ≠ n), E c_n³ = N^{(3)}p_n³ + 3N^{(2)}p_n² +
    N p_n, E c_n² = N^{(2)}p_n² + N p_n, E c_n c_k = N^{(2)}p_n p_k."""
    p = np.asarray(p, dtype=float)
    if N is None:
        return float(p[n] * (np.sum(p**2) - p[n] - p[k]))
    N2, N3 = _falling_factorial(N, 2), _falling_factorial(N, 3)
    third = 0.0
    for m in range(p.size):
        if m == n:
            third += N3 * p[n] ** 3 + 3 * N2 * p[n] ** 2 + N * p[n]
        else:
            third += N3 * p[n] * p[m] ** 2 + N2 * p[n] * p[m]
    second = N2 * p[n] ** 2 + N * p[n]
    cross = N2 * p[n] * p[k]
    return float((third - N * second - N * cross) / N**3)


def include_query_floor(p, N: int) -> float:
    """The loss the flow tends to when the query token is inside the softmax: as the target
    logit grows the query's own token (label 0) keeps 1/(c_k + 1) of the mass, so
    a_k → c_k/(c_k + 1) and L → Σ_k p_k ½ E[(c_k + 1)^{−2}], c_k ~ Bin(N, p_k) — about
    ½(K/N)² for balanced features, the O((K/N)²) error of ``docs/derivations/softmax_icl.md``,
    §Modelling choices."""
    p = np.asarray(p, dtype=float)
    c = np.arange(N + 1)
    return float(sum(pk * 0.5 * np.sum(binom.pmf(c, N, pk) / (c + 1.0) ** 2) for pk in p))


def rare_query_infimum(p, N: int, k: int) -> tuple[float, float]:
    """For query k, the infimum of L_k over the logits when feature 1 (index 0) is dominant and
    the other off-target features share one logit: prompts with c_k ≥ 1 cost nothing in the
    limit A_k → ∞, prompts with c_k = 0 (probability (1 − p_k)^N) cost ½(1 + Σ_{n≠k} a_n²) with
    a_n ∝ c_n e^{b_n}, c ~ Mult(N, p_{−k}/(1 − p_k)). Returns (inf L_k / ½(1 − p_k)^N, b*), b*
    the minimising logit of the dominant feature relative to the others (bounded scalar
    search on b ∈ [−20, 20]; the conditional counts are enumerated exactly)."""
    p = np.asarray(p, dtype=float)
    others = [i for i in range(p.size) if i != k]
    q = p[others] / (1 - p[k])
    K1 = q.size
    counts = count_vectors(N, K1)  # every count vector of the K − 1 other features
    log_w = (gammaln(N + 1) - gammaln(counts + 1).sum(axis=1)
             + (counts * np.log(q)).sum(axis=1))
    weights = np.exp(log_w)
    dominant = others.index(0)

    def mean_square(b: float) -> float:
        logits = np.zeros(K1)
        logits[dominant] = b
        mass = counts * np.exp(logits - logits.max())
        a = mass / mass.sum(axis=1, keepdims=True)
        return float(weights @ np.sum(a * a, axis=1))

    result = minimize_scalar(mean_square, bounds=(-20.0, 20.0), method="bounded",
                             options={"xatol": 1e-10})
    return 1.0 + float(result.fun), float(result.x)
