"""Regular languages (Huang, Liang, Yang, ICML 2025): datasets, gradients, the two training
phases, log growth, max-margin directions, and parity by chain-of-thought
(docs/derivations/regular.md, docs/findings/regular.md)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference_gradients import regular_grad

import gradflow
from gradflow import ArgumentError
from gradflow.papers import regular as rg
from gradflow.papers.regular.protocol import parity_accuracy
from gradflow.papers.regular.theory import derived, phase1_exponents


@pytest.fixture(scope="module")
def ep_run():
    data = rg.even_pairs(6)
    model = rg.RegularTransformer(data.d, lam=2.0)
    traj = rg.train(model, data, 1e10, tau0=10.0, per_decade=10,
                    u_refs={"saturated": rg.saturated_max_margin(6)})
    traj.observables.update(derived(traj, data, model, 10.0))
    return data, model, traj


def test_even_pairs_labels_match_the_counting_definition():
    """x_1 = x_L labels against counting ab/ba pairs, for every string up to length 11."""
    for length in range(1, 12):
        for s in rg.all_strings(length):
            assert rg.even_pairs_label(s) == (1 if s[0] == s[-1] else -1)
    data = rg.even_pairs(6)
    assert data.n == 126 and data.d == 12
    for i in range(data.n):
        assert data.y[i] == rg.even_pairs_label(data.symbols[i, : data.lengths[i]])
    assert_allclose(np.bincount(data.lengths, weights=data.weights)[1:], 1.0)


def test_parity_cot_format_b_structure():
    """Format B: the last CoT token of every input is its parity, each label says whether
    x_k equals the prefix's last token, and the regulariser is even pairs on lengths ≤ L0."""
    data = rg.parity_cot(4)
    cot = data.lengths >= 4
    assert cot.sum() == 16 * 3 + 2**4  # 3 steps per input, plus the length-4 regulariser
    for i in range(16 * 3):  # the CoT samples come first, then the regulariser
        s = data.symbols[i, : data.lengths[i]]
        k = data.lengths[i] - 4  # CoT tokens already in the prefix
        assert data.y[i] == (1 if s[k] == s[-1] else -1)
    for x in rg.all_strings(4):
        z = [x[0] ^ x[-1]]
        for k in range(1, 3):
            z.append(x[k] ^ z[-1])
        assert z[-1] == x.sum() % 2


@pytest.mark.parametrize("dataset", ["even_pairs", "parity_cot", "parity"])
@pytest.mark.parametrize("embedding", ["one-hot", "random"])
def test_gradient_complex_step_and_central(dataset, embedding):
    """Complex step to 1e-10 per block; central differences to 1e-6 (measured ≤ 2e-8:
    docs/derivations/regular.md, §Verification)."""
    build = {"even_pairs": lambda E: rg.even_pairs(5, embedding=E),
             "parity": lambda E: rg.parity(5, embedding=E),
             "parity_cot": lambda E: rg.parity_cot(4, embedding=E)}[dataset]
    positions = build(None).max_position
    E = None if embedding == "one-hot" else np.random.default_rng(1).standard_normal(
        (2 * positions + 1, 2 * positions))
    data = build(E)
    model = rg.RegularTransformer(data.d, lam=2.0)
    theta = model.init(rng=3, preset="normal", scale=1.0)
    objective = model.objective(data)
    assert gradflow.check_gradient(objective, theta, "complex").max_rel_error < 1e-10
    assert gradflow.check_gradient(objective, theta, "central").max_rel_error < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_index_gradient_equals_the_dense_reference(seed):
    """The optimised (token-index, position-major) gradient equals the dense (N, L, d) reference
    of tests/reference_gradients.py to 1e-12 relative, on one-hot and random embeddings."""
    gen = np.random.default_rng(seed)
    for data in (rg.even_pairs(6), rg.parity_cot(4), rg.parity(5),
                 rg.even_pairs(4, embedding=gen.standard_normal((9, 8)))):
        model = rg.RegularTransformer(data.d, lam=1.5)
        params = model.layout.unpack(model.init(rng=seed, preset="normal", scale=1.0))
        fast, ref = model.grad(params, data), regular_grad(model, params, data)
        for k in ref:
            assert_allclose(fast[k], ref[k], rtol=1e-12, atol=1e-12 * np.abs(ref[k]).max())


def test_initial_loss_and_cot_only_gradient_vanishes():
    """L = L_max·ln 2 at zero init; the CoT loss alone has a zero gradient there (every CoT
    label is an XOR of ≥ 2 uniform bits; the terms cancel exactly in exact arithmetic, to
    ~3e-18 in floating point, against 0.1 for the even-pairs loss), so its flow stays on the
    plateau 3·ln 2 (to t = 1e3 here). Zero is an unstable stationary point, though: a 1e-8
    perturbation escapes and learns the CoT loss (< 0.1 by t = 1e4; docs/findings/regular.md)."""
    ep = rg.even_pairs(6)
    model = rg.RegularTransformer(ep.d)
    assert model.objective(ep).value(model.init()) == pytest.approx(6 * np.log(2), rel=1e-15)
    ep_grad = np.linalg.norm(model.objective(ep).gradient(model.init()))
    assert ep_grad > 0.1
    cot_only = rg.parity_cot(4, regularizer_lengths=[])
    m = rg.RegularTransformer(cot_only.d)
    objective = m.objective(cot_only)
    assert np.linalg.norm(objective.gradient(m.init())) < 1e-15 * ep_grad
    plateau = gradflow.simulate(objective, m.init(), 1e3, method="LSODA")
    assert np.abs(plateau.final_theta).max() < 1e-9
    assert objective.value(plateau.final_theta) == pytest.approx(3 * np.log(2), rel=1e-12)
    nudged = gradflow.simulate(objective, m.init(rng=0, preset="normal", scale=1e-8), 1e4,
                               method="LSODA")
    assert objective.value(nudged.final_theta) < 0.1


def test_phase1_growth_exponents(ep_run):
    """The paper's phase 1 (docs/derivations/regular.md, §Claims and their observables): for t ≤ 1
    the local exponents of s_1, −s_ℓ (ℓ ≥ 2) and ‖W‖ are within ±0.1 of 1, 2 and 2 (measured
    0.92-1.00, 1.92-2.00, 1.96-2.00)."""
    _, _, traj = ep_run
    exponents = phase1_exponents(traj, t_max=1.0)
    for name, values in exponents.items():
        target = 1.0 if name == "s_1" else 2.0
        assert np.max(np.abs(np.array(values) - target)) <= 0.1, (name, values)


def test_separability_log_growth_and_loss_rate(ep_run):
    """The attention outputs become separable (once, after τ0); the slope of ‖u‖ per unit ln t
    settles (change over the last two decades < 5%; measured 0.02%); t·L(t) decreases and stays
    bounded on [1e3, 1e10] (O(1/t), not O(1/√t))."""
    _, _, traj = ep_run
    t, o = traj.t, traj.observables
    assert traj.events["separable"].size >= 1 and traj.events["separable"][0] > 10.0
    slopes = []
    for lo in (1e8, 1e9):
        i, j = np.argmin(np.abs(t - lo)), np.argmin(np.abs(t - 10 * lo))
        slopes.append((o["u_norm"][j] - o["u_norm"][i]) / np.log(10))
    assert abs(slopes[1] - slopes[0]) < 0.05 * abs(slopes[0])
    t_loss = o["t_loss"][t >= 1e3]
    assert np.all(np.diff(t_loss) < 0) and t_loss.max() < 20
    assert o["accuracy"][-1] == 1.0


def test_direction_of_u(ep_run):
    """cos(u, u*(W_t)) > 0.95 at t = 1e8 (measured 0.974: docs/findings/regular.md)."""
    _, _, traj = ep_run
    i = int(np.argmin(np.abs(traj.t - 1e8)))
    assert traj.observables["cos_moving"][i] > 0.95
    assert np.all(np.isnan(traj.observables["cos_moving"][traj.t < 10]))  # not yet separable


def test_frozen_w_control_converges_monotonically(ep_run):
    """Theorem 4.4 in its clean form: with W frozen at t = 1e3, cos(u, u*(W_1e3)) increases at
    every record time and approaches 1 (rate 1/log t: > 0.99 by 1e10)."""
    data, model, traj = ep_run
    i = int(np.argmin(np.abs(traj.t - 1e3)))
    control = rg.frozen_w_control(model, data, traj.theta[i], traj.t[i], 1e10)
    cos = control.observables["cos_fixed"]
    assert np.all(np.diff(cos) > 0)
    assert cos[-1] > 0.99
    W = control.block("W")
    assert np.array_equal(W[0], W[-1])


def test_parity_by_truncated_cot_with_the_even_pairs_model(ep_run):
    """Method 1: 100% parity accuracy for every L = 2..6 (all 2^L strings)."""
    data, model, traj = ep_run
    accuracy = parity_accuracy(model, model.layout.unpack(traj.final_theta), range(2, 7),
                               data.max_position, rg.parity_by_truncated_cot)
    assert all(a == 1.0 for a in accuracy.values()), accuracy


@pytest.mark.parametrize("L0", [2, 3, 4, 5, 6])
def test_parity_by_cot_training(L0):
    """Method 2 (Format B, regulariser on lengths ≤ L0): after training to t = 1e8 the model
    generates the chain of thought and gets parity right on all 2^L0 inputs."""
    data = rg.parity_cot(L0)
    model = rg.RegularTransformer(data.d)
    traj = rg.train(model, data, 1e8, per_decade=2)
    accuracy = parity_accuracy(model, model.layout.unpack(traj.final_theta), [L0],
                               data.max_position, rg.parity_by_cot_generation)
    assert accuracy[str(L0)] == 1.0


def test_discrete_gd_follows_the_flow():
    """The paper's two-phase GD (docs/derivations/regular.md, §Training rates) with η = 0.1 (W's
    step boosted by λ for the first 100 steps) is within 1% in ‖u‖ of the flow at t = η·steps
    (checked at 3000 steps)."""
    data = rg.even_pairs(6)
    model = rg.RegularTransformer(data.d, lam=2.0)
    objective = model.objective(data)
    steps, eta = 3000, 0.1
    traj = rg.train(model, data, steps * eta, per_decade=2, method="DOP853", clock="linear")
    theta = model.init()
    for k in range(steps):
        g = model.layout.unpack(objective.gradient(theta))
        blocks = model.layout.unpack(theta)
        blocks["u"] -= eta * g["u"]
        blocks["W"] -= eta * (2.0 if k < 100 else 1.0) * g["W"]
    u_gd = np.linalg.norm(model.layout.unpack(theta)["u"])
    assert u_gd == pytest.approx(traj.observables["u_norm"][-1], rel=0.01)


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="lam"):
        rg.RegularTransformer(4, lam=0.0)
    with pytest.raises(ArgumentError, match="symbol"):
        rg.make_dataset([[0, 2]], [1], [1.0])
    with pytest.raises(ArgumentError, match="±1"):
        rg.make_dataset([[0, 1]], [0], [1.0])
    with pytest.raises(ArgumentError, match="L0"):
        rg.parity_cot(1)
    with pytest.raises(ArgumentError, match="embedding"):
        rg.even_pairs(3, embedding=np.eye(4))
