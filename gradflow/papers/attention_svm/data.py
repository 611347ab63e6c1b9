"""Instances of the attention-SVM experiments (Tarzanagh, Li, Zhang, Oymak, NeurIPS 2023;
Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as support vector machines"): n sequences
of T tokens in R^d, a query per sequence, ±1 labels and a linear head v.

The distributions are those the authors' experiments draw (``docs/derivations/attention_svm.md``,
§Data): tokens, queries and the head uniform on the unit sphere, labels ±1 with equal
probability. A sequence's query is its own (cross-attention), one token of the sequence
(self-attention: the query is x_{i,q}), or one vector shared by every sequence (the prompt p of
the token-selection paper's model f(X) = ⟨Xv, softmax(XWp)⟩, where GD on p and on W
coincide: ``docs/derivations/attention_svm.md``, §Cross, self and shared queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.validate import generator, integer

__all__ = ["ATTENTIONS", "AttentionSVMData", "make_dataset", "random_instance"]

ATTENTIONS = ("cross", "self", "shared")
"""Where each sequence's query comes from: its own unit vector, one of its tokens, or one unit
vector shared by all sequences."""


@dataclass(frozen=True, eq=False)
class AttentionSVMData:
    """A training set of the one-layer attention model f(X_i) = vᵀX_iᵀ softmax(X_i W z_i).

    Attributes
    ----------
    X : ndarray, shape (n, T, d)
        Tokens x_it (rows of X_i).
    z : ndarray, shape (n, d)
        The query z_i of each sequence (for self-attention z_i = x_{i, query_position}).
    y : ndarray, shape (n,)
        Labels ±1.
    v : ndarray, shape (d,)
        The head: the fixed head of a model with ``head="fixed"``; a model that trains its head
        does not read it.
    attention : {"cross", "self", "shared"}
        How z was made (:data:`ATTENTIONS`).
    query_position : int or None
        The position q with z_i = x_iq for self-attention, else None.
    """

    X: np.ndarray
    z: np.ndarray
    y: np.ndarray
    v: np.ndarray
    attention: str = "cross"
    query_position: int | None = None

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def T(self) -> int:
        return self.X.shape[1]

    @property
    def d(self) -> int:
        return self.X.shape[2]


def _real(value: Any, name: str, shape: tuple[int, ...] | None, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if np.iscomplexobj(array) or array.dtype.kind not in "biuf" or array.ndim != ndim:
        raise ArgumentError(f"{name} must be a real array with {ndim} dimensions, got shape "
                            f"{array.shape} and dtype {array.dtype}")
    if shape is not None and array.shape != shape:
        raise ArgumentError(f"{name} must have shape {shape}, got {array.shape}")
    array = array.astype(float)
    if not np.all(np.isfinite(array)):
        raise ArgumentError(f"{name} must be finite")
    return array


def make_dataset(X: Any, y: Any, v: Any, z: Any = None, *, attention: str = "cross",
                 query_position: int = 0) -> AttentionSVMData:
    """An instance from given arrays, checked (e.g. an instance drawn by another program).

    Parameters
    ----------
    X : array_like, shape (n, T, d), T >= 2
    y : array_like, shape (n,)
        Labels, each +1 or −1.
    v : array_like, shape (d,)
        The head.
    z : array_like, shape (n, d), optional
        The queries: required for ``attention="cross"`` and ``"shared"`` (then all rows
        equal); not given for ``"self"``, where z_i = X[i, query_position].
    attention : {"cross", "self", "shared"}
    query_position : int
        Self-attention: the position of the query token.

    Raises
    ------
    ArgumentError
        Naming the argument whose shape, dtype or values do not fit.
    """
    if attention not in ATTENTIONS:
        raise ArgumentError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    X = _real(X, "X", None, 3)
    n, T, d = X.shape
    if n < 1 or T < 2 or d < 1:
        raise ArgumentError(f"X must have shape (n, T, d) with n >= 1, T >= 2, d >= 1, got "
                            f"{X.shape}")
    y = _real(y, "y", (n,), 1)
    if not np.all(np.abs(y) == 1.0):
        raise ArgumentError(f"y must be labels ±1, got {y.tolist()}")
    v = _real(v, "v", (d,), 1)
    position = None
    if attention == "self":
        if z is not None:
            raise ArgumentError("z: self-attention takes its queries from X (query_position); "
                                "do not pass z")
        position = integer(query_position, "query_position", minimum=0)
        if position >= T:
            raise ArgumentError(f"query_position must lie in [0, T) = [0, {T}), got {position}")
        z = X[:, position].copy()
    else:
        if z is None:
            raise ArgumentError(f"z: {attention}-attention needs the queries z, shape (n, d)")
        z = _real(z, "z", (n, d), 2)
        if attention == "shared" and not np.all(z == z[:1]):
            raise ArgumentError("z: shared attention needs the same query in every row")
    return AttentionSVMData(X=X, z=z, y=y, v=v, attention=attention, query_position=position)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def random_instance(n: int = 6, T: int = 8, d: int = 10, *, attention: str = "cross",
                    query_position: int = 0, rng: Any = None) -> AttentionSVMData:
    """An instance drawn as in the authors' experiments (``docs/derivations/attention_svm.md``,
    §Data): tokens x_it, queries z_i and the head v uniform on the unit sphere of R^d (normalised
    Gaussians), labels ±1 with probability ½ each.

    Parameters
    ----------
    n, T, d : int
        Sequences, tokens per sequence (≥ 2), dimension. The authors' local-convergence
        experiment uses n = 6, T = 8, d = 10.
    attention : {"cross", "self", "shared"}
        ``"cross"``: a query per sequence; ``"self"``: z_i = x_{i, query_position};
        ``"shared"``: one query for every sequence (the prompt p of the token-selection paper).
    query_position : int
        Self-attention only.
    rng : int or numpy.random.Generator
        Drawn in the order X, z, y, v (z is drawn for every kind, so that an instance's tokens,
        labels and head do not depend on the kind of attention).
    """
    n = integer(n, "n")
    T = integer(T, "T", minimum=2)
    d = integer(d, "d")
    if attention not in ATTENTIONS:
        raise ArgumentError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    gen = generator(rng)
    X = _unit(gen.standard_normal((n, T, d)))
    z = _unit(gen.standard_normal((n, d)))
    y = gen.choice([-1.0, 1.0], size=n)
    v = _unit(gen.standard_normal(d))
    if attention == "self":
        return make_dataset(X, y, v, attention="self", query_position=query_position)
    if attention == "shared":
        z = np.repeat(z[:1], n, axis=0)
    return make_dataset(X, y, v, z, attention=attention)
