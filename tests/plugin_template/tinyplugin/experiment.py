"""The experiment ``tiny``: a short gradient flow of :mod:`tinyplugin.model`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradflow import Experiment, Trajectory, simulate
from gradflow.experiment import Outcome, Parameter, seed_parameter
from gradflow.trajectory import to_jsonable
from tinyplugin.model import LogisticRegression, make_dataset

PARAMETERS = (
    seed_parameter("seed", 0, "seed of the initialisation"),
    Parameter("t_end", 10.0, "horizon of the flow", positive=True),
)


def objective(config: dict[str, Any]) -> tuple[Any, Any]:
    """The objective ``gradflow check-grad`` checks, and θ0."""
    model = LogisticRegression()
    return model.objective(make_dataset()), model.init(config["seed"])


def train(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Integrate to ``t_end`` (saved as ``trajectory.npz`` by ``Experiment.run``)."""
    model, data = LogisticRegression(), make_dataset()
    traj = simulate(model.objective(data), model.init(config["seed"]), config["t_end"],
                    observables=model.observables(data), progress=progress, config=config)
    return Outcome(trajectories={"trajectory": traj})


def summarize(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    traj = outcome.trajectories["trajectory"]
    loss = traj.observables["loss"]
    return to_jsonable({"experiment": "tiny", "config": config,
                        "initial_loss": float(loss[0]), "final_loss": float(loss[-1]),
                        "solver": traj.stats})


def draw(out: Path) -> list[Path]:
    """A "figure" without matplotlib: the loss curve as text."""
    traj = Trajectory.load(Path(out) / "trajectory.npz")
    path = Path(out) / "loss.txt"
    path.write_text("".join(f"{t:g} {v:.6g}\n" for t, v in
                            zip(traj.t, traj.observables["loss"], strict=True)))
    return [path]


def report(summary: dict[str, Any]) -> list[str]:
    return [f"final loss {summary['final_loss']:.4g} (from {summary['initial_loss']:.4g})"]


EXPERIMENT = Experiment(name="tiny", description="logistic regression on four points in 2D",
                        parameters=PARAMETERS, objective=objective, train=train,
                        summarize=summarize, draw=draw, report=report)
