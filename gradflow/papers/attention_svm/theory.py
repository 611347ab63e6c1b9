"""Predictions of the attention-SVM papers for the one-layer attention model: token scores,
the attention SVMs of a selection (Frobenius for W, nuclear norm for W = KQᵀ), the
locally-optimal-selection test, and the rates of the normalised flow.

Derivations: ``docs/derivations/attention_svm.md``. The Frobenius SVM of a selection α is
Tarzanagh, Li, Zhang, Oymak (NeurIPS 2023), Eq. (ATT-SVM), in its W form:

    W^mm(α) = argmin ‖W‖_F  s.t.  (x_{iα_i} − x_it)ᵀ W z_i ≥ 1  for all i and t ≠ α_i,

solved and KKT-certified by :func:`gradflow.solve_max_margin`. "Transformers as support
vector machines" (abstract) says the (K, Q) parametrisation selects the same constraints with
the nuclear norm ‖W‖_* instead; :func:`max_margin_nuclear` solves that SVM and
:func:`nuclear_certificate` certifies any candidate by its own optimality conditions (a dual
point and the duality gap), with NumPy and SciPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from gradflow.errors import ArgumentError, GradflowError
from gradflow.maxmargin import MaxMarginSolution, attention_svm_rows, solve_max_margin
from gradflow.papers.attention_svm.data import AttentionSVMData

__all__ = [
    "COS_SLOPE",
    "NORM_SLOPE",
    "NUCLEAR_TOL",
    "SUPPORT_TOL",
    "LocalOptimality",
    "NuclearCertificate",
    "fitted_slope",
    "local_optimality",
    "max_margin",
    "max_margin_nuclear",
    "nuclear_certificate",
    "one_minus_cos",
    "optimal_selection",
    "svm_rows",
    "svm_values",
    "token_scores",
]

COS_SLOPE = -2.0
"""log(1 − cos(W(t), W^mm)) against log t under the normalised flow: W(t) = t·Ŵ^mm + c + o(1)
with a bounded offset c (``docs/derivations/attention_svm.md``, §Rates of the normalised
flow)."""
NORM_SLOPE = 1.0
"""log ‖W(t)‖ against log t under the normalised flow (unit speed on an asymptotically straight
path: ``docs/derivations/attention_svm.md``, §Rates of the normalised flow)."""
SUPPORT_TOL = 1e-9
"""A token t ≠ α_i is a support token when its SVM constraint value (x_iα − x_it)ᵀ W^mm z_i is
within this of 1: the KKT tolerance of :func:`gradflow.solve_max_margin`, which puts the
support's values at 1 to ~1e-15 (measured), while the others are generically ≥ 1 + 1e-4."""


def token_scores(data: AttentionSVMData, v: np.ndarray | None = None) -> np.ndarray:
    """The scores γ_it = y_i · vᵀx_it (``docs/derivations/attention_svm.md``, §Optimal and
    locally-optimal selections); shape (n, T).

    Parameters
    ----------
    data : AttentionSVMData
    v : ndarray, shape (d,), optional
        The head; default ``data.v`` (a trained head passes its current value).
    """
    head = data.v if v is None else np.asarray(v, dtype=float)
    return data.y[:, None] * (data.X @ head)


def optimal_selection(data: AttentionSVMData, v: np.ndarray | None = None) -> np.ndarray:
    """The globally optimal selection opt_i = argmax_t γ_it, shape (n,) of int.

    Raises
    ------
    ArgumentError
        If a sequence's two best scores tie to 1e-12 (relative): no unique optimal token.
    """
    gamma = token_scores(data, v)
    top2 = np.sort(gamma, axis=1)[:, -2:]
    scale = np.maximum(1.0, np.abs(top2[:, 1]))
    tied = np.flatnonzero(top2[:, 1] - top2[:, 0] <= 1e-12 * scale)
    if tied.size:
        raise ArgumentError(f"sequences {tied.tolist()} have two optimal tokens (tied scores)")
    return np.argmax(gamma, axis=1)


def svm_rows(data: AttentionSVMData, selected: Any) -> np.ndarray:
    """The constraint rows A_(i,t) = (x_iα_i − x_it) z_iᵀ of the SVM of ``selected``
    (:func:`gradflow.maxmargin.attention_svm_rows`), shape (n(T−1), d, d)."""
    return attention_svm_rows(data.X, data.z, np.asarray(selected))


def max_margin(data: AttentionSVMData, selected: Any) -> MaxMarginSolution:
    """W^mm of ``selected``: the certified Frobenius attention SVM.

    Raises
    ------
    InfeasibleError
        No W separates the selection (e.g. d² too small for n(T−1) constraints).
    """
    return solve_max_margin(svm_rows(data, selected))


def svm_values(data: AttentionSVMData, selected: Any, W: np.ndarray) -> np.ndarray:
    """The constraint values (x_iα_i − x_it)ᵀ W z_i, shape (n, T), with 0 at t = α_i."""
    selected = np.asarray(selected)
    rows = np.arange(data.n)
    scores = np.einsum("ntd,de,ne->nt", data.X, W, data.z)
    return scores[rows, selected][:, None] - scores


@dataclass(frozen=True)
class LocalOptimality:
    """The locally-optimal-selection test of a selection α (``docs/derivations/attention_svm.md``,
    §Optimal and locally-optimal selections).

    Attributes
    ----------
    locally_optimal : bool
        Every support token of W^mm(α) scores strictly below its sequence's selected token.
    globally_optimal : bool
        α is the argmax of the scores in every sequence.
    support : ndarray of int, shape (k, 2)
        The support tokens (i, t): constraint value within :data:`SUPPORT_TOL` of 1.
    violations : list of dict
        Support tokens with γ_it ≥ γ_iα_i: ``{"i", "t", "score_gap" (γ_iα − γ_it ≤ 0),
        "multiplier"}``.
    score_gap : float
        min over support tokens of γ_iα_i − γ_it (> 0 when locally optimal).
    nearest_higher : float
        Over the non-support tokens that score higher than their selected token, the smallest
        constraint value minus 1: how far the closest of them is from becoming a support token
        (``inf`` when there is none).
    """

    locally_optimal: bool
    globally_optimal: bool
    support: np.ndarray
    violations: list[dict[str, float]]
    score_gap: float
    nearest_higher: float


def local_optimality(data: AttentionSVMData, selected: Any,
                     solution: MaxMarginSolution | None = None,
                     v: np.ndarray | None = None) -> LocalOptimality:
    """Test whether ``selected`` is locally optimal: solve (or take) its SVM W^mm, find its
    support tokens, and compare their scores with the selected tokens'.

    Parameters
    ----------
    data : AttentionSVMData
    selected : array_like of int, shape (n,)
    solution : MaxMarginSolution, optional
        W^mm of ``selected`` if already solved.
    v : ndarray, optional
        The head for the scores (default ``data.v``).
    """
    selected = np.asarray(selected)
    solution = max_margin(data, selected) if solution is None else solution
    values = svm_values(data, selected, solution.w)
    gamma = token_scores(data, v)
    rows = np.arange(data.n)
    gap = gamma[rows, selected][:, None] - gamma  # γ_iα − γ_it
    others = np.ones(values.shape, dtype=bool)
    others[rows, selected] = False
    support = others & (np.abs(values - 1.0) <= SUPPORT_TOL)
    # multipliers in the (i, t ≠ α_i) row order of attention_svm_rows
    multipliers = np.zeros(values.shape)
    multipliers[others] = solution.multipliers
    bad = support & (gap <= 0)
    violations = [{"i": int(i), "t": int(t), "score_gap": float(gap[i, t]),
                   "multiplier": float(multipliers[i, t])} for i, t in np.argwhere(bad)]
    higher = others & ~support & (gap < 0)
    return LocalOptimality(
        locally_optimal=not bad.any(),
        globally_optimal=bool(np.all(selected == np.argmax(gamma, axis=1))),
        support=np.argwhere(support),
        violations=violations,
        score_gap=float(gap[support].min()) if support.any() else float("inf"),
        nearest_higher=float((values[higher] - 1.0).min()) if higher.any() else float("inf"),
    )


def one_minus_cos(W: np.ndarray, reference: np.ndarray) -> float:
    """1 − cos(W, reference) = ‖Ŵ − R̂‖²/2, which does not cancel as 1 − ⟨Ŵ, R̂⟩ does."""
    W, reference = np.asarray(W, dtype=float), np.asarray(reference, dtype=float)
    dist = np.linalg.norm(W / np.linalg.norm(W) - reference / np.linalg.norm(reference))
    return float(dist**2 / 2)


NUCLEAR_TOL = 1e-7
"""The largest certified relative gap :func:`max_margin_nuclear` accepts. Measured gaps of its
answers: 1e-12 to 1.1e-9 (n = 3, T = 4, d = 4 and the paper size n = 6, T = 8, d = 10); a gap g
bounds the relative suboptimality of ‖W‖_*, and near a sharp optimum (strict complementarity)
the direction's error is of the same order, far below the 1 − cos the flows reach."""


def fitted_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


# ------------------------------------------------------------------------------ nuclear norm


@dataclass(frozen=True)
class NuclearCertificate:
    """How close a candidate W is to the nuclear-norm SVM min ‖W‖_* s.t. ⟨A_k, W⟩ ≥ 1.

    Weak duality: for α ≥ 0 and G = Σ α_k A_k, every feasible W' has
    ‖W'‖_* ≥ ⟨G, W'⟩/‖G‖₂ ≥ Σα_k/‖G‖₂. So ``lower`` bounds the optimum from below, the
    candidate scaled to be feasible (``W``) from above, and ``gap`` bounds its suboptimality,
    whatever produced W and α (``docs/derivations/attention_svm.md``, §The nuclear-norm SVM and
    its certificate).

    Attributes
    ----------
    W : ndarray
        The candidate scaled to min_k ⟨A_k, W⟩ = 1.
    upper : float
        ‖W‖_*.
    lower : float
        Σα_k/‖G‖₂ for the dual point found.
    gap : float
        (upper − lower)/upper ≥ 0.
    alpha : ndarray, shape (k,)
        The dual point (zero off the active constraints).
    rank : int
        The rank of the tangent space the dual point was fitted on.
    """

    W: np.ndarray
    upper: float
    lower: float
    gap: float
    alpha: np.ndarray
    rank: int


def nuclear_certificate(rows: np.ndarray, W: np.ndarray,
                        active_tols: tuple[float, ...] = (1e-9, 1e-6, 1e-4, 1e-3, 1e-2)
                        ) -> NuclearCertificate:
    """Certify a candidate direction W for the nuclear-norm SVM (:class:`NuclearCertificate`).

    The dual point solves, for each rank r and each active tolerance, the NNLS problem
    min_{α ≥ 0} ‖P_T(Σ_{k active} α_k A_k) − U_r V_rᵀ‖_F (P_T the tangent space of the rank-r
    matrices at W's top r singular pairs: the optimality condition G ∈ ∂‖W‖_*); the best of
    these bounds is returned.

    Raises
    ------
    ArgumentError
        W does not satisfy every constraint with a positive value (it is no candidate).
    """
    rows = np.asarray(rows, dtype=float)
    k, d, e = rows.shape
    W = np.asarray(W, dtype=float)
    values = np.einsum("kde,de->k", rows, W)
    if not values.min() > 0:
        raise ArgumentError(f"W is no candidate: min_k ⟨A_k, W⟩ = {values.min():.3g} <= 0")
    W = W / values.min()
    values = values / values.min()
    U, sigma, Vt = np.linalg.svd(W)
    upper = float(sigma.sum())
    best = None
    flat = rows.reshape(k, -1)
    for r in range(1, min(d, e) + 1):
        if sigma[r - 1] <= 1e-12 * sigma[0]:
            break
        Ur, Vr = U[:, :r], Vt[:r].T
        target = (Ur @ Vr.T).ravel()
        PU, PV = Ur @ Ur.T, Vr @ Vr.T
        tangent = (PU @ rows + rows @ PV - PU @ rows @ PV).reshape(k, -1)
        for tol in active_tols:
            active = np.flatnonzero(values <= 1.0 + tol)
            coef, _ = optimize.nnls(tangent[active].T, target, maxiter=50 * active.size)
            alpha = np.zeros(k)
            alpha[active] = coef
            G = (alpha @ flat).reshape(d, e)
            spectral = float(np.linalg.norm(G, 2))
            if spectral <= 0:
                continue
            lower = float(alpha.sum() / spectral)
            if best is None or lower > best[0]:
                best = (lower, alpha, r)
    if best is None:
        lower, alpha, rank = 0.0, np.zeros(k), 0
    else:
        lower, alpha, rank = best
    return NuclearCertificate(W=W, upper=upper, lower=lower, gap=max(0.0, 1 - lower / upper),
                              alpha=alpha, rank=rank)


def max_margin_nuclear(rows: np.ndarray, start: np.ndarray | None = None,
                       restarts: int = 3) -> NuclearCertificate:
    """The nuclear-norm SVM min ‖W‖_* s.t. ⟨A_k, W⟩ ≥ 1, with its certificate.

    min ‖W‖_* = min {½(‖K‖_F² + ‖Q‖_F²) : KQᵀ = W} over square factors, so SLSQP solves
    min ½(‖K‖² + ‖Q‖²) s.t. ⟨A_k, KQᵀ⟩ ≥ 1 from the balanced factors of ``start`` (default: the
    Frobenius SVM), then of random starts; the answer is accepted only when
    :func:`nuclear_certificate` bounds its gap by :data:`NUCLEAR_TOL` (the factorised problem is
    not convex: the certificate, not the solver, is what makes the answer trustworthy;
    ``docs/derivations/attention_svm.md``, §The nuclear-norm SVM and its certificate).

    Raises
    ------
    GradflowError
        No start gave a certified answer (the best gap is named).
    InfeasibleError
        The constraints cannot be met (from :func:`gradflow.solve_max_margin`).
    """
    rows = np.asarray(rows, dtype=float)
    k, d, e = rows.shape
    if d != e:
        raise ArgumentError(f"rows must be square d × d matrices, got {rows.shape[1:]}")
    flat = rows.reshape(k, -1)
    starts = [solve_max_margin(rows).w if start is None else np.asarray(start, dtype=float)]
    gen = np.random.default_rng(0)
    best = None
    for attempt in range(restarts + 1):
        if attempt >= len(starts):
            starts.append(starts[0] + 0.1 * np.linalg.norm(starts[0]) / d
                          * gen.standard_normal((d, d)))
        W0 = starts[attempt]
        values = flat @ W0.ravel()
        if not values.min() > 0:
            continue
        U, sigma, Vt = np.linalg.svd(W0 / values.min())
        x0 = np.concatenate([(U * np.sqrt(sigma)).ravel(), (Vt.T * np.sqrt(sigma)).ravel()])

        def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return x[: d * d].reshape(d, d), x[d * d:].reshape(d, d)

        def constraints(x: np.ndarray) -> np.ndarray:
            K, Q = split(x)
            return flat @ (K @ Q.T).ravel() - 1.0

        def jacobian(x: np.ndarray) -> np.ndarray:
            K, Q = split(x)
            return np.hstack([np.einsum("kde,ef->kdf", rows, Q).reshape(k, -1),
                              np.einsum("kde,df->kef", rows, K).reshape(k, -1)])

        result = optimize.minimize(lambda x: 0.5 * (x @ x), x0, jac=lambda x: x,
                                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000},
                                   constraints=[{"type": "ineq", "fun": constraints,
                                                 "jac": jacobian}])
        K, Q = split(result.x)
        try:
            certificate = nuclear_certificate(rows, K @ Q.T)
        except ArgumentError:
            continue
        if best is None or certificate.gap < best.gap:
            best = certificate
        if best.gap <= NUCLEAR_TOL:
            return best
    raise GradflowError("the nuclear-norm SVM could not be certified: best relative gap "
                        f"{'none' if best is None else f'{best.gap:.2e}'} > {NUCLEAR_TOL:g}")
