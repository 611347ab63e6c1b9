"""Experiment ``cooccurrence``: paper Figure 1 (Yang, Kailkhura, Wang, Liang, NeurIPS 2024) and
the checks of its theorems along one gradient-flow trajectory."""

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
    ensemble_solver_options,
    log_records,
    non_finite_line,
    non_finite_observables,
    seed_parameter,
    solver_options,
    solver_parameters,
)
from gradflow.papers.cooccurrence import protocol, theory
from gradflow.papers.cooccurrence.data import make_dataset
from gradflow.papers.cooccurrence.model import CooccurrenceTransformer
from gradflow.trajectory import to_jsonable

__all__ = ["EXPERIMENT", "build", "summarize"]

PARAMETERS = (
    Parameter("d", 64, "vocabulary / embedding size", minimum=4, maximum=100_000),
    Parameter("L", 5, "sequence length", minimum=3, maximum=10_000),
    Parameter("counts", (30, 10, 10, 10), "samples of types 1..4", minimum=0,
              maximum=10_000_000),
    Parameter("m", 128, "attention width", minimum=1, maximum=100_000),
    Parameter("m1", 256, "MLP hidden width", minimum=1, maximum=1_000_000),
    Parameter("random_tokens", "replace", "random-token sampling (the paper's experiment "
              "draws with replacement; 'distinct' is the theory's Assumption 2.3(ii))",
              choices=("replace", "distinct")),
    Parameter("init", "theory", "initialisation preset ('theory' is Condition 1's scale; the "
              "paper's experiment says only 'Kaiming')",
              choices=("theory", "kaiming_normal", "kaiming_uniform")),
    Parameter("s0_mult", 1.0, "theory init: σ0 = s0_mult/√(L m)", minimum=0.0),
    Parameter("s1_mult", 0.1, "theory init: σ1 = s1_mult/√m1 (0.1 keeps |F(0)| ≪ 1 as Lemma "
              "D.8 requires)", minimum=0.0),
    Parameter("reduced", False, "integrate the exact reduced flow in v = Wᵀa/√m1"),
    seed_parameter("data_seed", 0, "seed of the training set"),
    seed_parameter("model_seed", 0, "seed of the fixed output signs a"),
    seed_parameter("init_seed", 1, "seed of the initial weights"),
    Parameter("t_end", 1e8, "horizon of the flow", positive=True),
    Parameter("per_decade", 20, "record points per decade of t", minimum=1,
              maximum=10_000),
    Parameter("store_theta", False, "store θ at every record time (57k floats each at the "
              "paper's size)"),
    Parameter("checkpoint", False, "checkpoint into OUT/checkpoint and resume from it"),
    *solver_parameters(**protocol.SOLVER, methods=("RK45", "RK23", "DOP853")),
)


SOLVER_COPIES = {"RK23": 8, "RK45": 11, "DOP853": 17}
"""State-sized arrays an explicit solver holds (its stages, y, f and the error estimate)."""


def memory_parts(config: dict[str, Any]) -> list[tuple[str, float, tuple[str, ...]]]:
    """The large allocations of a run (for :func:`~gradflow.experiment.check_memory`)."""
    d, L, m, m1 = config["d"], config["L"], config["m"], config["m1"]
    n = sum(config["counts"])
    state = 3 * m * d + (m if config["reduced"] else m1 * m)
    records = log_records(config["t_end"], config["per_decade"],
                          extra=101 + len(protocol.REPORT_TIMES))
    # per sample: X and its tokens; scores, attention and ∂F/∂S (×3 copies) per query-key
    # pair and the pair index; queries and keys on the dense path
    per_sample = L * d + 8 * L * L + 3 * L * m
    parts = [
        ("θ, the gradient, its outer products and the solver's stages",
         8.0 * (SOLVER_COPIES[config["method"]] + 4) * state, ("d", "m", "m1")),
        ("the training set, its attention scores and their gradient", 8.0 * n * per_sample,
         ("counts", "L", "d", "m")),
        ("the token-pair matrix W_Kᵀ W_Q and its gradient", 8.0 * 3 * d * d, ("d",)),
        ("the recorded observables", 8.0 * records * 40, ("per_decade", "t_end")),
    ]
    if config["store_theta"]:
        parts.append(("the recorded states (store_theta)", 8.0 * records * state,
                      ("store_theta", "per_decade", "d", "m", "m1")))
    return parts


def _check_config(config: dict[str, Any]) -> None:
    if sum(config["counts"]) == 0:
        raise ArgumentError("parameter 'counts': needs at least one sample")
    if config["random_tokens"] == "distinct":
        L, counts = config["L"], config["counts"]
        needed = counts[0] * (L - 3) + (counts[1] + counts[2]) * (L - 2) + counts[3] * (L - 1)
        if config["d"] - 3 < needed:
            raise ArgumentError(
                f"parameter 'd': random_tokens='distinct' needs d >= {needed + 3} for "
                f"counts={counts} and L={L}, got d={config['d']}"
            )
    check_memory(memory_parts(config))


def build(config: dict[str, Any]):
    """The dataset, model and initial θ of a validated config."""
    data = make_dataset(config["d"], config["L"], config["counts"], config["data_seed"],
                        random_tokens=config["random_tokens"])
    model = CooccurrenceTransformer(config["d"], config["m"], config["m1"], L=config["L"],
                                    rng=config["model_seed"], reduced=config["reduced"])
    theta0 = model.init(config["init_seed"], config["init"], s0_mult=config["s0_mult"],
                        s1_mult=config["s1_mult"])
    return data, model, theta0


def _objective(config: dict[str, Any]):
    data, model, theta0 = build(config)
    return model.objective(data), theta0


def train(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """The paper's flow (:func:`protocol.flow`) on the config's dataset and initialisation."""
    data, model, theta0 = build(config)
    traj = protocol.flow(
        model, data, theta0, config["t_end"], per_decade=config["per_decade"],
        store_theta=config["store_theta"],
        checkpoint=out / "checkpoint" if config["checkpoint"] else None,
        progress=progress, config={"experiment": "cooccurrence", **config},
        **solver_options(config),
    )
    return Outcome(trajectories={"trajectory": traj})


def train_ensemble(configs: list[dict[str, Any]], outs: list[Path], progress: bool = False
                   ) -> list[Outcome | Exception]:
    """:func:`train` of configs that differ only in their seeds, as one ensemble
    (:func:`protocol.flow_ensemble`): per config its Outcome, or the error its flow ended
    with."""
    built = [build(c) for c in configs]
    config = configs[0]
    results = protocol.flow_ensemble(
        [m for _, m, _ in built], [d for d, _, _ in built], np.stack([t for _, _, t in built]),
        config["t_end"], per_decade=config["per_decade"], store_theta=config["store_theta"],
        progress=progress, configs=[{"experiment": "cooccurrence", **c} for c in configs],
        **ensemble_solver_options(configs))
    return [r if isinstance(r, Exception) else Outcome(trajectories={"trajectory": r})
            for r in results]


def summarize(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """The run's summary: Phase-1 end, losses at the report times, final ratios, checks."""
    traj = outcome.trajectories["trajectory"]
    obs = traj.observables
    t1 = traj.events["phase1_end"]
    loss_at = {f"{t:g}": float(np.interp(t, traj.t, obs["loss"]))
               for t in protocol.REPORT_TIMES if t <= traj.t[-1]}
    final = {k: obs[k][-1] for k in ("loss", "rho23", "R", "B1", "B2", "u_norm_sq", "G")}
    # recorded observables only: the derived rate constant is NaN at t = 0 by definition
    flagged = non_finite_observables(traj.t, obs, skip=("rate_constant",))
    return to_jsonable({
        "experiment": "cooccurrence",
        "config": config,
        "phase1_end": float(t1[0]) if t1.size else None,
        "phase1_end_times_u0_norm_sq": float(t1[0] * obs["u_norm_sq"][0]) if t1.size else None,
        "loss_at": loss_at,
        "final": final,
        "theory_checks": theory.theory_checks(traj),
        "non_finite_observables": flagged,
        "solver": traj.stats,
    })


def configuration_line(config: dict[str, Any]) -> str:
    """Which of the paper's configurations a run uses (the claims ledger reports both)."""
    if config["init"] == "theory":
        init = (f"init=theory (s0_mult={config['s0_mult']:g}, s1_mult={config['s1_mult']:g}): "
                "the theory scale (gradflow's default s1_mult=0.1 keeps |F(0)| ≪ 1, Lemma "
                "D.8), not the paper's 'Kaiming initialization' (App. A; init=kaiming_normal "
                "or kaiming_uniform)")
    else:
        init = f"init={config['init']}: a reading of the paper's 'Kaiming initialization'"
    data = ("random_tokens=replace: the paper's experiment (Assumption 2.3(ii) fails)"
            if config["random_tokens"] == "replace"
            else "random_tokens=distinct: the theory's Assumption 2.3(ii), not the paper's "
                 "experiment")
    return f"configuration: {init}; {data} (ledger: gradflow claims cooccurrence)"


def report(summary: dict[str, Any]) -> list[str]:
    """The lines ``gradflow run cooccurrence`` prints."""
    checks = summary["theory_checks"]
    failed = [k for k, v in checks.items() if v.get("holds") is False]
    return [configuration_line(summary["config"]),
            f"phase 1 ends at t = {summary['phase1_end']}",
            f"losses: {summary['loss_at']}",
            f"theory checks: {len(checks) - len(failed)}/{len(checks)} hold"
            + (f"; not holding: {failed}" if failed else ""),
            *non_finite_line(summary.get("non_finite_observables", {}))]


EXPERIMENT = Experiment(
    name="cooccurrence",
    description="Word co-occurrence (Yang et al., NeurIPS 2024): Figure 1 and the two-phase, "
                "balancing and loss-rate checks",
    parameters=PARAMETERS,
    objective=_objective,
    train=train,
    summarize=summarize,
    draw="gradflow.papers.cooccurrence.figures",
    report=report,
    checks=_check_config,
    train_ensemble=train_ensemble,
    ensemble_keys=("data_seed", "model_seed", "init_seed"),
    # a per-run checkpoint folder belongs to one run: those configs run alone
    ensemble_ok=lambda config: not config["checkpoint"],
)
