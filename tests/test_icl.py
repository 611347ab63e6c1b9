"""In-context learning (spec icl.md): ZFB linear attention, HCL softmax attention on feature
dictionaries, YHLC multi-head attention with representations."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference_gradients import feature_icl_grad

import gradflow
from gradflow import ArgumentError
from gradflow.papers import linear_icl as li
from gradflow.papers import representation_icl as rp
from gradflow.papers import softmax_icl as sm
from gradflow.papers.linear_icl import theory as zfb
from gradflow.papers.softmax_icl.theory import fit_K_squared

# ------------------------------------------------------------------------------- ZFB


@pytest.mark.parametrize("d", [3, 4, 5])
def test_zfb_gradient_and_exact_limit(d):
    """Complex step ≤ 1e-10, central ≤ 1e-6; the flow from Assumption 3.3's init (σ = half the
    bound, random SPD Λ) reaches Theorem 4.1's closed-form limit to < 1e-8 relative (measured
    1e-12) with u² − ‖U‖_F² drifting < 1e-9 (measured 5e-11), and the loss reaches L*."""
    task = li.make_task(d, 10, "random", rng=d)
    model = li.LinearICLReduced(d)
    objective = model.objective(task)
    theta0 = model.init(rng=1, task=task)
    assert gradflow.check_gradient(objective, theta0, "complex").max_rel_error < 1e-10
    assert gradflow.check_gradient(objective, theta0, "central").max_rel_error < 1e-6
    traj = gradflow.simulate(objective, theta0, 200.0, method="LSODA", rtol=1e-10, atol=1e-12,
                             observables=model.observables(task))
    U, u = zfb.limit(task)
    reference = model.layout.pack({"U": U, "u": np.array(u)})
    assert np.linalg.norm(traj.final_theta - reference) / np.linalg.norm(reference) < 1e-8
    assert np.abs(traj.observables["balance"]).max() < 1e-9
    assert traj.observables["excess"][-1] < 1e-12 * zfb.optimal_loss(task)
    W_KQ, W_PV = zfb.full_limit(task)
    assert_allclose(W_KQ[:d, :d] * W_PV[d, d], np.linalg.inv(task.Gamma), rtol=1e-12)


def test_zfb_init_bound_is_enforced():
    task = li.make_task(3, 10, "identity")
    model = li.LinearICLReduced(3)
    with pytest.raises(ArgumentError, match=r"Assumption 3\.3"):
        model.init(rng=0, task=task, sigma=1.01 * task.sigma_bound())
    with pytest.raises(ArgumentError, match="task="):
        model.init(rng=0)
    with pytest.raises(ArgumentError, match="positive definite"):
        li.make_task(2, 5, -np.eye(2))


def test_zfb_reduced_loss_matches_monte_carlo():
    """The closed-form population loss against 2e5 sampled prompts, within 4 standard errors
    (the one slow-ish Monte-Carlo cross-check)."""
    task = li.make_task(3, 6, "random", rng=2)
    reduced = li.LinearICLReduced(3)
    theta = reduced.init(rng=3, task=task)
    full = li.LinearICLFull(3, 6)
    sample = li.sample_prompts(task, 200_000, rng=4)
    losses = full.sample_losses(full.layout.unpack(full.embed(reduced, theta)), sample)
    exact = reduced.objective(task).value(theta)
    assert abs(losses.mean() - exact) < 4 * losses.std() / np.sqrt(losses.size)


def test_zfb_full_parameter_cross_check_stays_on_the_manifold():
    """On a sample antithetic in w, the full-parameter gradient is exact (complex step) and the
    off-manifold entries of W^{PV}, W^{KQ} stay at zero (< 1e-12) along the flow."""
    task = li.make_task(3, 8, "random", rng=0)
    full = li.LinearICLFull(3, 8)
    sample = li.sample_prompts(task, 400, rng=0)
    objective = full.objective(sample)
    theta0 = full.init(rng=1, task=task)
    perturbed = theta0 + 0.1 * np.random.default_rng(0).standard_normal(theta0.size)
    assert gradflow.check_gradient(objective, perturbed).max_rel_error < 1e-10
    traj = gradflow.simulate(objective, theta0, 5.0, method="RK45", rtol=1e-10, atol=1e-14,
                             observables=full.observables(sample))
    assert traj.observables["off_manifold"].max() < 1e-12
    assert traj.observables["loss"][-1] < 0.5 * traj.observables["loss"][0]


# ------------------------------------------------------------------------------- HCL


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


def test_hcl_enumeration_against_sampled_prompts():
    """The exact sum over count vectors equals the Monte-Carlo loss of 1e5 sampled prompts
    (tokens drawn from p, ℓ = ½‖Σ attn_i x_i − x_q‖²) within 4 standard errors."""
    K, N = 3, 6
    p = np.array([0.5, 0.3, 0.2])
    model = sm.FeatureICL(K)
    S = model.layout.unpack(model.init(rng=5, preset="normal"))["S"]
    exact = model.loss({"S": S}, sm.make_task(K, N, p))
    gen = np.random.default_rng(6)
    B = 100_000
    tokens = gen.choice(K, size=(B, N), p=p)
    query = gen.choice(K, size=B, p=p)
    logits = S[tokens, query[:, None]]
    attn = np.exp(logits - logits.max(axis=1, keepdims=True))
    attn /= attn.sum(axis=1, keepdims=True)
    mass = np.zeros((B, K))
    np.add.at(mass, (np.repeat(np.arange(B), N), tokens.ravel()), attn.ravel())
    losses = 0.5 * np.sum((mass - np.eye(K)[query]) ** 2, axis=1)
    assert abs(losses.mean() - exact) < 4 * losses.std() / np.sqrt(B)


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


def test_balanced_two_phases_and_K_squared_time():
    """α starts at 1/K, crosses ½ once and keeps rising towards 1 (two phases; > 0.95 by
    t = 1e4); the time to α = ½ over
    K = 4, 8, 16 fits c·K² with a free log-log exponent within [1.7, 2.3] (measured 2.06 for
    K = 4..32) and c in the spec's measured 1.1-1.5."""
    times = []
    for K in (4, 8, 16):
        model = sm.BalancedICL(K)
        traj = gradflow.simulate(model.objective(None), model.init(), 1e4,
                                 rates={"A": model.rate}, method="LSODA", rtol=1e-10,
                                 atol=1e-12, observables=model.observables(None),
                                 events=[model.alpha_crosses(0.5)])
        alpha = traj.observables["alpha"]
        assert alpha[0] == pytest.approx(1 / K, rel=1e-12)
        assert np.all(np.diff(alpha) > 0) and alpha[-1] > 0.95
        times.append(traj.events["alpha_0.5"][0])
    fit = fit_K_squared(np.array([4, 8, 16]), np.array(times))
    assert 1.7 <= fit["exponent"] <= 2.3 and 1.0 <= fit["c"] <= 1.6


def test_imbalanced_stagewise_convergence_and_rare_logit_rise():
    """p = (.55, .15, .15, .15), N = 24: the dominant query converges first; for a rare query
    the dominant off-target logit falls monotonically while a rare off-target logit first rises
    (its sign at S = 0 is that of Σ p_m² − p_k − p_n > 0), then falls below 0."""
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
    assert np.sum(np.square(p)) - p[1] - p[2] > 0


# ------------------------------------------------------------------------------ YHLC


def test_yhlc_gradient_and_loss_against_monte_carlo():
    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 5)
    theta = model.init(rng=1) + 0.5 * np.random.default_rng(2).standard_normal(
        model.layout.size)
    objective = model.objective(task)
    assert gradflow.check_gradient(objective, theta, "complex").max_rel_error < 1e-10
    assert gradflow.check_gradient(objective, theta, "central").max_rel_error < 1e-6
    gen = np.random.default_rng(5)
    B = 100_000
    _, a = model.combinations(model.layout.unpack(theta), task)
    lam = gen.standard_normal((B, task.m))
    eps = np.sqrt(task.tau) * gen.standard_normal((B, task.m, task.K))
    Y = lam @ task.features + np.einsum("bm,bmk->bk", lam, eps)
    losses = 0.5 * np.sum((Y[:, : task.N] @ a - Y) ** 2, axis=1)
    assert abs(losses.mean() - objective.value(theta)) < 4 * losses.std() / np.sqrt(B)


def test_yhlc_gap_falls_geometrically_and_implements_ridge():
    """H = N = 4 heads: the gap L − inf L falls geometrically with a fitted rate stable across
    four windows within 10%; at the end the model's predictions equal the ridge predictor's
    (penalty mτ) on fresh and out-of-distribution task vectors.

    The fit uses only records whose gap the solver resolves: near the minimum the gap is
    quadratic in the state error e, so a state error of atol changes it by ~2·atol·√gap,
    a relative error of 2·atol/√gap; records with gap < (200·atol)² (relative error > 1 %)
    are below that floor (the last ones, gap ~1e-23 at t ~ 1000)."""
    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 4)
    traj = gradflow.simulate(model.objective(task), model.init(rng=1), 1000.0,
                             method="LSODA", rtol=1e-10, atol=1e-12,
                             record_at=np.linspace(0, 1000, 21),
                             observables=model.observables(task))
    resolved = traj.observables["gap"] >= (200 * 1e-12) ** 2
    t, gap = traj.t[resolved][4:], traj.observables["gap"][resolved][4:]  # past the transient
    rates = [np.polyfit(tw, np.log(gw), 1)[0]
             for tw, gw in zip(np.array_split(t, 4), np.array_split(gap, 4), strict=True)]
    assert max(rates) < 0 and (max(rates) - min(rates)) / abs(np.mean(rates)) < 0.10
    assert traj.observables["ridge_error"][-1] < 1e-20
    assert traj.observables["ridge_error_ood"][-1] < 1e-18


def test_yhlc_too_few_heads_stall():
    """H = 2 < N = 4: the softmax vectors cannot span R^N, so the gap stalls above 0.5."""
    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 2)
    traj = gradflow.simulate(model.objective(task), model.init(rng=1), 1000.0,
                             method="LSODA", rtol=1e-10, atol=1e-12,
                             observables=model.observables(task))
    assert traj.observables["gap"][-1] > 0.5
