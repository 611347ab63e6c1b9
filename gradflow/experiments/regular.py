"""Experiments ``even_pairs`` and ``parity_cot`` (Huang, Liang, Yang, ICML 2025): the two
training phases, logarithmic growth of the linear layer, the max-margin direction, and parity by
chain-of-thought."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, InfeasibleError
from gradflow.experiments.base import (
    BUDGET,
    Experiment,
    Parameter,
    budget_options,
    check_memory,
    write_json,
)
from gradflow.maxmargin import solve_max_margin
from gradflow.models import regular as rg
from gradflow.trajectory import Trajectory, to_jsonable

__all__ = ["EVEN_PAIRS", "PARITY_COT", "derived", "parity_accuracy", "phase1_exponents"]

COMMON = (
    Parameter("lam", 2.0, "attention temperature λ (also W's phase-1 rate)", minimum=0.0),
    Parameter("tau0", 10.0, "end of the boosted phase τ0 = η·t0 (paper: 0.1 × 100)",
              minimum=0.0),
    Parameter("T", 1e10, "horizon of the flow", minimum=0.0),
    Parameter("T1", 1e3, "time at which the frozen-W control freezes W", minimum=0.0),
    Parameter("method", "LSODA", "scipy solver", choices=("LSODA", "RK45", "DOP853")),
    Parameter("clock", "log", "integration clock", choices=("log", "linear")),
    Parameter("rtol", 1e-9, "solver relative tolerance", minimum=0.0),
    Parameter("atol", 1e-11, "solver absolute tolerance", minimum=0.0),
    Parameter("per_decade", 10, "record points per decade of t", minimum=1,
              maximum=10_000),
    *BUDGET,
)
EP_PARAMETERS = (Parameter("L_max", 6, "longest string length (all 2^(L_max+1) − 2 strings "
                           "are enumerated)", minimum=2, maximum=20), *COMMON)
COT_PARAMETERS = (
    Parameter("L0", 4, "input length of the CoT training set (all 2^L0 inputs are "
              "enumerated)", minimum=2, maximum=16),
    Parameter("cot_format", "B", "CoT sample format (spec §7)", choices=("B", "A")),
    Parameter("regularizer_max", 4, "even-pairs regulariser on lengths 1..regularizer_max "
              "(0: none)", minimum=0, maximum=20),
    Parameter("L_max", 6, "parity is evaluated for lengths 2..L_max by both CoT methods "
              "(Method 2 trains one CoT model per length)", minimum=2, maximum=16),
    *COMMON,
)


def memory_parts(config: dict[str, Any]) -> list[tuple[str, float, tuple[str, ...]]]:
    """The large allocations of a run (for :func:`~gradflow.experiments.base.check_memory`):
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
    for key in ("lam", "tau0", "T", "T1", "rtol", "atol"):
        if config[key] <= 0:
            raise ArgumentError(f"parameter {key!r}: must be > 0, got {config[key]}")
    if not config["tau0"] < config["T1"] < config["T"]:
        raise ArgumentError(
            f"parameters 'tau0' < 'T1' < 'T' must hold, got {config['tau0']}, {config['T1']}, "
            f"{config['T']}"
        )


def _options(config: dict[str, Any]) -> dict[str, Any]:
    return {**{k: config[k] for k in ("method", "clock", "rtol", "atol")},
            **budget_options(config)}


def phase1_exponents(traj: Trajectory, t_max: float = 1.0) -> dict[str, list[float]]:
    """Local log-log exponents between consecutive record times in (0, t_max] of s_1 (position
    1), −s_ℓ for ℓ ≥ 2, and ‖W‖ (spec §4: 1, 2, 2 in phase 1)."""
    keep = (traj.t > 0) & (traj.t <= t_max)
    log_t = np.log(traj.t[keep])
    scores = traj.observables["scores"][keep].mean(axis=2)  # (n, P): symbols agree at zero init

    def local(values: np.ndarray) -> list[float]:
        return (np.diff(np.log(values)) / np.diff(log_t)).tolist()

    out = {"s_1": local(scores[:, 0]), "W_norm": local(traj.observables["W_norm"][keep])}
    for ell in range(1, scores.shape[1]):
        out[f"minus_s_{ell + 1}"] = local(-scores[:, ell])
    return out


def derived(traj: Trajectory, data: rg.RegularData, model: rg.RegularTransformer,
            tau0: float) -> dict[str, np.ndarray]:
    """Quantities computed from the stored states: ‖W − W(τ0)‖, cos(u, u*(W at first
    separability)), t·L(t), and the slope of ‖u‖ per unit ln t."""
    t, o = traj.t, traj.observables
    W = traj.block("W")
    W_tau0 = W[int(np.argmin(np.abs(t - tau0)))]
    out = {"W_change": np.linalg.norm((W - W_tau0).reshape(len(t), -1), axis=1),
           "t_loss": t * o["loss"]}
    separable = np.flatnonzero(o["normalized_margin"] > 0)
    u = traj.block("u")
    out["cos_first_separable"] = np.full(len(t), np.nan)
    if separable.size:
        first = traj.final_theta if separable[0] >= len(t) else traj.theta[separable[0]]
        fwd = model.forward(model.layout.unpack(first), data)
        # u separates these features, so the problem is feasible: a solver error propagates
        u_star = solve_max_margin(data.y[:, None] * fwd.h).w
        out["cos_first_separable"] = u @ u_star / (np.linalg.norm(u, axis=1)
                                                   * np.linalg.norm(u_star) + 1e-300)
    return out


def slope_per_decade(t: np.ndarray, values: np.ndarray, t_min: float = 10.0) -> list[list[float]]:
    """[t_from, t_to, Δvalues/Δln t] over consecutive decades of t from t_min."""
    rows = []
    edges = 10.0 ** np.arange(np.ceil(np.log10(t_min)), np.floor(np.log10(t[-1])) + 1)
    for lo, hi in itertools.pairwise(edges):
        i, j = int(np.argmin(np.abs(t - lo))), int(np.argmin(np.abs(t - hi)))
        rows.append([float(lo), float(hi), float((values[j] - values[i]) / np.log(hi / lo))])
    return rows


def parity_accuracy(model, params, lengths, max_position, method) -> dict[str, float]:
    """Parity accuracy over all strings of each length by a CoT inference method."""
    out = {}
    for length in lengths:
        strings = rg.all_strings(length)
        truth = np.where(strings.sum(axis=1) % 2 == 0, 1, -1)
        out[str(length)] = float(np.mean(method(model, params, strings, max_position) == truth))
    return out


def _trajectory_summary(traj, data, model, config) -> dict[str, Any]:
    t, o = traj.t, traj.observables
    extra = derived(traj, data, model, config["tau0"])
    traj.observables.update(extra)
    late = t >= 1e3
    t_loss = extra["t_loss"][late]

    def at(name: str, when: float) -> float:
        return float(o[name][int(np.argmin(np.abs(t - when)))])

    exponents = phase1_exponents(traj)
    u_slopes = slope_per_decade(t, o["u_norm"])
    return {
        "separable_at": traj.events["separable"].tolist(),
        "phase1_exponents_range": {k: [min(v), max(v)] for k, v in exponents.items()},
        "u_norm_slope_per_ln_t_by_decade": u_slopes,
        "W_change_slope_per_ln_t_by_decade": slope_per_decade(t, extra["W_change"]),
        "t_loss": {"values_from_1e3": t_loss.tolist(),
                   "decreasing": bool(np.all(np.diff(t_loss) < 0))},
        "final": {"loss": at("loss", t[-1]), "u_norm": at("u_norm", t[-1]),
                  "W_norm": at("W_norm", t[-1]), "W_change": float(extra["W_change"][-1]),
                  "normalized_margin": at("normalized_margin", t[-1]),
                  "accuracy": at("accuracy", t[-1])},
        "cos_moving_at": {f"{w:g}": at("cos_moving", w) for w in (1e3, 1e6, 1e8, t[-1])
                          if w <= t[-1]},
        "cos_saturated_final": at("cos_saturated", t[-1]),
        "cos_first_separable_final": float(extra["cos_first_separable"][-1]),
        "attention_final": {"positives": o["attention_pos"][-1],
                            "negatives": o["attention_neg"][-1]},
    }


def _run(name: str, data: rg.RegularData, config: dict[str, Any], out: Path,
         extra: dict[str, Any]) -> dict[str, Any]:
    from gradflow.experiments import regular_figures as figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = rg.RegularTransformer(data.d, lam=config["lam"])
    u_inf = rg.saturated_max_margin(data.max_position) if np.array_equal(
        data.embedding, np.eye(data.d)) else np.zeros(data.d)
    traj = rg.train(model, data, config["T"], tau0=config["tau0"],
                    per_decade=config["per_decade"], u_refs={"saturated": u_inf},
                    **_options(config))
    summary = {"experiment": name, "config": config,
               **_trajectory_summary(traj, data, model, config), **extra(model, traj),
               "solver": traj.stats}
    traj.save(out / "trajectory.npz")  # before the control, which may find no u*(W_T1)
    T1 = traj.t[int(np.argmin(np.abs(traj.t - config["T1"])))]
    try:
        control = rg.frozen_w_control(model, data,
                                      traj.theta[int(np.argmin(np.abs(traj.t - T1)))],
                                      T1, config["T"], **_options(config))
    except InfeasibleError as exc:
        summary["frozen_W_control"] = {
            "T1": float(T1), "skipped": "the attention outputs h_n(W(T1)) are not linearly "
            f"separable, so u*(W(T1)) does not exist (certified: {exc})"}
    else:
        cos_fixed = control.observables["cos_fixed"]
        summary["frozen_W_control"] = {"T1": float(T1), "cos_fixed": cos_fixed.tolist(),
                                       "t": control.t.tolist(),
                                       "monotone": bool(np.all(np.diff(cos_fixed) >= -1e-12))}
        control.save(out / "frozen_w_control.npz")
    summary = to_jsonable(summary)
    write_json(out / "summary.json", summary)
    figures.draw(out)
    return summary


def run_even_pairs(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """Even pairs to t = T, the frozen-W control, and parity by truncated CoT (Method 1)."""
    data = rg.even_pairs(config["L_max"])

    def extra(model, traj):
        params = model.layout.unpack(traj.final_theta)
        return {"parity_truncated_cot_accuracy": parity_accuracy(
            model, params, range(2, config["L_max"] + 1), data.max_position,
            rg.parity_by_truncated_cot)}

    return _run("even_pairs", data, config, out, extra)


def run_parity_cot(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """CoT training (Method 2, Format B by default) to t = T, with generation accuracy; and the
    even-pairs model's truncated-CoT parity (Method 1) for comparison."""
    reg = range(1, config["regularizer_max"] + 1)
    data = rg.parity_cot(config["L0"], regularizer_lengths=reg, cot_format=config["cot_format"])

    def extra(model, traj):
        accuracy = {}
        for L0 in range(2, config["L_max"] + 1):  # one CoT-trained model per input length
            if L0 == config["L0"]:
                m, d, theta = model, data, traj.final_theta
            else:
                d = rg.parity_cot(L0, regularizer_lengths=range(1, min(L0, reg.stop - 1) + 1)
                                  if reg.stop > 1 else [], cot_format=config["cot_format"])
                m = rg.RegularTransformer(d.d, lam=config["lam"])
                theta = rg.train(m, d, config["T"], tau0=config["tau0"], per_decade=2,
                                 **_options(config)).final_theta
            accuracy.update(parity_accuracy(m, m.layout.unpack(theta), [L0], d.max_position,
                                            rg.parity_by_cot_generation))
        ep = rg.even_pairs(config["L_max"])
        ep_model = rg.RegularTransformer(ep.d, lam=config["lam"])
        ep_traj = rg.train(ep_model, ep, config["T"], tau0=config["tau0"], per_decade=2,
                           **_options(config))
        method1 = parity_accuracy(ep_model, ep_model.layout.unpack(ep_traj.final_theta),
                                  range(2, config["L_max"] + 1), ep.max_position,
                                  rg.parity_by_truncated_cot)
        return {"parity_cot_generation_accuracy": accuracy,
                "parity_truncated_cot_accuracy": method1}

    return _run("parity_cot", data, config, out, extra)


def _plot(out: Path) -> list[Path]:
    from gradflow.experiments import regular_figures as figures

    return figures.draw(Path(out))


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
        model = rg.RegularTransformer(data.d, lam=config["lam"])
        return model.objective(data), model.init(rng=0, preset="normal", scale=1.0)

    return objective


EVEN_PAIRS = Experiment(
    name="even_pairs",
    description="Even pairs (Huang, Liang, Yang, ICML 2025): two phases, log growth of ‖u‖, "
                "max-margin direction, parity by truncated CoT",
    parameters=EP_PARAMETERS, run=run_even_pairs, plot=_plot,
    objective=_objective(lambda c: rg.even_pairs(c["L_max"])), report=_report, checks=_check,
)

PARITY_COT = Experiment(
    name="parity_cot",
    description="Parity with chain-of-thought training (Huang, Liang, Yang, ICML 2025), Format "
                "B with the even-pairs regulariser",
    parameters=COT_PARAMETERS, run=run_parity_cot, plot=_plot,
    objective=_objective(lambda c: rg.parity_cot(
        c["L0"], regularizer_lengths=range(1, c["regularizer_max"] + 1),
        cot_format=c["cot_format"])),
    report=_report, checks=_check,
)
