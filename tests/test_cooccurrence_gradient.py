"""The co-occurrence model's closed-form gradient against the complex step and central
differences, and the three implementations (dense, one-hot tokens, reduced u-flow) against each
other."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import gradflow
from gradflow import ArgumentError
from gradflow.papers import cooccurrence as cooc

# (d, L, counts, m, m1, s0_mult, s1_mult): several shapes; s0_mult large enough that attention
# is far from uniform (checked below), so the softmax backward pass is really exercised.
SHAPES = [
    (12, 4, (3, 1, 1, 1), 8, 6, 6.0, 3.0),
    (20, 5, (6, 2, 2, 2), 16, 12, 8.0, 2.0),
    (9, 3, (2, 2, 1, 3), 5, 7, 4.0, 5.0),
    (64, 5, (30, 10, 10, 10), 128, 256, 1.0, 1.0),  # the paper's sizes at the theory scale
]


def build(shape, seed, **model_kwargs):
    d, L, counts, m, m1, s0, s1 = shape
    data = cooc.make_dataset(d=d, L=L, counts=counts, rng=seed,
                             embedding=model_kwargs.pop("embedding", None))
    model = cooc.CooccurrenceTransformer(d=d, m=m, m1=m1, L=L, rng=seed, **model_kwargs)
    theta = model.init(rng=seed + 17, preset="theory", s0_mult=s0, s1_mult=s1)
    return data, model, theta


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "variant",
    [{"path": "tokens"}, {"path": "dense"}, {"reduced": True},
     {"path": "dense", "embedding": "random_orthonormal"}],
)
def test_complex_step_and_central_differences(shape, seed, variant):
    """Complex step: exact to rounding, so 1e-10 relative per block leaves a wide margin over
    the ~1e-14 observed. Central differences: truncation O(h²) plus round-off O(ε/h) with
    h ≈ 6e-6 gives ~1e-8..1e-7 relative on these losses; 1e-5 allows blocks whose directional
    derivative is small against the loss (attention blocks at the theory scale)."""
    data, model, theta = build(shape, seed, **variant)
    objective = model.objective(data)
    attention = model.forward(model.layout.unpack(theta), data).A
    if shape[-2] > 1:
        assert attention.max() / attention.min() > 2  # far from uniform
    complex_check = gradflow.check_gradient(objective, theta, "complex", rng=seed)
    assert complex_check.max_rel_error < 1e-10, complex_check
    central_check = gradflow.check_gradient(objective, theta, "central", rng=seed)
    assert central_check.max_rel_error < 1e-5, central_check


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_entrywise_gradient_against_complex_step(shape):
    """Every entry of every block (small shapes): e_k·∇L against Im L(θ + ih e_k)/h."""
    data, model, theta = build(shape, 5)
    objective = model.objective(data)
    grad = objective.gradient(theta)
    numeric = np.array([
        gradflow.directional_derivative(objective, theta, np.eye(1, theta.size, k).ravel())
        for k in range(theta.size)
    ])
    assert_allclose(grad, numeric, rtol=1e-10, atol=1e-14 * np.abs(grad).max())


@pytest.mark.parametrize("shape", SHAPES)
def test_dense_path_equals_token_path(shape):
    data, tokens_model, theta = build(shape, 2, path="tokens")
    dense_model = cooc.CooccurrenceTransformer(
        d=tokens_model.d, m=tokens_model.m, m1=tokens_model.m1, L=tokens_model.L,
        a=tokens_model.a, path="dense")
    g_tokens = tokens_model.objective(data).gradient(theta)
    g_dense = dense_model.objective(data).gradient(theta)
    assert_allclose(g_tokens, g_dense, rtol=1e-12, atol=1e-14 * np.abs(g_dense).max())
    assert tokens_model.objective(data).value(theta) == pytest.approx(
        dense_model.objective(data).value(theta), rel=1e-13)


def test_rotated_embedding_gives_the_same_loss_as_one_hot():
    """Any orthonormal basis is equivalent: rotating the data by E and the weights by Eᵀ
    leaves every score and value unchanged."""
    d, L = 12, 4
    one_hot = cooc.make_dataset(d=d, L=L, counts=(3, 1, 1, 1), rng=4)
    E = cooc.make_dataset(d=d, L=L, counts=(1, 0, 0, 0), rng=9,
                          embedding="random_orthonormal").embedding
    rotated = cooc.CooccurrenceData(X=one_hot.X @ E, y=one_hot.y, types=one_hot.types,
                                    tokens=one_hot.tokens, embedding=E)
    model = cooc.CooccurrenceTransformer(d=d, m=8, m1=6, L=L, rng=0)
    theta = model.init(rng=1, s0_mult=5.0)
    blocks = model.layout.unpack(theta)
    turned = {**blocks, **{k: blocks[k] @ E for k in ("W_Q", "W_K", "W_V")}}
    assert model.objective(rotated).value(model.layout.pack(turned)) == pytest.approx(
        model.objective(one_hot).value(theta), rel=1e-13)


def test_reduced_flow_equals_full_flow():
    """Under the flow W − W(0) stays a multiple of a, so u(t) = W(t)ᵀa = √m1·v(t) and every
    other block coincides; the two integrations agree to solver tolerance."""
    data = cooc.make_dataset(d=16, L=4, counts=(6, 2, 2, 2), rng=0)
    full = cooc.CooccurrenceTransformer(d=16, m=8, m1=10, L=4, rng=0)
    reduced = cooc.CooccurrenceTransformer(d=16, m=8, m1=10, L=4, a=full.a, reduced=True)
    theta_full = full.init(rng=3, s0_mult=4.0)
    theta_red = reduced.init(rng=3, s0_mult=4.0)
    assert_allclose(theta_red, reduced.reduce(theta_full), rtol=1e-15)
    grid = [0.0, 0.1, 1.0, 10.0]
    kw = dict(record_at=grid, rtol=1e-10, atol=1e-12)
    tf = gradflow.simulate(full.objective(data), theta_full, 10.0, **kw)
    tr = gradflow.simulate(reduced.objective(data), theta_red, 10.0, **kw)
    u_full = np.einsum("rjm,j->rm", tf.block("W"), full.a)  # u = Wᵀa at every record
    assert_allclose(u_full, np.sqrt(10) * tr.block("v"), rtol=1e-7, atol=1e-9)
    for name in ("W_Q", "W_K", "W_V"):
        assert_allclose(tf.block(name), tr.block(name), rtol=1e-7, atol=1e-9)


def test_dataset_structure():
    data = cooc.make_dataset(d=64, L=5, counts=(30, 10, 10, 10), rng=0)
    tok = data.tokens
    assert data.X.shape == (60, 5, 64) and data.is_one_hot
    assert np.all((tok == 2).sum(axis=1) == 1)  # μ3 exactly once
    has1, has2 = (tok == 0).any(axis=1), (tok == 1).any(axis=1)
    expected_types = np.select([has1 & has2, has1, has2], [1, 2, 3], default=4)
    np.testing.assert_array_equal(data.types, expected_types)
    np.testing.assert_array_equal(data.y, np.where(has1 & has2, 1.0, -1.0))
    assert np.bincount(data.types)[1:].tolist() == [30, 10, 10, 10]
    assert (tok.max(axis=1) <= 63).all() and ((tok == 0).sum(axis=1) <= 1).all()
    distinct = cooc.make_dataset(d=256, L=5, counts=(30, 10, 10, 10), rng=0,
                                 random_tokens="distinct")
    random_tokens = distinct.tokens[distinct.tokens >= 3]
    assert random_tokens.size == np.unique(random_tokens).size == 30 * 2 + 20 * 3 + 10 * 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"L": 2}, "L must"),
        ({"d": 3}, "d must"),
        ({"counts": (1, 2, 3)}, "counts"),
        ({"random_tokens": "distinct"}, "d >= 163"),
        ({"random_tokens": "maybe"}, "random_tokens"),
        ({"embedding": np.ones((64, 64))}, "orthonormal"),
    ],
)
def test_bad_dataset_arguments(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        cooc.make_dataset(**kwargs)


def test_bad_model_arguments_and_mismatched_data():
    with pytest.raises(ArgumentError, match="m must"):
        cooc.CooccurrenceTransformer(d=8, m=0, m1=3)
    with pytest.raises(ArgumentError, match="±1"):
        cooc.CooccurrenceTransformer(d=8, m=2, m1=3, a=[1, 0, 1])
    with pytest.raises(ArgumentError, match="preset"):
        cooc.CooccurrenceTransformer(d=8, m=2, m1=3).init(preset="xavier")
    data = cooc.make_dataset(d=8, L=4, counts=(1, 1, 1, 1), rng=0)
    with pytest.raises(ArgumentError, match="L=4"):
        cooc.CooccurrenceTransformer(d=8, m=2, m1=3, L=5).objective(data)
    with pytest.raises(ArgumentError, match="d=9"):
        cooc.CooccurrenceTransformer(d=9, m=2, m1=3, L=4).objective(data)
