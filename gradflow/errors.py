"""The exceptions gradflow raises.

Every error gradflow raises on purpose is a :class:`GradflowError`. The subclasses say *what*
went wrong; each message names the argument or quantity and, for integration failures, the time
reached.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArgumentError",
    "BlowUpError",
    "BudgetExceededError",
    "CheckpointError",
    "GradflowError",
    "GradientUnderflowError",
    "InfeasibleError",
    "NonFiniteError",
    "ObservableError",
    "SolverError",
    "StallError",
    "StiffnessError",
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


class ObservableError(_IntegrationError):
    """An observable or event function raised, or returned a value that cannot be recorded
    (not numeric, or a shape other than the one it had at the first record time)."""


class SolverError(_IntegrationError):
    """The ODE solver failed (for instance the step size fell below machine spacing).

    The subclasses name *why* an integration ended early; every one carries ``.t`` and the
    partial ``.trajectory`` (saved as ``partial.npz`` when checkpointing).
    """


class BudgetExceededError(SolverError):
    """The work limit of :func:`gradflow.simulate` ran out before ``t_end``.

    Attributes
    ----------
    budget : {"max_nfev", "max_wall_time"}
        Which limit was reached.
    """

    def __init__(self, message: str, *, t: float, trajectory: Any = None, budget: str = ""):
        super().__init__(message, t=t, trajectory=trajectory)
        self.budget = budget


class StiffnessError(BudgetExceededError):
    """The budget ran out while an explicit method was taking steps at its stability limit:
    the flow is stiff, and an implicit method (or ``method="auto"``) is needed."""


class StallError(SolverError):
    """The solver stopped advancing: accepted steps that no longer move t."""


class BlowUpError(SolverError):
    """The state grows without bound as t approaches a finite time (a finite-time blow-up),
    and the solver cannot step past it."""


class GradientUnderflowError(SolverError):
    """A normalised flow's gradient underflowed: its direction is no longer represented in
    float64, and dividing a zero (or subnormal) vector by its norm would freeze the flow.

    The remedy is the scaled-gradient hook (``Model.scaled_grad``, ``Objective.
    scaled_gradient``): return the gradient with its largest exponential factored out.

    Attributes
    ----------
    block : str
        The block (``"block"`` normalisation) or ``"*"`` (``"global"``) that underflowed.
    """

    def __init__(self, message: str, *, t: float, trajectory: Any = None, block: str = ""):
        super().__init__(message, t=t, trajectory=trajectory)
        self.block = block
