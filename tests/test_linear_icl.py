"""In-context linear regression with linear self-attention (Zhang, Frei, Bartlett, JMLR 2024):
the reduced population flow, its closed-form limit, and the full-parameter cross-check."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import gradflow
from gradflow import ArgumentError
from gradflow.papers import linear_icl as li
from gradflow.papers.linear_icl import theory as zfb


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
