"""In-context learning with representations (Yang, Huang, Liang, Chi, NeurIPS 2024): the
multi-head gradient, geometric decay of the gap, ridge regression, too few heads."""

import numpy as np

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
