"""Unit tests of the co-occurrence paper's theory and protocol functions.

The paper's claims themselves (Phase 1, balancing, rates, the discrepancies) are asserted by
the claims ledger, ``gradflow/papers/cooccurrence/claims.py``, one test per claim in
``tests/test_claims.py``; the checks that used to live here (bands fitted around observed
values, L̂(T1) ∈ [0.05, 1], 0.01 < T1 < 10, B1, B2 < 20, balancing only off the paper's
configuration) were replaced there by checks that can fail.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gradflow.papers import cooccurrence as cooc
from gradflow.papers.cooccurrence import protocol, theory


def test_balancing_ratios_by_hand():
    """s = (3, 1, 0.5, 0.25) summed over types 1..4: ρ23 = 2, R = (1.75 − 3)/(3 − 1), B1 =
    4.75/(1.75 − 3), B2 = 4.75/2."""
    types = np.array([1, 1, 2, 3, 4])
    g = np.array([1.0, 2.0, 1.0, 0.5, 0.25])
    got = theory.balancing_ratios(g, types)
    assert got["rho23"] == pytest.approx(2.0)
    assert got["R"] == pytest.approx(-1.25 / 2.0)
    assert got["B1"] == pytest.approx(4.75 / -1.25)
    assert got["B2"] == pytest.approx(4.75 / 2.0)


def test_max_margin_limit_closed_form_under_assumption():
    """With every random token distinct (Assumption 2.3(ii)), counts 30/10/10/10 and L = 5,
    all samples of a type have the same constraint up to relabelling, so the hard-margin
    multipliers are one per type. With type 4 off the support, w(μ1) = w(μ2) = 30λ1 − 10λ2,
    w(μ3) = 30λ1 − 20λ2 and a random token carries its sample's ±λ: the type-1 and type-2
    constraints are 92λ1 − 40λ2 = 1 and −60λ1 + 33λ2 = 1, so λ1 = 73/636, λ2 = 152/636,
    R* = (2·1520 − 2190)/(2190 − 1520) = 85/67 and the type-4 margin −w(μ3) = 850/636 > 1."""
    data = cooc.make_dataset(d=256, rng=3, random_tokens="distinct")
    limit = theory.max_margin_limit(data.X.sum(axis=1), data.y, data.types)
    lam = limit["multipliers"]
    assert_allclose(lam[data.types == 1], 73 / 636, rtol=1e-9)
    assert_allclose(lam[(data.types == 2) | (data.types == 3)], 152 / 636, rtol=1e-9)
    assert np.all(lam[data.types == 4] == 0)
    assert limit["R"] == pytest.approx(85 / 67, rel=1e-9)
    assert limit["rho23"] == pytest.approx(1.0, rel=1e-9)
    assert_allclose(limit["normalized_margins"][data.types == 4], 850 / 636, rtol=1e-9)
    assert limit["support_per_type"] == [30, 10, 10, 0]
    assert limit["support_rank"] == limit["support_size"] == 50


def _small(seed=0):
    data = cooc.make_dataset(d=16, L=4, counts=(6, 2, 2, 2), rng=seed)
    model = cooc.CooccurrenceTransformer(d=16, m=8, m1=10, L=4, rng=seed)
    return model, data, model.init(rng=seed + 1, s1_mult=0.1)


def test_phase1_flow_stops_when_every_sample_is_correct():
    model, data, theta0 = _small()
    run = protocol.phase1_flow(model, data, theta0, 50.0)
    traj = run["traj"]
    assert np.isfinite(run["t1"]) and traj.t[-1] == pytest.approx(run["t1"])
    assert traj.observables["min_margin"][0] < 0
    margins = data.y * model.forward(model.layout.unpack(run["theta_t1"]), data).F
    assert abs(margins.min()) < 1e-8  # the event's root: min_i y_i F_i = 0 at T1
    assert np.all(traj.observables["min_margin"][:-1] < 0)


def test_ledger_flow_records_and_snapshots():
    """The extra observables agree with the model's, θ is kept at the snapshot times and
    matches an independent integration to those times, and −dL̂/dt = ‖∇L̂‖²."""
    model, data, theta0 = _small(1)
    run = protocol.ledger_flow(model, data, theta0, 1e4)
    traj, kept = run["traj"], run["theta"]
    assert sorted(kept) == [0.0, 1.0, 300.0, 1e4]
    assert_allclose(kept[0.0], theta0, rtol=0, atol=0)
    assert_allclose(kept[300.0], protocol.flow_state(model, data, theta0, 300.0), rtol=1e-4,
                    atol=1e-6)
    observables = model.observables(data)
    k = int(np.argmin(np.abs(traj.t - 300.0)))
    assert_allclose(traj.observables["G_dot"][k], observables["G_dot"](kept[300.0]),
                    rtol=1e-12)
    assert_allclose(traj.observables["margins"][k],
                    data.y * model.forward(model.layout.unpack(kept[300.0]), data).F,
                    rtol=1e-12)
    gradient = model.objective(data).gradient(kept[300.0])
    assert traj.observables["grad_norm_sq"][k] == pytest.approx(gradient @ gradient, rel=1e-12)
    assert "rate_constant" in traj.observables and traj.theta is None


def test_gradient_descent_is_plain_gd():
    model, data, theta0 = _small(2)
    objective = model.objective(data)
    two = protocol.gradient_descent(model, data, theta0, 0.05, 2)
    one = theta0 - 0.05 * objective.gradient(theta0)
    assert_allclose(two, one - 0.05 * objective.gradient(one), rtol=1e-15, atol=1e-18)
    assert_allclose(protocol.gradient_descent(model, data, theta0, 0.05, 0), theta0)
