"""In-context linear regression with linear self-attention (Zhang, Frei, Bartlett, JMLR 2024):
the reduced population flow, its closed-form limit, and the full-parameter cross-check."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import gradflow
from gradflow import ArgumentError
from gradflow.papers import linear_icl as li
from gradflow.papers.linear_icl import theory as zfb
from gradflow.testing import check_model


@pytest.mark.parametrize("d", [3, 4, 5])
def test_zfb_gradient_and_exact_limit(d):
    """Complex step ≤ 1e-10, central ≤ 1e-6; the flow from Assumption 3.3's init (σ = half the
    bound, random SPD Λ) reaches Theorem 4.1's closed-form limit to < 1e-8 relative (measured
    1e-12) with u² − ‖U‖_F² drifting < 1e-9 (measured 5e-11), and the loss reaches L*. (The
    learned predictor uU = Γ⁻¹ is the ledger's claim linear_icl.learned_predictor, checked
    through the full layer.)"""
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


def test_zfb_init_bound_is_enforced():
    task = li.make_task(3, 10, "identity")
    model = li.LinearICLReduced(3)
    with pytest.raises(ArgumentError, match=r"Assumption 3\.3"):
        model.init(rng=0, task=task, sigma=1.01 * task.sigma_bound())
    with pytest.raises(ArgumentError, match="task="):
        model.init(rng=0)
    with pytest.raises(ArgumentError, match="positive definite"):
        li.make_task(2, 5, -np.eye(2))


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


def test_full_limit_embeds_the_reduced_limit():
    """theory.full_limit is theory.limit written in the full matrices."""
    task = li.make_task(3, 10, "random", rng=3)
    U, u = zfb.limit(task)
    W_KQ, W_PV = zfb.full_limit(task)
    assert_allclose(W_KQ[:3, :3], U, rtol=1e-14)
    assert W_PV[3, 3] == pytest.approx(u, rel=1e-14)
    assert np.count_nonzero(W_KQ) == 9 and np.count_nonzero(W_PV) == 1


def test_mixture_model_meets_the_contract():
    task = li.exponential_spectrum_task(3, 10)
    report = check_model(li.LinearICLMixture(3), task,
                         init_kwargs={"task": task},
                         foreign=[li.make_task(3, 10, "identity")])
    assert report.checks


def test_exponential_spectrum_mixture_is_the_exp1_population():
    """The 2-point Gauss–Laguerre product rule reproduces the Exp(1) moments 1, 1, 2, 6 of each
    eigenvalue (and of mixed products up to degree 3 per variable), and a one-component mixture
    is the single-task reduced model."""
    task = li.exponential_spectrum_task(2, 10)
    lam = np.array([np.diag(L) for L in task.Lambdas])
    w = task.weights
    assert_allclose([w @ lam[:, 0] ** k for k in range(4)], [1, 1, 2, 6], rtol=1e-14)
    assert_allclose(w @ (lam[:, 0] ** 3 * lam[:, 1] ** 2), 12.0, rtol=1e-14)
    single = li.make_task(3, 7, "random", rng=1)
    one = li.LinearICLMixtureTask(single.Lambda[None], np.ones(1), 7)
    theta = li.LinearICLReduced(3).init(rng=0, task=single)
    mixture, reduced = li.LinearICLMixture(3), li.LinearICLReduced(3)
    assert mixture.objective(one).value(theta) == pytest.approx(
        reduced.objective(single).value(theta), rel=1e-14)
    assert_allclose(mixture.objective(one).gradient(theta),
                    reduced.objective(single).gradient(theta), rtol=1e-13)
    assert_allclose(zfb.mixture_optimum(one), np.linalg.inv(single.Gamma), rtol=1e-12)


def test_prediction_error_and_its_decomposition():
    """prediction_error at P = Γ⁻¹ is a_N/M + b_N/N² (Theorem 4.2), within Corollary 4.3's
    bound; at M = N it is twice the model's excess-free loss L* (ŷ − y with the ½)."""
    task = li.make_task(4, 12, "random", rng=5)
    Gi = np.linalg.inv(task.Gamma)
    a, b = zfb.thm4_2_coefficients(task)
    for M in (1, 7, 12, 300, np.inf):
        R = zfb.prediction_error(task, Gi, M)
        assert R == pytest.approx(a / M + b / task.N**2, rel=1e-12)
        assert R <= zfb.cor4_3_bound(task, M)
    assert zfb.prediction_error(task, Gi) == pytest.approx(2 * zfb.optimal_loss(task), rel=1e-12)
    assert zfb.prediction_error(task, Gi, 50, c=2.0) > zfb.prediction_error(task, Gi, 50)


def test_time_to_optimum_and_the_sample_minimiser():
    task = li.make_task(3, 10, "random", rng=3)
    traj = li.protocol.time_to_optimum(task, 0.1, 60.0, rng=4)
    (t,) = traj.events["converged"]
    assert 5 < t < 60 and traj.observables["excess"][-1] < 1e-8 * zfb.optimal_loss(task)
    sample = li.sample_prompts(task, 2000, rng=0)
    M_hat = zfb.sample_minimiser(sample)
    phi, target = zfb.manifold_features(sample)
    assert np.abs(phi.T @ (phi @ M_hat.reshape(-1) - target)).max() < 1e-8 * len(target)
    C = zfb.sampling_covariance(task, li.sample_prompts(task, 20_000, rng=1), 1000)
    assert C.shape == (9, 9) and np.all(np.linalg.eigvalsh(C) > 0)
