"""The attention-SVM paper package (``gradflow/papers/attention_svm``): gradients by complex step
at moderate and saturated weights and against an extended-precision reference past float64's
underflow, the (K, Q) chain rule, the authors' GD against the flow to first order in η, the
locally-optimal test, the nuclear-norm certificate, the data's checks and both experiments on
small configurations. The paper's claims are asserted by ``tests/test_claims.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradflow
from gradflow.errors import ArgumentError
from gradflow.papers.attention_svm import (
    AttentionSVMModel,
    experiment,
    make_dataset,
    protocol,
    random_instance,
    theory,
)

VARIANTS = [("W", "fixed", "logistic", "cross"), ("KQ", "fixed", "logistic", "cross"),
            ("W", "trained", "logistic", "self"), ("KQ", "fixed", "correlation", "shared"),
            ("W", "fixed", "correlation", "cross"), ("KQ", "trained", "logistic", "cross")]


def _case(parametrization="W", head="fixed", loss="logistic", attention="cross", seed=0):
    model = AttentionSVMModel(10, parametrization, head, loss)
    return model, random_instance(6, 8, 10, attention=attention, rng=seed)


@pytest.mark.parametrize("variant", VARIANTS, ids=["-".join(v) for v in VARIANTS])
@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0])
def test_gradient_by_complex_step_at_moderate_and_saturated_weights(variant, scale):
    """At θ0 and at 30× and 300× θ0, where the softmax saturates (‖W‖ ≈ 100-1e5 and the
    off-selection weights are down to ~1e-40): the loss is written with softmax_readout, so the
    complex step stays exact (tolerance 1e-8, check_gradient's)."""
    model, data = _case(*variant)
    theta = model.init(rng=1) * scale
    check = gradflow.check_gradient(model.objective(data), theta)
    assert check.verdict in ("ok", "zero"), check
    if scale < 300 or variant[0] == "W":
        assert check.verdict == "ok", check


def _reference_gradient(W: np.ndarray, data) -> np.ndarray:
    """∂L/∂W of the fixed-head logistic W model in extended precision (x87 long double: exponent
    range to 1e-4951), by the textbook formula φ_t(a_t − f) with f = Σ φ a."""
    X, z, y, v = (np.asarray(a, dtype=np.longdouble) for a in (data.X, data.z, data.y, data.v))
    s = np.einsum("ntd,de,ne->nt", X, np.asarray(W, dtype=np.longdouble), z)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    phi = e / e.sum(axis=1, keepdims=True)
    a = X @ v
    top = np.argmax(s, axis=1)
    rows = np.arange(len(y))
    # a_t − f = (a_t − a_o) + Σ_{τ≠o} φ_τ (a_o − a_τ): no cancellation even in long double
    deficit = np.sum(phi * (a[rows, top][:, None] - a), axis=1)
    centered = (a - a[rows, top][:, None]) + deficit[:, None]
    f = a[rows, top] - deficit
    c = -y / (1 + np.exp(y * f)) / len(y)
    return np.einsum("n,nt,ntd,ne->de", c, phi * centered, X, z)


@pytest.mark.skipif(np.finfo(np.longdouble).minexp > -10000,
                    reason="needs an extended-precision long double (x87)")
@pytest.mark.parametrize("norm", [30.0, 3000.0, 1e5])
def test_scaled_gradient_keeps_the_exact_direction_past_the_underflow(norm):
    """At ‖W‖ = 1e5 every softmax pair weight is below 1e-308: the plain gradient is 0 in
    float64, while scaled_grad's direction matches an extended-precision reference to 1e-12
    (its own rounding is ~1e-15 relative to the largest entry; long double carries 1e-19)."""
    model, data = _case()
    theta = model.init(rng=1)
    theta *= norm / np.linalg.norm(theta)
    params = model.layout.unpack(theta)
    blocks, scales = model.scaled_grad(params, data)
    reference = _reference_gradient(params["W"], data)
    ref_norm = np.sqrt(np.sum(reference**2))
    direction = blocks["W"] / np.linalg.norm(blocks["W"])
    assert np.max(np.abs(direction - (reference / ref_norm).astype(float))) < 1e-12
    assert np.log(np.linalg.norm(blocks["W"])) + scales["W"] == pytest.approx(
        float(np.log(ref_norm)), rel=1e-12)
    if np.log(np.linalg.norm(blocks["W"])) + scales["W"] < np.log(np.finfo(float).tiny) - 40:
        assert not np.any(model.grad(params, data)["W"])  # float64's plain gradient: 0
    assert norm < 1e4 or not np.any(model.grad(params, data)["W"])  # measured: 0 at 1e5


@pytest.mark.parametrize(("head", "loss"), [("fixed", "logistic"), ("trained", "correlation")])
def test_w_and_kq_gradients_agree_through_the_chain_rule(head, loss):
    """∇_K L = ∇_W L · Q and ∇_Q L = (∇_W L)ᵀ K at W = KQᵀ, with equal scales (rounding only:
    1e-12), at moderate and saturated weights."""
    w_model = AttentionSVMModel(10, "W", head, loss)
    kq_model = AttentionSVMModel(10, "KQ", head, loss)
    data = random_instance(rng=3)
    for scale in (1.0, 10.0):
        kq = kq_model.layout.unpack(kq_model.init(rng=4) * scale)
        if head == "trained":
            kq["v"] = kq["v"] / scale
        w = {"W": kq["K"] @ kq["Q"].T, **({"v": kq["v"]} if head == "trained" else {})}
        gw, sw = w_model.scaled_grad(w, data)
        gkq, skq = kq_model.scaled_grad(kq, data)
        assert skq["K"] == skq["Q"] == pytest.approx(sw["W"], rel=1e-13, abs=1e-13)
        for mine, chain in ((gkq["K"], gw["W"] @ kq["Q"]), (gkq["Q"], gw["W"].T @ kq["K"])):
            assert np.max(np.abs(mine - chain)) <= 1e-12 * np.max(np.abs(chain))
        if head == "trained":
            assert np.allclose(gkq["v"], gw["v"], rtol=1e-13, atol=0)


def test_autograd_numerics_equal_the_closed_form_before_saturation():
    """The authors' reverse-mode formula φ ⊙ (g − Σφg) is the same gradient at θ0 (1e-13)."""
    for variant in VARIANTS:
        model, data = _case(*variant)
        params = model.layout.unpack(model.init(rng=2))
        exact, peer = model.grad(params, data), protocol.autograd_gradient(model, params, data)
        for name in exact:
            assert np.allclose(peer[name], exact[name], rtol=1e-12, atol=1e-16), (variant, name)


def test_the_authors_gd_matches_the_flow_to_first_order_in_the_step():
    """Normalised GD is the explicit Euler scheme of the normalised flow: at t = 2 its distance
    to the flow halves with η (ratio 2 ± 0.2; the flow at rtol 1e-11 is exact to ~1e-10, far
    below GD's errors of 1e-3 to 1e-2)."""
    model, data = _case(seed=5)
    theta0 = model.init(rng=6)
    horizon = 2.0
    flow = protocol.normalized_flow(model, data, horizon, theta0=theta0, record_at=[horizon],
                                    method="DOP853", rtol=1e-11, atol=1e-13)
    errors = []
    for lr in (0.04, 0.02, 0.01):
        run = protocol.peer_gd(model, data, theta0, lr=lr, steps=round(horizon / lr))
        assert run.stall is None
        errors.append(np.linalg.norm(run.theta[-1] - flow.final_theta))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 1.8) & (ratios < 2.2)), (errors, ratios)
    assert errors[0] < 0.05


def test_the_eps_stall_and_the_exact_direction():
    """With the authors' eps GD freezes once ‖∇L‖ < 2.2e-16 (‖W_2000‖ well below 200); the same
    loop on the exact direction keeps unit speed (‖W_k‖ grows by η per step late)."""
    model, data = _case()
    theta0 = model.init(rng=[0, 0, 1])
    stalled = protocol.peer_gd(model, data, theta0)
    assert stalled.stall is not None and 800 < stalled.stall < 1800
    assert np.linalg.norm(stalled.theta[-1]) < 150
    free = protocol.peer_gd(model, data, theta0, gradient="direction")
    steps = np.linalg.norm(np.diff(free.theta[-100:], axis=0), axis=1)
    assert np.allclose(steps, protocol.LR, rtol=1e-12)  # every step moves by exactly η
    assert np.linalg.norm(free.theta[-1]) > 190  # and keeps moving out (‖W_0‖ ≈ 5.8)
    assert np.allclose(stalled.time()[[0, -1]], [0.0, 200.0])


def test_locally_optimal_test_on_the_best_and_the_worst_selections():
    """The argmax of the scores is locally (and globally) optimal by definition; the argmin's
    support tokens all score higher, so it is not."""
    data = random_instance(rng=7)
    best = theory.local_optimality(data, theory.optimal_selection(data))
    assert best.locally_optimal and best.globally_optimal and best.score_gap > 0
    worst = theory.local_optimality(data, np.argmin(theory.token_scores(data), axis=1))
    assert not worst.locally_optimal and not worst.globally_optimal
    assert worst.violations and all(v["score_gap"] < 0 for v in worst.violations)
    assert len(worst.support) >= len(worst.violations)


def test_svm_track_follows_the_selection_and_its_svm():
    model, data = _case(seed=2)
    traj = protocol.normalized_flow(model, data, 1e3, theta0=model.init(rng=[0, 2, 1]),
                                    per_decade=4)
    track = protocol.svm_track(model, data, traj)
    assert track.selected.shape == (traj.t.size, data.n)
    assert np.all(track.selected[-1] == traj.observables["selected"][-1])
    assert track.one_minus_cos[-1] < 1e-3  # t⁻² from t ≈ 100 on (measured 5.3e-5)
    assert track.one_minus_cos[-1] == theory.one_minus_cos(
        model.weight(model.layout.unpack(traj.final_theta)), track.final_solution.w)
    assert track.norm[-1] == pytest.approx(traj.observables["norm_W"][-1])
    om = traj.observables["one_minus_cos"] if "one_minus_cos" in traj.observables else None
    assert om is None  # no reference given: no cos observables
    with_ref = model.observables(data, reference=track.final_solution.w)
    assert with_ref["one_minus_cos"](traj.final_theta) == pytest.approx(
        track.one_minus_cos[-1], rel=1e-12)


def test_nuclear_certificate_on_a_one_constraint_problem():
    """min ‖W‖_* s.t. ⟨A, W⟩ ≥ 1 has the optimum 1/σ₁(A) at W = u₁v₁ᵀ/σ₁: the certificate
    closes the gap there (rounding: 1e-12) and bounds it elsewhere (weak duality)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1, 4, 4))
    U, s, Vt = np.linalg.svd(A[0])
    best = theory.nuclear_certificate(A, np.outer(U[:, 0], Vt[0]))
    assert best.gap < 1e-12 and best.upper == pytest.approx(1 / s[0], rel=1e-12)
    other = theory.nuclear_certificate(A, A[0])
    assert other.lower <= best.upper * (1 + 1e-12) <= other.upper and other.gap > 0.1
    with pytest.raises(ArgumentError, match="no candidate"):
        theory.nuclear_certificate(A, -A[0])


def test_nuclear_norm_svm_is_certified_and_differs_from_the_frobenius_one():
    """max_margin_nuclear on the one-constraint problem gives 1/σ₁(A) (rounding: 1e-10); on an
    instance its answer carries a gap ≤ NUCLEAR_TOL, is feasible, has a smaller nuclear norm than
    the Frobenius SVM and a larger Frobenius norm (each solves its own problem)."""
    A = np.random.default_rng(0).standard_normal((1, 4, 4))
    one = theory.max_margin_nuclear(A)
    assert one.upper == pytest.approx(1 / np.linalg.norm(A[0], 2), rel=1e-10)
    data = random_instance(3, 4, 4, rng=[0, 0])
    selected = theory.optimal_selection(data)
    rows = theory.svm_rows(data, selected)
    nuclear, frobenius = theory.max_margin_nuclear(rows), theory.max_margin(data, selected)
    assert nuclear.gap <= theory.NUCLEAR_TOL
    assert np.einsum("kde,de->k", rows, nuclear.W).min() == pytest.approx(1.0, abs=1e-12)
    assert nuclear.upper < np.linalg.norm(frobenius.w, "nuc")
    assert np.linalg.norm(nuclear.W) > frobenius.norm
    assert theory.one_minus_cos(nuclear.W, frobenius.w) > 1e-3


def test_data_are_checked_and_drawn_as_the_authors_draw_them():
    data = random_instance(6, 8, 10, rng=0)
    assert np.allclose(np.linalg.norm(data.X, axis=2), 1) and np.allclose(
        np.linalg.norm(data.z, axis=1), 1) and np.isclose(np.linalg.norm(data.v), 1)
    assert set(data.y.tolist()) <= {-1.0, 1.0}
    own = random_instance(6, 8, 10, attention="self", query_position=2, rng=0)
    assert np.array_equal(own.z, own.X[:, 2]) and np.array_equal(own.X, data.X)
    shared = random_instance(6, 8, 10, attention="shared", rng=0)
    assert np.all(shared.z == shared.z[0])
    with pytest.raises(ArgumentError, match="labels ±1"):
        make_dataset(data.X, data.y * 2, data.v, data.z)
    with pytest.raises(ArgumentError, match="do not pass z"):
        make_dataset(data.X, data.y, data.v, data.z, attention="self")
    with pytest.raises(ArgumentError, match="z must have shape"):
        make_dataset(data.X, data.y, data.v, data.z[:3])
    with pytest.raises(ArgumentError, match="same query"):
        make_dataset(data.X, data.y, data.v, data.z, attention="shared")
    with pytest.raises(ArgumentError, match="saddle"):
        AttentionSVMModel(10, "KQ").init(preset="zero")
    with pytest.raises(ArgumentError, match="parametrization"):
        AttentionSVMModel(10, "QK")
    with pytest.raises(ArgumentError, match="d = 4"):
        AttentionSVMModel(4).objective(data)


def test_the_experiments_on_small_configurations(tmp_path):
    local = experiment.LOCAL
    config = local.config({"instances": 2, "t_end": 1e4, "fit_from": 1e2, "per_decade": 4})
    summary = local.run(config, tmp_path / "local")
    assert summary["selection"]["locally_optimal"] == 2
    assert -2.1 < summary["fitted"]["one_minus_cos_slope_median"] < -1.9
    assert summary["one_minus_cos"]["10000"]["max"] < 1e-5
    assert (tmp_path / "local" / "convergence.png").is_file()
    rows = json.loads((tmp_path / "local" / "claims.json").read_text())["claims"]
    assert {r["id"] for r in rows} >= {"attention_svm.direction_to_svm"}
    assert all(r["passed"] is None for r in rows)  # asserted at t_end = 1e8, not 1e4
    glob = experiment.GLOBAL
    config = glob.config({"instances": 2, "dims": (4, 5, 6), "t_end": 1e3, "per_decade": 3})
    summary = glob.run(config, tmp_path / "global")
    assert set(summary["by_d"]) == {"4", "5", "6"}
    assert all(r["locally_optimal"] == 1.0 for r in summary["by_d"].values())
    assert (tmp_path / "global" / "selections.png").is_file()
    with pytest.raises(ArgumentError, match="fit_from"):
        local.config({"fit_from": 1e9})
