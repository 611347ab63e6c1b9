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
    "cross_entropy",
    "log_softmax",
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
    :func:`softmax`: the shift is the real part's maximum, a locally constant quantity. A slice
    that is entirely −inf (every entry masked) gives −inf, not NaN.
    """
    shift = np.max(x.real, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)  # an all −inf slice sums to 0: log 0 = −inf
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return np.squeeze(out, axis=axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax(x)`` along ``axis``; entries equal to −inf (masked) stay −inf.

    Prevents the underflow of ``log(softmax(x))``: a probability below 1e-308 becomes 0 and its
    log −inf, while ``x − logsumexp(x)`` keeps it finite. Complex-step safe like
    :func:`logsumexp`.
    """
    return x - np.expand_dims(logsumexp(x, axis=axis), axis)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``−log softmax(logits)[label]`` per row, without cancellation or overflow.

    ``logsumexp(u) − u_y`` cancels catastrophically once the row is well classified (both
    terms ≈ u_y while the loss is ≈ Σ_{c≠y} exp(u_c − u_y)); this returns
    ``log1p(Σ_{c≠y} exp(u_c − u_y))`` there, accurate down to the smallest positive double,
    and shifts by the largest ``u_c − u_y`` (real part, locally constant) when a row is
    misclassified, so nothing overflows. Complex-step safe.

    Parameters
    ----------
    logits : ndarray, shape (n, K), real or complex
    labels : ndarray of int, shape (n,)

    Returns
    -------
    ndarray, shape (n,)
    """
    rows = np.arange(logits.shape[0])
    v = logits - logits[rows, labels][:, None]
    off = np.ones(logits.shape, dtype=bool)
    off[rows, labels] = False
    v_off = np.where(off, v, -np.inf)
    shift = np.maximum(np.max(v_off.real, axis=1), 0.0)  # locally constant
    total = np.sum(np.exp(v_off - shift[:, None]), axis=1)
    return np.where(shift > 0, shift + np.log(np.exp(-shift) + total), np.log1p(total))


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
