"""Layout views and the complex-step-safe numerics."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special

from gradflow import ArgumentError, Layout
from gradflow.numerics import logistic_loss, logsumexp, scatter_add, sigmoid, softmax


def test_unpack_returns_views_and_pack_inverts():
    layout = Layout({"W": (2, 3), "b": (4,)})
    theta = np.arange(10.0)
    blocks = layout.unpack(theta)
    assert blocks["W"].shape == (2, 3)
    blocks["b"][0] = -1.0  # a view: writes through
    assert theta[6] == -1.0
    assert_array_equal(layout.pack(blocks), theta)
    assert layout.block(np.stack([theta, 2 * theta]), "W").shape == (2, 2, 3)


def test_layout_errors_name_the_problem():
    layout = Layout({"W": (2, 3)})
    with pytest.raises(ArgumentError, match=r"shape \(6,\)"):
        layout.unpack(np.zeros(5))
    with pytest.raises(ArgumentError, match="missing"):
        layout.pack({})
    with pytest.raises(ArgumentError, match="'W' must have shape"):
        layout.pack({"W": np.zeros(6)})
    with pytest.raises(ArgumentError, match="twice"):
        Layout([("a", (1,)), ("a", (2,))])
    assert Layout.from_json(layout.to_json()) == layout


def test_complex_views_keep_dtype():
    layout = Layout({"a": (2,), "b": (1,)})
    assert layout.unpack(np.zeros(3, dtype=complex))["a"].dtype == complex


@pytest.mark.parametrize("x", [np.array([-800.0, -3.0, 0.0, 2.5, 40.0, 800.0])])
def test_real_values_match_scipy(x):
    assert_allclose(logistic_loss(x), np.logaddexp(0, -x), rtol=1e-14, atol=0)
    assert_allclose(sigmoid(x), special.expit(x), rtol=1e-14, atol=0)
    z = np.stack([x, x[::-1]])
    assert_allclose(softmax(z, axis=1), special.softmax(z, axis=1), rtol=1e-13, atol=1e-300)
    assert_allclose(logsumexp(z, axis=1), special.logsumexp(z, axis=1), rtol=1e-14)


@pytest.mark.parametrize("x0", [-30.0, -2.0, 0.3, 5.0, 45.0])
def test_complex_step_derivatives_are_exact(x0):
    """Im f(x + ih)/h equals the analytic derivative to rounding (h = 1e-30)."""
    h = 1e-30
    z = x0 + 1j * h
    assert_allclose(np.imag(logistic_loss(z)) / h, -special.expit(-x0), rtol=1e-13)
    assert_allclose(np.imag(sigmoid(z)) / h, special.expit(x0) * special.expit(-x0), rtol=1e-13)
    v = np.array([x0, 0.0, 1.0])
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1
        p = special.softmax(v)
        assert_allclose(np.imag(logsumexp(v + 1j * h * e)) / h, p[k], rtol=1e-13)
        jac = np.imag(softmax(v + 1j * h * e)) / h
        assert_allclose(jac, p * (e - p[k]), rtol=1e-12, atol=1e-300)


def test_scatter_add_sums_repeated_indices_and_complex_weights():
    index = np.array([[0, 2], [2, 2]])
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_array_equal(scatter_add(index, weights, 4), [1.0, 0.0, 9.0, 0.0])
    out = scatter_add(index, weights + 1j * weights, 4)
    assert_array_equal(out, [1 + 1j, 0, 9 + 9j, 0])
