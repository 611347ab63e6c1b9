"""Experiment ``icl_representations`` (Yang, Huang, Liang, Chi, NeurIPS 2024): linear
convergence of the loss, ridge regression on the representations, and the number of heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.experiment import (
    Experiment,
    Outcome,
    Parameter,
    check_memory,
    seed_parameter,
    solver_options,
    solver_parameters,
)
from gradflow.papers.representation_icl import protocol, theory
from gradflow.papers.representation_icl.data import make_task
from gradflow.papers.representation_icl.model import RepresentationTransformer
from gradflow.trajectory import to_jsonable

__all__ = ["ICL_REPRESENTATIONS"]


def train(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """The YHLC flow for each head count H, and ridge regression on fresh tasks."""
    task = make_task(config["d"], config["K"], config["N"], config["m"], config["tau"],
                     rng=config["seed"])
    runs = {H: protocol.head_flow(task, H, config["T"], gamma=config["gamma"],
                                  rng=config["seed"], progress=progress,
                                  **solver_options(config))
            for H in config["H_values"]}
    ridge_test = theory.ridge_test_errors(task, np.random.default_rng(config["seed"] + 1))
    return Outcome(trajectories={f"heads_{H}": traj for H, traj in runs.items()},
                   context={"runs": runs, "ridge_test": ridge_test})


def summarize(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Final gaps, their fitted linear rates, and the ridge errors."""
    runs = outcome.context["runs"]
    rates = {}
    for H, traj in runs.items():
        gap = traj.observables["gap"]
        usable = (traj.t > 0.05 * config["T"]) & (gap > 1e-24)
        rates[str(H)] = (float(np.polyfit(traj.t[usable], np.log(gap[usable]), 1)[0])
                         if usable.sum() >= 3 else None)
    return to_jsonable({
        "experiment": "icl_representations", "config": config,
        "final_gap": {str(H): r.observables["gap"][-1] for H, r in runs.items()},
        "fitted_log_gap_rate": rates,
        "ridge_error_final": {str(H): r.observables["ridge_error"][-1] for H, r in runs.items()},
        "ridge_error_ood_final": {str(H): r.observables["ridge_error_ood"][-1]
                                  for H, r in runs.items()},
        "ridge_test_mse_unseen_tokens": outcome.context["ridge_test"],
    })


def _check_representations(config: dict[str, Any]) -> None:
    d, K, N, m = config["d"], config["K"], config["N"], config["m"]
    if not N < K:
        raise ArgumentError(f"parameter 'N': the prompt holds N < K of the K={K} tokens, got "
                            f"N={N}")
    H = max(config["H_values"])
    state = H * (d * d + K)
    check_memory([
        ("the solver's Jacobian (LSODA, for the most heads)", 8.0 * 3 * state * state,
         ("H_values", "d", "K")),
        ("the attention of every head, token and prompt position, with its gradient",
         8.0 * 6 * H * K * N, ("H_values", "K", "N")),
        ("the ridge references (2000 test tasks over K tokens, 200 per observable)",
         8.0 * (3 * 2000 * m * K + 4 * 200 * m * N), ("m", "K", "N")),
        ("the dictionary and its features", 8.0 * 4 * (d + m) * K, ("d", "m", "K")),
    ])


ICL_REPRESENTATIONS = Experiment(
    name="icl_representations",
    description="ICL with representations (Yang, Huang, Liang, Chi, NeurIPS 2024): linear "
                "convergence, ridge regression, the number of heads",
    parameters=(
        Parameter("d", 6, "token dimension", minimum=1, maximum=10_000),
        Parameter("K", 12, "dictionary size", minimum=2, maximum=1_000_000),
        Parameter("N", 4, "prompt length (< K)", minimum=1, maximum=1_000_000),
        Parameter("m", 5, "representation dimension", minimum=1, maximum=1_000_000),
        Parameter("tau", 0.1, "label-noise variance", positive=True),
        Parameter("H_values", (2, 4, 5, 8), "head counts to compare", minimum=1,
                  maximum=10_000),
        Parameter("gamma", 1.0, "w's rate is γ²", minimum=0.0),
        seed_parameter("seed", 0, "seed of the dictionary and init"),
        Parameter("T", 1000.0, "horizon", positive=True),
        *solver_parameters(**protocol.SOLVER),
    ),
    train=train, summarize=summarize, draw="gradflow.papers.representation_icl.figures",
    objective=lambda c: (RepresentationTransformer(c["d"], c["K"], c["H_values"][0]).objective(
        make_task(c["d"], c["K"], c["N"], c["m"], c["tau"], rng=c["seed"])),
        RepresentationTransformer(c["d"], c["K"], c["H_values"][0]).init(rng=c["seed"])),
    report=lambda s: [f"final gap by H: {s['final_gap']}",
                      f"fitted log-gap rate by H: {s['fitted_log_gap_rate']}",
                      f"ridge test MSE on unseen tokens: {s['ridge_test_mse_unseen_tokens']}"],
    checks=lambda c: _check_representations(c),
)
