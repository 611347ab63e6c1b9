"""Predictions of Huang, Cheng, Liang (ICML 2024) for softmax attention on a finite feature
dictionary: on balanced features Phase I (attention on the query's own feature reaching ½) lasts
a time of order K² (the paper's Phase I; ``docs/derivations/softmax_icl.md``)."""

from __future__ import annotations

import numpy as np

from gradflow.errors import ArgumentError

__all__ = ["fit_K_squared"]


def fit_K_squared(K: np.ndarray, times: np.ndarray) -> dict[str, float]:
    """Least-squares c in T ≈ c·K², and the free log-log exponent of T against K.

    Raises
    ------
    ArgumentError
        Fewer than 2 distinct K with a positive finite time: a line through one point (or
        through repeats of it) is not a fit.
    """
    K = np.asarray(K, dtype=float)
    times = np.asarray(times, dtype=float)
    if K.shape != times.shape or K.ndim != 1:
        raise ArgumentError(f"K and times must be vectors of one length, got shapes {K.shape} "
                            f"and {times.shape}")
    usable = np.isfinite(K) & (K > 0) & np.isfinite(times) & (times > 0)
    if np.unique(K[usable]).size < 2:
        raise ArgumentError(
            f"a power-law fit needs at least 2 distinct K with a positive finite time, got "
            f"K = {K.tolist()}, times = {times.tolist()}"
        )
    K, times = K[usable], times[usable]
    c = float(np.sum(times * K**2) / np.sum(K**4))
    exponent = float(np.polyfit(np.log(K), np.log(times), 1)[0])
    return {"c": c, "exponent": exponent}
