"""Check a closed-form gradient against the complex step and central differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.objective import Objective

__all__ = ["GradientCheck", "check_gradient", "directional_derivative"]

COMPLEX_STEP = 1e-30
"""Complex step size: no subtraction happens, so any tiny h is exact to rounding."""


@dataclass(frozen=True)
class GradientCheck:
    """Result of :func:`check_gradient`.

    Attributes
    ----------
    method : {"complex", "central"}
    block_errors : dict of str to float
        Per block, the largest relative error over directions supported on that block.
    overall_error : float
        The largest relative error over random directions in all of θ.
    max_rel_error : float
        ``max(overall_error, *block_errors.values())``.
    directions : list of dict
        One record per direction: ``block`` (or ``"*"``), ``analytic`` = ∇L·v, ``numeric``.
    """

    method: str
    block_errors: dict[str, float]
    overall_error: float
    directions: list[dict[str, Any]] = field(repr=False)

    @property
    def max_rel_error(self) -> float:
        return max(self.overall_error, *self.block_errors.values())

    def __str__(self) -> str:
        lines = [f"gradient check ({self.method}): max relative error {self.max_rel_error:.2e}"]
        lines += [f"  {name:>12s}: {err:.2e}" for name, err in self.block_errors.items()]
        lines.append(f"  {'all blocks':>12s}: {self.overall_error:.2e}")
        return "\n".join(lines)


def directional_derivative(
    objective: Objective,
    theta: np.ndarray,
    direction: np.ndarray,
    method: Literal["complex", "central"] = "complex",
    step: float | None = None,
) -> float:
    """The derivative of ``objective.value`` at ``theta`` along ``direction``.

    Parameters
    ----------
    objective : Objective
    theta, direction : ndarray, shape (P,)
    method : {"complex", "central"}
        ``"complex"``: ``Im L(θ + i h v)/h`` with h = 1e-30, exact to rounding for a
        real-analytic, complex-step-safe loss. ``"central"``:
        ``(L(θ + h v) − L(θ − h v))/(2h)``, error O(h²) plus round-off O(ε/h).
    step : float, optional
        ``h``; default 1e-30 (complex) or ``ε^{1/3}·max(1, ‖θ‖_∞)/‖v‖_∞`` (central).
    """
    if method == "complex":
        h = COMPLEX_STEP if step is None else step
        try:
            value = objective.value(theta + 1j * h * direction)
        except TypeError as exc:
            raise ArgumentError(
                f"objective.value does not accept complex input ({exc}); it is not "
                "complex-step safe: use gradflow.numerics"
            ) from exc
        return float(np.imag(value) / h)
    if method == "central":
        if step is None:
            scale = max(1.0, float(np.max(np.abs(theta))))
            step = np.finfo(float).eps ** (1 / 3) * scale / float(np.max(np.abs(direction)))
        plus = objective.value(theta + step * direction)
        minus = objective.value(theta - step * direction)
        return float(np.real(plus - minus) / (2 * step))
    raise ArgumentError(f"method must be 'complex' or 'central', got {method!r}")


def _relative_error(analytic: float, numeric: float) -> float:
    scale = max(abs(analytic), abs(numeric))
    return 0.0 if scale == 0.0 else abs(analytic - numeric) / scale


def check_gradient(
    objective: Objective,
    theta: np.ndarray,
    method: Literal["complex", "central"] = "complex",
    *,
    n_directions: int = 3,
    step: float | None = None,
    rng: Any = 0,
) -> GradientCheck:
    """Compare ``objective.gradient`` with numerical directional derivatives.

    For every block, ``n_directions`` random unit directions supported on that block, and
    ``n_directions`` random directions over all of θ, compare ``∇L(θ)·v`` with
    :func:`directional_derivative`. Directions supported on one block check that block even
    when its gradient is many orders of magnitude smaller than another block's.

    Parameters
    ----------
    objective : Objective
    theta : ndarray, shape (P,)
        Real point at which to check.
    method : {"complex", "central"}
    n_directions : int
    step : float, optional
        See :func:`directional_derivative`.
    rng : int or numpy.random.Generator
        Seeds the random directions.

    Returns
    -------
    GradientCheck
        Relative errors ``|a − n| / max(|a|, |n|)`` (0 when both are 0).
    """
    layout = objective.layout
    theta = np.asarray(layout.check_vector(theta), dtype=float)
    if not np.all(np.isfinite(theta)):
        raise ArgumentError("theta must be finite to check a gradient")
    if n_directions < 1:
        raise ArgumentError(f"n_directions must be >= 1, got {n_directions}")
    gen = np.random.default_rng(rng)
    grad = np.asarray(objective.gradient(theta))
    if grad.shape != (layout.size,):
        raise ArgumentError(
            f"objective.gradient returned shape {grad.shape}, expected ({layout.size},)"
        )
    supports = {name: layout.slices[name] for name in layout.names}
    supports["*"] = slice(0, layout.size)
    records: list[dict[str, Any]] = []
    for name, support in supports.items():
        for _ in range(n_directions):
            direction = np.zeros(layout.size)
            direction[support] = gen.standard_normal(support.stop - support.start)
            direction /= np.linalg.norm(direction)
            analytic = float(grad @ direction)
            numeric = directional_derivative(objective, theta, direction, method, step)
            records.append({"block": name, "analytic": analytic, "numeric": numeric,
                            "rel_error": _relative_error(analytic, numeric)})
    block_errors = {
        name: max(r["rel_error"] for r in records if r["block"] == name) for name in layout.names
    }
    overall = max(r["rel_error"] for r in records if r["block"] == "*")
    return GradientCheck(method, block_errors, overall, records)
