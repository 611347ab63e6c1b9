"""gradflow: continuous-time gradient flow of small transformers from closed-form gradients."""

from gradflow.ensemble import EnsembleTrajectory, simulate_ensemble
from gradflow.errors import (
    ArgumentError,
    BlowUpError,
    BudgetExceededError,
    CheckpointError,
    GradflowError,
    GradientUnderflowError,
    InfeasibleError,
    NonFiniteError,
    ObservableError,
    SolverError,
    StallError,
    StiffnessError,
)
from gradflow.events import Event
from gradflow.experiment import Experiment
from gradflow.flow import METHODS, log_grid, simulate
from gradflow.gradcheck import GradientCheck, check_gradient, directional_derivative
from gradflow.layout import Layout
from gradflow.maxmargin import MaxMarginSolution, solve_max_margin
from gradflow.model import Model, ModelObjective
from gradflow.objective import Objective, ScaledObjective
from gradflow.trajectory import Trajectory

__all__ = [
    "METHODS",
    "ArgumentError",
    "BlowUpError",
    "BudgetExceededError",
    "CheckpointError",
    "EnsembleTrajectory",
    "Event",
    "Experiment",
    "GradflowError",
    "GradientCheck",
    "GradientUnderflowError",
    "InfeasibleError",
    "Layout",
    "MaxMarginSolution",
    "Model",
    "ModelObjective",
    "NonFiniteError",
    "Objective",
    "ObservableError",
    "ScaledObjective",
    "SolverError",
    "StallError",
    "StiffnessError",
    "Trajectory",
    "check_gradient",
    "directional_derivative",
    "log_grid",
    "simulate",
    "simulate_ensemble",
    "solve_max_margin",
]
__version__ = "0.1.0"
