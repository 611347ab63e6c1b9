"""Logistic regression on four points in 2D, as a :class:`gradflow.Model`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradflow import ArgumentError, Layout, Model
from gradflow.numerics import logistic_loss, sigmoid


@dataclass(frozen=True)
class TinyData:
    """Points ``X`` (n, 2) with labels ``y`` (n,) in {−1, +1}."""

    X: np.ndarray
    y: np.ndarray


def make_dataset() -> TinyData:
    """Three positive points around a negative one: not linearly separable, so the flow
    converges to a finite minimiser (no exponentially small gradients to manage)."""
    X = np.array([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0], [0.0, 0.2]])
    return TinyData(X=X, y=np.array([1.0, 1.0, 1.0, -1.0]))


class LogisticRegression(Model):
    """``ℓ_n = log(1 + exp(−y_n (X_n·w + b)))``, the mean over the points."""

    data_type = TinyData

    @property
    def layout(self) -> Layout:
        return Layout({"w": (2,), "b": (1,)})

    def init(self, rng: Any = None, preset: str = "default") -> np.ndarray:
        if preset != "default":
            raise ArgumentError(f"preset: only 'default', got {preset!r}")
        return 0.1 * np.random.default_rng(rng).standard_normal(self.layout.size)

    def _margins(self, params: dict[str, np.ndarray], data: TinyData) -> np.ndarray:
        return data.y * (data.X @ params["w"] + params["b"][0])

    def sample_losses(self, params: dict[str, np.ndarray], data: TinyData) -> np.ndarray:
        return logistic_loss(self._margins(params, data))

    def grad(self, params: dict[str, np.ndarray], data: TinyData) -> dict[str, np.ndarray]:
        g = -sigmoid(-self._margins(params, data)) * data.y / data.y.shape[0]  # dL/dF_n
        return {"w": data.X.T @ g, "b": np.array([g.sum()])}

    def observables(self, data: TinyData) -> dict[str, Any]:
        def loss(theta: np.ndarray) -> float:
            return float(self.loss(self.layout.unpack(theta), data))

        return {"loss": loss, "w_norm": lambda theta: float(np.linalg.norm(theta[:2]))}

    def check_data(self, data: Any) -> None:
        self.check_data_type(data)
        if data.X.ndim != 2 or data.X.shape[1] != 2 or data.y.shape != data.X.shape[:1]:
            raise ArgumentError(f"data: X must be (n, 2) and y (n,), got {data.X.shape} and "
                                f"{data.y.shape}")
