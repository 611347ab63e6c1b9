"""Named parameter blocks stored in one flat float64 vector (the ODE state)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError

__all__ = ["Layout"]


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    """A block's shape as ints; a dimension that is not an integer (2.5, "3", True, NaN) is an
    ArgumentError, never truncated."""
    if isinstance(shape, str | bytes) or not isinstance(shape, Iterable):
        raise ArgumentError(f"block {name!r}: the shape must be a tuple of ints, got {shape!r}")
    dims = []
    for s in shape:
        if isinstance(s, bool | np.bool_) or not isinstance(s, numbers.Real) or not (
                isinstance(s, numbers.Integral) or float(s).is_integer()):
            raise ArgumentError(
                f"block {name!r}: every dimension must be an integer, got {s!r} in shape "
                f"{tuple(shape)!r}"
            )
        dims.append(int(s))
    return tuple(dims)


class Layout:
    """Map named parameter blocks to slices of one flat vector θ.

    Parameters
    ----------
    blocks : mapping or iterable of (name, shape) pairs
        Block names in storage order with their shapes, e.g. ``{"W_Q": (m, d), "u": (m,)}``.

    Notes
    -----
    :meth:`unpack` returns *views* into θ, never copies, so models write natural matrix code
    while the integrator sees one vector. Views keep θ's dtype, so a complex θ (complex-step
    checks) unpacks to complex blocks.

    Examples
    --------
    >>> layout = Layout({"W": (2, 3), "b": (3,)})
    >>> theta = np.arange(layout.size, dtype=float)
    >>> layout.unpack(theta)["b"]
    array([6., 7., 8.])
    """

    def __init__(self, blocks: Mapping[str, Iterable[int]] | Iterable[tuple[str, Iterable[int]]]):
        items = blocks.items() if isinstance(blocks, Mapping) else blocks
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.slices: dict[str, slice] = {}
        offset = 0
        for name, shape in items:
            if not isinstance(name, str) or not name:
                raise ArgumentError(f"block names must be non-empty strings, got {name!r}")
            if name in self.shapes:
                raise ArgumentError(f"block name {name!r} appears twice in the layout")
            shape = _shape(name, shape)
            if any(s < 0 for s in shape):
                raise ArgumentError(f"block {name!r} has a negative dimension in shape {shape}")
            size = math.prod(shape)
            self.shapes[name] = shape
            self.slices[name] = slice(offset, offset + size)
            offset += size
        if not self.shapes:
            raise ArgumentError("a layout needs at least one block")
        self.size = offset

    @property
    def names(self) -> tuple[str, ...]:
        """Block names in storage order."""
        return tuple(self.shapes)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {v}" for k, v in self.shapes.items())
        return f"Layout({{{inner}}}, size={self.size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.shapes == other.shapes

    def __hash__(self) -> int:
        return hash(tuple(self.shapes.items()))

    def check_vector(self, theta: Any, name: str = "theta") -> np.ndarray:
        """Return ``theta`` as an array after checking it is a flat vector of the right size.

        Raises
        ------
        ArgumentError
            If ``theta`` is not one-dimensional of length :attr:`size`.
        """
        theta = np.asarray(theta)
        if theta.shape != (self.size,):
            raise ArgumentError(
                f"{name} must be a flat vector of shape ({self.size},) for {self!r}, "
                f"got shape {theta.shape}"
            )
        return theta

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the blocks of ``theta``.

        Parameters
        ----------
        theta : ndarray, shape (size,)

        Returns
        -------
        dict of str to ndarray
            Block name to a view of shape ``shapes[name]``; writing into a view writes θ.
        """
        theta = self.check_vector(theta)
        return {k: theta[s].reshape(self.shapes[k]) for k, s in self.slices.items()}

    def block(self, theta: np.ndarray, name: str) -> np.ndarray:
        """View of one block of ``theta`` (or of each row of a stack ``(..., size)``)."""
        if name not in self.slices:
            raise ArgumentError(f"unknown block {name!r}; the layout has {list(self.names)}")
        theta = np.asarray(theta)
        if theta.shape[-1] != self.size:
            raise ArgumentError(
                f"theta must have last dimension {self.size}, got shape {theta.shape}"
            )
        return theta[..., self.slices[name]].reshape(*theta.shape[:-1], *self.shapes[name])

    def pack(self, blocks: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
        """Concatenate named blocks into one flat vector.

        Parameters
        ----------
        blocks : mapping of str to array_like
            Exactly the layout's names, each of its shape.
        out : ndarray, shape (size,), optional
            Written in place and returned when given.

        Returns
        -------
        ndarray, shape (size,)
        """
        if blocks.keys() != self.shapes.keys():
            missing = set(self.names) - set(blocks)
            extra = set(blocks) - set(self.names)
            raise ArgumentError(
                f"blocks must have exactly the names {list(self.names)}; "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        parts = []
        for k, shape in self.shapes.items():
            v = np.asarray(blocks[k])
            if v.shape != shape:
                raise ArgumentError(f"block {k!r} must have shape {shape}, got {v.shape}")
            parts.append(v.ravel())
        if out is not None:
            return np.concatenate(parts, out=out)
        flat = np.concatenate(parts)
        if flat.dtype not in (np.float64, np.complex128):  # integers, float32: at least double
            flat = flat.astype(np.result_type(np.float64, flat.dtype))
        return flat

    def check_stack(self, thetas: Any, name: str = "thetas") -> np.ndarray:
        """Return ``thetas`` as an array after checking it is a stack of flat vectors.

        Parameters
        ----------
        thetas : array_like, shape (B, size)
            One flat vector per member, B ≥ 1.
        name : str
            The argument's name in the error message.

        Raises
        ------
        ArgumentError
            If ``thetas`` is not two-dimensional with ``B >= 1`` rows of length :attr:`size`.
        """
        thetas = np.asarray(thetas)
        if thetas.ndim != 2 or thetas.shape[1] != self.size or thetas.shape[0] < 1:
            raise ArgumentError(
                f"{name} must be a stack of flat vectors of shape (B, {self.size}) with "
                f"B >= 1 for {self!r}, got shape {thetas.shape}"
            )
        return thetas

    def unpack_batch(self, thetas: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the blocks of a stack of flat vectors, with a leading member axis.

        Parameters
        ----------
        thetas : ndarray, shape (B, size)

        Returns
        -------
        dict of str to ndarray
            Block name to a view of shape ``(B, *shapes[name])``: row b of ``thetas``
            unpacked is ``{k: v[b] for k, v in blocks.items()}``. Writing into a view writes
            ``thetas`` when it is C-contiguous (as :meth:`unpack`).
        """
        thetas = self.check_stack(thetas)
        b = thetas.shape[0]
        return {k: thetas[:, s].reshape(b, *self.shapes[k]) for k, s in self.slices.items()}

    def pack_batch(self, blocks: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
        """Inverse of :meth:`unpack_batch`: named blocks with a leading member axis → (B, size).

        Parameters
        ----------
        blocks : mapping of str to array_like
            Exactly the layout's names, block k of shape ``(B, *shapes[k])`` with one B.
        out : ndarray, shape (B, size), optional
            Written in place and returned when given.

        Returns
        -------
        ndarray, shape (B, size)
            Row b is ``pack({k: v[b]})``.
        """
        if blocks.keys() != self.shapes.keys():
            missing = set(self.names) - set(blocks)
            extra = set(blocks) - set(self.names)
            raise ArgumentError(
                f"blocks must have exactly the names {list(self.names)}; "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        arrays = {k: np.asarray(blocks[k]) for k in self.names}
        first = arrays[self.names[0]]
        b = first.shape[0] if first.ndim > 0 else -1
        for k, shape in self.shapes.items():
            v = arrays[k]
            if v.shape != (b, *shape) or b < 1:
                raise ArgumentError(
                    f"block {k!r} must have shape (B, *{shape}) with the leading member axis "
                    f"B={b} of block {self.names[0]!r}, got {v.shape}")
        dtype = np.result_type(np.float64, *arrays.values())
        if out is None:
            out = np.empty((b, self.size), dtype=dtype)
        elif out.shape != (b, self.size):
            raise ArgumentError(f"out must have shape ({b}, {self.size}), got {out.shape}")
        for k, s in self.slices.items():
            # one strided copy per block: no loop over members
            out[:, s] = arrays[k].reshape(b, -1)
        return out

    def zeros(self, dtype: Any = np.float64) -> np.ndarray:
        """A zero vector of the layout's size."""
        return np.zeros(self.size, dtype=dtype)

    def block_norms(self, theta: np.ndarray) -> dict[str, float]:
        """Frobenius norm of every block of a real vector."""
        blocks = self.unpack(theta)
        return {k: float(np.sqrt(np.sum(v * v))) for k, v in blocks.items()}

    def to_json(self) -> list[list[Any]]:
        """A JSON-serialisable description: ``[[name, [dims...]], ...]``."""
        return [[k, list(v)] for k, v in self.shapes.items()]

    @classmethod
    def from_json(cls, data: Iterable[Any]) -> Layout:
        """Inverse of :meth:`to_json`."""
        return cls([(str(name), tuple(shape)) for name, shape in data])
