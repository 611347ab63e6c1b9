"""Regular languages (Huang, Liang, Yang, ICML 2025): datasets, gradients, the CoT-only plateau,
the ledger's own expectation and protocol helpers.

The paper's claims (phase-1 rates, separability, log growth, the loss rate, the direction of u,
the frozen-W control, the attention's motion, discrete GD, parity by CoT) are asserted by its
claims ledger, ``gradflow/papers/regular/claims.py``, one test per claim in
``tests/test_claims.py``."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference_gradients import regular_grad

import gradflow
from gradflow import ArgumentError
from gradflow.papers import regular as rg
from gradflow.papers.regular import protocol


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
    """Complex step to 1e-10 per block; central differences to 1e-6 (measured ≤ 2e-8,
    docs/derivations/regular.md)."""
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


def test_train_records_extra_times_and_keeps_its_default_grid():
    data = rg.even_pairs(3)
    model = rg.RegularTransformer(data.d)
    plain = rg.train(model, data, 100.0, per_decade=2, moving_target=False)
    extra = rg.train(model, data, 100.0, per_decade=2, moving_target=False,
                     record_extra=(10.0 * (1 + 1e-12), 20.0, 150.0))
    assert 20.0 in extra.t and 150.0 not in extra.t  # only times inside (0, T)
    assert np.sum(np.abs(extra.t - 10.0) < 1e-6) == 1  # a near-duplicate replaces its point
    assert "cos_moving" not in plain.observables
    default = rg.train(model, data, 100.0, per_decade=2)
    assert np.array_equal(default.t, plain.t) and "cos_moving" in default.observables
    assert_allclose(extra.final_theta, plain.final_theta, rtol=1e-7, atol=1e-9)


def test_gradient_descent_boosts_w_for_t0_steps_only():
    data = rg.even_pairs(4)
    model = rg.RegularTransformer(data.d, lam=3.0)
    objective = model.objective(data)
    out = protocol.gradient_descent(model, data, 3, eta=0.2, t0=2, record=(1, 2))
    theta = model.init()
    for k in range(3):
        g = model.layout.unpack(objective.gradient(theta))
        blocks = model.layout.unpack(theta.copy())
        blocks["u"] = blocks["u"] - 0.2 * g["u"]
        blocks["W"] = blocks["W"] - 0.2 * (3.0 if k < 2 else 1.0) * g["W"]
        theta = model.layout.pack(blocks)
        assert_allclose(out[k + 1], theta, rtol=0, atol=1e-15)
    with pytest.raises(ArgumentError, match="steps"):
        protocol.gradient_descent(model, data, 0)


def test_first_separable_state_is_on_the_margin():
    data = rg.even_pairs(4)
    model = rg.RegularTransformer(data.d)
    t_sep, theta = protocol.first_separable_state(model, data)
    assert t_sep > 0 and abs(model.normalized_margin(data)(theta)) < 1e-8
    cot_only = rg.parity_cot(4, regularizer_lengths=[])
    with pytest.raises(gradflow.GradflowError, match="does not separate"):
        protocol.first_separable_state(rg.RegularTransformer(cot_only.d), cot_only,
                                       search_to=50.0)
