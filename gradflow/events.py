"""Named zero-crossing events of the parameter vector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradflow.errors import ArgumentError

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """A named zero crossing of a scalar function of θ, located during :func:`simulate`.

    Parameters
    ----------
    name : str
        Key of the crossing times in ``Trajectory.events``.
    function : callable θ -> float
        Continuous along the trajectory; a crossing is a sign change between two accepted
        solver steps, refined by Brent's method on the solver's dense output. Several
        crossings inside one step can be missed (only sign changes are seen).
    terminal : bool
        Stop the integration at the first crossing.
    direction : {0, 1, -1}
        Report only rising (+1) or falling (−1) crossings; 0 reports both.
    """

    name: str
    function: Callable[[np.ndarray], float]
    terminal: bool = False
    direction: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ArgumentError(f"Event name must be a non-empty string, got {self.name!r}")
        if not callable(self.function):
            raise ArgumentError(f"Event {self.name!r}: function must be callable")
        if self.direction not in (-1, 0, 1):
            raise ArgumentError(
                f"Event {self.name!r}: direction must be -1, 0 or 1, got {self.direction!r}"
            )

    def crosses(self, before: float, after: float) -> bool:
        """Whether the values at two consecutive steps bracket a crossing of this direction."""
        if self.direction >= 0 and before < 0 <= after:
            return True
        return self.direction <= 0 and before > 0 >= after
