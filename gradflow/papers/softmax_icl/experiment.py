"""Experiments ``icl_balanced`` and ``icl_imbalanced`` (Huang, Cheng, Liang, ICML 2024): the two
phases of attention and the K² time to α = ½ on balanced features; stage-wise convergence and
the rise-then-fall of rare off-target logits with one dominant feature."""

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
    log_records,
    solver_options,
    solver_parameters,
)
from gradflow.papers.softmax_icl import protocol, theory
from gradflow.papers.softmax_icl.claims import CLAIMS
from gradflow.papers.softmax_icl.data import MAX_COUNT_VECTORS, make_task, n_count_vectors
from gradflow.papers.softmax_icl.model import BalancedICL, FeatureICL
from gradflow.trajectory import to_jsonable

__all__ = ["ICL_BALANCED", "ICL_IMBALANCED"]


def train_balanced(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """For each K: the exact balanced flow from S = 0 with N = n_per_K·K."""
    Ks = list(dict.fromkeys(config["K_values"]))  # a repeated K is the same flow
    runs = {K: protocol.balanced_flow(K, config["n_per_K"] * K, config["T"], progress=progress,
                                      **solver_options(config)) for K in Ks}
    return Outcome(trajectories={f"balanced_K{K}": traj for K, traj in runs.items()},
                   context={"runs": runs})


def summarize_balanced(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """The time α = ½ for each K and the K² fit."""
    runs = outcome.context["runs"]
    Ks = list(runs)
    times = []
    for K in Ks:
        crossing = runs[K].events["alpha_0.5"]
        times.append(float(crossing[0]) if crossing.size else np.nan)
    try:
        fit = theory.fit_K_squared(np.array(Ks), np.array(times))
    except ArgumentError as exc:  # α = ½ not reached before T for enough K
        fit = {"c": None, "exponent": None, "skipped": str(exc)}
    return to_jsonable({
        "experiment": "icl_balanced", "config": config,
        "time_to_alpha_half": dict(zip(map(str, Ks), times, strict=True)),
        "fit": fit, "final_loss": {str(K): runs[K].observables["loss"][-1] for K in Ks}})


def _fit_line(fit: dict[str, Any]) -> str:
    if fit.get("c") is None:
        return f"no K² fit: {fit.get('skipped', 'too few points')}"
    return f"fit T ≈ {fit['c']:.3f}·K² (free exponent {fit['exponent']:.2f})"

def _check_balanced(config: dict[str, Any]) -> None:
    Ks = config["K_values"]
    if len(set(Ks)) < 2:
        raise ArgumentError(
            f"parameter 'K_values': the K² fit needs at least 2 distinct values, got {Ks}"
        )
    N = config["n_per_K"] * max(Ks)
    records = log_records(config["T"], 20)
    check_memory([
        ("the exact sum over the query feature's count (N = n_per_K·K terms, with its "
         "temporaries)", 8.0 * 12 * (N + 1), ("K_values", "n_per_K")),
        ("the recorded observables", 8.0 * 4 * records * len(Ks), ("T",)),
    ])

ICL_BALANCED = Experiment(
    name="icl_balanced",
    description="Softmax ICL on balanced features (Huang, Cheng, Liang, ICML 2024): two phases "
                "and the K² time to α = ½",
    parameters=(
        Parameter("K_values", (4, 8, 16, 32), "numbers of features (at least 2 distinct "
                  "values, each > 2: at K = 2, α starts at ½)", minimum=3, maximum=1_000_000),
        Parameter("n_per_K", 20, "prompt length N = n_per_K·K", minimum=1,
                  maximum=1_000_000),
        Parameter("T", 1e5, "horizon", positive=True),
        *solver_parameters(**protocol.SOLVER),
    ),
    train=train_balanced, summarize=summarize_balanced,
    claims=tuple(c for c in CLAIMS if c.experiment == "icl_balanced"),
    draw="gradflow.papers.softmax_icl.figures:draw_balanced",
    objective=lambda c: (BalancedICL(c["K_values"][0], c["n_per_K"] * c["K_values"][0])
                         .objective(None), np.array([0.3])),
    report=lambda s: [f"time to α = ½: {s['time_to_alpha_half']}", _fit_line(s["fit"])],
    checks=_check_balanced,
)


def _priors(config: dict[str, Any]) -> np.ndarray:
    K = config["K"]
    return np.array([config["p_dominant"], *[(1 - config["p_dominant"]) / (K - 1)] * (K - 1)])


REPORT_TIMES = (40.0, 140.0)
"""The times at which the summary reports every query's loss (the stage-wise claims')."""


def train_imbalanced(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Exact enumeration with one dominant feature, from S = 0."""
    task = make_task(config["K"], config["N"], _priors(config),
                     include_query=config["include_query"])
    # the summary's report times are records, not the nearest grid point (39.8 for 40)
    traj = protocol.imbalanced_flow(task, config["T"], progress=progress,
                                    extra_times=[t for t in REPORT_TIMES if t < config["T"]],
                                    **solver_options(config))
    return Outcome(trajectories={"imbalanced": traj})


def summarize_imbalanced(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Per-query losses and the dominant and rare off-target logits of a rare query."""
    traj = outcome.trajectories["imbalanced"]
    K, p = config["K"], _priors(config)
    S = traj.observables["S"]  # (t, n, k)
    B_dominant = S[:, 0, 1]  # query feature 2 (index 1): the dominant off-target logit
    L = traj.observables["per_query_loss"]
    rare: dict[str, Any] = {
        "B_dominant_monotone_decreasing": bool(np.all(np.diff(B_dominant) <= 1e-15))}
    if K >= 3:  # a rare off-target feature (feature 3) exists
        B_other = S[:, 2, 1]
        peak = int(np.argmax(B_other))
        rare.update({"B_other_peak": float(B_other[peak]), "B_other_peak_t": float(traj.t[peak]),
                     "B_other_final": float(B_other[-1])})
    else:
        rare["B_other"] = "none: with K = 2 the rare query has no rare off-target feature"

    def at(t: float) -> int:
        return int(np.argmin(np.abs(traj.t - t)))

    return to_jsonable({
        "experiment": "icl_imbalanced", "config": config, "p": p,
        "alpha_half": {k: v.tolist() for k, v in traj.events.items()},
        "per_query_loss_at": {f"{t:g}": L[at(t)].tolist()
                              for t in (*REPORT_TIMES, config["T"]) if t <= config["T"]},
        "rare_query_off_target": rare,
        "floors": (0.5 * (1 - p) ** config["N"]).tolist(),
        "column_sum_drift": float(np.abs(traj.observables["column_sums"]).max()),
    })


def _check_imbalanced(config: dict[str, Any]) -> None:
    if not 0 < config["p_dominant"] < 1:
        raise ArgumentError(
            f"parameter 'p_dominant': must lie in (0, 1), got {config['p_dominant']}"
        )
    K, N = config["K"], config["N"]
    # more than MAX_COUNT_VECTORS count vectors is refused when the task is built (a failed
    # task in a sweep, not a refused sweep file); the memory bound covers the rest
    C = min(n_count_vectors(N, K), MAX_COUNT_VECTORS)
    check_memory([
        ("the attention masses of every query, key and count vector (K²·C)",
         8.0 * 4 * K * K * C, ("K", "N")),
        ("the solver's Jacobian (LSODA, a K²×K² matrix)", 8.0 * 3 * K**4, ("K",)),
        ("the recorded observables", 8.0 * log_records(config["T"], 20) * (3 * K * K + 4 * K),
         ("K", "T")),
    ])

def _rare_line(summary: dict[str, Any]) -> str:
    rare = summary["rare_query_off_target"]
    if "B_other_peak_t" not in rare:
        return f"rare off-target logit: {rare.get('B_other')}"
    return f"rare off-target logit peaks at t = {rare['B_other_peak_t']:.3g}"

ICL_IMBALANCED = Experiment(
    name="icl_imbalanced",
    description="Softmax ICL with one dominant feature (Huang, Cheng, Liang, ICML 2024): "
                "stage-wise convergence and the rise-then-fall of rare off-target logits",
    parameters=(
        Parameter("K", 4, "number of features (the rare off-target logit B_{2,3} needs "
                  "K >= 3)", minimum=2, maximum=1000),
        Parameter("N", 40, "prompt length", minimum=1, maximum=1_000_000),
        Parameter("p_dominant", 0.55, "probability of feature 1 (the rest share equally)",
                  minimum=0.0),
        Parameter("include_query", False, "query token inside the softmax (off by default: a "
                  "modelling choice of gradflow: docs/derivations/softmax_icl.md, §Modelling "
                  "choices)"),
        Parameter("T", 2000.0, "horizon", positive=True),
        *solver_parameters(**protocol.SOLVER),
    ),
    train=train_imbalanced, summarize=summarize_imbalanced,
    claims=tuple(c for c in CLAIMS if c.experiment == "icl_imbalanced"),
    draw="gradflow.papers.softmax_icl.figures:draw_imbalanced",
    objective=lambda c: (FeatureICL(c["K"]).objective(make_task(c["K"], c["N"])),
                         FeatureICL(c["K"]).init(rng=0, preset="normal")),
    report=lambda s: [f"α = ½ reached at {s['alpha_half']}", _rare_line(s),
                      f"per-query losses: {s['per_query_loss_at']}"],
    checks=_check_imbalanced,
)
