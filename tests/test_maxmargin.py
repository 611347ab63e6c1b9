"""The max-margin solver against closed forms, an independent solver, and its certificate."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize

from gradflow import ArgumentError, InfeasibleError
from gradflow.maxmargin import solve_max_margin


def separable(k, p, seed):
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((k, p))
    y = np.sign(X @ gen.standard_normal(p))
    return y[:, None] * X


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
    """Spec ntp §4: min ‖u‖² s.t. u[i] − u[i+1] ≥ 1 along a chain of m tokens is the centred
    progression (m−1)/2, …, −(m−1)/2, every constraint active."""
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
