"""Experiments ``even_pairs`` and ``parity_cot`` (Huang, Liang, Yang, ICML 2025): the two
training phases, logarithmic growth of the linear layer, the max-margin direction, and parity by
chain-of-thought."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, InfeasibleError
from gradflow.experiment import (
    Experiment,
    Outcome,
    Parameter,
    check_memory,
    solver_options,
    solver_parameters,
)
from gradflow.papers.regular import claims, protocol, theory
from gradflow.papers.regular.data import even_pairs, parity_cot
from gradflow.papers.regular.model import RegularTransformer
from gradflow.trajectory import to_jsonable

__all__ = ["EVEN_PAIRS", "PARITY_COT"]

COMMON = (
    Parameter("lam", 2.0, "attention temperature λ (also W's phase-1 rate)", positive=True),
    Parameter("tau0", 10.0, "end of the boosted phase τ0 = η·t0 (paper: 0.1 × 100)",
              positive=True),
    Parameter("T", 1e10, "horizon of the flow", positive=True),
    Parameter("T1", 1e3, "time at which the frozen-W control freezes W", positive=True),
    Parameter("per_decade", 10, "record points per decade of t", minimum=1,
              maximum=10_000),
    *solver_parameters(**protocol.SOLVER, methods=("LSODA", "RK45", "DOP853")),
)
EP_PARAMETERS = (Parameter("L_max", 6, "longest string length (all 2^(L_max+1) − 2 strings "
                           "are enumerated)", minimum=2, maximum=20), *COMMON)
COT_PARAMETERS = (
    Parameter("L0", 4, "input length of the CoT training set (all 2^L0 inputs are "
              "enumerated)", minimum=2, maximum=16),
    Parameter("cot_format", "B", "CoT sample format (a modelling choice of gradflow: "
              "docs/derivations/regular.md, §Parity by chain of thought)", choices=("B", "A")),
    Parameter("regularizer_max", 4, "even-pairs regulariser on lengths 1..regularizer_max "
              "(0: none)", minimum=0, maximum=20),
    Parameter("L_max", 6, "parity is evaluated for lengths 2..L_max by both CoT methods "
              "(Method 2 trains one CoT model per length)", minimum=2, maximum=16),
    *COMMON,
)


def memory_parts(config: dict[str, Any]) -> list[tuple[str, float, tuple[str, ...]]]:
    """The large allocations of a run (for :func:`~gradflow.experiment.check_memory`):
    every string is enumerated, so the training set grows like 2^length."""
    if "L0" in config:  # parity_cot: the largest CoT set trained, with its regulariser
        longest = max(config["L0"], config["L_max"])
        n = 2**longest * (longest - 1) + 2 ** (config["regularizer_max"] + 1)
        positions = max(2 * longest - 2, config["regularizer_max"], config["L_max"])
        names: tuple[str, ...] = ("L0", "L_max", "regularizer_max")
    else:
        n, positions, names = 2 ** (config["L_max"] + 1), config["L_max"], ("L_max",)
    d = 2 * positions  # one embedding per (position, symbol)
    state = d * d + d
    implicit = config["method"] == "LSODA"
    return [
        # per sample: X (positions × d), the forward and gradient temporaries, the string
        ("the training set, its forward pass and gradient", n * (8.0 * 6 * positions * d
                                                                  + 8 * positions + 120), names),
        ("the max-margin problem solved at every record", 8.0 * 4 * n * d, names),
        (f"the solver's {'Jacobian' if implicit else 'stages'} (method={config['method']})",
         8.0 * (3 * state * state if implicit else 17 * state), names),
    ]


def _check(config: dict[str, Any]) -> None:
    check_memory(memory_parts(config))
    if not config["tau0"] < config["T1"] < config["T"]:
        raise ArgumentError(
            f"parameters 'tau0' < 'T1' < 'T' must hold, got {config['tau0']}, {config['T1']}, "
            f"{config['T']}"
        )


def _train(data, config: dict[str, Any], progress: bool, extra) -> Outcome:
    """The two-phase flow to T with its derived observables, the frozen-W control from
    W(T1), and the experiment's ``extra`` results (``extra(model, traj, options)``)."""
    model = RegularTransformer(data.d, lam=config["lam"])
    u_inf = theory.saturated_max_margin(data.max_position) if np.array_equal(
        data.embedding, np.eye(data.d)) else np.zeros(data.d)
    options = {**solver_options(config), "progress": progress}
    traj = protocol.train(model, data, config["T"], tau0=config["tau0"],
                          per_decade=config["per_decade"], u_refs={"saturated": u_inf},
                          **options)
    traj = traj.with_observables(**theory.derived(traj, data, model, config["tau0"]))
    trajectories = {"trajectory": traj}
    T1 = traj.t[int(np.argmin(np.abs(traj.t - config["T1"])))]
    try:
        control = protocol.frozen_w_control(model, data,
                                            traj.theta[int(np.argmin(np.abs(traj.t - T1)))],
                                            T1, config["T"], **options)
    except InfeasibleError as exc:
        control_note = {
            "T1": float(T1), "skipped": "the attention outputs h_n(W(T1)) are not linearly "
            f"separable, so u*(W(T1)) does not exist (certified: {exc})"}
    else:
        trajectories["frozen_w_control"] = control
        cos_fixed = control.observables["cos_fixed"]
        control_note = {"T1": float(T1), "cos_fixed": cos_fixed.tolist(),
                        "t": control.t.tolist(),
                        "monotone": bool(np.all(np.diff(cos_fixed) >= -1e-12))}
    return Outcome(trajectories=trajectories,
                   context={"data": data, "model": model, "control": control_note,
                            "extra": extra(model, traj, options)})


def _trajectory_summary(traj) -> dict[str, Any]:
    t, o = traj.t, traj.observables
    late = t >= 1e3
    t_loss = o["t_loss"][late]

    def at(name: str, when: float) -> float:
        return float(o[name][int(np.argmin(np.abs(t - when)))])

    exponents = theory.phase1_exponents(traj)
    u_slopes = theory.slope_per_decade(t, o["u_norm"])
    return {
        "separable_at": traj.events["separable"].tolist(),
        "phase1_exponents_range": {k: [min(v), max(v)] for k, v in exponents.items()},
        "u_norm_slope_per_ln_t_by_decade": u_slopes,
        "W_change_slope_per_ln_t_by_decade": theory.slope_per_decade(t, o["W_change"]),
        "t_loss": {"values_from_1e3": t_loss.tolist(),
                   "decreasing": bool(np.all(np.diff(t_loss) < 0))},
        "final": {"loss": at("loss", t[-1]), "u_norm": at("u_norm", t[-1]),
                  "W_norm": at("W_norm", t[-1]), "W_change": float(o["W_change"][-1]),
                  "normalized_margin": at("normalized_margin", t[-1]),
                  "accuracy": at("accuracy", t[-1])},
        "cos_moving_at": {f"{w:g}": at("cos_moving", w) for w in (1e3, 1e6, 1e8, t[-1])
                          if w <= t[-1]},
        "cos_saturated_final": at("cos_saturated", t[-1]),
        "cos_first_separable_final": float(o["cos_first_separable"][-1]),
        "attention_final": {"positives": o["attention_pos"][-1],
                            "negatives": o["attention_neg"][-1]},
    }


def _summarize(name: str):
    def summarize(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
        traj = outcome.trajectories["trajectory"]
        return to_jsonable({"experiment": name, "config": config,
                            **_trajectory_summary(traj), **outcome.context["extra"],
                            "solver": traj.stats,
                            "frozen_W_control": outcome.context["control"]})

    return summarize


def train_even_pairs(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Even pairs to t = T, the frozen-W control, and parity by truncated CoT (Method 1)."""
    data = even_pairs(config["L_max"])

    def extra(model, traj, options):
        params = model.layout.unpack(traj.final_theta)
        return {"parity_truncated_cot_accuracy": protocol.parity_accuracy(
            model, params, range(2, config["L_max"] + 1), data.max_position,
            protocol.parity_by_truncated_cot)}

    return _train(data, config, progress, extra)


def train_parity_cot(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """CoT training (Method 2, Format B by default) to t = T, with generation accuracy; and the
    even-pairs model's truncated-CoT parity (Method 1) for comparison."""
    reg = range(1, config["regularizer_max"] + 1)
    data = parity_cot(config["L0"], regularizer_lengths=reg, cot_format=config["cot_format"])

    def extra(model, traj, options):
        accuracy = {}
        for L0 in range(2, config["L_max"] + 1):  # one CoT-trained model per input length
            if L0 == config["L0"]:
                m, d, theta = model, data, traj.final_theta
            else:
                d = parity_cot(L0, regularizer_lengths=range(1, min(L0, reg.stop - 1) + 1)
                               if reg.stop > 1 else [], cot_format=config["cot_format"])
                m = RegularTransformer(d.d, lam=config["lam"])
                theta = protocol.train(m, d, config["T"], tau0=config["tau0"], per_decade=2,
                                       **options).final_theta
            accuracy.update(protocol.parity_accuracy(m, m.layout.unpack(theta), [L0],
                                                     d.max_position,
                                                     protocol.parity_by_cot_generation))
        ep = even_pairs(config["L_max"])
        ep_model = RegularTransformer(ep.d, lam=config["lam"])
        ep_traj = protocol.train(ep_model, ep, config["T"], tau0=config["tau0"], per_decade=2,
                                 **options)
        method1 = protocol.parity_accuracy(ep_model, ep_model.layout.unpack(ep_traj.final_theta),
                                           range(2, config["L_max"] + 1), ep.max_position,
                                           protocol.parity_by_truncated_cot)
        return {"parity_cot_generation_accuracy": accuracy,
                "parity_truncated_cot_accuracy": method1}

    return _train(data, config, progress, extra)


def _control_line(control: dict[str, Any]) -> str:
    if "skipped" in control:
        return f"frozen-W control skipped: {control['skipped']}"
    return f"frozen-W control: cos → {control['cos_fixed'][-1]:.6f}"


def _slope_line(slopes: list[list[float]]) -> str:
    if not slopes:  # T < 100: no decade [10^k, 10^(k+1)] from t = 10 lies inside [0, T]
        return "‖u‖ slope per ln t: no full decade of t from t = 10 (T < 100)"
    return f"‖u‖ slope per ln t, last decade: {slopes[-1][2]:.3f}"


def _report(summary: dict[str, Any]) -> list[str]:
    final = summary["final"]
    lines = [f"separable at t = {summary['separable_at']}",
             f"at t = {summary['config']['T']:g}: loss {final['loss']:.3e}, ‖u‖ = "
             f"{final['u_norm']:.4f}, ‖W − W(τ0)‖ = {final['W_change']:.3f}",
             _slope_line(summary["u_norm_slope_per_ln_t_by_decade"]),
             f"cos(u, u*(W_t)) = {summary['cos_moving_at']}",
             _control_line(summary["frozen_W_control"])]
    for key in ("parity_truncated_cot_accuracy", "parity_cot_generation_accuracy"):
        if key in summary:
            lines.append(f"{key}: {summary[key]}")
    return lines


def _objective(data_fn):
    def objective(config: dict[str, Any]):
        data = data_fn(config)
        model = RegularTransformer(data.d, lam=config["lam"])
        return model.objective(data), model.init(rng=0, preset="normal", scale=1.0)

    return objective


EVEN_PAIRS = Experiment(
    name="even_pairs",
    description="Even pairs (Huang, Liang, Yang, ICML 2025): two phases, log growth of ‖u‖, "
                "max-margin direction, parity by truncated CoT",
    parameters=EP_PARAMETERS, objective=_objective(lambda c: even_pairs(c["L_max"])),
    train=train_even_pairs, summarize=_summarize("even_pairs"),
    draw="gradflow.papers.regular.figures", report=_report, checks=_check,
    claims=tuple(c for c in claims.CLAIMS if c.experiment == "even_pairs"),
)

PARITY_COT = Experiment(
    name="parity_cot",
    description="Parity with chain-of-thought training (Huang, Liang, Yang, ICML 2025), Format "
                "B with the even-pairs regulariser",
    parameters=COT_PARAMETERS, train=train_parity_cot, summarize=_summarize("parity_cot"),
    draw="gradflow.papers.regular.figures",
    objective=_objective(lambda c: parity_cot(
        c["L0"], regularizer_lengths=range(1, c["regularizer_max"] + 1),
        cot_format=c["cot_format"])),
    report=_report, checks=_check,
)
