"""The verdicts of check_gradient, each on a purpose-built case.

The saturated cases are the field report's: a one-layer attention read-out
f = Σ_t softmax(x_tᵀ W z)_t · vᵀx_t whose closed-form gradient is correct (checked here against
a 600-digit decimal difference, an independent route) but whose naive complex step is not once
the softmax saturates (‖W‖ ≳ 100), and whose gradient underflows to exactly 0 at ‖W‖ = 3000.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

from gradflow import ArgumentError, GradientCheck, Layout, check_gradient
from gradflow.gradcheck import VERDICTS
from gradflow.numerics import log_softmax, softmax, softmax_readout
from gradflow.papers import cooccurrence as cooc


class AttentionReadout:
    """f(W, v) = Σ_t s_t a_t, s = softmax(X W z), a = X v: one query z, T tokens x_t (rows of X).

    ``W = scale · W0`` with ``‖W0‖_F = 1``. Seed 1 puts the top score 0.35·‖W‖ above the
    runner-up, so Σ_{τ≠o} s_τ ≈ e^{−0.35‖W‖}: 1e-15 at ‖W‖ = 97, 1e-46 at 300, underflow
    (< 1e-308) past ‖W‖ ≈ 2000. ``readout="naive"`` writes the value as ``sum(softmax·a)``
    (complex step inexact at saturation), ``"helper"`` with
    :func:`gradflow.numerics.softmax_readout`. The gradient is the same closed form for both:
    ∇_W f = Σ_t s_t (a_t − f) x_t zᵀ, ∇_v f = Σ_t s_t x_t, with a_t − f from the helper's
    ``centered`` output (no cancellation).
    """

    d, T = 4, 6

    def __init__(self, scale: float, readout: str = "helper", seed: int = 1):
        gen = np.random.default_rng(seed)
        X = gen.standard_normal((self.T, self.d))
        self.X = X / np.linalg.norm(X, axis=1, keepdims=True)
        z = gen.standard_normal(self.d)
        self.z = z / np.linalg.norm(z)
        W0 = gen.standard_normal((self.d, self.d))
        self.W = scale * W0 / np.linalg.norm(W0)
        self.v = gen.standard_normal(self.d)
        self.readout = readout
        self.layout = Layout({"W": (self.d, self.d), "v": (self.d,)})

    def theta(self) -> np.ndarray:
        return self.layout.pack({"W": self.W, "v": self.v})

    def _scores_values(self, theta):
        p = self.layout.unpack(theta)
        return self.X @ p["W"] @ self.z, self.X @ p["v"]

    def value(self, theta):
        scores, values = self._scores_values(theta)
        if self.readout == "naive":
            return np.sum(softmax(scores) * values)
        return softmax_readout(scores, values)

    def weighted_losses(self, theta):
        return np.atleast_1d(self.value(theta))

    def gradient(self, theta):
        scores, values = self._scores_values(theta)
        s = np.exp(log_softmax(scores))
        _, centered = softmax_readout(scores, values, centered=True)
        return self.layout.pack({"W": np.outer(self.X.T @ (s * centered), self.z),
                                 "v": self.X.T @ s})


def decimal_derivative(objective: AttentionReadout, theta, direction, digits=600) -> float:
    """d/dt f(θ + t·direction) at t = 0 by a central difference in ``digits``-digit decimal
    arithmetic on the exact binary values of the inputs (h = 1e-250: truncation ~1e-500,
    rounding ~1e-350, far below any float64 derivative here)."""
    with localcontext() as ctx:
        ctx.prec = digits
        X = [[Decimal(float(x)) for x in row] for row in objective.X]
        z = [Decimal(float(x)) for x in objective.z]

        def f(t):
            p = objective.layout.unpack(theta)
            q = objective.layout.unpack(direction)
            W = [[Decimal(float(p["W"][i, j])) + t * Decimal(float(q["W"][i, j]))
                  for j in range(objective.d)] for i in range(objective.d)]
            v = [Decimal(float(p["v"][i])) + t * Decimal(float(q["v"][i]))
                 for i in range(objective.d)]
            scores = [sum(x[i] * W[i][j] * z[j] for i in range(objective.d)
                          for j in range(objective.d)) for x in X]
            values = [sum(x[i] * v[i] for i in range(objective.d)) for x in X]
            top = max(scores)
            e = [(s - top).exp() for s in scores]
            return sum(w * a for w, a in zip(e, values, strict=True)) / sum(e)

        h = Decimal("1e-250")
        return float((f(h) - f(-h)) / (2 * h))


class Modified:
    """``objective`` with its gradient passed through ``change`` (a purpose-built bug)."""

    def __init__(self, objective, change):
        self.objective, self.change, self.layout = objective, change, objective.layout

    def value(self, theta):
        return self.objective.value(theta)

    def weighted_losses(self, theta):
        return self.objective.weighted_losses(theta)

    def gradient(self, theta):
        return self.change(self.layout, np.array(self.objective.gradient(theta)))


class RealOnly(Modified):
    """A loss that rejects complex input (``float()`` of its value), as a non-gradflow loss."""

    def value(self, theta):
        if np.iscomplexobj(theta):
            raise TypeError("float() argument must be a real number")
        return float(self.objective.value(theta))


class AbsLoss:
    """L(θ) = Σ|θ_i|·c_i with ``np.abs``: not complex-step safe (|x + ih| is real to O(h²)), so
    the complex step says 0 where central differences and the closed form say c·sign(θ)."""

    layout = Layout({"x": (3,)})
    c = np.array([1.0, -2.0, 0.5])

    def value(self, theta):
        return np.sum(np.abs(theta) * self.c)

    def weighted_losses(self, theta):
        return np.abs(theta) * self.c

    def gradient(self, theta):
        return np.sign(theta) * self.c


def small_cooccurrence():
    data = cooc.make_dataset(d=12, L=4, counts=(3, 1, 1, 1), rng=0)
    model = cooc.CooccurrenceTransformer(d=12, m=8, m1=6, L=4, rng=0)
    return model.objective(data), model.init(rng=17, preset="theory", s0_mult=6.0, s1_mult=3.0)


def attention(scale, readout="helper"):
    objective = AttentionReadout(scale, readout)
    return objective, objective.theta()


def times_two(layout, g):
    return 2 * g


def sign_flip(layout, g):
    return -g


def w_block_off(layout, g):
    blocks = layout.unpack(g)
    blocks[next(iter(blocks))] *= 1.001  # the first block 0.1 % off: a wrong factor in one term
    return g


@pytest.mark.parametrize("scale", [1.0, 97.0, 300.0, 1000.0])
def test_attention_gradient_is_correct_against_decimal(scale):
    """The premise of the saturated cases: the closed form is right (to 1e-12 relative against
    an independent 600-digit route), so any disagreement there is the reference's fault."""
    objective, theta = attention(scale)
    gen = np.random.default_rng(2)
    for support in (objective.layout.slices["W"], slice(0, theta.size)):
        direction = np.zeros(theta.size)
        direction[support] = gen.standard_normal(support.stop - support.start)
        exact = decimal_derivative(objective, theta, direction)
        assert objective.gradient(theta) @ direction == pytest.approx(exact, rel=1e-12, abs=0)


@pytest.mark.parametrize("case", ["attention-helper", "attention-naive", "cooccurrence"])
def test_correct_gradient_is_ok(case):
    objective, theta = small_cooccurrence() if case == "cooccurrence" else attention(
        1.0, case.split("-")[1])
    check = check_gradient(objective, theta)
    assert check.verdict == "ok" and check.ok, check
    assert set(check.block_verdicts.values()) == {"ok"} and check.overall_verdict == "ok"
    assert check.max_rel_error < 1e-12


@pytest.mark.parametrize("change", [times_two, sign_flip, w_block_off])
@pytest.mark.parametrize("case", ["attention", "cooccurrence"])
def test_wrong_gradient_is_mismatch(case, change):
    objective, theta = small_cooccurrence() if case == "cooccurrence" else attention(1.0)
    check = check_gradient(Modified(objective, change), theta)
    assert check.verdict == "mismatch", check
    first, *others = objective.layout.names
    assert check.block_verdicts[first] == "mismatch"
    if change is w_block_off:  # the verdict points at the block
        assert all(check.block_verdicts[name] == "ok" for name in others), check


def nan_entry(layout, g):
    g[-1] = np.nan
    return g


def inf_entry(layout, g):
    g[-1] = np.inf
    return g


@pytest.mark.parametrize("change", [nan_entry, inf_entry])
def test_non_finite_gradient_is_mismatch_with_infinite_error(change):
    """`nan > tol` is False: a NaN must not pass as "error not above tolerance"."""
    objective, theta = attention(1.0)
    check = check_gradient(Modified(objective, change), theta)
    assert check.verdict == "mismatch"
    assert check.block_verdicts == {"W": "ok", "v": "mismatch"}
    assert check.max_rel_error == np.inf and not check.max_rel_error <= 1e-8
    assert check.block_errors["v"] == np.inf and check.overall_error == np.inf
    assert "not finite" in str(check)


@pytest.mark.parametrize("scale", [97.0, 300.0, 1000.0])
def test_saturated_naive_readout_is_unresolved_not_mismatch(scale):
    """The field report: a correct gradient, a wrong complex step (legacy relative error
    3e-2..3), and a derivative far below the central difference's rounding level."""
    objective, theta = attention(scale, "naive")
    check = check_gradient(objective, theta)
    assert check.block_verdicts == {"W": "unresolved", "v": "ok"}, check
    assert check.verdict == "unresolved"
    assert check.block_errors["W"] > 1e-2  # what the old check would have called a failure
    assert "rounding level" in str(check)


@pytest.mark.parametrize("readout", ["naive", "helper"])
@pytest.mark.parametrize("scale", [2000.0, 3000.0])
def test_underflow_is_zero_not_a_pass(scale, readout):
    """At ‖W‖ = 3000 the W-gradient is exactly 0 in float64 and so is the complex step: the old
    check printed `max relative error 0.00e+00`. At 2000 the gradient (~1e-306) is below the
    complex step's underflow floor tiny/h ≈ 2e-278 and the complex step is 0."""
    objective, theta = attention(scale, readout)
    grad_w = objective.layout.unpack(objective.gradient(theta))["W"]
    assert (np.abs(grad_w).max() == 0.0) == (scale == 3000.0)
    check = check_gradient(objective, theta)
    assert check.block_verdicts == {"W": "zero", "v": "ok"}, check
    assert check.verdict == "zero" and not check.ok
    assert check.block_errors["W"] == (0.0 if scale == 3000.0 else 1.0)


@pytest.mark.parametrize("scale", [300.0, 1000.0])
def test_helper_readout_is_checkable_at_saturation(scale):
    objective, theta = attention(scale, "helper")
    check = check_gradient(objective, theta)
    assert check.verdict == "ok", check
    assert check.max_rel_error < 1e-12
    # the W directions were confirmed by the complex step alone: central differences are blind
    assert all(r["central_error"] > abs(r["analytic"]) for r in check.directions
               if r["block"] == "W")


def test_references_that_disagree_make_it_unresolved():
    """np.abs is not complex-step safe: the complex step says 0, central differences agree
    with the (correct) closed form c·sign(θ). The references disagree: unresolved, and a
    closed form that is wrong here is not called a mismatch either."""
    theta = np.array([0.7, -1.3, 2.0])
    check = check_gradient(AbsLoss(), theta)
    assert check.verdict == "unresolved", check
    assert "not complex-step exact" in str(check)
    assert check_gradient(Modified(AbsLoss(), times_two), theta).verdict == "unresolved"
    central = check_gradient(AbsLoss(), theta, "central")
    assert central.verdict == "unresolved" and central.max_rel_error < 1e-8


def test_central_method_checks_a_real_only_loss_alone():
    objective, theta = attention(1.0)
    with pytest.raises(ArgumentError, match="complex"):
        check_gradient(RealOnly(objective, lambda layout, g: g), theta)
    check = check_gradient(RealOnly(objective, lambda layout, g: g), theta, "central")
    assert check.verdict == "ok" and check.tolerance == 1e-5, check
    assert np.isnan(check.directions[0]["complex"])
    wrong = check_gradient(RealOnly(objective, times_two), theta, "central")
    assert wrong.verdict == "unresolved"  # one reference, no cross-check: never "mismatch"


def test_method_sets_the_reported_errors_and_tolerance():
    objective, theta = attention(1.0)
    complex_check = check_gradient(objective, theta)
    central_check = check_gradient(objective, theta, "central")
    assert complex_check.tolerance == 1e-8 and central_check.tolerance == 1e-5
    assert complex_check.max_rel_error < 1e-13 < central_check.max_rel_error < 1e-6
    assert central_check.verdict == "ok"
    assert check_gradient(objective, theta, tolerance=1e-20).verdict == "unresolved"
    with pytest.raises(ArgumentError, match="tolerance"):
        check_gradient(objective, theta, tolerance=-1.0)
    with pytest.raises(ArgumentError, match="method"):
        check_gradient(objective, theta, "forward")


def test_verdict_order_and_printout():
    assert VERDICTS == ("ok", "zero", "unresolved", "mismatch")
    check = GradientCheck("complex", {"a": 0.0, "b": 0.0}, 0.0, [],
                          {"a": "zero", "b": "unresolved"}, "ok", 1e-8)
    assert check.verdict == "unresolved"
    objective, theta = attention(3000.0)
    text = str(check_gradient(objective, theta))
    assert text.splitlines()[0].endswith(": zero")
    assert "W: zero: both sides are 0" in text and "nothing was checked" in text
    row = next(line.split() for line in text.splitlines() if line.split()[:1] == ["W"])
    assert row[1:3] == ["zero", "0.00e+00"]  # the old printout's vacuous "error 0"
