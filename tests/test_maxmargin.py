"""The max-margin solver against closed forms, an independent solver, exact rational KKT
systems, and its certificate; scale invariance; the attention-SVM rows."""

from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize

from gradflow import ArgumentError, GradflowError, InfeasibleError
from gradflow.maxmargin import KKT_TOL, attention_svm_rows, solve_max_margin


def separable(k, p, seed):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((k, p))
    y = np.sign(X @ gen.standard_normal(p))
    return y[:, None] * X


def exact_kkt(A, support):
    """The exact solution on ``support`` in rational arithmetic, and whether it is optimal.

    Every float is a rational, so the KKT system on the support, A_S A_Sᵀ α = 1 and w = A_Sᵀα,
    is solved without rounding (Gauss–Jordan over ``Fraction``); then α > 0 and A w ≥ 1 are
    checked exactly for every row. True is a proof that w is the optimum, whoever proposed the
    support, so this is an independent reference at any scaling.

    Returns
    -------
    w : ndarray, shape (p,)
        The exact solution rounded to float64.
    optimal : bool
    """
    A = [[Fraction(float(x)) for x in row] for row in np.asarray(A, dtype=float)]
    S = [int(i) for i in support]
    m = len(S)
    system = [[sum(x * y for x, y in zip(A[i], A[j], strict=True)) for j in S] + [Fraction(1)]
              for i in S]
    for c in range(m):
        pivot = next(r for r in range(c, m) if system[r][c] != 0)
        system[c], system[pivot] = system[pivot], system[c]
        for r in range(m):
            if r != c and system[r][c] != 0:
                f = system[r][c] / system[c][c]
                system[r] = [x - f * y for x, y in zip(system[r], system[c], strict=True)]
    alpha = [system[i][m] / system[i][i] for i in range(m)]
    w = [sum(a * A[i][j] for a, i in zip(alpha, S, strict=True)) for j in range(len(A[0]))]
    feasible = all(sum(x * y for x, y in zip(row, w, strict=True)) >= 1 for row in A)
    return np.array([float(x) for x in w]), feasible and all(a > 0 for a in alpha)


def assert_certified(sol):
    """Every residual of the scale-free certificate within KKT_TOL, multipliers ≥ 0."""
    kkt = sol.kkt
    assert kkt["primal_violation"] <= KKT_TOL, kkt
    assert kkt["stationarity"] <= KKT_TOL, kkt
    assert kkt["complementarity"] <= KKT_TOL, kkt
    assert kkt["min_multiplier"] >= 0 and sol.multipliers.min() >= 0, kkt
    assert all(np.isfinite(v) for v in kkt.values()), kkt


def log_uniform(gen, size, decades=6):
    """Positive scalings 10^U(−decades, decades)."""
    return 10.0 ** gen.uniform(-decades, decades, size)


def slsqp_reference(A):
    """An independent route: SLSQP on the primal from w = 0, converged to ftol 1e-12."""
    result = optimize.minimize(
        lambda w: 0.5 * (w @ w), np.zeros(A.shape[1]), jac=lambda w: w, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda w: A @ w - 1.0, "jac": lambda w: A}],
        options={"ftol": 1e-12, "maxiter": 2000})
    assert result.success, result.message
    return result.x


def test_two_point_binary_svm_closed_form():
    """x+ = (2, 0), x− = (0, 2): rows y·x = (2, 0), (0, −2); w* = (½, −½), both active."""
    sol = solve_max_margin([[2.0, 0.0], [0.0, -2.0]])
    assert_allclose(sol.w, [0.5, -0.5], rtol=1e-14)
    assert_array_equal(sol.support, [0, 1])
    assert sol.margin == pytest.approx(np.sqrt(2.0), rel=1e-14)


def test_single_constraint_and_duplicates_and_an_inactive_row():
    a = np.array([3.0, 4.0])
    assert_allclose(solve_max_margin(a[None]).w, a / 25.0, rtol=1e-14)
    assert_allclose(solve_max_margin(np.stack([a, a, a])).w, a / 25.0, rtol=1e-14)
    sol = solve_max_margin([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])  # third: 4 ≥ 1, inactive
    assert_allclose(sol.w, [1.0, 1.0], rtol=1e-14)
    assert_array_equal(sol.support, [0, 1])
    assert sol.multipliers[2] == 0.0


@pytest.mark.parametrize("m", [2, 3, 6])
def test_chain_ranking_gives_the_centred_progression(m):
    """NTP's ranking problem (docs/derivations/ntp.md, §Max-margin problems): min ‖u‖² s.t. u[i] −
    u[i+1] ≥ 1 along a chain of m tokens is the centred progression (m−1)/2, …, −(m−1)/2, every
    constraint active."""
    A = np.zeros((m - 1, m))
    A[np.arange(m - 1), np.arange(m - 1)] = 1.0
    A[np.arange(m - 1), np.arange(1, m)] = -1.0
    sol = solve_max_margin(A)
    assert_allclose(sol.w, (m - 1) / 2 - np.arange(m), atol=1e-12)
    assert sol.support.size == m - 1


def test_matrix_constraints_return_a_matrix():
    """⟨E_ij, W⟩ ≥ 1 for two entries: W* has ones there and zeros elsewhere."""
    A = np.zeros((2, 2, 3))
    A[0, 0, 1] = 1.0
    A[1, 1, 2] = 1.0
    sol = solve_max_margin(A)
    assert sol.w.shape == (2, 3)
    assert_allclose(sol.w, [[0, 1, 0], [0, 0, 1]], atol=1e-14)


@pytest.mark.parametrize(
    ("k", "p", "seed"), [(5, 3, 0), (40, 10, 1), (120, 25, 2), (200, 40, 3), (1000, 64, 4)]
)
def test_random_instances_match_slsqp(k, p, seed):
    """SLSQP (tolerance-limited; measured 3e-14 at k = 1000) agrees with the certified solution
    to 1e-6."""
    A = separable(k, p, seed)
    sol = solve_max_margin(A)
    assert_allclose(sol.w, slsqp_reference(A), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_thousand_constraints_certificate_and_duality(seed):
    """At k = 1000 the KKT certificate holds to 1e-9 and the dual objective
    Σα − ½‖Aᵀα‖² equals the primal ½‖w‖² (zero duality gap), which proves optimality."""
    A = separable(1000, 64, seed)
    sol = solve_max_margin(A)
    assert sol.kkt["primal_violation"] <= 1e-9 and sol.kkt["stationarity"] <= 1e-9
    assert sol.multipliers.min() >= 0
    assert np.min(A @ sol.w) == pytest.approx(1.0, abs=1e-9)
    dual = sol.multipliers.sum() - 0.5 * np.sum((A.T @ sol.multipliers) ** 2)
    assert dual == pytest.approx(0.5 * sol.norm**2, rel=1e-9)


def test_infeasible_problems_are_reported():
    with pytest.raises(InfeasibleError, match="not separable"):
        solve_max_margin([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(InfeasibleError, match="not separable"):
        solve_max_margin([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # 0 inside the triangle
    with pytest.raises(InfeasibleError, match="zero"):
        solve_max_margin([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ArgumentError):
        solve_max_margin(np.zeros((0, 3)))
    with pytest.raises(ArgumentError, match="finite"):
        solve_max_margin([[np.nan, 1.0]])


def test_fallback_route_certifies_the_same_solution():
    """The SLSQP fallback, polished and verified, lands on the NNLS route's solution."""
    from gradflow.maxmargin import _certified, _certify, _slsqp

    A = separable(60, 12, 7)
    w, _, kkt = _certify(A, _slsqp(A, np.zeros(12)))
    assert _certified(kkt)
    assert_allclose(w, solve_max_margin(A).w, rtol=1e-9, atol=1e-12)


def test_nearly_tight_inactive_row_does_not_spoil_the_polish():
    """A row at a_iᵀw* = 1 + 1e-7 (inactive, but inside the 1e-6 polish tolerance) makes the
    tight system inconsistent; the solver must still return the certified w* = (1, 1). Found
    on attention features of the parity-CoT flow."""
    sol = solve_max_margin([[1.0, 0.0], [0.0, 1.0], [0.5 + 1e-7, 0.5]])
    assert_allclose(sol.w, [1.0, 1.0], rtol=1e-12)
    assert_array_equal(sol.support, [0, 1])
    assert sol.kkt["primal_violation"] <= 1e-12


# --- Review B8/W13: badly scaled problems -----------------------------------------------------

@pytest.mark.parametrize(
    ("A", "expected"),
    [
        # Orthogonal rows: w_i = 1/a_ii (the old solver called this infeasible: ‖p‖ = 1e-6 was
        # compared with the largest row, 1e6).
        ([[1e6, 0.0], [0.0, 1e-6]], [1e-6, 1e6]),
        (np.diag([1e-8, 1.0, 1e8]), [1e8, 1.0, 1e-8]),
        # Rows (±1, ε): w = (0, 1/ε), both active; the hull's min-norm point is (0, ε).
        ([[1.0, 1e-12], [-1.0, 1e-12]], [0.0, 1e12]),
        ([[1.0, 1e-15], [-1.0, 1e-15]], [0.0, 1e15]),
        # (1, 0) and (−1, ε): w = (1, 2/ε), so separable only by a margin of 5e-13.
        ([[1.0, 0.0], [-1.0, 1e-12]], [1.0, 2e12]),
        # One row at the extremes that still leave w and α = w/a in float64.
        ([[1e150, 0.0]], [1e-150, 0.0]),
        ([[1e-150, 0.0]], [1e150, 0.0]),
    ],
)
def test_badly_scaled_review_cases_are_solved_and_certified(A, expected):
    """Exact answers by hand; every constraint active. The zero entries of w come out at
    ~1e-17, i.e. at rounding level next to the rhs 1 (a_iᵀw uses them with coefficient ±1),
    and the nonzero ones to a few ulps."""
    sol = solve_max_margin(A)
    assert_certified(sol)
    expected = np.array(expected)
    nonzero = expected != 0
    assert_allclose(sol.w[nonzero], expected[nonzero], rtol=1e-14)
    assert np.all(np.abs(sol.w[~nonzero]) <= 1e-15)
    assert_array_equal(sol.support, np.arange(len(A)))
    assert np.all(np.isfinite(sol.multipliers))


@pytest.mark.parametrize("A", [[[1e200, 0.0]], [[1e-200, 0.0]], [[1e-160, 0.0]],
                               [[1e-310, 0.0]]])
def test_solutions_outside_float64_are_a_clear_error(A):
    """For one row a the multiplier is α = 1/‖a‖²: 1e-400, 1e400, 1e320 — no float64 — and for
    a = 1e-310 w itself (1e310) overflows. The certified answer (w with its multipliers) cannot
    be returned, so a GradflowError says why and how to rescale; never inf, 0 or a raw
    ValueError."""
    with pytest.raises(GradflowError, match="outside the float64 range") as info:
        solve_max_margin(A)
    assert type(info.value) is GradflowError


@pytest.mark.parametrize("c", [2.0**-400, 1e-100, 1e-7, 3.0, 1e100, 2.0**400])
def test_global_scale_transforms_exactly(c):
    """A → cA maps w → w/c, α → α/c² (the problem is solved at the power of two nearest A's
    largest entry, so only c's own rounding enters)."""
    A = separable(40, 10, 1)
    ref = solve_max_margin(A)
    sol = solve_max_margin(c * A)
    assert_certified(sol)
    assert_allclose(sol.w * c, ref.w, rtol=1e-13, atol=0)
    assert_array_equal(sol.support, ref.support)
    assert_allclose(sol.multipliers * c**2, ref.multipliers, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("scaled", ["rows", "columns", "both"])
def test_row_and_column_scaling_against_the_exact_kkt_system(seed, scaled):
    """30 Gaussian rows in R^8 with a planted separator, rows and/or columns scaled by
    10^U(−6, 6) (entries then span ~24 decades). Row scaling changes the problem and column
    scaling changes the min-norm problem, so the reference is the exact rational KKT solution on
    the returned support, proved optimal in exact arithmetic (α > 0, A w ≥ 1 for every row).

    Tolerance: the certificate bounds the componentwise backward error by ~p·1e-16; the forward
    error measured over 100 such instances (both scalings) is at most 1.5e-13 per entry, so
    1e-10 leaves three decades for the componentwise condition number of other seeds. The
    normwise ‖w − Aᵀα‖/‖w‖ is deliberately not required: for these instances it is up to
    2e-5, because the rounding of α is amplified by the cancellation in Aᵀα (even for the exact
    α rounded to float64).
    """
    gen = np.random.default_rng(100 + seed)
    A = separable(30, 8, seed)
    if scaled in ("rows", "both"):
        A = log_uniform(gen, 30)[:, None] * A
    if scaled in ("columns", "both"):
        A = A * log_uniform(gen, 8)
    sol = solve_max_margin(A)
    assert_certified(sol)
    w, optimal = exact_kkt(A, sol.support)
    assert optimal
    assert_allclose(sol.w, w, rtol=1e-10, atol=0)


def test_extreme_column_scaling_changes_the_support_and_is_still_exact():
    """8 constraints in R^8, all active unscaled (w = A⁻¹1). Columns scaled by 2^U(−60, 60)
    (36 decades) make it a different min-norm problem — only 5 rows stay active — whose
    answer the exact KKT system proves; the old solver called it infeasible."""
    gen = np.random.default_rng(5)
    A = np.eye(8) + 0.1 * gen.standard_normal((8, 8))
    assert np.all(np.linalg.solve(A @ A.T, np.ones(8)) > 0)  # unscaled: all multipliers > 0
    AD = A * np.ldexp(1.0, gen.integers(-60, 60, 8))
    sol = solve_max_margin(AD)
    assert_certified(sol)
    assert sol.support.size == 5
    w, optimal = exact_kkt(AD, sol.support)
    assert optimal
    assert_allclose(sol.w, w, rtol=1e-10, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_infeasible_problems_stay_infeasible_after_extreme_rescaling(seed):
    """0 in the hull is invariant under positive row scalings and invertible column scalings,
    and so is the verdict: [[1, 0], [−1, 0]], a triangle around 0, a random problem with 0
    planted in its hull, and a zero row, each with rows and columns scaled by 10^U(−6, 6)."""
    gen = np.random.default_rng(seed)
    X = separable(30, 8, seed)
    problems = {
        "not separable": [np.array([[1.0, 0.0], [-1.0, 0.0]]),
                          np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]),
                          np.vstack([X, -X[:3].sum(axis=0)])],
        "zero": [np.vstack([X, np.zeros(8)])],
    }
    for message, As in problems.items():
        for A in As:
            for B in (A, log_uniform(gen, A.shape[0])[:, None] * A * log_uniform(gen, A.shape[1])):
                with pytest.raises(InfeasibleError, match=message):
                    solve_max_margin(B)


def test_infeasibility_message_states_the_hull_point_and_its_scale():
    with pytest.raises(InfeasibleError, match=r"‖p‖ = .* ≤ 1e-09 × .*largest norm"):
        solve_max_margin(np.random.default_rng(0).standard_normal((40, 3)))  # 0 in the hull


@pytest.mark.parametrize(
    "A", [[["a", "b"]], [[1.0, "2"]], [[1 + 1j, 0.0]], np.array([[1, 2j]], dtype=object),
          np.array([[1.0, "x"]], dtype=object), [[1.0, 2.0], [3.0]]],
)
def test_non_numeric_or_complex_input_is_an_argument_error(A):
    with pytest.raises(ArgumentError, match="A must"):
        solve_max_margin(A)


# --- attention_svm_rows ------------------------------------------------------------------

def attention_instance(n=6, T=5, d=4, seed=0):
    gen = np.random.default_rng(seed)
    return (gen.standard_normal((n, T, d)), gen.standard_normal((n, d)),
            gen.integers(0, T, n))


def test_attention_svm_rows_match_a_double_loop():
    X, z, selected = attention_instance()
    n, T, d = X.shape
    expected = np.array([np.outer(X[i, selected[i]] - X[i, t], z[i])
                         for i in range(n) for t in range(T) if t != selected[i]])
    rows = attention_svm_rows(X, z, selected)
    assert rows.shape == (n * (T - 1), d, d)
    assert_array_equal(rows, expected)
    # ⟨A_(i,t), W⟩ = (x_iα − x_it)ᵀ W z_i for any W.
    W = np.random.default_rng(1).standard_normal((d, d))
    i, t = 2, (selected[2] + 1) % T
    index = i * (T - 1) + (t if t < selected[i] else t - 1)
    assert np.sum(rows[index] * W) == pytest.approx((X[i, selected[i]] - X[i, t]) @ W @ z[i])


def test_attention_svm_solution_separates_the_selected_tokens():
    """End to end: W^mm satisfies (x_iα − x_it)ᵀ W z_i ≥ 1 for every t ≠ α_i, with equality on
    the support."""
    X, z, selected = attention_instance(n=8, T=4, d=5, seed=3)
    sol = solve_max_margin(attention_svm_rows(X, z, selected))
    assert_certified(sol)
    W = sol.w
    assert W.shape == (5, 5)
    margins = np.array([(X[i, selected[i]] - X[i, t]) @ W @ z[i]
                        for i in range(8) for t in range(4) if t != selected[i]])
    assert margins.min() >= 1 - 1e-9
    assert_allclose(margins[sol.support], 1.0, atol=1e-9)
    assert 0 < sol.support.size < margins.size


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((np.zeros((3, 4)), np.zeros((3, 4)), [0, 0, 0]), "X"),  # X not 3-D
        ((np.zeros((3, 1, 2)), np.zeros((3, 2)), [0, 0, 0]), "X"),  # T = 1: no constraints
        ((np.zeros((3, 4, 2), dtype=complex), np.zeros((3, 2)), [0, 0, 0]), "X"),
        ((np.zeros((3, 4, 2)), np.zeros((3, 4, 2)), [0, 0, 0]), "z"),  # self-attention shape
        ((np.zeros((3, 4, 2)), np.zeros((2, 2)), [0, 0, 0]), "z"),
        ((np.zeros((3, 4, 2)), np.zeros((3, 2)), [0, 0]), "selected"),
        ((np.zeros((3, 4, 2)), np.zeros((3, 2)), [0.0, 1.0, 2.0]), "selected"),
        ((np.zeros((3, 4, 2)), np.zeros((3, 2)), [0, 4, 1]), "selected"),
        ((np.zeros((3, 4, 2)), np.zeros((3, 2)), [0, -1, 1]), "selected"),
    ],
)
def test_attention_svm_rows_reject_bad_arguments(args, name):
    with pytest.raises(ArgumentError, match=rf"^{name} must"):
        attention_svm_rows(*args)
