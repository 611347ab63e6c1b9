"""In-context learning with representations (Yang, Huang, Liang, Chi, NeurIPS 2024): the
multi-head gradient and the protocol's helpers (batched Jacobian, gap events, sharpness);
the rates, ridge regression and the number of heads are the ledger's claims
(``papers/representation_icl/claims.py``)."""

import numpy as np
import pytest

import gradflow
from gradflow.papers import representation_icl as rp


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


def test_grad_batch_is_grad_at_every_point():
    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 3)
    objective = model.objective(task)
    thetas = model.init(rng=1) + 0.5 * np.random.default_rng(3).standard_normal(
        (4, model.layout.size))
    reference = np.array([objective.gradient(th) for th in thetas])
    assert np.abs(model.grad_batch(thetas, task) - reference).max() < 1e-13 * np.abs(
        reference).max()


def test_batched_jacobian_and_hessian():
    """The batched forward-difference Jacobian of the flow (rates γ² on w) equals the engine's
    finite_difference_jacobian of the same field, and protocol.hessian is symmetric with
    −Jacobian = Hessian at γ = 1."""
    from gradflow.solvers import finite_difference_jacobian

    task = rp.make_task(rng=0)
    model = rp.RepresentationTransformer(task.d, task.K, 2)
    objective = model.objective(task)
    theta = model.init(rng=1) + 0.3 * np.random.default_rng(4).standard_normal(model.layout.size)
    gamma = 1.5
    rates = model.layout.pack({"Q": np.ones((2, task.d, task.d)), "w": np.full((2, task.K),
                                                                              gamma**2)})
    J = rp.protocol.batched_jacobian(model, task, gamma)(0.0, theta)
    J_ref = finite_difference_jacobian(lambda t, th: -rates * objective.gradient(th))(0.0, theta)
    # two forward differences over h = √ε·max(1, ‖θ‖∞) ≈ 1.5e-8: each carries the gradient's
    # rounding (ε·‖∇L‖ ≈ 1e-14) divided by h, ~1e-6 of ‖∇L‖ ~ 1 — so 1e-6 of max|J|
    assert np.abs(J - J_ref).max() < 1e-6 * np.abs(J_ref).max()
    H = rp.protocol.hessian(model, task, theta)
    J1 = rp.protocol.batched_jacobian(model, task, 1.0)(0.0, theta)
    assert np.abs(H - H.T).max() == 0 and np.abs(H + J1).max() < 1e-6 * np.abs(H).max()


def test_one_blas_thread_restores_the_thread_count():
    import ctypes

    def counts():
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()
                            and line.split()[-1].startswith("/")})
        out = []
        for path in paths:
            lib = ctypes.CDLL(path)
            for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                         "openblas_get_num_threads64_", "openblas_get_num_threads"):
                if hasattr(lib, name):
                    out.append(getattr(lib, name)())
                    break
        return out

    try:
        before = counts()
    except OSError:
        pytest.skip("no /proc/self/maps")
    with rp.protocol.one_blas_thread():
        assert all(n == 1 for n in counts())
    assert counts() == before


def test_gap_flow_events_and_the_ridge_theory():
    """gap_flow's crossing times bracket the recorded gaps; ridge_combinations(mτ) is the
    optimum a*, best_penalty is mτ, and combination_distance(a, a*) is 2·gap/K."""
    task = rp.make_task(rng=0)
    traj = rp.protocol.gap_flow(task, 5, 400.0, rng=1, levels=(1e-4, 1e-8), stop_at=1e-8)
    t4, t8 = traj.events["gap_0.0001"][0], traj.events["gap_1e-08"][0]
    assert 0 < t4 < t8 == pytest.approx(traj.t[-1])
    assert traj.observables["gap"][-1] == pytest.approx(1e-8, rel=1e-6)
    np.testing.assert_allclose(rp.theory.ridge_combinations(task, task.m * task.tau),
                               task.a_star, atol=1e-12)
    assert rp.theory.best_penalty(task) == pytest.approx(task.m * task.tau, rel=1e-6)
    model = rp.RepresentationTransformer(task.d, task.K, 5)
    _, a = model.combinations(model.layout.unpack(traj.final_theta), task)
    assert rp.theory.combination_distance(task, a, task.a_star) == pytest.approx(
        2 * traj.observables["gap"][-1] / task.K, rel=1e-10)
    errors = rp.theory.prediction_errors(task, task.a_star)
    assert 0.5 * errors.sum() == pytest.approx(rp.optimal_loss(task), rel=1e-12)


def test_gradient_descent_and_sharpness():
    """GD is stable at η·λ_max = 1 and diverges at 8 (between 2 and ~4 it can catapult back:
    at η·λ_max = 3 this loss recovers)."""
    task = rp.make_task(rng=0)
    lam = rp.protocol.sharpness(task, 8, rng=1, iterations=30)
    losses = rp.protocol.gradient_descent(task, 8, 1.0 / lam, 50, rng=1)
    assert losses[-1] < losses[0]
    diverged = rp.protocol.gradient_descent(task, 8, 8.0 / lam, 50, rng=1)
    assert not np.isfinite(diverged[-1]) or diverged[-1] > 1e6 * diverged[0]
