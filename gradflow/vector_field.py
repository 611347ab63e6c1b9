"""The right-hand side of the flow: clock, per-block rates (piecewise in t) and normalisation."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.objective import Objective, ScaledObjective

__all__ = [
    "UNDERFLOW_NORM",
    "Clock",
    "GradientUnderflow",
    "RateSchedule",
    "VectorField",
]

Normalize = Literal["global", "block"] | None

UNDERFLOW_NORM = float(np.finfo(float).tiny / np.finfo(float).eps)
"""≈ 1.0e-292. A normalised block's gradient with a smaller norm has lost its direction:
the entries that carry its last digits (≈ ε·norm) lie in the subnormal range, where float64
keeps fewer than 53 bits, and at 0 the direction is gone."""


def _norm(v: np.ndarray) -> float:
    """‖v‖₂ without underflow: ``sqrt(v @ v)`` is 0 once the entries fall below ~1e-154
    (their squares underflow), long before the vector itself loses its direction."""
    top = float(np.max(np.abs(v))) if v.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return top
    u = v / top
    return top * float(np.sqrt(u @ u))


class GradientUnderflow(Exception):
    """Raised inside the right-hand side when a normalised block's gradient underflowed;
    :func:`gradflow.simulate` turns it into :class:`~gradflow.errors.GradientUnderflowError`
    with the time and the partial trajectory."""

    def __init__(self, block: str, norm: float, loss: float):
        super().__init__(block, norm, loss)
        self.block, self.norm, self.loss = block, norm, loss


@dataclass(frozen=True)
class Clock:
    """The integration variable τ: ``"linear"`` (τ = t) or ``"log"`` (τ = log(1+t)).

    In the log clock dθ/dτ = (1+t)·dθ/dt, which makes the late, 1/t-slow dynamics of
    logistic-type losses look stationary. Every time gradflow reports is in t.
    """

    name: Literal["linear", "log"]

    def __post_init__(self) -> None:
        if self.name not in ("linear", "log"):
            raise ArgumentError(f"clock must be 'linear' or 'log', got {self.name!r}")

    def tau(self, t: Any) -> Any:
        return t if self.name == "linear" else np.log1p(t)

    def t(self, tau: Any) -> Any:
        return tau if self.name == "linear" else np.expm1(tau)

    def dt_dtau(self, tau: float) -> float:
        return 1.0 if self.name == "linear" else float(np.exp(tau))


class RateSchedule:
    """Per-block rate multipliers, each constant or piecewise constant in t.

    Parameters
    ----------
    rates : mapping of block name to float or sequence of (t_from, value), optional
        ``{"W_V": 0.0}`` freezes W_V; ``{"W": [(0, 1.0), (10, 0.0)]}`` trains W until t = 10
        and freezes it afterwards. A piecewise rate's first ``t_from`` must be ≤ the start
        time. Blocks not named have rate 1. Rates must be finite and ≥ 0.
    layout : Layout

    Notes
    -----
    The flow is integrated piece by piece between the breakpoints, so no solver step straddles
    a jump of the right-hand side.
    """

    def __init__(self, rates: Mapping[str, Any] | None, layout: Layout):
        self.layout = layout
        self.pieces: dict[str, list[tuple[float, float]]] = {}
        for name, spec in (rates or {}).items():
            if name not in layout.shapes:
                raise ArgumentError(
                    f"rates names unknown block {name!r}; the layout has {list(layout.names)}"
                )
            self.pieces[name] = self._parse(name, spec)

    @staticmethod
    def _parse(name: str, spec: Any) -> list[tuple[float, float]]:
        if isinstance(spec, int | float | np.number):
            pieces = [(-np.inf, float(spec))]
        elif isinstance(spec, Sequence) and spec and all(
            isinstance(p, Sequence) and len(p) == 2 for p in spec
        ):
            pieces = [(float(t), float(v)) for t, v in spec]
            starts = [t for t, _ in pieces]
            if any(b <= a for a, b in itertools.pairwise(starts)):
                raise ArgumentError(
                    f"rates[{name!r}]: breakpoints must increase strictly, got {starts}"
                )
        else:
            raise ArgumentError(
                f"rates[{name!r}] must be a number or a list of (t_from, value) pairs, "
                f"got {spec!r}"
            )
        for _, value in pieces:
            if not np.isfinite(value) or value < 0:
                raise ArgumentError(f"rates[{name!r}] values must be finite and >= 0, got {value}")
        return pieces

    def breakpoints(self, t_start: float, t_end: float) -> list[float]:
        """Times in (t_start, t_end) where some rate jumps."""
        for name, pieces in self.pieces.items():
            if pieces[0][0] > t_start:
                raise ArgumentError(
                    f"rates[{name!r}] starts at t={pieces[0][0]:g}, after the start time "
                    f"{t_start:g}: give its value from the start"
                )
        points = {t for p in self.pieces.values() for t, _ in p if t_start < t < t_end}
        return sorted(points)

    def at(self, t: float) -> dict[str, float]:
        """Rate of every named block in force at time t (right-continuous)."""
        out = {}
        for name, pieces in self.pieces.items():
            out[name] = [v for start, v in pieces if start <= t][-1]
        return out

    def to_json(self) -> dict[str, Any]:
        return {k: [[t, v] for t, v in p] for k, p in self.pieces.items()}


class VectorField:
    """``dθ/dτ = −(dt/dτ)·R·P(∇L)`` for one piece of constant rates.

    Parameters
    ----------
    objective : Objective
    clock : Clock
    rates : dict of block name to float
        Rates in force on this piece (missing blocks: 1).
    normalize : {None, "global", "block"}
        ``"block"``: each block's gradient is divided by its own norm (dW/dt = −∇_W L/‖∇_W L‖);
        ``"global"``: the gradient over the blocks with non-zero rate is divided by its norm.
        Rates multiply after normalising.

    Notes
    -----
    A normalised unit (a block, or all trained blocks) whose gradient norm is below
    :data:`UNDERFLOW_NORM` raises :class:`GradientUnderflow`: its direction is lost, and
    dividing by the norm would freeze the flow while the solver reports success. The one
    exception is a gradient that is *exactly* zero while the loss is an ordinary number
    (|L| ≥ UNDERFLOW_NORM): a stationary point of that unit (e.g. a block that a symmetric
    initialisation leaves at zero), which stays put. Objectives that are a
    :class:`~gradflow.objective.ScaledObjective` are evaluated through ``scaled_gradient``
    under normalisation, so their direction survives where the plain gradient underflows.
    """

    def __init__(
        self, objective: Objective, clock: Clock, rates: dict[str, float], normalize: Normalize
    ):
        if normalize not in (None, "global", "block"):
            raise ArgumentError(f"normalize must be None, 'global' or 'block', got {normalize!r}")
        layout = objective.layout
        self.objective = objective
        self.clock = clock
        self.normalize = normalize
        self.block_slices = list(layout.slices.values())
        if any(v != 1.0 for v in rates.values()):
            self.rate = np.ones(layout.size)
            for name, value in rates.items():
                self.rate[layout.slices[name]] = value
        else:
            self.rate = None
        self.active_names = [k for k in layout.names if rates.get(k, 1.0) > 0]
        self.underflow: GradientUnderflow | None = None  # a trial point's lost direction
        self.active = [layout.slices[k] for k in self.active_names]

    def _scaled_gradient(self, theta: np.ndarray) -> np.ndarray:
        """The gradient up to one positive factor per block (exact when the objective is no
        :class:`ScaledObjective`); normalisation removes the factors. Under ``"global"`` the
        blocks are rescaled to one common factor."""
        if not isinstance(self.objective, ScaledObjective):
            return np.array(self.objective.gradient(theta), dtype=float)
        g, log_scales = self.objective.scaled_gradient(theta)
        g = np.array(g, dtype=float)
        if self.normalize == "global":  # one common factor: rescale blocks to the largest
            top = max((float(log_scales[k]) for k in self.active_names), default=0.0)
            top = top if np.isfinite(top) else 0.0
            names = self.objective.layout.names
            for name, s in zip(names, self.block_slices, strict=True):
                g[s] *= np.exp(float(log_scales[name]) - top)
        return g

    def direction(self, theta: np.ndarray, strict: bool = False) -> np.ndarray:
        """``R·P(∇L(θ))`` (the descent direction before the sign and the clock factor).

        A lost direction (see the class notes) raises :class:`GradientUnderflow` when
        ``strict``; otherwise it is remembered in :attr:`underflow` and the unnormalised
        vector is returned: the solver's trial points may lie far ahead of the flow (implicit
        steps grow ∝ t), and only an *accepted* state that underflows ends the run
        (:meth:`check_state`)."""
        if self.normalize is None:
            g = np.array(self.objective.gradient(theta), dtype=float)
        else:
            g = self._scaled_gradient(theta)
        if self.normalize == "block":
            for name, s in zip(self.objective.layout.names, self.block_slices, strict=True):
                norm = _norm(g[s])
                if s in self.active:
                    self._check_resolved(name, norm, theta, strict)
                if norm > 0:
                    g[s] /= norm
        elif self.normalize == "global":
            if len(self.active) == len(self.block_slices):
                norm = _norm(g)
            else:
                norm = _norm(np.concatenate([g[s] for s in self.active])) if self.active else 0.0
            if self.active:
                self._check_resolved("*", norm, theta, strict)
            if norm > 0:
                g /= norm
        if self.rate is not None:
            g *= self.rate
        return g

    def _check_resolved(self, block: str, norm: float, theta: np.ndarray,
                        strict: bool) -> None:
        """Raise (``strict``) or remember :class:`GradientUnderflow` when a normalised unit's
        direction is lost: its (scaled) norm below :data:`UNDERFLOW_NORM` — except an exact
        zero at an ordinary loss value, a stationary unit (see the class notes). Only the
        scaled norm is judged: only the model knows how precisely it computes an
        exponentially small gradient."""
        if norm < UNDERFLOW_NORM:
            if norm == 0.0:
                loss = float(np.real(self.objective.value(theta)))
                if abs(loss) >= UNDERFLOW_NORM:
                    return
            else:
                loss = float("nan")  # not needed: a subnormal norm is an underflow whatever L is
            exc = GradientUnderflow(block, float(norm), loss)
            if strict:
                raise exc
            if self.underflow is None:
                self.underflow = exc

    def check_state(self, theta: np.ndarray) -> None:
        """Raise :class:`GradientUnderflow` if the direction at ``theta`` is lost; forget
        trial points that underflowed before."""
        self.underflow = None
        self.direction(theta, strict=True)

    def __call__(self, tau: float, theta: np.ndarray) -> np.ndarray:
        g = self.direction(theta)
        g *= -self.clock.dt_dtau(tau)
        return g
