"""The field report's case for gradient checks at saturation: a one-layer attention read-out
f = Σ_t softmax(x_tᵀ W z)_t · vᵀx_t whose closed-form gradient is correct (checked here against
a 600-digit decimal difference, an independent route) but whose naive complex step is not once
the softmax saturates (‖W‖ ≳ 100), and whose gradient underflows to exactly 0 at ‖W‖ = 3000.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

from gradflow import Layout
from gradflow.numerics import log_softmax, softmax, softmax_readout


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

    def sample_losses(self, theta):
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


def attention(scale, readout="helper"):
    objective = AttentionReadout(scale, readout)
    return objective, objective.theta()



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
