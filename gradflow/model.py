"""The contract every model of gradflow meets, and the objective that binds one to its data."""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, final

import numpy as np

from gradflow.checkpoint import _Hasher
from gradflow.errors import ArgumentError
from gradflow.layout import Layout

__all__ = ["Model", "ModelObjective", "Observable", "per_member_data"]

Observable = Callable[[np.ndarray], Any]
"""A function of the flat parameter vector θ returning a float or an array."""



@functools.lru_cache(maxsize=64)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _arrays(dataset: Any) -> list[np.ndarray]:
    """The arrays that define ``dataset``: among its dataclass fields, else its attributes."""
    if dataclasses.is_dataclass(dataset):
        values = [getattr(dataset, name) for name in _field_names(type(dataset))]
    else:
        values = list(vars(dataset).values()) if hasattr(dataset, "__dict__") else []
    return [v for v in values if isinstance(v, np.ndarray)]


def _array_copies(dataset: Any) -> list[tuple]:
    """The shape, dtype and bytes of each of ``dataset``'s arrays: equal iff the arrays are
    (bitwise, so NaN equals NaN)."""
    return [(a.shape, a.dtype.str, a.tobytes()) for a in _arrays(dataset)]


def _unchanged(copies: list[list[tuple]], datasets: tuple) -> bool:
    """Whether every dataset's arrays still equal the copies taken with the cached answer."""
    for saved, dataset in zip(copies, datasets, strict=True):
        current = _arrays(dataset)
        if len(current) != len(saved):
            return False
        for (shape, dtype, data), a in zip(saved, current, strict=True):
            if a.shape != shape or a.dtype.str != dtype or a.tobytes() != data:
                return False
    return True


def per_member_data(attribute: str) -> Callable:
    """Decorate a model method ``build(self, datasets, shared)`` that derives arrays from the
    data of :meth:`Model.batched_grad` (one dataset shared by every member, or a list of one per
    member), so that the method takes that data and keeps its last answer.

    The answer is kept in the instance attribute ``attribute`` (list it in the class's
    ``hash_exclude``: it is a cache), keyed by the identity of the datasets, which the cache
    holds so that an id is never reused while cached: a flow asks with the same data at every
    step. A dataset changed in place since (``data.X *= 2``) is not mistaken for the old one:
    the cache keeps the bytes of the datasets' arrays and compares them, exactly, at every
    call (a pass over the data, small beside the gradient that reads it). ``build`` receives
    ``datasets`` (a tuple: the shared dataset alone, or the members') and ``shared`` (whether
    one dataset serves every member).
    """

    def wrap(build: Callable[[Any, tuple, bool], Any]) -> Callable[[Any, Any], Any]:
        @functools.wraps(build)
        def method(self: Any, data: Any) -> Any:
            shared = not isinstance(data, list)
            key = (data,) if shared else tuple(data)
            cached = getattr(self, attribute, None)
            if (cached is not None and cached[0] == shared and len(cached[1]) == len(key)
                    and all(a is b for a, b in zip(cached[1], key, strict=True))
                    and _unchanged(cached[3], key)):
                return cached[2]
            value = build(self, key, shared)
            setattr(self, attribute, (shared, key, value, [_array_copies(d) for d in key]))
            return value

        return method

    return wrap


class Model(ABC):
    """Base class of every model, in-tree (``gradflow/papers/<paper>/model.py``) or a
    researcher's own; :func:`gradflow.testing.check_model` checks each rule below.

    The contract:

    1. **Typed data.** The model's input is a frozen dataclass of arrays, either a sample set
       (``<P>Data``, built by ``make_dataset``) or a population (``<P>Task``, built by
       ``make_task``), defined in the paper's ``data.py``; a random constructor takes ``rng``
       (a ``numpy.random.Generator`` or an int) as its last argument. The class attribute
       :attr:`data_type` names that class.
    2. **Validated hyper-parameters.** The constructor takes the hyper-parameters, checked
       through :mod:`gradflow.validate` (an :class:`~gradflow.errors.ArgumentError` naming
       the bad one), and any fixed, untrained quantities (drawn from an explicit ``rng``).
    3. :attr:`layout`: the trained blocks, named as in the paper and the derivation document.
    4. :meth:`init` ``(rng, preset=...)`` returns a flat θ₀; presets are named after the
       paper's initialisations.
    5. **The loss.** :meth:`sample_losses` ``(params, data)`` returns the per-sample losses
       ℓ_n, shape ``(n,)``, and :meth:`sample_weights` ``(data)`` their weights w_n (default
       ``1/n``: the mean). :meth:`loss` is final: ``L = Σ_n w_n ℓ_n``. ``sample_losses`` must
       be complex-step safe; on the differentiated path it must not use ``abs``,
       ``np.maximum``, ``np.conj``, ``np.linalg.norm``, ``.real`` or branches on values
       (:mod:`gradflow.numerics` has safe forms of what these are usually wanted for).
    6. :meth:`grad` ``(params, data)`` returns the closed-form gradient of :meth:`loss` as a
       dict of blocks, vectorised over samples and positions (no Python loop over either). It
       passes :func:`gradflow.check_gradient` by complex step, and its derivation is written
       in ``docs/derivations/<paper>.md`` with the code's symbols.
    7. :meth:`scaled_grad` ``(params, data) -> (blocks, log_scales)``, with a default: the
       gradient with one positive factor taken out of each block, block b of the true
       gradient being ``exp(log_scales[b]) * blocks[b]``. The default is ``(grad, 0)``. A model
       whose gradient becomes exponentially small (cross-entropy or logistic losses on
       separable data) overrides it to factor out the largest exponential; normalised flows
       (``simulate(..., normalize=...)``) then keep their direction after the plain gradient
       underflows. Without it such a flow ends with
       :class:`~gradflow.errors.GradientUnderflowError` instead of freezing.
    8. :meth:`observables` ``(data, *, ...)`` returns ``{name: f(θ)}`` for the quantities the
       paper's theorems speak about; extras (a reference direction, a time) are keyword-only,
       documented arguments. Named events (e.g. ``phase1_end(data)``) return
       :class:`gradflow.Event` objects. Observables never integrate a flow or solve an
       optimisation problem: what needs one is computed in the paper's ``protocol.py`` or
       ``theory.py`` and passed in.
    9. :meth:`check_data` rejects foreign data: the type through :attr:`data_type`
       (:meth:`check_data_type`), then the fields, naming the bad one.
    10. :meth:`content_hash` ``(data)``, with a default: a stable hash of what defines the
        model and the data, which is what lets a checkpoint folder refuse another model's
        or dataset's run. The default hashes the class's qualified name, every instance
        attribute (arrays by dtype, shape and bytes; numbers, strings, tuples, dicts and
        dataclasses by value) and the dataset's dataclass fields. Values cached lazily are
        left out: ``functools.cached_property`` values, and attributes the class lists in
        :attr:`hash_exclude`. So keep fixed quantities (output signs, embeddings) as plain
        attributes, and a cache either as a ``cached_property`` or in ``hash_exclude``; an
        attribute it cannot hash (a function, an arbitrary object) is an
        :class:`~gradflow.errors.ArgumentError` naming it, never a hash of its ``repr``.

    11. :meth:`batched_grad` ``(params, data)``, with a default: the gradients of B members
        at once, every block of ``params`` and of the result carrying a leading member axis
        ``(B, *block_shape)``; ``data`` is one dataset shared by all members or a ``list`` of
        B datasets, one per member (so a model's data is never itself a ``list``). The
        default loops over the members calling :meth:`grad`; a model overrides it where
        vectorising over members pays (small states, where NumPy's per-call overhead is
        most of a step's cost). An override must equal the per-member :meth:`grad` to
        rounding, for shared and for per-member data (checked by
        :func:`gradflow.testing.check_model`). :func:`gradflow.simulate_ensemble` uses it.
        Likewise :meth:`batched_scaled_grad` for :meth:`scaled_grad` (rule 7), which the
        ensemble's normalised flows use: blocks ``(B, *block_shape)`` and log-scales ``(B,)``
        per block, each member's factor its own.

    No method may modify its ``params`` or ``data`` arguments. :meth:`objective` then binds
    the model to a dataset for :func:`gradflow.simulate`.
    """

    data_type: ClassVar[type | tuple[type, ...]] = object
    """The dataclass (or classes) of this model's data (contract rule 1), checked by
    :meth:`check_data_type`."""

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
        """The gradient with a positive factor taken out of each block (contract rule 7).

        Returns
        -------
        blocks : dict of str to ndarray
            One array per block of :attr:`layout`.
        log_scales : dict of str to float
            Block b of the true gradient is ``exp(log_scales[b]) * blocks[b]``; ``-inf``
            marks a block that is exactly zero. The default returns :meth:`grad` and zeros.
        """
        return self.grad(params, data), dict.fromkeys(self.layout.names, 0.0)

    def batched_grad(self, params: dict[str, np.ndarray], data: Any) -> dict[str, np.ndarray]:
        """The closed-form gradients of B members at once (contract rule 11).

        Parameters
        ----------
        params : dict of str to ndarray
            Block name to shape ``(B, *layout.shapes[name])``: member b's parameters are
            ``{k: v[b] for k, v in params.items()}``.
        data : dataset of this model, or list of B datasets
            One dataset shared by every member, or ``data[b]`` for member b.

        Returns
        -------
        dict of str to ndarray
            Block name to shape ``(B, *layout.shapes[name])``; row b is
            ``grad(params_b, data_b)[name]``. The default loops over the members.
        """
        first = params[self.layout.names[0]]
        members = int(np.shape(first)[0])
        per_member = isinstance(data, list)
        if per_member and len(data) != members:
            raise ArgumentError(f"data: a list of per-member datasets must have one per member "
                                f"(B={members}), got {len(data)}")
        rows = [self.grad({k: v[b] for k, v in params.items()}, data[b] if per_member else data)
                for b in range(members)]
        return {k: np.stack([np.asarray(row[k]) for row in rows]) for k in self.layout.names}

    def batched_scaled_grad(
        self, params: dict[str, np.ndarray], data: Any
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`scaled_grad` of B members at once (contract rules 7 and 11).

        Parameters
        ----------
        params : dict of str to ndarray
            Block name to shape ``(B, *layout.shapes[name])``.
        data : dataset of this model, or list of B datasets

        Returns
        -------
        blocks : dict of str to ndarray
            Block name to shape ``(B, *layout.shapes[name])``.
        log_scales : dict of str to ndarray
            Block name to shape ``(B,)``: member b's true gradient of block k is
            ``exp(log_scales[k][b]) * blocks[k][b]``. The default loops over the members
            calling :meth:`scaled_grad`.
        """
        first = params[self.layout.names[0]]
        members = int(np.shape(first)[0])
        per_member = isinstance(data, list)
        if per_member and len(data) != members:
            raise ArgumentError(f"data: a list of per-member datasets must have one per member "
                                f"(B={members}), got {len(data)}")
        rows = [self.scaled_grad({k: v[b] for k, v in params.items()},
                                 data[b] if per_member else data) for b in range(members)]
        names = self.layout.names
        return ({k: np.stack([np.asarray(r[0][k]) for r in rows]) for k in names},
                {k: np.array([float(r[1][k]) for r in rows]) for k in names})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "loss" in cls.__dict__:  # rule 5: weights go through sample_weights instead
            raise TypeError(f"{cls.__qualname__} overrides Model.loss, which is final "
                            "(L = Σ w_n ℓ_n); override sample_weights(data) instead")

    def sample_weights(self, data: Any) -> Any:
        """The weights w_n of the per-sample losses in :meth:`loss` (contract rule 5).

        Returns
        -------
        float or ndarray, shape (n,)
            Default ``1/n`` with n = ``len(sample_losses)``: the loss is the mean. A population
            model whose "samples" are exact expectation terms returns ``1.0`` (their sum), a
            weighted dataset its weights.
        """
        return None  # the mean: loss() divides by n without materialising the weights

    @final
    def loss(self, params: dict[str, np.ndarray], data: Any) -> Any:
        """The training loss ``L = Σ_n w_n ℓ_n`` (contract rule 5; final)."""
        losses = self.sample_losses(params, data)
        weights = self.sample_weights(data)
        return np.mean(losses) if weights is None else np.sum(weights * losses)

    @final
    def weighted_losses(self, params: dict[str, np.ndarray], data: Any) -> np.ndarray:
        """The terms ``w_n ℓ_n`` of :meth:`loss`, shape ``(n,)``."""
        losses = self.sample_losses(params, data)
        weights = self.sample_weights(data)
        return losses / losses.shape[0] if weights is None else weights * losses

    def check_data_type(self, data: Any) -> None:
        """Raise :class:`~gradflow.errors.ArgumentError` unless ``data`` is a
        :attr:`data_type` (contract rules 1 and 9)."""
        if not isinstance(data, self.data_type):
            kinds = self.data_type if isinstance(self.data_type, tuple) else (self.data_type,)
            names = " or ".join(k.__name__ for k in kinds)
            raise ArgumentError(f"data: {type(self).__name__} needs {names}, got "
                                f"{type(data).__name__}")

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


class ModelObjective:
    """Bind a model to a dataset: the :class:`~gradflow.Objective` protocol on flat vectors.

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

    def value(self, theta: np.ndarray) -> Any:
        return self.model.loss(self.layout.unpack(theta), self.data)

    def weighted_losses(self, theta: np.ndarray) -> np.ndarray:
        """The terms ``w_n ℓ_n`` whose sum is the loss (optional member of :class:`Objective`)."""
        return self.model.weighted_losses(self.layout.unpack(theta), self.data)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.layout.pack(self.model.grad(self.layout.unpack(theta), self.data))

    def batched_gradient(self, thetas: np.ndarray) -> np.ndarray:
        """The gradients of a stack of parameter vectors on this objective's data.

        Parameters
        ----------
        thetas : ndarray, shape (B, layout.size)

        Returns
        -------
        ndarray, shape (B, layout.size)
            Row b is ``gradient(thetas[b])``, through the model's
            :meth:`~gradflow.Model.batched_grad` (contract rule 11) with the data shared.
        """
        params = self.layout.unpack_batch(thetas)
        return self.layout.pack_batch(self.model.batched_grad(params, self.data))

    def batched_scaled_gradient(self, thetas: np.ndarray
                                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`scaled_gradient` of a stack of parameter vectors, through the model's
        :meth:`~gradflow.Model.batched_scaled_grad`.

        Returns
        -------
        G : ndarray, shape (B, layout.size)
        log_scales : dict of str to ndarray, shape (B,)
        """
        blocks, log_scales = self.model.batched_scaled_grad(self.layout.unpack_batch(thetas),
                                                            self.data)
        return (self.layout.pack_batch(blocks),
                {k: np.asarray(log_scales[k], dtype=float).reshape(-1)
                 for k in self.layout.names})

    def scaled_gradient(self, theta: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The gradient with each block divided by a positive factor, and the factors' logs
        (:class:`~gradflow.ScaledObjective`): the model's ``scaled_grad`` (contract rule 7),
        packed."""
        blocks, log_scales = self.model.scaled_grad(self.layout.unpack(theta), self.data)
        return self.layout.pack(blocks), {k: float(log_scales[k]) for k in self.layout.names}

