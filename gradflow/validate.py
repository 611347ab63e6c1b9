"""Argument checks shared by the models: integers and random generators, each refused with an
:class:`~gradflow.errors.ArgumentError` naming the argument (never a raw ``TypeError`` from
``int(nan)`` or ``default_rng("x")``, never a silent truncation of 2.5 to 2)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError

__all__ = ["generator", "integer", "integer_array"]


def integer(value: Any, name: str, minimum: int = 1, why: str = "") -> int:
    """``value`` as an int: an integer, or a float with an integer value, at least ``minimum``.

    Raises
    ------
    ArgumentError
        ``"{name} must be an integer >= {minimum}{why}, got {value!r}"`` for a boolean, a
        string, NaN, ±inf, a fraction or a smaller value.
    """
    converted = None
    if not isinstance(value, bool | np.bool_):
        if isinstance(value, numbers.Integral):
            converted = int(value)
        elif isinstance(value, numbers.Real) and float(value).is_integer():
            converted = int(value)
    if converted is None or converted < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}{why}, got {value!r}")
    return converted


def integer_array(values: Any, name: str) -> np.ndarray:
    """``values`` as an int64 array, refusing booleans, strings and non-integral numbers (1.5
    would otherwise become 1).

    Raises
    ------
    ArgumentError
        Naming ``name`` and the first offending value.
    """
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = np.asarray(values, dtype=object)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        bad = ~(np.isfinite(array) & (array == np.round(array)))
        if not bad.any():
            return array.astype(np.int64)
        raise ArgumentError(f"{name} must be integers, got {array[bad].flat[0].item()!r}")
    if array.size == 0 and array.dtype.kind in "fO":
        return array.astype(np.int64)
    raise ArgumentError(f"{name} must be integers, got {values!r}")


def generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """``numpy.random.default_rng(rng)``, naming the argument when it is not a seed.

    Raises
    ------
    ArgumentError
        Unless ``rng`` is None, a non-negative integer (or a sequence of them), a
        ``SeedSequence``, a ``BitGenerator`` or a ``Generator``.
    """
    message = (f"{name} must be None, a non-negative integer seed or a numpy.random.Generator, "
               f"got {rng!r}")
    if isinstance(rng, bool | np.bool_ | str | bytes):  # default_rng(True) seeds with 1
        raise ArgumentError(message)
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(message) from exc
