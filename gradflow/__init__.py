"""gradflow: continuous-time gradient flow of small transformers from closed-form gradients."""

from gradflow.errors import (
    ArgumentError,
    CheckpointError,
    GradflowError,
    InfeasibleError,
    NonFiniteError,
    SolverError,
)
from gradflow.events import Event
from gradflow.flow import METHODS, log_grid, simulate
from gradflow.gradcheck import GradientCheck, check_gradient, directional_derivative
from gradflow.layout import Layout
from gradflow.maxmargin import MaxMarginSolution, solve_max_margin
from gradflow.objective import ModelObjective, Objective
from gradflow.trajectory import Trajectory

__all__ = [
    "METHODS",
    "ArgumentError",
    "CheckpointError",
    "Event",
    "GradflowError",
    "GradientCheck",
    "InfeasibleError",
    "Layout",
    "MaxMarginSolution",
    "ModelObjective",
    "NonFiniteError",
    "Objective",
    "SolverError",
    "Trajectory",
    "check_gradient",
    "directional_derivative",
    "log_grid",
    "simulate",
    "solve_max_margin",
]
__version__ = "0.1.0"
