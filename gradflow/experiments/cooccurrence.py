"""Experiment ``cooccurrence``: paper Figure 1 (Yang, Kailkhura, Wang, Liang, NeurIPS 2024) and
the checks of its theorems along one gradient-flow trajectory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.experiments.base import (
    BUDGET,
    Experiment,
    Parameter,
    budget_options,
    check_memory,
    log_records,
    non_finite_line,
    non_finite_observables,
    seed_parameter,
    write_json,
)
from gradflow.flow import log_grid, simulate
from gradflow.models import cooccurrence as cooc
from gradflow.theory import cooccurrence as theory
from gradflow.trajectory import Trajectory, to_jsonable

__all__ = ["EXPERIMENT", "build", "record_grid", "summarize", "theory_checks"]

REPORT_TIMES = (1.0, 300.0, 1e4, 1e8)
"""Times at which the summary reports the loss (300 = the paper's 30,000 GD steps at lr 0.01)."""

KQ_PAIRS = {("mu2", "mu1"): (1, 0), ("mu1", "mu2"): (0, 1), ("mu3", "mu1"): (2, 0),
            ("mu3", "mu2"): (2, 1)}
VV_PAIRS = {("mu1", "mu2"): (0, 1), ("mu1", "mu1"): (0, 0), ("mu2", "mu2"): (1, 1),
            ("mu1", "mu3"): (0, 2), ("mu2", "mu3"): (1, 2)}

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
    Parameter("t_end", 1e8, "horizon of the flow", minimum=0.0),
    Parameter("clock", "linear", "integration clock", choices=("linear", "log")),
    Parameter("method", "RK45", "scipy solver", choices=("RK45", "RK23", "DOP853")),
    Parameter("rtol", 1e-6, "solver relative tolerance", minimum=0.0),
    Parameter("atol", 1e-9, "solver absolute tolerance", minimum=0.0),
    Parameter("per_decade", 20, "record points per decade of t", minimum=1,
              maximum=10_000),
    Parameter("store_theta", False, "store θ at every record time (57k floats each at the "
              "paper's size)"),
    Parameter("checkpoint", False, "checkpoint into OUT/checkpoint and resume from it"),
    *BUDGET,
)


SOLVER_COPIES = {"RK23": 8, "RK45": 11, "DOP853": 17}
"""State-sized arrays an explicit solver holds (its stages, y, f and the error estimate)."""


def memory_parts(config: dict[str, Any]) -> list[tuple[str, float, tuple[str, ...]]]:
    """The large allocations of a run (for :func:`~gradflow.experiments.base.check_memory`)."""
    d, L, m, m1 = config["d"], config["L"], config["m"], config["m1"]
    n = sum(config["counts"])
    state = 3 * m * d + (m if config["reduced"] else m1 * m)
    records = log_records(config["t_end"], config["per_decade"], extra=101 + len(REPORT_TIMES))
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
    if config["t_end"] <= 0:
        raise ArgumentError(f"parameter 't_end': must be > 0, got {config['t_end']}")
    for key in ("rtol", "atol"):
        if config[key] <= 0:
            raise ArgumentError(f"parameter {key!r}: must be > 0, got {config[key]}")
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
    data = cooc.make_dataset(config["d"], config["L"], config["counts"], config["data_seed"],
                             random_tokens=config["random_tokens"])
    model = cooc.CooccurrenceTransformer(config["d"], config["m"], config["m1"], L=config["L"],
                                         rng=config["model_seed"], reduced=config["reduced"])
    theta0 = model.init(config["init_seed"], config["init"], s0_mult=config["s0_mult"],
                        s1_mult=config["s1_mult"])
    return data, model, theta0


def _objective(config: dict[str, Any]):
    data, model, theta0 = build(config)
    return model.objective(data), theta0


def record_grid(t_end: float, per_decade: int) -> np.ndarray:
    """A fine linear grid over Phase 1 (t ≤ 1, step 0.01), the log grid, and the report times."""
    phase1 = np.linspace(0.0, min(1.0, t_end), 101)
    report = [t for t in REPORT_TIMES if t <= t_end]
    return np.unique(np.concatenate([phase1, log_grid(t_end, per_decade=per_decade), report]))


def theory_checks(traj: Trajectory) -> dict[str, dict[str, Any]]:
    """Evaluate the paper's claims on a trajectory; each entry has ``value`` and ``holds``.

    Phase 1 is t ≤ T1 (the ``phase1_end`` event), Phase 2 is t > T1. A claim whose phase was
    not reached is reported with ``holds: None``.
    """
    obs, t = traj.observables, traj.t
    if traj.events["phase1_end"].size == 0:
        return {"phase1_end": {"value": None, "holds": None,
                               "note": "Phase 1 did not end before t_end"}}
    t1 = float(traj.events["phase1_end"][0])
    phase1, phase2 = t <= t1, t > t1
    after = int(np.argmax(phase2))
    checks: dict[str, dict[str, Any]] = {}
    checks["all_correct_after_T1"] = {"value": int(obs["n_misclassified"][after]),
                                      "holds": bool(obs["n_misclassified"][after] == 0)}
    loss_t1 = float(np.interp(t1, t, obs["loss"]))
    checks["loss_at_T1_order_one"] = {"value": loss_t1, "band": [0.01, 1.0],
                                      "holds": bool(0.01 <= loss_t1 <= 1.0)}
    for k in (2, 3):
        curve = obs[f"loss_type{k}"][phase1]
        peak = int(np.argmax(curve))
        checks[f"loss_type{k}_rises_then_falls_in_phase1"] = {
            "value": {"initial": float(curve[0]), "peak": float(curve[peak]),
                      "peak_t": float(t[phase1][peak]), "at_T1": float(curve[-1])},
            "holds": bool(curve[peak] > curve[0] and curve[-1] < curve[peak]),
        }
    for name, band in (("rho23", theory.RHO23_BAND), ("R", theory.R_BAND)):
        values = obs[name][phase2]
        checks[f"{name}_in_band_phase2"] = {
            "value": [float(values.min()), float(values.max())], "band": list(band),
            "holds": bool(values.min() >= band[0] and values.max() <= band[1]),
        }
    window = (t >= 1.0) & (t <= 1e6) & phase2
    if window.any():
        c = theory.rate_constant(t[window], obs["loss"][window], obs["u_norm_sq"][window])
        checks["rate_constant_band_1_to_1e6"] = {
            "value": [float(c.min()), float(c.max())], "factor": theory.band_ratio(c),
            "holds": bool(theory.band_ratio(c) <= 2.0),
        }
    for label, matrix, pairs, trends in (("KQ", obs["KQ"], KQ_PAIRS, theory.ATTENTION_TRENDS),
                                         ("VV", obs["VV"], VV_PAIRS, theory.VALUE_TRENDS)):
        for pair, (i, j) in pairs.items():
            change = float(matrix[-1, i, j] - matrix[after, i, j])
            checks[f"{label}({pair[0]},{pair[1]})_phase2_sign"] = {
                "value": change, "expected_sign": trends[pair],
                "holds": bool(np.sign(change) == trends[pair]),
            }
    return checks


def summarize(traj: Trajectory, config: dict[str, Any]) -> dict[str, Any]:
    """The run's summary: Phase-1 end, losses at the report times, final ratios, checks."""
    obs = traj.observables
    t1 = traj.events["phase1_end"]
    loss_at = {f"{t:g}": float(np.interp(t, traj.t, obs["loss"]))
               for t in REPORT_TIMES if t <= traj.t[-1]}
    final = {k: obs[k][-1] for k in ("loss", "rho23", "R", "B1", "B2", "u_norm_sq", "G")}
    # recorded observables only: the derived rate constant is infinite at t = 0 by definition
    flagged = non_finite_observables(traj.t, obs, skip=("rate_constant",))
    return to_jsonable({
        "experiment": "cooccurrence",
        "config": config,
        "phase1_end": float(t1[0]) if t1.size else None,
        "phase1_end_times_u0_norm_sq": float(t1[0] * obs["u_norm_sq"][0]) if t1.size else None,
        "loss_at": loss_at,
        "final": final,
        "theory_checks": theory_checks(traj),
        "non_finite_observables": flagged,
        "solver": traj.stats,
    })


def run(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """Integrate, then write ``trajectory.npz``, ``summary.json`` and the figures into ``out``."""
    from gradflow.experiments import cooccurrence_figures as figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data, model, theta0 = build(config)
    traj = simulate(
        model.objective(data), theta0, config["t_end"], clock=config["clock"],
        method=config["method"], rtol=config["rtol"], atol=config["atol"],
        record_at=record_grid(config["t_end"], config["per_decade"]),
        observables=model.observables(data), events=[model.phase1_end(data)],
        store_theta=config["store_theta"],
        checkpoint=out / "checkpoint" if config["checkpoint"] else None,
        progress=progress, config={"experiment": "cooccurrence", **config},
        **budget_options(config),
    )
    traj.observables["rate_constant"] = theory.rate_constant(
        traj.t, traj.observables["loss"], traj.observables["u_norm_sq"])
    traj.save(out / "trajectory.npz")
    summary = summarize(traj, config)
    write_json(out / "summary.json", summary)
    figures.draw(traj, out)
    return summary


def plot(out: Path) -> list[Path]:
    """Re-draw the figures of a saved run."""
    from gradflow.experiments import cooccurrence_figures as figures

    return figures.draw(figures.load(Path(out)), Path(out))


def report(summary: dict[str, Any]) -> list[str]:
    """The lines ``gradflow run cooccurrence`` prints."""
    checks = summary["theory_checks"]
    failed = [k for k, v in checks.items() if v.get("holds") is False]
    return [f"phase 1 ends at t = {summary['phase1_end']}",
            f"losses: {summary['loss_at']}",
            f"theory checks: {len(checks) - len(failed)}/{len(checks)} hold"
            + (f"; not holding: {failed}" if failed else ""),
            *non_finite_line(summary.get("non_finite_observables", {}))]


EXPERIMENT = Experiment(
    name="cooccurrence",
    description="Word co-occurrence (Yang et al., NeurIPS 2024): Figure 1 and the two-phase, "
                "balancing and loss-rate checks",
    parameters=PARAMETERS,
    run=run,
    plot=plot,
    objective=_objective,
    report=report,
    checks=_check_config,
)
