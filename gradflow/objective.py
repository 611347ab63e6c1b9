"""The objective: what the integrator and the gradient checker see."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from gradflow.layout import Layout

__all__ = ["Objective", "ScaledObjective"]


@runtime_checkable
class Objective(Protocol):
    """A scalar training loss of a flat parameter vector θ, with its closed-form gradient.

    Any object with these three members can be integrated by :func:`gradflow.simulate` and
    checked by :func:`gradflow.check_gradient`; models produce one with ``model.objective(data)``.

    Attributes
    ----------
    layout : Layout
        The names and shapes of the blocks of θ.

    Notes
    -----
    Optional members, used when present:

    - ``weighted_losses(θ)``: the terms ``w_n ℓ_n`` whose sum is L(θ), shape ``(n,)``;
      :func:`gradflow.check_gradient` takes the rounding scale of the loss as
      ``max(|L|, Σ_n |w_n ℓ_n|)`` (terms of both signs cancel in L, not in their rounding).
    - ``checkpoint_key``, a string identifying the objective and its data (e.g.
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


@runtime_checkable
class ScaledObjective(Objective, Protocol):
    """An :class:`Objective` that can also return its gradient with the largest exponential
    factored out of each block.

    Normalised flows use :meth:`scaled_gradient` instead of ``gradient``: dividing by the
    norm removes the factor, so the direction stays defined after the plain gradient
    underflows (cross-entropy on separable data, late in training). Every
    ``model.objective(data)`` (a :class:`gradflow.ModelObjective`) is one: the model's
    ``scaled_grad`` has a default.
    """

    def scaled_gradient(self, theta: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """``(g, log_scales)``: block b of ∇L(θ) is ``exp(log_scales[b]) * g[b]``."""
        ...
