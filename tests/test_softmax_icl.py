"""Softmax attention on a finite feature dictionary (Huang, Cheng, Liang, ICML 2024): the exact
population gradient, balanced two-phase flow and K² time, imbalanced stage-wise convergence."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference_gradients import feature_icl_grad

import gradflow
from gradflow.papers import softmax_icl as sm
from gradflow.papers.softmax_icl import theory


@pytest.mark.parametrize("include_query", [False, True])
@pytest.mark.parametrize("mean_field", [False, True])
def test_hcl_gradient(include_query, mean_field):
    task = sm.make_task(3, 6, [0.5, 0.3, 0.2], include_query=include_query,
                           mean_field=mean_field)
    model = sm.FeatureICL(3)
    theta = model.init(rng=0, preset="normal")
    objective = model.objective(task)
    assert gradflow.check_gradient(objective, theta, "complex").max_rel_error < 1e-10
    assert gradflow.check_gradient(objective, theta, "central").max_rel_error < 1e-6


@pytest.mark.parametrize("include_query", [False, True])
@pytest.mark.parametrize("p", ["balanced", [0.55, 0.25, 0.15, 0.05]])
def test_hcl_moment_form_equals_the_dense_reference(include_query, p):
    """The moment-form gradient (no K·K·C array) equals the dense per-count-vector softmax of
    tests/reference_gradients.py to 1e-12 relative, at random S of scale 1 and 3."""
    task = sm.make_task(4, 12, p, include_query=include_query)
    model = sm.FeatureICL(4)
    for seed, scale in ((0, 1.0), (1, 3.0)):
        params = model.layout.unpack(model.init(rng=seed, preset="normal", scale=scale))
        ref = feature_icl_grad(model, params, task)["S"]
        assert_allclose(model.grad(params, task)["S"], ref, rtol=1e-12,
                        atol=1e-12 * np.abs(ref).max())


def test_count_vectors():
    c = sm.count_vectors(5, 3)
    assert c.shape == (21, 3) and np.all(c.sum(axis=1) == 5) and len({tuple(r) for r in c}) == 21
    assert_allclose(sm.make_task(3, 5, [0.2, 0.3, 0.5]).weights.sum(), 1.0, rtol=1e-13)


def test_balanced_scalar_flow_equals_the_full_enumeration():
    """K = 4, N = 24: the O(N) scalar flow and the full S flow agree to 1e-9 (A and loss) at
    every record time, and the S columns keep summing to 0."""
    K, N = 4, 24
    scalar = sm.BalancedICL(K, N)
    full = sm.FeatureICL(K)
    task = sm.make_task(K, N)
    grid = [0.0, 13.0, 36.0, 97.0, 500.0]
    kw = dict(method="LSODA", rtol=1e-11, atol=1e-13, record_at=grid)
    ts = gradflow.simulate(scalar.objective(None), scalar.init(), 500.0,
                           rates={"A": scalar.rate}, observables=scalar.observables(None), **kw)
    tf = gradflow.simulate(full.objective(task), full.init(), 500.0,
                           observables=full.observables(task), **kw)
    assert_allclose(ts.observables["A"], tf.observables["A"][:, 0], atol=1e-9)
    assert_allclose(ts.observables["loss"], tf.observables["loss"], atol=1e-9)
    assert np.abs(tf.observables["column_sums"]).max() < 1e-12
    assert gradflow.check_gradient(scalar.objective(None), np.array([0.7])).max_rel_error < 1e-10


def test_imbalanced_stagewise_convergence_and_rare_logit_rise():
    """p = (.55, .15, .15, .15), N = 24 (the ledger checks the prototype's N = 40): the dominant
    query converges first; for a rare query the dominant off-target logit falls monotonically
    while a rare off-target logit first rises, then falls below 0. (The sign rule at S = 0 is
    the ledger's softmax_icl.sign_rule_* claims, against the model's gradient.)"""
    p = [0.55, 0.15, 0.15, 0.15]
    task = sm.make_task(4, 24, p)
    model = sm.FeatureICL(4)
    traj = gradflow.simulate(model.objective(task), model.init(), 300.0, method="LSODA",
                             rtol=1e-10, atol=1e-12, observables=model.observables(task))
    L = traj.observables["per_query_loss"]
    i = int(np.argmin(np.abs(traj.t - 40.0)))
    assert L[i, 0] < 0.2 * L[i, 1]
    S = traj.observables["S"]
    assert np.all(np.diff(S[:, 0, 1]) < 1e-15)
    rare = S[:, 2, 1]
    peak = int(np.argmax(rare))
    assert 0 < peak < len(rare) - 1 and rare[peak] > 0 > rare[-1]


@pytest.mark.parametrize("A", [5.0, 20.0, 35.0, -17.0])
def test_balanced_gradient_is_exact_where_attention_saturates(A):
    """Reference: L(A) summed in 80-digit decimal arithmetic and differentiated by a central
    difference of step 1e-30 (truncation ~1e-60, rounding ~1e-50: both far below 1e-15).
    Before 1 − a_j was computed as a quotient the closed form was wrong by 4e-5 relative at
    A = 20 and by 0.65 at A = 35; now it is exact to rounding (a few ulps: 1e-14)."""
    from decimal import Decimal, localcontext

    model = sm.BalancedICL(4, 80)
    binom = [Decimal(float(b)) for b in model.binom]
    off_sq = [Decimal(float(x)) for x in model.off_sq]
    K, N = model.K, model.N

    def loss(a_value):
        ratio = (-a_value * K / (K - 1)).exp()
        total = Decimal(0)
        for j in range(N + 1):
            z = j + (N - j) * ratio
            total += binom[j] * ((1 - j / z) ** 2 + ratio**2 * off_sq[j] / z**2)
        return total / 2

    with localcontext() as ctx:
        ctx.prec = 80
        h = Decimal(10) ** -30
        reference = float((loss(Decimal(A) + h) - loss(Decimal(A) - h)) / (2 * h))
    assert_allclose(model.grad({"A": np.array(A)}, None)["A"], reference, rtol=1e-14)


def test_fit_K_squared_recovers_a_power_law():
    K = np.array([4.0, 8.0, 16.0])
    fit = theory.fit_K_squared(K, 1.3 * K**2)
    assert fit["c"] == pytest.approx(1.3, rel=1e-12) and fit["exponent"] == pytest.approx(2.0)


@pytest.mark.parametrize("N", [5, 9, None])
def test_offtarget_drift_is_the_gradient_at_zero(N):
    """theory.offtarget_drift (multinomial factorial moments, or the mean field) equals the
    model's −∂L/∂s_nk / p_k at S = 0 for every n ≠ k."""
    p = np.array([0.4, 0.3, 0.2, 0.1])
    task = sm.make_task(4, N or 20, p, mean_field=N is None)
    drift = -sm.FeatureICL(4).grad({"S": np.zeros((4, 4))}, task)["S"]
    for n in range(4):
        for k in range(4):
            if n != k:
                assert drift[n, k] == pytest.approx(p[k] * theory.offtarget_drift(p, N, n, k),
                                                    rel=1e-10, abs=1e-15)


def test_floors_and_the_include_query_limit():
    """balanced_floor is BalancedICL's loss at large A; include_query_floor is the loss of
    FeatureICL with the query in the softmax at a large diagonal (target logits ≫ others)."""
    K, N = 4, 12
    model = sm.BalancedICL(K, N)
    assert model.loss({"A": np.array(40.0)}, None) == pytest.approx(theory.balanced_floor(K, N),
                                                                    rel=1e-12)
    task = sm.make_task(3, 8, "balanced", include_query=True)
    S = 40.0 * (np.eye(3) - 1 / 3)
    assert sm.FeatureICL(3).loss({"S": S}, task) == pytest.approx(
        theory.include_query_floor(task.p, 8), rel=1e-12)


def test_rare_query_infimum_is_a_minimum():
    """rare_query_infimum's ratio is the conditional loss at its logit and no worse than a grid
    of other logits; it exceeds the floor by at least 1/(K − 1)."""
    p = [0.55, 0.15, 0.15, 0.15]
    ratio, b = theory.rare_query_infimum(p, 12, 1)
    assert ratio >= 1 + 1 / 3
    for other in np.linspace(-4, 4, 9):
        S = np.zeros((4, 4))
        S[1, 1] = 60.0
        S[0, 1] = other  # dominant off-target, rare ones at 0
        task = sm.make_task(4, 12, p)
        L2 = sm.FeatureICL(4).per_query_losses({"S": S}, task)[1]
        assert L2 / (0.5 * (1 - p[1]) ** 12) >= ratio - 1e-9
    S = np.zeros((4, 4))
    S[1, 1], S[0, 1] = 60.0, b
    L2 = sm.FeatureICL(4).per_query_losses({"S": S}, sm.make_task(4, 12, p))[1]
    assert L2 / (0.5 * (1 - p[1]) ** 12) == pytest.approx(ratio, rel=1e-9)


def test_phase2_prediction_against_a_short_flow():
    """The Phase II formulas: the time from L = 1e-2 to 3e-3 at K = 4 (a quick flow) matches
    phase2_extra_time to its next order (a few %), and phase2_slope is 4/(K − 1) at ℓ → 0."""
    traj = sm.protocol.balanced_flow(4, 80, 1e4, loss_levels=(1e-2, 3e-3))
    dt = traj.events["loss_0.003"][0] - traj.events["loss_0.01"][0]
    assert dt == pytest.approx(theory.phase2_extra_time(4, 80, 1e-2, 3e-3), rel=0.03)
    assert theory.phase2_slope(4, 80, 0.0) == pytest.approx(4 / 3)
    assert theory.phase1_coefficient(8, 160) == pytest.approx(3.15)
