"""The objective: what the integrator and the gradient checker see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from gradflow.layout import Layout

if TYPE_CHECKING:
    from gradflow.model import Model

__all__ = ["ModelObjective", "Objective", "ScaledObjective"]


@runtime_checkable
class Objective(Protocol):
    """A scalar training loss of a flat parameter vector θ, with its closed-form gradient.

    Any object with these four members can be integrated by :func:`gradflow.simulate` and
    checked by :func:`gradflow.check_gradient`; models produce one with ``model.objective(data)``.

    Attributes
    ----------
    layout : Layout
        The names and shapes of the blocks of θ.

    Notes
    -----
    Optional: ``checkpoint_key``, a string identifying the objective and its data (e.g.
    :func:`gradflow.checkpoint.content_hash` of its arrays), which
    ``simulate(..., checkpoint=...)`` binds the folder to. Without one, a checkpointed run
    needs ``simulate(..., checkpoint_key=...)``.
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


@runtime_checkable
class ScaledObjective(Objective, Protocol):
    """An :class:`Objective` that can also return its gradient with the largest exponential
    factored out of each block.

    Normalised flows use :meth:`scaled_gradient` instead of ``gradient``: dividing by the
    norm removes the factor, so the direction stays defined after the plain gradient
    underflows (cross-entropy on separable data, late in training). Every
    :class:`ModelObjective` is one (the model's ``scaled_grad`` has a default).
    """

    def scaled_gradient(self, theta: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """``(g, log_scales)``: block b of ∇L(θ) is ``exp(log_scales[b]) * g[b]``."""
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

    :attr:`checkpoint_key` is ``model.content_hash(data)``, computed on each use (so data
    changed in place after binding are not mistaken for the old data).
    """

    def __init__(self, model: Model, data: Any):
        model.check_data(data)
        self.model = model
        self.data = data
        self.layout = model.layout

    def __repr__(self) -> str:
        return f"ModelObjective({self.model!r})"

    @property
    def checkpoint_key(self) -> str:
        """The model's :meth:`~gradflow.Model.content_hash` of the data: what a checkpoint
        folder of this objective is bound to (beside simulate's settings, θ0 and grid)."""
        return self.model.content_hash(self.data)

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
        """The gradient with each block divided by a positive factor, and the factors' logs
        (:class:`ScaledObjective`): the model's ``scaled_grad`` (contract rule 9), packed."""
        blocks, log_scales = self.model.scaled_grad(self.layout.unpack(theta), self.data)
        return self.layout.pack(blocks), {k: float(log_scales[k]) for k in self.layout.names}
