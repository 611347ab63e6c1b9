"""Hard-margin problems ``min ½‖w‖² s.t. A w ≥ 1``, solved exactly and certified by KKT.

Every max-margin problem of the papers gradflow simulates (binary SVM, multi-class next-token
SVM, attention SVM) is of this form once its matrix variable is vectorised: row i of ``A`` is the
constraint's coefficient matrix, flattened. :func:`attention_svm_rows` builds the rows of the
attention SVM.

The answer must not depend on how the problem happens to be scaled. Three scalings matter:
the whole problem (A → cA: w → w/c), the rows (a_i → r_i a_i, r_i > 0: a different problem, but
feasible exactly when the original is), and the columns (A → AD, a diagonal change of variables
w = Du: the same feasible set, but *not* the same minimum-norm problem). Column scaling is the
hard one: entries of w of very different sizes, constraint values a_iᵀw that are sums of terms
much larger than 1. So every decision below is made in scale-free terms, and the linear algebra
is the kind whose errors are relative to each entry's own size.

Algorithm (NumPy/SciPy only):

1. **Global scale.** A is divided by the power of two nearest its largest entry (exact), the
   problem is solved for that Â, and w = ŵ/c, α = α̂/c² at the end; nothing overflows in
   between. An answer whose w, ‖w‖ or multipliers α fall outside float64 (e.g. α = 1e400 for
   ``[[1e-200, 0]]``) is a :class:`GradflowError`, not an infinity.
2. **Warm start.** The min-norm point of the convex hull of Â's rows (NNLS with a sum-to-one
   row, ``scipy.optimize.nnls``) gives the support guess S₀ = {λ > 0}; on a well-scaled problem
   it is already the answer (w* = p/‖p‖²). Only its support is used.
3. **Dual active set (Goldfarb & Idnani, Math. Programming 27 (1983), §3, with H = I).** From a
   dual-feasible start (the equality-constrained solution on S₀, its negative-multiplier rows
   dropped), repeatedly add the most violated constraint — by the scale-free violation
   (1 − a_iᵀw)/max(1, |a_i|ᵀ|w|) — moving along the straight path to the equality-constrained
   solution on S ∪ {q} and dropping the first row whose multiplier reaches zero. The end point
   of each path is recomputed from scratch, not updated, so errors do not accumulate. Whether
   a_q depends linearly on the rows of S is decided on the *equilibrated* rows (step 5's B),
   where it is a property of the problem rather than of its scaling.
4. **Equality-constrained solves.** The least-norm w with A_S w = 1 and its multipliers
   (A_Sᵀα = w) come from Householder QR of A_Sᵀ with its rows (the coordinates) sorted by
   decreasing size and column pivoting: the combination that is accurate row by row on such
   stiff, widely scaled matrices (Cox & Higham, BIT 38 (1998), §§3–4, after Powell & Reid
   1969); the rows of A_S are scaled by powers of two first; two steps of iterative
   refinement follow.
5. **Infeasibility certificate.** If the hull point of step 2 is small (‖p‖ ≤ 1e-9·max‖â_i‖)
   or step 3 fails, the rows are equilibrated — B = R A D with power-of-two row and column
   scalings (Ruiz's ∞-norm iteration), so every row and column of B has largest entry in
   [½, 2] — and the min-norm point p_B of the hull of B's rows is computed. 0 lies in the hull
   of A's rows exactly when it lies in the hull of B's (positive row scalings and an
   invertible D preserve that), so ‖p_B‖ ≤ 1e-9·max‖b_i‖ is an infeasibility certificate
   relative to the problem's own scale, and only then is :class:`InfeasibleError` raised.
6. **KKT certificate** (:func:`_kkt`), every residual relative to the size of the terms it is
   computed from, hence invariant under scaling rows, columns or the whole problem, and of
   order p·1e-16 when the only errors are float64 rounding:

   - primal feasibility  max_i max(0, 1 − a_iᵀw) / max(1, |a_i|ᵀ|w|);
   - multipliers α ≥ 0 (by construction: negative ones are zeroed *before* the other checks);
   - stationarity  max_j |w_j − (Aᵀα)_j| / (|w_j| + (|A|ᵀα)_j);
   - complementarity  Σ_i α_i |a_iᵀw − 1| / Σ_i α_i max(1, |a_i|ᵀ|w|) (the relative duality
     gap's weighted slack).

   For a problem without cancellation (|a_i|ᵀ|w| ≈ 1 on the support) the first is the plain
   violation 1 − a_iᵀw. The normwise ‖w − Aᵀα‖/‖w‖ is reported too (``stationarity_normwise``)
   but not required: on column-scaled problems it cannot reach 1e-9 in float64 even for the
   exact solution rounded to doubles (measured 3e-8 on a 30×8 instance with rows and columns
   scaled by 10^U(−6, 6)), because α's own rounding is amplified by the cancellation in Aᵀα.
   By convexity the four checks certify optimality up to those componentwise tolerances.
7. **Fallback.** If step 3 does not certify (an ill-conditioned active set), SLSQP on the
   primal from the best point, polished on its tight constraints by step 4, then step 6.
   Failing that, a :class:`GradflowError` — never an unverified answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, optimize

from gradflow.errors import ArgumentError, GradflowError, InfeasibleError

__all__ = ["MaxMarginSolution", "attention_svm_rows", "solve_max_margin"]

ACTIVE_TOL = 1e-6
"""Constraints with scale-free slack ≤ ACTIVE_TOL are treated as tight when polishing."""
KKT_TOL = 1e-9
"""Tolerance of the (componentwise, scale-free) KKT certificate."""
ADD_TOL = 1e-12
"""A constraint enters the active set when its scale-free violation exceeds this."""
DEPENDENCE_TOL = 1e-10
"""An equilibrated row whose distance to the span of the active ones is below this fraction of
its norm is linearly dependent on them."""
INFEASIBLE_TOL = 1e-9
"""0 is in the hull when the equilibrated hull's min-norm point is this small (relative)."""


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
        Indices of the active constraints (a_iᵀw = 1, α_i > 0).
    multipliers : ndarray, shape (k,)
        Lagrange multipliers α ≥ 0 (zero off the support); w = Aᵀα.
    kkt : dict
        The certificate (module docstring, step 6): ``primal_violation``, ``stationarity``,
        ``min_multiplier`` (= min α, ≥ 0), ``complementarity``, all scale-free and ≤ KKT_TOL,
        and, for information only, ``stationarity_normwise`` = ‖w − Aᵀα‖/‖w‖.
    method : str
        ``"active-set"`` (steps 2–4) or ``"slsqp"`` (the fallback).
    """

    w: np.ndarray
    norm: float
    margin: float
    support: np.ndarray
    multipliers: np.ndarray
    kkt: dict[str, float]
    method: str


def _as_rows(A: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """``A`` as a finite real (k, p) float array and the shape of one constraint."""
    try:
        arr = np.asarray(A)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise ArgumentError(f"A must be a real numeric array of shape (k, ...): {exc}") from None
    if np.iscomplexobj(arr):
        raise ArgumentError(f"A must be real, got complex values (dtype {arr.dtype})")
    if arr.dtype.kind == "O" and any(isinstance(x, (str, bytes, complex)) for x in arr.flat):
        raise ArgumentError("A must be a real numeric array, got strings or complex objects")
    if arr.dtype.kind not in "biufO":
        raise ArgumentError(f"A must be a real numeric array, got dtype {arr.dtype}")
    try:
        arr = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"A must be a real numeric array: {exc}") from None
    if arr.ndim < 2 or arr.shape[0] == 0 or arr.size == 0:
        raise ArgumentError(
            f"A must have shape (k, ...) with k >= 1 constraints of positive size, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ArgumentError("A must be finite")
    return arr.reshape(arr.shape[0], -1), arr.shape[1:]


def _pow2(x: np.ndarray) -> np.ndarray:
    """The power of two nearest each positive ``x`` (so that scaling by it is exact)."""
    return np.ldexp(1.0, np.round(np.log2(x)).astype(int))


def _safe_norm(x: np.ndarray) -> float:
    """‖x‖ without overflow or underflow of the squares."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return m * float(np.linalg.norm(x / m)) if m > 0 else 0.0


def _equilibrate(A: np.ndarray, sweeps: int = 30) -> np.ndarray:
    """B = R A D, R and D diagonal powers of two (Ruiz's ∞-norm iteration), every nonzero row
    and column of B with largest entry in [½, 2]."""
    absB = np.abs(A)
    for _ in range(sweeps):
        rmax, cmax = absB.max(axis=1), absB.max(axis=0)
        cmax = np.where(cmax > 0, cmax, 1.0)  # a zero column stays as it is
        if np.all(np.abs(np.log2(rmax)) <= 1) and np.all(np.abs(np.log2(cmax)) <= 1):
            break
        absB = absB / _pow2(np.sqrt(rmax))[:, None] / _pow2(np.sqrt(cmax))
    return np.sign(A) * absB


class _Rows:
    """Least-norm solves with a set of rows ``M`` (s, p) of full row rank, accurate entry by
    entry when M's columns have wildly different scales (module docstring, step 4).

    M's rows are scaled by powers of two to unit ∞-norm (exact); Mᵀ's rows, the coordinates,
    are sorted by decreasing size and factored by Householder QR with column pivoting.
    """

    def __init__(self, M: np.ndarray):
        self.M = M
        self.rho = 1.0 / _pow2(np.abs(M).max(axis=1))
        Mt = (self.rho[:, None] * M).T
        self.order = np.argsort(-np.abs(Mt).max(axis=1), kind="stable")
        self.Q, self.R, self.piv = linalg.qr(Mt[self.order], mode="economic", pivoting=True)

    def _least_norm(self, b: np.ndarray) -> np.ndarray:
        # M w = b ⇔ (ρM)[piv] w = (ρb)[piv] ⇔ Rᵀ Qᵀ w[order] = (ρb)[piv].
        y = linalg.solve_triangular(self.R, (self.rho * b)[self.piv], trans="T")
        w = np.empty(self.M.shape[1])
        w[self.order] = self.Q @ y
        return w

    def least_norm(self, b: np.ndarray) -> np.ndarray:
        """The least-norm w with M w = b, refined twice on the residual."""
        w = self._least_norm(b)
        for _ in range(2):
            w = w + self._least_norm(b - self.M @ w)
        return w

    def _coefficients(self, v: np.ndarray) -> np.ndarray:
        beta = np.empty(self.M.shape[0])
        beta[self.piv] = linalg.solve_triangular(self.R, self.Q.T @ v[self.order])
        return self.rho * beta

    def coefficients(self, v: np.ndarray) -> np.ndarray:
        """The least-squares α with Mᵀα ≈ v (exact for v in M's row space), refined twice."""
        alpha = self._coefficients(v)
        for _ in range(2):
            alpha = alpha + self._coefficients(v - self.M.T @ alpha)
        return alpha


def _independent(B: np.ndarray, support: list[int], q: int) -> bool:
    """Whether equilibrated row B[q] is outside the span of the rows B[support]."""
    if not support:
        return True
    Q, _ = np.linalg.qr(B[support].T)
    b = B[q]
    return bool(np.linalg.norm(b - Q @ (Q.T @ b)) > DEPENDENCE_TOL * np.linalg.norm(b))


def _independent_subset(B: np.ndarray, candidates: np.ndarray) -> list[int]:
    """A maximal linearly independent subset of the equilibrated rows B[candidates]."""
    if candidates.size == 0:
        return []
    _, R, piv = linalg.qr(B[candidates].T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int(np.sum(diag > DEPENDENCE_TOL * diag[0]))
    return sorted(candidates[piv[:rank]].tolist())


def _equality_solution(rows: np.ndarray, support: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The least-norm w with a_iᵀw = 1 on ``support`` and its multipliers there."""
    factor = _Rows(rows[support])
    w = factor.least_norm(np.ones(len(support)))
    return w, factor.coefficients(w)


def _scale_free_violation(rows: np.ndarray, abs_rows: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(1 − a_iᵀw)/max(1, |a_i|ᵀ|w|): positive for violated constraints, scale-free."""
    return (1.0 - rows @ w) / np.maximum(1.0, abs_rows @ np.abs(w))


def _dual_start(rows: np.ndarray, B: np.ndarray, guess: np.ndarray):
    """A dual-feasible start on the independent part of ``guess``: w the equality-constrained
    solution, α ≥ 0 (rows with negative multipliers are dropped until none is left)."""
    support = _independent_subset(B, guess)
    while support:
        w, alpha = _equality_solution(rows, support)
        if np.all(alpha >= 0):
            return support, alpha, w
        support = [i for i, a in zip(support, alpha, strict=True) if a >= 0]
    return [], np.zeros(0), np.zeros(rows.shape[1])


class _NotSolved(Exception):
    """The active-set method stopped without a solution (it found the problem infeasible, or
    ran out of iterations); ``w`` is its last iterate."""

    def __init__(self, message: str, w: np.ndarray):
        super().__init__(message)
        self.w = w


def _active_set(rows: np.ndarray, B: np.ndarray, guess: np.ndarray):
    """Goldfarb–Idnani's dual method (module docstring, step 3) from the support ``guess``.

    Returns (w, α) with α of shape (k,), zero off the final active set.
    """
    k, p = rows.shape
    abs_rows = np.abs(rows)
    support, alpha_S, w = _dual_start(rows, B, guess)
    active = np.zeros(k, dtype=bool)
    active[support] = True
    q, alpha_q = None, 0.0
    for _ in range(3 * (k + p) + 20):
        if q is None:
            violation = _scale_free_violation(rows, abs_rows, w)
            violation[active] = -np.inf
            q = int(np.argmax(violation))
            if violation[q] <= ADD_TOL:
                alpha = np.zeros(k)
                alpha[support] = alpha_S
                return w, alpha
            alpha_q = 0.0
        if _independent(B, support, q):
            # The path (w, α) → end point on S ∪ {q} is a straight line (G–I §3), so its end
            # point is solved for afresh and the first multiplier to reach 0 found on the chord.
            w_end, alpha_end = _equality_solution(rows, [*support, q])
            current = np.append(alpha_S, alpha_q)
            blocking = np.flatnonzero(alpha_end[:-1] < 0)
            if blocking.size == 0:
                support, alpha_S, w, q = [*support, q], alpha_end, w_end, None
                active[support] = True
                continue
            taus = current[blocking] / (current[blocking] - alpha_end[blocking])
            j, tau = int(blocking[np.argmin(taus)]), float(taus.min())
            w = (1.0 - tau) * w + tau * w_end
            mixed = (1.0 - tau) * current + tau * alpha_end
            alpha_q, alpha_S = float(mixed[-1]), np.delete(mixed[:-1], j)
        else:
            # a_q = A_Sᵀr: only the multipliers move (w is unchanged); if none can decrease,
            # a_q's constraint contradicts the active ones (Farkas) — left to step 5 to certify.
            r = _Rows(rows[support]).coefficients(rows[q])
            positive = np.flatnonzero(r > 0)
            if positive.size == 0:
                raise _NotSolved("a violated constraint is implied infeasible by the active set", w)
            ratios = alpha_S[positive] / r[positive]
            j, t = int(positive[np.argmin(ratios)]), float(ratios.min())
            alpha_S, alpha_q = np.delete(alpha_S - t * r, j), alpha_q + t
        active[support[j]] = False
        del support[j]
    raise _NotSolved("the active-set method did not converge", w)


def _min_norm_hull_point(rows: np.ndarray) -> np.ndarray:
    """λ on the simplex minimising ‖rowsᵀλ‖ (NNLS with a weighted sum-to-one row).

    The weight does not change the minimiser's direction (only its scale); the rows' largest
    norm keeps the NNLS least-squares systems balanced.
    """
    weight = float(np.max(np.linalg.norm(rows, axis=1)))
    matrix = np.vstack([rows.T, np.full((1, rows.shape[0]), weight)])
    target = np.zeros(matrix.shape[0])
    target[-1] = weight
    lam, _ = optimize.nnls(matrix, target, maxiter=50 * matrix.shape[1])
    total = lam.sum()
    return lam / total if total > 0 else np.full(rows.shape[0], 1.0 / rows.shape[0])


def _infeasibility(rows: np.ndarray) -> str | None:
    """The infeasibility certificate of step 5 as a message, or None if there is none."""
    B = _equilibrate(rows)
    p = B.T @ _min_norm_hull_point(B)
    size, scale = float(np.linalg.norm(p)), float(np.max(np.linalg.norm(B, axis=1)))
    if size <= INFEASIBLE_TOL * scale:
        return (
            "0 lies in the convex hull of the constraint rows: after equilibrating rows and "
            f"columns the hull's min-norm point has ‖p‖ = {size:.2e} ≤ {INFEASIBLE_TOL:.0e} × "
            f"{scale:.2e} (the equilibrated rows' largest norm), so no w satisfies A w ≥ 1; "
            "the data are not separable"
        )
    return None


def _certified(kkt: dict[str, float]) -> bool:
    return (kkt["primal_violation"] <= KKT_TOL and kkt["stationarity"] <= KKT_TOL
            and kkt["min_multiplier"] >= 0.0 and kkt["complementarity"] <= KKT_TOL)


def _kkt(rows: np.ndarray, w: np.ndarray, alpha: np.ndarray) -> dict[str, float]:
    """The scale-free KKT residuals of (w, α) (module docstring, step 6)."""
    abs_rows = np.abs(rows)
    values = rows @ w
    size = np.maximum(1.0, abs_rows @ np.abs(w))
    residual = w - rows.T @ alpha
    terms = np.abs(w) + abs_rows.T @ alpha
    stationarity = np.divide(np.abs(residual), terms, out=np.zeros_like(terms), where=terms > 0)
    weight = float(np.sum(alpha * size))
    norm = _safe_norm(w)
    return {
        "primal_violation": float(np.max(np.maximum(0.0, 1.0 - values) / size)),
        "stationarity": float(np.max(stationarity)),
        "min_multiplier": float(alpha.min()),
        "complementarity": float(np.sum(alpha * np.abs(values - 1.0)) / weight) if weight else 0.0,
        "stationarity_normwise": _safe_norm(residual) / norm if norm else float("inf"),
    }


def _certify(
    rows: np.ndarray, w: np.ndarray, B: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Polish ``w`` on its tight constraints (step 4) and return (w, α, KKT residuals).

    The tight set is the constraints with scale-free slack ≤ ACTIVE_TOL, reduced to an
    independent subset on the equilibrated rows ``B``; negative multipliers are zeroed before
    the residuals are computed, so a wrong tight set shows up as a stationarity defect.
    """
    B = _equilibrate(rows) if B is None else B
    slack = -_scale_free_violation(rows, np.abs(rows), w)
    support = _independent_subset(B, np.flatnonzero(slack <= ACTIVE_TOL))
    alpha = np.zeros(rows.shape[0])
    if support:
        w, alpha_S = _equality_solution(rows, support)
        alpha[support] = np.maximum(alpha_S, 0.0)
    return w, alpha, _kkt(rows, w, alpha)


def _slsqp(rows: np.ndarray, w0: np.ndarray) -> np.ndarray:
    result = optimize.minimize(
        lambda w: 0.5 * (w @ w), w0, jac=lambda w: w, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda w: rows @ w - 1.0, "jac": lambda w: rows}],
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    return result.x


def _solve_scaled(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float], str]:
    """Steps 2–7 on the globally scaled rows; returns (w, α, kkt, method)."""
    lam = _min_norm_hull_point(rows)
    p = rows.T @ lam
    if _safe_norm(p) <= INFEASIBLE_TOL * float(np.max(np.linalg.norm(rows, axis=1))):
        # Small next to the rows, which may only mean badly scaled rows: decide on the
        # equilibrated problem.
        message = _infeasibility(rows)
        if message:
            raise InfeasibleError(message)
    B = _equilibrate(rows)
    try:
        w, alpha = _active_set(rows, B, np.flatnonzero(lam > 0))
        kkt = _kkt(rows, w, alpha)
        if _certified(kkt):
            return w, alpha, kkt, "active-set"
    except _NotSolved as exc:
        w, kkt = exc.w, None
    message = _infeasibility(rows)
    if message:
        raise InfeasibleError(message)
    w, alpha, kkt_fallback = _certify(rows, _slsqp(rows, w), B)
    if _certified(kkt_fallback):
        return w, alpha, kkt_fallback, "slsqp"
    raise GradflowError(
        f"max-margin solve could not be certified: KKT residuals {kkt or kkt_fallback}"
    )


def solve_max_margin(A: Any) -> MaxMarginSolution:
    """Solve ``min ½‖w‖² s.t. a_iᵀw ≥ 1`` for every row (constraint) a_i of ``A``.

    The algorithm and the certificate (module docstring) do not depend on how rows, columns or
    the whole problem are scaled.

    Parameters
    ----------
    A : array_like, shape (k, ...)
        ``A[i]`` is constraint i's coefficient array (a vector, or a matrix for matrix
        variables: the constraint is ⟨A[i], W⟩ ≥ 1). Real numbers only.

    Returns
    -------
    MaxMarginSolution
        With ``w`` shaped like ``A[0]`` and its KKT certificate.

    Raises
    ------
    InfeasibleError
        No w satisfies all constraints: a zero row, or 0 in the convex hull of the
        equilibrated rows to 1e-9 of their scale (the data are not separable).
    ArgumentError
        ``A`` is empty, not finite, complex, or not numeric.
    GradflowError
        No route produced a KKT-certified solution, or the solution (w, ‖w‖, or the
        multipliers, of order ‖w‖/‖a_i‖) is outside the float64 range.
    """
    rows, shape = _as_rows(A)
    zero = np.flatnonzero(~rows.any(axis=1))
    if zero.size:
        raise InfeasibleError(
            f"constraint rows {zero[:10].tolist()} of A are zero: 0 ≥ 1 cannot hold, so the "
            "max-margin problem is infeasible"
        )
    exponent = int(np.round(np.log2(np.max(np.abs(rows)))))
    scaled = np.ldexp(rows, -exponent)
    with np.errstate(all="ignore"):
        try:
            w_hat, alpha_hat, kkt, method = _solve_scaled(scaled)
        except (ValueError, linalg.LinAlgError) as exc:  # non-finite intermediate values
            raise GradflowError(f"max-margin solve could not be certified: {exc}") from None
        # Back to A's scale: w = ŵ/c, α = α̂/c² with c = 2^exponent (exact unless out of range).
        w = np.ldexp(w_hat, -exponent)
        alpha = np.ldexp(alpha_hat, -2 * exponent)
        norm = float(np.ldexp(_safe_norm(w_hat), -exponent))
    on_support = alpha_hat > 0
    if (not np.all(np.isfinite(w)) or not (0.0 < norm < np.inf)
            or not np.all(np.isfinite(alpha)) or np.any(alpha[on_support] < np.finfo(float).tiny)
            or np.any((w == 0) & (w_hat != 0))):
        def decimal(x: float, power: int) -> str:  # x·2^power, which float64 may not hold
            return f"1e{np.log10(x) + power * np.log10(2.0):+.0f}"

        raise GradflowError(
            "the max-margin solution is outside the float64 range: ‖w‖ ≈ "
            f"{decimal(_safe_norm(w_hat), -exponent)}, multipliers up to "
            f"{decimal(float(np.max(alpha_hat)), -2 * exponent)} (α ~ ‖w‖/‖a_i‖); solve "
            "2^m·A instead (its solution is 2^-m·w, its multipliers 2^-2m·α)"
        )
    kkt["min_multiplier"] = float(alpha.min())  # the others are scale-free; this is α itself
    return MaxMarginSolution(
        w=w.reshape(shape), norm=norm, margin=1.0 / norm,
        support=np.flatnonzero(on_support), multipliers=alpha, kkt=kkt, method=method,
    )


def attention_svm_rows(X: Any, z: Any, selected: Any) -> np.ndarray:
    """Constraint rows of the attention SVM of Tarzanagh et al. (NeurIPS 2023, Eq. (Att-SVM)).

    W^mm = argmin ‖W‖_F s.t. (x_{iα_i} − x_{it})ᵀ W z_i ≥ 1 for every sequence i and token
    t ≠ α_i. Since (x_{iα} − x_{it})ᵀ W z_i = ⟨(x_{iα} − x_{it}) z_iᵀ, W⟩, the rows are the
    d×d matrices A_(i,t) = (x_{iα_i} − x_{it}) z_iᵀ, and
    ``solve_max_margin(attention_svm_rows(X, z, selected)).w`` is W^mm.

    Sign convention: gradflow writes every constraint as ⟨A, W⟩ ≥ 1 with the selected token
    first; the equivalent (x_{it} − x_{iα_i})ᵀ W z_i ≤ −1 (the opposite difference) is the same
    problem with the rows negated: negate rows built that way before solve_max_margin.

    Parameters
    ----------
    X : array_like, shape (n, T, d)
        n sequences of T ≥ 2 tokens x_it ∈ R^d.
    z : array_like, shape (n, d)
        The query z_i of each sequence (cross-attention). For self-attention pass the query
        token of each sequence, e.g. ``X[:, -1]``.
    selected : array_like of int, shape (n,)
        The selected token α_i ∈ [0, T) of each sequence.

    Returns
    -------
    ndarray, shape (n·(T−1), d, d)
        Row (i, t) at index i·(T−1) + (t if t < α_i else t − 1): sequence-major, token-minor,
        skipping t = α_i.

    Raises
    ------
    ArgumentError
        A shape, dtype or index that does not fit (the message names the argument).
    """
    X = np.asarray(X)
    if np.iscomplexobj(X) or X.dtype.kind not in "biuf" or X.ndim != 3 or X.shape[1] < 2:
        raise ArgumentError(
            f"X must be a real array of shape (n, T, d) with T >= 2, got shape {X.shape} and "
            f"dtype {X.dtype}"
        )
    n, T, d = X.shape
    z = np.asarray(z)
    if np.iscomplexobj(z) or z.dtype.kind not in "biuf" or z.shape != (n, d):
        raise ArgumentError(
            f"z must be a real array of shape (n, d) = ({n}, {d}), got shape {z.shape} and "
            f"dtype {z.dtype}"
        )
    selected = np.asarray(selected)
    if selected.shape != (n,) or selected.dtype.kind not in "iu":
        raise ArgumentError(
            f"selected must be an integer array of shape (n,) = ({n},), got shape "
            f"{selected.shape} and dtype {selected.dtype}"
        )
    if np.any((selected < 0) | (selected >= T)):
        raise ArgumentError(f"selected must lie in [0, T) = [0, {T}), got {selected.tolist()}")
    X, z = X.astype(float), z.astype(float)
    differences = X[np.arange(n), selected][:, None, :] - X  # (n, T, d)
    keep = np.arange(T)[None, :] != selected[:, None]  # (n, T); boolean indexing is row-major
    rows = differences[keep]  # (n·(T−1), d)
    queries = np.repeat(z, T - 1, axis=0)  # (n·(T−1), d)
    return rows[:, :, None] * queries[:, None, :]
