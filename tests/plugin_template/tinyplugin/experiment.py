"""The experiment ``tiny``: a short gradient flow of :mod:`tinyplugin.model`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradflow import Trajectory, simulate
from gradflow.experiments import Experiment
from gradflow.experiments.base import Parameter, seed_parameter, write_json
from gradflow.trajectory import to_jsonable
from tinyplugin.model import LogisticRegression, make_dataset

PARAMETERS = (
    seed_parameter("seed", 0, "seed of the initialisation"),
    Parameter("t_end", 10.0, "horizon of the flow", minimum=0.0),
)


def objective(config: dict[str, Any]) -> tuple[Any, Any]:
    """The objective ``gradflow check-grad`` checks, and θ0."""
    model = LogisticRegression()
    return model.objective(make_dataset()), model.init(config["seed"])


def run(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """Integrate to ``t_end``; write ``trajectory.npz`` and ``summary.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, data = LogisticRegression(), make_dataset()
    traj = simulate(model.objective(data), model.init(config["seed"]), config["t_end"],
                    observables=model.observables(data), progress=progress, config=config)
    traj.save(out / "trajectory.npz")
    loss = traj.observables["loss"]
    summary = to_jsonable({"experiment": "tiny", "config": config,
                           "initial_loss": float(loss[0]), "final_loss": float(loss[-1]),
                           "solver": traj.stats})
    write_json(out / "summary.json", summary)
    return summary


def plot(out: Path) -> list[Path]:
    """A "figure" without matplotlib: the loss curve as text."""
    traj = Trajectory.load(Path(out) / "trajectory.npz")
    path = Path(out) / "loss.txt"
    path.write_text("".join(f"{t:g} {v:.6g}\n" for t, v in
                            zip(traj.t, traj.observables["loss"], strict=True)))
    return [path]


def report(summary: dict[str, Any]) -> list[str]:
    return [f"final loss {summary['final_loss']:.4g} (from {summary['initial_loss']:.4g})"]


EXPERIMENT = Experiment(name="tiny", description="logistic regression on four points in 2D",
                        parameters=PARAMETERS, run=run, plot=plot, objective=objective,
                        report=report)
