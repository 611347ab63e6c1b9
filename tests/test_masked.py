"""The masked-pretraining models (docs/derivations/masked.md): gradients against the complex step
and central differences, the reductions against the full-matrix model and against each other
(loss, gradient, trajectory), the invariants of the flow, the closed forms, the experiments and
the refusals. The paper's claims are in the ledger (tests/test_claims.py)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import gradflow
from gradflow.cli import main
from gradflow.errors import ArgumentError
from gradflow.papers import masked
from gradflow.papers.masked import protocol, theory

TIGHT = {"method": "LSODA", "rtol": 1e-10, "atol": 1e-12}
"""Reference flows: two routes to the same flow agree to ~10× these tolerances."""


def _two_clusters(mask: str = "bernoulli") -> masked.MaskedDesign:
    return masked.make_design([[0, 0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2, 0]], 0.4,
                              pi=[0.6, 0.4], z=[[1.0, 0.7, 1.3], [0.9, 1.1, 1.2]], mask=mask,
                              m=3 if mask == "fixed" else None)


DESIGNS = {
    "two_clusters": _two_clusters,
    "two_clusters_fixed": lambda: _two_clusters("fixed"),
    "ring8": lambda: masked.ring(8, 4, 2, 0.3),
    "random_amplitudes": lambda: masked.make_design([[0, 0, 1, 1, 1, 2]], 0.5,
                                                    z_support=[0.5, 1.5], z_probs=[0.3, 0.7]),
}
OPTIONS = [dict(zip(("softmax", "value_pos", "mask_token"), combo, strict=True))
           for combo in itertools.product(("all", "unmasked"), (False, True),
                                          ("zero", "orthogonal"))]


@pytest.mark.parametrize("design_name", sorted(DESIGNS))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("scale", [0.5, 5.0])
def test_reduced_gradient_passes_the_complex_step_and_central_differences(design_name, seed,
                                                                         scale):
    design = DESIGNS[design_name]()
    for options in OPTIONS[seed::2]:  # half the combinations per seed, all of them per design
        model = masked.MaskedAttention.for_design(design, **options)
        theta = model.init(rng=seed, preset="normal", scale=scale)
        report = gradflow.check_gradient(model.objective(design), theta)
        assert report.verdict == "ok", (options, report)


@pytest.mark.parametrize("options", OPTIONS[::3], ids=str)
def test_full_matrix_gradient_passes_the_gradient_check(options):
    design = masked.make_design([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]], 0.5)
    model = masked.MaskedFullQ.for_design(design, **options)
    for seed in (0, 1):
        theta = model.init(rng=seed, preset="normal", scale=2.0)
        assert gradflow.check_gradient(model.objective(design), theta).verdict == "ok"


@pytest.mark.parametrize("design_name", ["two_clusters", "two_clusters_fixed", "ring8"])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_reduced_loss_and_gradient_equal_the_full_matrix_model(design_name, options):
    """Two independent routes: explicit d-vectors and the full Q against the reduced formulas;
    the full model's feature rows (queries carry no content, R1) get an exactly zero gradient."""
    design = DESIGNS[design_name]()
    full = masked.MaskedFullQ.for_design(design, **options)
    reduced = masked.MaskedAttention.for_design(design, **options)
    for seed in (3, 4):
        theta = full.init(rng=seed, preset="normal", scale=3.0)
        rows = full.reduced(theta)
        theta_r = reduced.layout.pack({k: rows[k] for k in reduced.layout.names})
        lf, lr = full.objective(design).value(theta), reduced.objective(design).value(theta_r)
        assert abs(lf - lr) <= 1e-14 * max(1.0, abs(lf))  # sums of ≤ 10⁴ terms ≤ 1: rounding
        g_full = full.objective(design).gradient(theta)
        g_red = reduced.layout.unpack(reduced.objective(design).gradient(theta_r))
        for name, block in full.reduced(g_full).items():
            if name in g_red:
                np.testing.assert_allclose(block, g_red[name], rtol=0, atol=1e-14)
            else:  # the masked keys' logit terms when masked patches are no keys: inert
                assert options["softmax"] == "unmasked" and np.all(block == 0.0)
        Q = full.layout.unpack(g_full)["Q"]
        assert np.all(Q[: design.F] == 0.0)  # rows v_fᵀQ: never in the loss


def test_reduced_flow_equals_the_full_matrix_flow_from_a_random_start():
    """R1 along a flow: from a random Q (feature rows included, which stay put), Q(t)'s (B, C)
    is the reduced flow."""
    design = masked.ring(6, 3, 2, 0.5)
    full = masked.MaskedFullQ.for_design(design)
    reduced = masked.MaskedAttention.for_design(design)
    theta = full.init(rng=0, preset="normal", scale=0.3)
    rows = full.reduced(theta)
    theta_r = reduced.layout.pack({k: rows[k] for k in reduced.layout.names})
    tf = gradflow.simulate(full.objective(design), theta, 50.0, **TIGHT)
    tr = gradflow.simulate(reduced.objective(design), theta_r, 50.0, record_at=tf.t, **TIGHT)
    for th_f, th_r in zip(tf.theta, tr.theta, strict=True):
        rows = full.reduced(th_f)
        back = reduced.layout.unpack(th_r)
        for name in ("B", "C"):
            np.testing.assert_allclose(rows[name], back[name], atol=1e-9)
    Q0, Qt = full.layout.unpack(theta)["Q"], full.layout.unpack(tf.final_theta)["Q"]
    np.testing.assert_array_equal(Q0[: design.F], Qt[: design.F])


@pytest.mark.parametrize(("areas", "mask", "softmax"), [
    ([0] * 3 + [1] * 5 + [2] * 4, "bernoulli", "all"),
    ([0] * 3 + [1] * 3 + [2] * 3 + [3] * 3, "bernoulli", "unmasked"),
    ([0] * 4 + [1] * 4 + [2] * 3, "fixed", "all"),
])
def test_counts_per_area_equal_mask_enumeration_along_the_flow(areas, mask, softmax):
    """Counts per area (with identical areas grouped and the tied coordinates scaled) against
    every mask enumerated: the loss at each recorded state, and the two trajectories."""
    design = masked.make_design([areas], 0.45, mask=mask, m=5 if mask == "fixed" else None)
    for p in (0, len(areas) - 1):
        e1 = masked.MaskedAttention.for_design(design, queries=(p,), softmax=softmax)
        e2 = masked.MaskedGrouped.for_query(design, p, softmax=softmax)
        t1 = gradflow.simulate(e1.objective(design), e1.init(), 1e3, **TIGHT)
        t2 = gradflow.simulate(e2.objective(design), e2.init(), 1e3, record_at=t1.t, **TIGHT)
        for th1, th2 in zip(t1.theta, t2.theta, strict=True):
            B, C = e2.to_rows(th2, design)
            mapped = e1.layout.pack({"B": B[None], "C": C[None]})
            assert abs(e1.objective(design).value(mapped) - e2.objective(design).value(th2)) \
                <= 1e-15  # the same expectation, two enumerations: rounding
            rows = e1.layout.unpack(th1)
            assert np.max(np.abs(B - rows["B"][0])) <= 1e-8
            assert np.max(np.abs(C - rows["C"][0])) <= 1e-8


@pytest.mark.parametrize("design", [masked.imbalanced(22, 10, 2, 6, 0.3),
                                    masked.balanced(4, 3, 0.6),
                                    masked.balanced(3, 4, 0.5, mask="fixed", m=5)],
                         ids=["imbalanced", "balanced", "fixed"])
def test_grouped_gradient_passes_the_gradient_check(design):
    for softmax, seed in itertools.product(("all", "unmasked"), (0, 1)):
        model = masked.MaskedGrouped.for_query(design, design.P - 1, softmax=softmax)
        theta = 2.0 * np.random.default_rng(seed).standard_normal(model.layout.size)
        assert gradflow.check_gradient(model.objective(design), theta).verdict == "ok"


def test_flow_from_zero_keeps_the_cells_and_conserves_the_pp_sum():
    """R3 and the softmax's shift invariance: C_pq equal on every area (K = 1), Σ_q C_pq
    constant, and the loss non-increasing."""
    design = masked.make_design([[0, 0, 1, 1, 1, 2, 2, 2, 2]], 0.5)
    model = masked.MaskedAttention.for_design(design)
    traj = gradflow.simulate(model.objective(design), model.init(), 1e3,
                             observables=model.observables(design), **TIGHT)
    for theta in traj.theta:
        C = model.layout.unpack(theta)["C"]
        for p in range(design.P):
            for j in range(3):
                cell = [q for q in range(design.P) if design.areas[0, q] == j and q != p]
                assert np.ptp(C[p, cell]) <= 1e-10
    assert np.max(np.abs(traj.observables["pp_sum"] - traj.observables["pp_sum"][0])) <= 1e-12
    assert np.all(np.diff(traj.observables["loss"]) <= 1e-15)


def test_ring_maps_rebuilt_by_rotation_equal_the_all_queries_flow():
    design = masked.ring(8, 4, 4, 0.5)
    assert protocol.translation_invariant(design)
    assert not protocol.translation_invariant(masked.ring(8, 4, 2, 0.5))
    one, _, m1 = protocol.ring_flow(design, 30.0, record_at=[30.0], levels=(), **TIGHT)
    every, _, m8 = protocol.ring_flow(design, 30.0, record_at=[30.0], levels=(),
                                      queries=range(8), **TIGHT)
    rotated = protocol.ring_maps(m1.attention_maps(m1.layout.unpack(one.final_theta),
                                                   design)[:, 0], design)
    direct = m8.attention_maps(m8.layout.unpack(every.final_theta), design)
    np.testing.assert_allclose(rotated, direct, atol=1e-9)


@pytest.mark.parametrize("mask", ["bernoulli", "fixed"])
def test_floor_against_the_enumerated_masks(mask):
    """L* from its closed form against the probability, read off the enumerated masks, that the
    own area is hidden."""
    design = _two_clusters(mask)
    U, mu = masked.query_masks(design)
    expected = 0.0
    for p in range(design.P):
        for k in range(design.K):
            own = [q for q in design.own_area(k, p) if q != p]
            hidden = mu @ (U[p][:, own].sum(axis=1) == 0)
            z2 = design.amplitudes[k][0, design.areas[k, p]] ** 2
            expected += design.pi[k] * hidden * 0.5 * z2
    expected *= design.masked_probability
    assert theory.floor(design) == pytest.approx(expected, rel=1e-14)


def test_initial_velocities_in_closed_form_equal_the_gradient_at_zero():
    design = masked.ring(12, 4, 3, 0.35)
    model = masked.MaskedAttention.for_design(design, queries=(0,))
    grad = model.layout.unpack(model.objective(design).gradient(model.init()))["B"][0]
    for k in range(design.K):
        features = design.feature_offset[k] + np.arange(design.n_areas[k])
        np.testing.assert_allclose(-grad[features], theory.initial_fp_velocity(design, k, 0),
                                   rtol=1e-12, atol=1e-17)


def test_mean_masked_normalisation_only_rescales_time():
    design = masked.ring(8, 4, 2, 0.5)
    a = masked.MaskedAttention.for_design(design, queries=(0,))
    b = masked.MaskedAttention.for_design(design, queries=(0,), normalize="mean_masked")
    factor = design.masked_probability * design.P
    ta = gradflow.simulate(a.objective(design), a.init(), 20.0, record_at=[20.0], **TIGHT)
    tb = gradflow.simulate(b.objective(design), b.init(), 20.0 * factor,
                           record_at=[20.0 * factor], **TIGHT)
    np.testing.assert_allclose(ta.final_theta, tb.final_theta, atol=1e-9)


def test_phase_times_of_a_grouped_flow_are_events_not_grid_points():
    """t_half lies between two records and its own-area mass is ½ to the solver's tolerance."""
    design = masked.balanced(4, 4, 0.5)
    traj, times, model = protocol.grouped_flow(design, 0, 100.0, levels=(0.5,))
    t_half = times.levels["t_half"]
    assert t_half not in traj.t
    check = gradflow.simulate(model.objective(design), model.init(), t_half,
                              record_at=[t_half], **protocol.SOLVER)
    assert model.masses(model.layout.unpack(check.final_theta), design)[0] == pytest.approx(
        0.5, abs=1e-7)


@pytest.mark.parametrize(("build", "match"), [
    (lambda: masked.make_design([[0, 0, 2]], 0.5), "label"),
    (lambda: masked.make_design([[0, 1]], 1.0), "gamma"),
    (lambda: masked.make_design([[0, 1]], 0.5, mask="fixed"), "m"),
    (lambda: masked.make_design([[0, 1]], 0.5, mask="fixed", m=3), "m must be at most"),
    (lambda: masked.make_design([[0, 1]], 0.5, pi=[1.0, 0.0]), "pi"),
    (lambda: masked.make_design([[0, 1]], 0.5, z=[[1.0, -1.0]]), r"z\[0\]"),
    (lambda: masked.ring(12, 5), "C must divide"),
    (lambda: masked.ring(12, 4, 5), "K must be at most"),
    (lambda: masked.imbalanced(50), "P must equal"),
    (lambda: masked.query_masks(masked.balanced(17, 1, 0.5)), "MaskedGrouped"),
    (lambda: masked.MaskedGrouped.for_query(masked.ring(), 0), "K = 1"),
    (lambda: masked.MaskedGrouped.for_query(masked.balanced(2, 3, 0.5), 0).init(
        preset="normal"), "Q\\(0\\) = 0"),
    (lambda: masked.MaskedAttention(8, 6, queries=(0,), mask_token="orthogonal"), "all P"),
    (lambda: masked.MaskedAttention(8, 6, softmax="keys"), "softmax"),
    (lambda: masked.MaskedAttention(8, 6, queries=(8,)), "queries"),
])
def test_bad_input_is_refused_naming_the_parameter(build, match):
    with pytest.raises(ArgumentError, match=match):
        build()


def test_grouped_model_refuses_another_design():
    design = masked.balanced(3, 3, 0.5)
    model = masked.MaskedGrouped.for_query(design, 0)
    with pytest.raises(ArgumentError, match="groups"):
        model.objective(masked.balanced(3, 4, 0.5)).gradient(model.init())


@pytest.mark.parametrize(("name", "settings", "files"), [
    ("masked_ring", ["P=8", "C=4", "K=4", "t_end=100"],
     ["query0.npz", "ring.npz", "attention_maps.png", "convergence.png", "correlations.png"]),
    ("masked_ring", ["P=8", "C=4", "K=2", "t_end=20", "mask_token=orthogonal",
                     "value_pos=true", "softmax=unmasked"], ["ring.npz", "attention_maps.png"]),
    ("masked_imbalanced", ["C_globals=6,6,4,4", "gamma_percents=25,50,50,50", "n_local=2",
                           "C_local=3", "t_end=50"], ["phases.png"]),
    ("masked_scaling", ["Ns=2,3,2,2,2,2,2,2", "Cs=3,3,4,3,3,3,3,3",
                        "gamma_percents=50,50,50,25,75,50,50,50", "Ks=1,2,4", "t_end=100"],
     ["scaling.png"]),
])
def test_experiments_run_and_replot(tmp_path, name, settings, files):
    out = tmp_path / name
    args = ["run", name, "--out", str(out), "--no-progress"]
    for s in settings:
        args += ["--set", s]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith("reconstructed")
    for file in files:
        assert (out / file).exists(), file
    (out / files[-1]).unlink()
    assert main(["plot", str(out)]) == 0 and (out / files[-1]).exists()


@pytest.mark.parametrize(("mask", "m"), [("bernoulli", None), ("fixed", 4)])
def test_enumerated_masks_follow_their_law(mask, m):
    """The masks shared by every model (and by the full-matrix reference) against the masking
    law itself: probabilities sum to 1, each other patch is unmasked with probability 1 − γ
    (Bernoulli) or (P − m)/(P − 1) (fixed size: exactly P − m unmasked), and two patches
    jointly with (1 − γ)² or the hypergeometric pair probability."""
    P, gamma = 7, 0.3
    design = masked.make_design([[0, 0, 0, 1, 1, 1, 1]], gamma, mask=mask, m=m)
    U, mu = masked.query_masks(design)
    assert mu.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all(U[np.arange(P), :, np.arange(P)] == 0)  # the query is masked
    for p in (0, 4):
        single = mu @ U[p]
        pair = mu @ (U[p][:, 1 if p != 1 else 2] * U[p][:, 5])
        if mask == "bernoulli":
            expect_single, expect_pair = 1 - gamma, (1 - gamma) ** 2
            assert np.all(U[p].sum(axis=1) <= P - 1)
        else:
            expect_single = (P - m) / (P - 1)
            expect_pair = (P - m) * (P - m - 1) / ((P - 1) * (P - 2))
            assert np.all(U[p].sum(axis=1) == P - m)
        others = np.delete(single, p)
        np.testing.assert_allclose(others, expect_single, rtol=1e-14)
        assert pair == pytest.approx(expect_pair, rel=1e-14)


def test_own_mass_is_nan_where_the_own_area_is_never_visible_and_the_flows_refuse_it():
    design = masked.make_design([[0, 0, 0, 1, 1, 2]], 0.5)   # patch 5 alone in its area
    model = masked.MaskedAttention.for_design(design)
    mass = model.own_mass(model.layout.unpack(model.init()), design)
    assert np.isnan(mass[5, 0]) and np.all(np.isfinite(mass[:5]))
    with pytest.raises(ArgumentError, match="never visible"):
        protocol.ring_flow(design, 10.0, queries=(5,))


def test_unmasked_softmax_ignores_huge_logits_of_masked_keys():
    """A masked key's PP logit is inert under softmax="unmasked": an overflowing one must not
    turn the loss into NaN."""
    design = masked.balanced(2, 3, 0.5)
    model = masked.MaskedAttention.for_design(design, queries=(0,), softmax="unmasked")
    params = model.layout.unpack(model.init())
    reference = model.loss(params, design)
    params["C"][0, 5] = 800.0
    # patch 5 is a key only when unmasked; the loss changes, but stays finite and real
    assert np.isfinite(model.loss(params, design)) and np.isfinite(reference)


def test_translation_invariance_needs_one_amplitude_law_and_ring_maps_refuses_otherwise():
    assert not protocol.translation_invariant(masked.ring(8, 4, 4, 0.5, z=[[1.0, 2.0]] * 4))
    assert protocol.translation_invariant(masked.ring(8, 4, 4, 0.5, z_support=[1.0, 2.0]))
    with pytest.raises(ArgumentError, match="not translation invariant"):
        protocol.ring_maps(np.full((2, 8), 1 / 8), masked.ring(8, 4, 2, 0.5))


def test_mean_field_formulas_refuse_other_amplitudes():
    design = masked.balanced(4, 8, 0.5, z=[[2.0] * 4])
    for f in (theory.mean_field_fp_velocity, theory.t_half_mean_field,
              theory.t_over_mean_field):
        with pytest.raises(ArgumentError, match="z ≡ 1"):
            f(design, 0, 0)
