"""The contract every model of gradflow meets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from gradflow.checkpoint import _Hasher
from gradflow.layout import Layout
from gradflow.objective import ModelObjective

__all__ = ["Model", "Observable"]

Observable = Callable[[np.ndarray], Any]
"""A function of the flat parameter vector θ returning a float or an array."""


class Model(ABC):
    """Base class of the models under ``gradflow.models``.

    A new paper's model is added by writing one module under ``gradflow/models/`` that meets
    this contract:

    1. A module-level ``make_dataset(..., rng)`` returns a frozen dataclass of arrays (e.g.
       ``X: (n, L, d)``, ``y: (n,)``), seeded by an explicit ``numpy.random.Generator`` or int.
    2. A subclass of :class:`Model` whose constructor takes the hyper-parameters (validated,
       with :class:`~gradflow.errors.ArgumentError` naming the bad one) and any fixed,
       untrained quantities (drawn from an explicit ``rng``).
    3. :attr:`layout`: the trained blocks, named as in the paper and the derivation document.
    4. :meth:`init` ``(rng, preset=...)`` returns a flat θ₀; presets are named after the
       paper's initialisations.
    5. :meth:`sample_losses` ``(params, data)`` returns per-sample losses, shape ``(n,)``,
       written complex-step safe (use :mod:`gradflow.numerics`; no ``abs``, ``maximum``,
       ``conj`` or value-dependent branches on the differentiated path). :meth:`loss` is
       their mean unless the paper weights samples otherwise.
    6. :meth:`grad` ``(params, data)`` returns the closed-form gradient as a dict of blocks,
       vectorised over samples and positions (no Python loop over either). It must pass
       :func:`gradflow.check_gradient` by complex step to ~1e-10 relative, and its
       derivation is written in ``docs/derivations/<module>.md`` with the code's symbols.
    7. :meth:`observables` ``(data)`` returns ``{name: f(θ)}`` for the quantities the paper's
       theorems speak about; named events (e.g. ``phase1_end(data)``) return
       :class:`gradflow.Event` objects.
    8. :meth:`check_data` rejects a dataset that does not fit the model, naming the field.
    9. :meth:`scaled_grad` ``(params, data) -> (blocks, log_scales)`` — optional, with a
       default: the gradient with one positive factor taken out of each block, block b of
       the true gradient being ``exp(log_scales[b]) * blocks[b]``. The default is
       ``(grad, 0)``. A model whose gradient becomes exponentially small (cross-entropy or
       logistic losses on separable data) overrides it to factor out the largest
       exponential; normalised flows (``simulate(..., normalize=...)``) then keep their
       direction after the plain gradient underflows. Without it such a flow ends with
       :class:`~gradflow.errors.GradientUnderflowError` instead of freezing.
    10. :meth:`content_hash` ``(data)`` — with a default: a stable hash of what defines the
        model and the data, which is what lets a checkpoint folder refuse another model's
        or dataset's run. The default hashes the class's qualified name, every instance
        attribute (arrays by dtype, shape and bytes; numbers, strings, tuples, dicts and
        dataclasses by value) and the dataset's dataclass fields. Values cached lazily are
        left out: ``functools.cached_property`` values, and attributes the class lists in
        :attr:`hash_exclude`. So keep fixed quantities (output signs, embeddings) as plain
        attributes, and a cache either as a ``cached_property`` or in ``hash_exclude``; an
        attribute it cannot hash (a function, an arbitrary object) is an
        :class:`~gradflow.errors.ArgumentError` naming it, never a hash of its ``repr``.

    :meth:`objective` then binds the model to a dataset for :func:`gradflow.simulate`.
    """

    hash_exclude: ClassVar[tuple[str, ...]] = ()
    """Instance attributes :meth:`content_hash` leaves out: caches kept by hand (contract
    rule 10). ``cached_property`` values are left out without being listed."""

    @property
    @abstractmethod
    def layout(self) -> Layout:
        """The trained parameter blocks."""

    @abstractmethod
    def init(self, rng: Any = None, preset: str = "default") -> np.ndarray:
        """A flat initial parameter vector, shape ``(layout.size,)``."""

    @abstractmethod
    def sample_losses(self, params: dict[str, np.ndarray], data: Any) -> np.ndarray:
        """Per-sample losses, shape ``(n,)``; complex-step safe."""

    @abstractmethod
    def grad(self, params: dict[str, np.ndarray], data: Any) -> dict[str, np.ndarray]:
        """Closed-form gradient of :meth:`loss`, one array per block of :attr:`layout`."""

    @abstractmethod
    def observables(self, data: Any) -> dict[str, Observable]:
        """Named functions of θ to record along a trajectory."""

    @abstractmethod
    def check_data(self, data: Any) -> None:
        """Raise :class:`~gradflow.errors.ArgumentError` if ``data`` does not fit the model."""

    def scaled_grad(
        self, params: dict[str, np.ndarray], data: Any
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The gradient with a positive factor taken out of each block (contract rule 9).

        Returns
        -------
        blocks : dict of str to ndarray
            One array per block of :attr:`layout`.
        log_scales : dict of str to float
            Block b of the true gradient is ``exp(log_scales[b]) * blocks[b]``; ``-inf``
            marks a block that is exactly zero. The default returns :meth:`grad` and zeros.
        """
        return self.grad(params, data), dict.fromkeys(self.layout.names, 0.0)

    def loss(self, params: dict[str, np.ndarray], data: Any) -> Any:
        """The training loss: the mean of :meth:`sample_losses`."""
        return np.mean(self.sample_losses(params, data))

    def content_hash(self, data: Any) -> str:
        """A stable hash of this model's fixed quantities and of ``data`` (contract rule 10).

        Parameters
        ----------
        data : dataset of this model

        Returns
        -------
        str
            64 hexadecimal digits; equal in every process for an equal model on equal data.

        Raises
        ------
        ArgumentError
            An attribute of the model or a field of the data cannot be hashed by content;
            the message names it (e.g. ``CooccurrenceTransformer.a`` or ``data.X``).
        """
        hasher = _Hasher()
        hasher.add(self, type(self).__name__)
        hasher.add(data, "data")
        return hasher.hexdigest()

    def objective(self, data: Any) -> ModelObjective:
        """Bind this model to ``data``: the :class:`~gradflow.Objective` to integrate."""
        return ModelObjective(self, data)
