"""The objective: what the integrator and the gradient checker see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from gradflow.layout import Layout

if TYPE_CHECKING:
    from gradflow.models.base import Model

__all__ = ["ModelObjective", "Objective"]


@runtime_checkable
class Objective(Protocol):
    """A scalar training loss of a flat parameter vector θ, with its closed-form gradient.

    Any object with these four members can be integrated by :func:`gradflow.simulate` and
    checked by :func:`gradflow.check_gradient`; models produce one with ``model.objective(data)``.

    Attributes
    ----------
    layout : Layout
        The names and shapes of the blocks of θ.
    """

    layout: Layout

    def value(self, theta: np.ndarray) -> Any:
        """The loss L(θ); must accept complex θ (complex-step checks)."""
        ...

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """The closed-form gradient ∇L(θ), shape (layout.size,)."""
        ...

    def sample_losses(self, theta: np.ndarray) -> np.ndarray:
        """The per-sample losses whose mean is L(θ), shape (n,)."""
        ...


class ModelObjective:
    """Bind a model to a dataset, exposing the :class:`Objective` protocol on flat vectors.

    Parameters
    ----------
    model : Model
    data : dataset of that model

    Notes
    -----
    Equivalent to ``lambda θ: model.loss(layout.unpack(θ), data)`` with the model's closed-form
    gradient packed into one vector. The data are validated once, here.
    """

    def __init__(self, model: Model, data: Any):
        model.check_data(data)
        self.model = model
        self.data = data
        self.layout = model.layout

    def __repr__(self) -> str:
        return f"ModelObjective({self.model!r}, n={self.model.n_samples(self.data)})"

    def params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the named blocks of ``theta``."""
        return self.layout.unpack(theta)

    def value(self, theta: np.ndarray) -> Any:
        return self.model.loss(self.layout.unpack(theta), self.data)

    def sample_losses(self, theta: np.ndarray) -> np.ndarray:
        return self.model.sample_losses(self.layout.unpack(theta), self.data)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.layout.pack(self.model.grad(self.layout.unpack(theta), self.data))

    def scaled_gradient(self, theta: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The gradient with each block divided by a positive factor, and the factors' logs.

        Block b of the true gradient is ``exp(log_scales[b]) * g[b]``. Models whose gradients
        are exponentially small late in training (cross-entropy on separable data) implement
        ``scaled_grad`` to factor out the largest exponential, so that a *normalised* flow keeps
        its direction after the raw gradient underflows; other models return scales of 0.
        """
        params = self.layout.unpack(theta)
        scaled = getattr(self.model, "scaled_grad", None)
        if scaled is None:
            return self.gradient(theta), dict.fromkeys(self.layout.names, 0.0)
        blocks, log_scales = scaled(params, self.data)
        return self.layout.pack(blocks), log_scales
