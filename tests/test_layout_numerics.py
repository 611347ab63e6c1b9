"""Layout views and the complex-step-safe numerics."""

from decimal import Decimal, localcontext

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special
from test_gradcheck import AttentionReadout, decimal_derivative

from gradflow import ArgumentError, Layout
from gradflow.numerics import (
    cross_entropy,
    logistic_loss,
    logsumexp,
    scatter_add,
    sigmoid,
    softmax,
    softmax_readout,
)


def test_unpack_returns_views_and_pack_inverts():
    layout = Layout({"W": (2, 3), "b": (4,)})
    theta = np.arange(10.0)
    blocks = layout.unpack(theta)
    assert blocks["W"].shape == (2, 3)
    blocks["b"][0] = -1.0  # a view: writes through
    assert theta[6] == -1.0
    assert_array_equal(layout.pack(blocks), theta)
    assert layout.block(np.stack([theta, 2 * theta]), "W").shape == (2, 2, 3)


def test_batch_unpack_is_per_row_unpack_and_pack_batch_inverts():
    layout = Layout({"W": (2, 3), "b": (4,)})
    thetas = np.arange(30.0).reshape(3, 10)
    blocks = layout.unpack_batch(thetas)
    assert blocks["W"].shape == (3, 2, 3) and blocks["b"].shape == (3, 4)
    for row, theta in enumerate(thetas):  # exactly the single-vector unpack, row by row
        for name, value in layout.unpack(theta).items():
            assert_array_equal(blocks[name][row], value)
    blocks["b"][1, 0] = -1.0  # views: write through
    assert thetas[1, 6] == -1.0
    assert_array_equal(layout.pack_batch(blocks), thetas)
    out = np.empty((3, 10))
    assert layout.pack_batch(blocks, out=out) is out


def test_batch_layout_errors_name_the_problem():
    layout = Layout({"W": (2, 3), "b": (4,)})
    for bad in (np.zeros(10), np.zeros((2, 9)), np.zeros((0, 10)), np.zeros((1, 2, 10))):
        with pytest.raises(ArgumentError, match=r"thetas must be a stack .* \(B, 10\)"):
            layout.unpack_batch(bad)
    with pytest.raises(ArgumentError, match="missing"):
        layout.pack_batch({"W": np.zeros((2, 2, 3))})
    with pytest.raises(ArgumentError, match=r"'b' must have shape \(B, \*\(4,\)\) .* B=2"):
        layout.pack_batch({"W": np.zeros((2, 2, 3)), "b": np.zeros((3, 4))})


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


H = 1e-30  # the complex step


def readout_derivatives(scale):
    """Complex steps of the naive ``sum(softmax·a)`` and of :func:`softmax_readout` along a
    random direction of W in the field report's attention read-out (``AttentionReadout``),
    and the 600-digit decimal derivative along it."""
    case = AttentionReadout(scale)
    theta = case.theta()
    direction = np.zeros(theta.size)
    direction[case.layout.slices["W"]] = np.random.default_rng(5).standard_normal(16)
    V = case.layout.unpack(direction)["W"]
    scores = case.X @ (case.W + 1j * H * V) @ case.z
    values = case.X @ case.v
    naive = np.imag(np.sum(softmax(scores) * values)) / H
    helper = np.imag(softmax_readout(scores, values)) / H
    return naive, helper, decimal_derivative(case, theta, direction)


@pytest.mark.parametrize("scale", [1.0, 100.0, 300.0, 1000.0])
def test_softmax_readout_complex_step_is_exact_at_saturation(scale):
    """The read-out's complex step equals an independent 600-digit derivative to 1e-12 up to
    ‖W‖ = 1000 (measured ≤ 6.4e-14; Σ_{τ≠o} s_τ ≈ 1e-152 there), while the naive read-out's
    is off by > 1e-3 from ‖W‖ = 100 (measured 0.37 at 100 and 3.0 at 300 and 1000): the
    reason the helper exists."""
    naive, helper, exact = readout_derivatives(scale)
    assert exact != 0.0
    assert helper == pytest.approx(exact, rel=1e-12, abs=0)
    if scale >= 100:
        assert abs(naive - exact) > 1e-3 * abs(exact)
    else:
        assert naive == pytest.approx(exact, rel=1e-12, abs=0)


def test_softmax_readout_values_axis_mask_and_centered():
    gen = np.random.default_rng(0)
    scores, values = gen.standard_normal((3, 5)), gen.standard_normal((3, 5))
    p = special.softmax(scores, axis=1)
    assert_allclose(softmax_readout(scores, values), np.sum(p * values, axis=1), rtol=1e-14)
    assert_allclose(softmax_readout(scores.T, values.T, axis=0), softmax_readout(scores, values),
                    rtol=1e-15)
    f, centered = softmax_readout(scores, values, centered=True)
    assert_allclose(centered, values - f[:, None], rtol=1e-12, atol=1e-15)
    masked = scores.copy()
    masked[:, 0] = -np.inf  # weight exactly 0: position 0 is not read
    assert_allclose(softmax_readout(masked, values), softmax_readout(scores[:, 1:], values[:, 1:]),
                    rtol=1e-14)
    assert_allclose(softmax_readout(scores, 2.0), 2.0, rtol=1e-15)  # values broadcast
    # saturated: a_o − f is kept (≈ 1e-46 here) where values − f would round it to 0
    case = AttentionReadout(300.0)
    s_top, a = case.X @ case.W @ case.z, case.X @ case.v
    f, centered = softmax_readout(s_top, a, centered=True)
    o = np.argmax(s_top)
    assert a[o] - f == 0.0 and 0 < abs(centered[o]) < 1e-40
    w = np.exp(s_top - special.logsumexp(s_top))
    assert centered[o] == pytest.approx(np.sum(np.delete(w * (a[o] - a), o)), rel=1e-13)


def decimal_cross_entropy_derivative(logits, direction, labels):
    """Per row, d/dt log Σ_c exp(u_c − u_y) along ``direction``: 600-digit central difference."""
    out = []
    with localcontext() as ctx:
        ctx.prec = 600
        h = Decimal("1e-250")
        for u, du, y in zip(logits, direction, labels, strict=True):
            def f(t, u=u, du=du, y=y):
                z = [Decimal(float(a)) + t * Decimal(float(b)) for a, b in zip(u, du, strict=True)]
                return sum((zc - z[y]).exp() for zc in z).ln()
            out.append(float((f(h) - f(-h)) / (2 * h)))
    return np.array(out)


@pytest.mark.parametrize("scale", [1.0, 100.0, 300.0, 1000.0])
def test_cross_entropy_complex_step_is_exact_at_large_logits(scale):
    """cross_entropy is written around the label (well classified) or the real-part argmax
    (misclassified), so its complex step stays exact row by row at logits of size 1000,
    including a well-classified row whose derivative is 1e-260. ``logsumexp(u) − u_y`` gets
    that row's derivative entirely wrong (relative error 1) from scale 100 on."""
    gen = np.random.default_rng(0)
    U = gen.standard_normal((3, 5))
    U = scale * U / np.linalg.norm(U, axis=1, keepdims=True)
    labels = np.array([np.argmax(U[0]), np.argmin(U[1]), np.argsort(U[2])[-2]])
    D = gen.standard_normal((3, 5))
    exact = decimal_cross_entropy_derivative(U, D, labels)
    z = U + 1j * H * D
    assert_allclose(np.imag(cross_entropy(z, labels)) / H, exact, rtol=1e-13, atol=0)
    naive = np.imag(logsumexp(z, axis=1) - z[np.arange(3), labels]) / H
    if scale >= 100:
        assert abs(naive[0] - exact[0]) > 0.5 * abs(exact[0])
