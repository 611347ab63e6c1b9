"""The exceptions gradflow raises.

Every error gradflow raises on purpose is a :class:`GradflowError`. The subclasses say *what*
went wrong; each message names the argument or quantity and, for integration failures, the time
reached.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "GradflowError",
    "InfeasibleError",
    "NonFiniteError",
    "SolverError",
]


class GradflowError(Exception):
    """Base class of every error gradflow raises deliberately."""


class ArgumentError(GradflowError, ValueError):
    """A bad argument: wrong shape, type, range, or an impossible combination.

    Also a :class:`ValueError`, so code that already catches ``ValueError`` keeps working.
    """


class InfeasibleError(GradflowError):
    """A problem that has no solution, e.g. a max-margin problem on non-separable data."""


class CheckpointError(GradflowError):
    """A checkpoint or saved file that cannot be used: corrupt, foreign, or from another run."""


class _IntegrationError(GradflowError):
    """An integration that stopped early; carries the time reached and the partial trajectory.

    Attributes
    ----------
    t : float
        The time (in t, whatever the clock) at which integration stopped.
    trajectory : Trajectory or None
        What was recorded up to ``t``, with the last accepted state appended, so that no
        computed work is lost.
    """

    def __init__(self, message: str, *, t: float, trajectory: Any = None):
        super().__init__(message)
        self.t = t
        self.trajectory = trajectory


class NonFiniteError(_IntegrationError):
    """The state or its time derivative became NaN or infinite."""


class SolverError(_IntegrationError):
    """The ODE solver failed (for instance the step size fell below machine spacing)."""
