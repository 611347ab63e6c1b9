"""Shared test objectives with exact solutions.

The tests run with one BLAS thread (set here, before NumPy loads its BLAS): the models' matrices
are small, and on a loaded 2-core machine OpenBLAS's threads made one co-occurrence gradient 55×
slower (15 ms instead of 0.27 ms); sweeps pin their workers the same way
(``gradflow.sweep.BLAS_THREAD_VARIABLES``).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradflow import Layout  # noqa: E402
from gradflow.checkpoint import content_hash  # noqa: E402


class LeastSquares:
    """L(θ) = ½‖Aθ − b‖² over two blocks; the flow θ(t) = θ* + e^{−Ht}(θ0 − θ*), H = AᵀA.

    H has eigenvalues spread over [0.5, 3], so explicit solvers are not stability-limited and
    the state reaches θ* to ~1e-6 by t = 30. Its ``checkpoint_key`` (a hand-written
    objective's own, as the Objective protocol allows) hashes A and b, so that
    ``simulate(..., checkpoint=...)`` accepts it and refuses another instance's folder.
    """

    def __init__(self, rng: int = 0, p: int = 5):
        gen = np.random.default_rng(rng)
        self.layout = Layout({"w": (p - 4,), "B": (2, 2)})
        q, _ = np.linalg.qr(gen.standard_normal((p, p)))
        self.A = np.sqrt(np.linspace(0.5, 3.0, p))[:, None] * q.T
        self.b = gen.standard_normal(p)
        self.H = self.A.T @ self.A
        self.theta_star = np.linalg.solve(self.H, self.A.T @ self.b)

    @property
    def checkpoint_key(self):
        return content_hash((type(self).__name__, self.A, self.b))

    def value(self, theta):
        r = self.A @ theta - self.b
        return 0.5 * (r @ r)

    def gradient(self, theta):
        return self.A.T @ (self.A @ theta - self.b)

    def sample_losses(self, theta):
        return 0.5 * (self.A @ theta - self.b) ** 2

    def exact(self, theta0, t):
        from scipy.linalg import expm

        return self.theta_star + expm(-self.H * t) @ (theta0 - self.theta_star)


class HalfSquaredNorm:
    """L(θ) = ½‖θ − c‖² on blocks ``a`` (2,) and ``b`` (3,); θ(t) = c + e^{−t}(θ0 − c)."""

    def __init__(self, center=None):
        self.layout = Layout({"a": (2,), "b": (3,)})
        self.center = np.zeros(5) if center is None else np.asarray(center, dtype=float)

    def value(self, theta):
        d = theta - self.center
        return 0.5 * (d @ d)

    def gradient(self, theta):
        return theta - self.center

    def sample_losses(self, theta):
        return 0.5 * (theta - self.center) ** 2


class BlowUp:
    """L(θ) = −θ³/3 on one coordinate: θ' = θ², which blows up at t = 1/θ0."""

    layout = Layout({"x": (1,)})

    def value(self, theta):
        return -(theta[0] ** 3) / 3

    def gradient(self, theta):
        return -(theta**2)

    def sample_losses(self, theta):
        return np.array([self.value(theta)])


@pytest.fixture
def least_squares():
    return LeastSquares()
