"""Numerically safe building blocks, all safe for complex-step differentiation.

Every function here is real-analytic in its input away from measure-zero branch points, takes
float or complex arrays, and never uses ``abs``, ``maximum``, ``.conj()`` or a value-dependent
branch on the differentiated path: a branch (a shift, a choice of formula) depends only on the
*real part* and is therefore locally constant, so it carries no derivative and the complex step
``Im f(x + ih)/h`` stays exact. Each docstring names the failure it prevents.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "logistic_loss",
    "logsumexp",
    "scatter_add",
    "sigmoid",
    "softmax",
]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``.

    Prevents overflow of ``exp`` for large scores by shifting with the real part's maximum
    (``c = x.real.max(axis)``). Unlike a shift by ``x.max()`` or ``np.abs``, the shift is
    locally constant, so the complex step through this function stays exact.

    Parameters
    ----------
    x : ndarray, real or complex
    axis : int

    Returns
    -------
    ndarray, same shape and dtype kind as ``x``; sums to one along ``axis``.
    """
    shift = np.max(x.real, axis=axis, keepdims=True)
    e = np.exp(x - shift)
    return e / np.sum(e, axis=axis, keepdims=True)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log Σ exp(x)`` along ``axis`` without overflow, complex-step safe.

    Prevents overflow (and the ``inf - inf`` NaN it causes in cross-entropies) the same way as
    :func:`softmax`: the shift is the real part's maximum, a locally constant quantity.
    """
    shift = np.max(x.real, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return np.squeeze(out, axis=axis)


def _positive_side(x: np.ndarray) -> np.ndarray:
    """+1 where ``x.real >= 0``, −1 elsewhere: a locally constant sign (no derivative)."""
    return np.where(np.real(x) >= 0, 1.0, -1.0)


def logistic_loss(margin: np.ndarray) -> np.ndarray:
    """The logistic loss ``ℓ(x) = log(1 + exp(−x))``, elementwise.

    Prevents two failures of the naive formula: overflow of ``exp(−x)`` for very negative
    margins (``log(1 + inf) = inf``) and the total loss of precision ``log(1 + tiny) = 0`` for
    large margins, where the true value ``≈ exp(−x)`` is what a max-margin analysis needs. It
    uses ``log1p(exp(−|x|)) + max(−x, 0)`` with ``|x|`` and ``max`` replaced by a sign taken from
    the real part, so the complex step stays exact.

    Parameters
    ----------
    margin : ndarray, real or complex
        ``y·F``.

    Returns
    -------
    ndarray, same shape.
    """
    margin = np.asarray(margin)
    side = _positive_side(margin)
    e = np.exp(-side * margin)  # |e| <= 1: never overflows
    return np.log1p(e) + np.where(side > 0, 0.0, -margin)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1/(1 + exp(−x))``, elementwise.

    Prevents overflow of ``exp(−x)`` for very negative ``x`` (and the resulting warning and
    ``0·inf`` NaNs downstream): the exponent is always ``−|x|`` with ``|x|`` taken through the
    real part's sign, which keeps the function complex-step safe. Used for the logistic
    gradient weight ``g = −ℓ'(x) = sigmoid(−x)``.
    """
    x = np.asarray(x)
    side = _positive_side(x)
    e = np.exp(-side * x)
    return np.where(side > 0, 1.0, e) / (1.0 + e)


def scatter_add(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """``out[index[k]] += weights[k]`` for all k, as one ``np.bincount``.

    Prevents two problems: fancy-index ``out[index] += w`` silently drops repeated indices, and
    ``np.add.at`` is several times slower than ``bincount``. ``np.bincount`` rejects complex
    weights, so complex input is scattered as real and imaginary parts (complex-step safe).

    Parameters
    ----------
    index : ndarray of int, any shape
        Target positions in ``[0, size)``.
    weights : ndarray, same shape as ``index``, real or complex
    size : int

    Returns
    -------
    ndarray, shape (size,)
    """
    index = index.ravel()
    weights = weights.ravel()
    if np.iscomplexobj(weights):
        real = np.bincount(index, weights=weights.real, minlength=size)
        imag = np.bincount(index, weights=weights.imag, minlength=size)
        return real + 1j * imag
    return np.bincount(index, weights=weights, minlength=size)
