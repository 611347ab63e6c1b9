"""Hard-margin problems ``min ½‖w‖² s.t. A w ≥ 1``, solved exactly and certified by KKT.

Every max-margin problem of the papers gradflow simulates (binary SVM, multi-class next-token
SVM, attention SVM) is of this form once its matrix variable is vectorised: row i of ``A`` is the
constraint's coefficient matrix, flattened.

Algorithm (SciPy only):

1. **Min-norm point of the hull.** The solution is w* = p/‖p‖² where p is the point of least
   norm in the convex hull of the rows of A (then min_i a_iᵀp = ‖p‖², so w* is feasible with
   equality on the support). p = Aᵀλ with λ on the simplex is found by non-negative least
   squares (``scipy.optimize.nnls``) with the simplex equality as a heavily weighted extra row.
   p = 0 means 0 is in the hull: no w satisfies A w ≥ 1 (the data are not separable).
2. **Active-set polish.** On the constraints tight to ~1e-6, solve A_S w = 1 in the least-norm
   sense, which removes the weighted row's approximation error (if that system is inconsistent
   because a nearly tight row is inactive: tight to 1e-9, then the hull's support, then the
   unpolished point — the first that passes step 3).
3. **KKT verification.** Primal feasibility (min A w ≥ 1 − tol), multipliers α_S ≥ 0 by NNLS
   with stationarity residual ‖w − A_Sᵀα_S‖ ≈ 0, complementary slackness by construction. By
   convexity these three are a certificate of optimality.
4. **Fallback.** If the certificate fails (an ill-conditioned active set), SLSQP on the primal
   from the polished point, then the same verification. Failing that, an error — never an
   unverified answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from gradflow.errors import ArgumentError, GradflowError, InfeasibleError

__all__ = ["MaxMarginSolution", "solve_max_margin"]

ACTIVE_TOL = 1e-6
"""Constraints with a_iᵀw ≤ 1 + ACTIVE_TOL are treated as tight when polishing."""
KKT_TOL = 1e-9
"""Relative tolerance of the KKT certificate (feasibility and stationarity)."""


@dataclass(frozen=True)
class MaxMarginSolution:
    """A certified solution of ``min ½‖w‖² s.t. A w ≥ 1``.

    Attributes
    ----------
    w : ndarray, shape of one constraint (``A.shape[1:]``)
        The solution.
    norm : float
        ‖w‖ (Frobenius for matrices).
    margin : float
        1/‖w‖: the largest achievable min_i a_iᵀŵ over unit-norm ŵ.
    support : ndarray of int
        Indices of the active constraints (a_iᵀw = 1).
    multipliers : ndarray, shape (k,)
        Lagrange multipliers α ≥ 0 (zero off the support); w = Aᵀα.
    kkt : dict
        ``primal_violation`` = max(0, 1 − min A w), ``stationarity`` = ‖w − Aᵀα‖/‖w‖,
        ``min_multiplier`` = min α, and ``complementarity`` = max |α_i (a_iᵀw − 1)|.
    method : str
        ``"nnls"`` or ``"slsqp"`` (the fallback).
    """

    w: np.ndarray
    norm: float
    margin: float
    support: np.ndarray
    multipliers: np.ndarray
    kkt: dict[str, float]
    method: str


def _as_rows(A: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    A = np.asarray(A, dtype=float)
    if A.ndim < 2 or A.shape[0] == 0 or A.size == 0:
        raise ArgumentError(
            f"A must have shape (k, ...) with k >= 1 constraints of positive size, got {A.shape}"
        )
    if not np.all(np.isfinite(A)):
        raise ArgumentError("A must be finite")
    return A.reshape(A.shape[0], -1), A.shape[1:]


def _min_norm_hull_point(rows: np.ndarray) -> np.ndarray:
    """λ on the simplex minimising ‖rowsᵀλ‖ (NNLS with a weighted sum-to-one row)."""
    scale = float(np.max(np.linalg.norm(rows, axis=1)))
    weight = 1e3 * scale
    matrix = np.vstack([rows.T, np.full((1, rows.shape[0]), weight)])
    target = np.zeros(matrix.shape[0])
    target[-1] = weight
    lam, _ = optimize.nnls(matrix, target, maxiter=50 * matrix.shape[1])
    return lam / lam.sum()


def _certified(kkt: dict[str, float]) -> bool:
    return (kkt["primal_violation"] <= KKT_TOL and kkt["stationarity"] <= KKT_TOL
            and kkt["min_multiplier"] >= 0.0 and kkt["complementarity"] <= 1e3 * KKT_TOL)


def _kkt(rows: np.ndarray, w: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, dict]:
    """Multipliers on ``support`` (NNLS on w = A_Sᵀα) and the KKT residuals of (w, α)."""
    alpha_S, _ = optimize.nnls(rows[support].T, w, maxiter=50 * max(1, support.size))
    alpha = np.zeros(rows.shape[0])
    alpha[support] = alpha_S
    values = rows @ w
    norm = float(np.linalg.norm(w))
    kkt = {
        "primal_violation": float(max(0.0, 1.0 - values.min())),
        "stationarity": float(np.linalg.norm(w - rows.T @ alpha) / norm) if norm else np.inf,
        "min_multiplier": float(alpha.min()),
        "complementarity": float(np.max(np.abs(alpha * (values - 1.0)))),
    }
    return alpha, kkt


def _certify(
    rows: np.ndarray, w: np.ndarray, hull_support: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Polish ``w`` and return the first certified (w, multipliers, KKT residuals).

    Candidates, in order: the least-norm solution of A_S w = 1 on the constraints tight to
    1e-6, then to 1e-9 (a nearly tight but inactive row makes the first system inconsistent),
    then on the hull's support (λ > 0), then ``w`` itself. The least-residual candidate is
    returned when none is certified.
    """
    values = rows @ w
    supports = [np.flatnonzero(values <= 1.0 + tol) for tol in (ACTIVE_TOL, 1e-9)]
    if hull_support is not None:
        supports.append(hull_support)
    candidates = []
    for support in supports:
        if support.size == 0:
            continue
        polished, *_ = np.linalg.lstsq(rows[support], np.ones(support.size), rcond=None)
        candidates.append((polished, support))
    candidates.append((w, supports[-1] if supports[-1].size else np.array([np.argmin(values)])))
    best = None
    for candidate, support in candidates:
        alpha, kkt = _kkt(rows, candidate, support)
        if _certified(kkt):
            return candidate, alpha, kkt
        score = kkt["primal_violation"] + kkt["stationarity"]
        if best is None or score < best[0]:
            best = (score, candidate, alpha, kkt)
    return best[1], best[2], best[3]


def _slsqp(rows: np.ndarray, w0: np.ndarray) -> np.ndarray:
    result = optimize.minimize(
        lambda w: 0.5 * (w @ w), w0, jac=lambda w: w, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda w: rows @ w - 1.0, "jac": lambda w: rows}],
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    return result.x


def solve_max_margin(A: Any) -> MaxMarginSolution:
    """Solve ``min ½‖w‖² s.t. a_iᵀw ≥ 1`` for every row (constraint) a_i of ``A``.

    Parameters
    ----------
    A : array_like, shape (k, ...)
        ``A[i]`` is constraint i's coefficient array (a vector, or a matrix for matrix
        variables: the constraint is ⟨A[i], W⟩ ≥ 1).

    Returns
    -------
    MaxMarginSolution
        With ``w`` shaped like ``A[0]`` and its KKT certificate.

    Raises
    ------
    InfeasibleError
        No w satisfies all constraints (0 lies in the convex hull of the rows: the data are
        not separable), including a constraint whose row is zero.
    ArgumentError
        ``A`` is empty or not finite.
    GradflowError
        Neither the NNLS route nor the SLSQP fallback produced a KKT-certified solution.
    """
    rows, shape = _as_rows(A)
    zero = np.flatnonzero(~rows.any(axis=1))
    if zero.size:
        raise InfeasibleError(
            f"constraint rows {zero[:10].tolist()} of A are zero: 0 ≥ 1 cannot hold, so the "
            "max-margin problem is infeasible"
        )
    lam = _min_norm_hull_point(rows)
    p = rows.T @ lam
    scale = float(np.max(np.linalg.norm(rows, axis=1)))
    if np.linalg.norm(p) <= 1e-9 * scale:
        raise InfeasibleError(
            "0 lies in the convex hull of the constraint rows (min-norm point "
            f"‖p‖ = {np.linalg.norm(p):.2e} vs row scale {scale:.2e}): no w satisfies A w ≥ 1; "
            "the data are not separable"
        )
    w, alpha, kkt = _certify(rows, p / (p @ p), np.flatnonzero(lam > 0))
    method = "nnls"
    if not _certified(kkt):
        w, alpha, kkt = _certify(rows, _slsqp(rows, w))
        method = "slsqp"
        if not _certified(kkt):
            raise GradflowError(f"max-margin solve could not be certified: KKT residuals {kkt}")
    norm = float(np.linalg.norm(w))
    return MaxMarginSolution(
        w=w.reshape(shape), norm=norm, margin=1.0 / norm,
        support=np.flatnonzero(alpha > 0), multipliers=alpha, kkt=kkt, method=method,
    )
