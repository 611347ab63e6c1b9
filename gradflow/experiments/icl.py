"""Experiments ``icl_balanced``, ``icl_imbalanced`` (Huang, Cheng, Liang, ICML 2024) and
``icl_representations`` (Yang, Huang, Liang, Chi, NeurIPS 2024)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, CheckpointError
from gradflow.experiments.base import (
    BUDGET,
    Experiment,
    Parameter,
    budget_options,
    check_memory,
    log_records,
    read_json,
    seed_parameter,
    write_json,
)
from gradflow.flow import log_grid, simulate
from gradflow.models import representation_icl as rp
from gradflow.models import softmax_icl as sm
from gradflow.plotting import draw_figures, field, load_trajectory, save, serialized
from gradflow.trajectory import to_jsonable

__all__ = ["ICL_BALANCED", "ICL_IMBALANCED", "ICL_REPRESENTATIONS", "fit_K_squared"]

SOLVER = (
    Parameter("rtol", 1e-10, "solver relative tolerance", minimum=0.0),
    Parameter("atol", 1e-12, "solver absolute tolerance", minimum=0.0),
    *BUDGET,
)


def _positive(config: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if config[key] <= 0:
            raise ArgumentError(f"parameter {key!r}: must be > 0, got {config[key]}")


def _finish(out: Path, summary: dict[str, Any], draw) -> dict[str, Any]:
    """Write ``summary.json``, then draw the figures from the saved files."""
    summary = to_jsonable(summary)
    write_json(out / "summary.json", summary)
    draw(out)
    return summary


@serialized
def _figure(path: Path, panels) -> list[Path]:
    """Draw ``panels``: a list of callables, each drawing into one axis (the figure is skipped
    with a warning when it cannot be drawn)."""
    from matplotlib.figure import Figure

    def draw_all() -> Path:
        fig = Figure(figsize=(5.4 * len(panels), 4.3))
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, draw in zip(axes[0], panels, strict=True):
            draw(ax)
        return save(fig, path, dpi=120)

    return draw_figures([(path.name, draw_all)])


def _summary(out: Path, *keys: tuple[str, ...]) -> dict[str, Any]:
    """The run's summary.json, checked to hold ``keys`` (each a path of nested keys)."""
    summary = read_json(out / "summary.json")
    for path in keys:
        field(summary, out / "summary.json", *path)
    return summary


# ------------------------------------------------------------------------------- balanced


def fit_K_squared(K: np.ndarray, times: np.ndarray) -> dict[str, float]:
    """Least-squares c in T ≈ c·K², and the free log-log exponent of T against K.

    Raises
    ------
    ArgumentError
        Fewer than 2 distinct K with a positive finite time: a line through one point (or
        through repeats of it) is not a fit.
    """
    K = np.asarray(K, dtype=float)
    times = np.asarray(times, dtype=float)
    if K.shape != times.shape or K.ndim != 1:
        raise ArgumentError(f"K and times must be vectors of one length, got shapes {K.shape} "
                            f"and {times.shape}")
    usable = np.isfinite(K) & (K > 0) & np.isfinite(times) & (times > 0)
    if np.unique(K[usable]).size < 2:
        raise ArgumentError(
            f"a power-law fit needs at least 2 distinct K with a positive finite time, got "
            f"K = {K.tolist()}, times = {times.tolist()}"
        )
    K, times = K[usable], times[usable]
    c = float(np.sum(times * K**2) / np.sum(K**4))
    exponent = float(np.polyfit(np.log(K), np.log(times), 1)[0])
    return {"c": c, "exponent": exponent}


def run_balanced(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """For each K: the exact balanced flow from S = 0 with N = n_per_K·K, the time α = ½."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Ks = list(dict.fromkeys(config["K_values"]))  # a repeated K is the same flow
    runs, times = {}, []
    for K in Ks:
        model = sm.BalancedICL(K, config["n_per_K"] * K)
        traj = simulate(model.objective(None), model.init(), config["T"],
                        rates={"A": model.rate}, method="LSODA", rtol=config["rtol"],
                        atol=config["atol"], record_at=log_grid(config["T"], per_decade=20),
                        observables=model.observables(None), events=[model.alpha_crosses(0.5)],
                        **budget_options(config))
        traj.save(out / f"balanced_K{K}.npz")
        runs[K] = traj
        crossing = traj.events["alpha_0.5"]
        times.append(float(crossing[0]) if crossing.size else np.nan)
    try:
        fit = fit_K_squared(np.array(Ks), np.array(times))
    except ArgumentError as exc:  # α = ½ not reached before T for enough K
        fit = {"c": None, "exponent": None, "skipped": str(exc)}
    summary = {"experiment": "icl_balanced", "config": config,
               "time_to_alpha_half": dict(zip(map(str, Ks), times, strict=True)),
               "fit": fit, "final_loss": {str(K): runs[K].observables["loss"][-1] for K in Ks}}

    return _finish(out, summary, draw_balanced)


def draw_balanced(out: Path) -> list[Path]:
    """Re-draw ``balanced.png`` from the saved trajectories and summary."""
    out = Path(out)
    summary = _summary(out, ("time_to_alpha_half",), ("fit",))
    try:
        Ks = [int(k) for k in summary["time_to_alpha_half"]]
        times = [float(summary["time_to_alpha_half"][str(K)]) for K in Ks]
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{out / 'summary.json'}: 'time_to_alpha_half' is not a map of K "
                              f"to times ({exc})") from None
    fit = summary["fit"]
    runs = {K: load_trajectory(out / f"balanced_K{K}.npz", ("alpha", "loss")) for K in Ks}

    def alpha(ax):
        for K, traj in runs.items():
            ax.semilogx(traj.t[1:], traj.observables["alpha"][1:], label=f"K = {K}")
        ax.axhline(0.5, color="gray", lw=0.5)
        ax.set(xlabel="t", ylabel="α = E[a_k | x_q = v_k]", title="two phases of attention")
        ax.legend(fontsize=8)

    def scaling(ax):
        ax.loglog(Ks, times, "o", label="time to α = ½")
        if fit.get("c") is not None:
            grid = np.geomspace(min(Ks), max(Ks), 50)
            ax.loglog(grid, fit["c"] * grid**2, "k:", label=f"{fit['c']:.2f}·K²")
        ax.set(xlabel="K", ylabel="t", title="Phase I length ∝ K²")
        ax.legend(fontsize=8)

    def loss(ax):
        for K, traj in runs.items():
            ax.loglog(traj.t[1:], traj.observables["loss"][1:], label=f"K = {K}")
        ax.set(xlabel="t", ylabel="population loss", title="loss")
        ax.legend(fontsize=8)

    return _figure(out / "balanced.png", [alpha, scaling, loss])


def _fit_line(fit: dict[str, Any]) -> str:
    if fit.get("c") is None:
        return f"no K² fit: {fit.get('skipped', 'too few points')}"
    return f"fit T ≈ {fit['c']:.3f}·K² (free exponent {fit['exponent']:.2f})"


def _check_balanced(config: dict[str, Any]) -> None:
    _positive(config, "T", "rtol", "atol")
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
        Parameter("T", 1e5, "horizon", minimum=0.0),
        *SOLVER,
    ),
    run=run_balanced, plot=draw_balanced,
    objective=lambda c: (sm.BalancedICL(c["K_values"][0], c["n_per_K"] * c["K_values"][0])
                         .objective(None), np.array([0.3])),
    report=lambda s: [f"time to α = ½: {s['time_to_alpha_half']}", _fit_line(s["fit"])],
    checks=_check_balanced,
)


# ----------------------------------------------------------------------------- imbalanced


def run_imbalanced(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """Exact enumeration with one dominant feature; per-query losses and logits over time."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    K = config["K"]
    p = np.array([config["p_dominant"], *[(1 - config["p_dominant"]) / (K - 1)] * (K - 1)])
    task = sm.make_dataset(K, config["N"], p, include_query=config["include_query"])
    model = sm.FeatureICL(K)
    traj = simulate(model.objective(task), model.init(), config["T"], method="LSODA",
                    rtol=config["rtol"], atol=config["atol"],
                    record_at=log_grid(config["T"], per_decade=20),
                    observables=model.observables(task),
                    events=[model.alpha_crosses(task, k) for k in (0, 1)],
                    **budget_options(config))
    traj.save(out / "imbalanced.npz")
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

    summary = {
        "experiment": "icl_imbalanced", "config": config, "p": p,
        "alpha_half": {k: v.tolist() for k, v in traj.events.items()},
        "per_query_loss_at": {f"{t:g}": L[at(t)].tolist() for t in (40.0, 140.0, config["T"])},
        "rare_query_off_target": rare,
        "floors": (0.5 * (1 - p) ** config["N"]).tolist(),
        "column_sum_drift": float(np.abs(traj.observables["column_sums"]).max()),
    }

    return _finish(out, summary, draw_imbalanced)


def draw_imbalanced(out: Path) -> list[Path]:
    """Re-draw ``imbalanced.png`` from the saved trajectory."""
    out = Path(out)
    traj = load_trajectory(out / "imbalanced.npz", ("S", "per_query_loss", "alpha"))
    p = np.asarray(_summary(out, ("p",))["p"], dtype=float)
    S, L = traj.observables["S"], traj.observables["per_query_loss"]
    if S.ndim != 3 or S.shape[1:] != (p.size, p.size) or p.size < 2:
        raise CheckpointError(f"{out / 'imbalanced.npz'}: S has shape {S.shape[1:]}, but "
                              f"{out / 'summary.json'} has {p.size} feature probabilities")
    B_dominant = S[:, 0, 1]

    def losses(ax):
        for k in range(p.size):
            ax.loglog(traj.t[1:], L[1:, k], label=f"L_{k + 1} (p = {p[k]:.2f})")
        ax.set(xlabel="t", title="per-query losses: dominant first")
        ax.legend(fontsize=8)

    def logits(ax):
        ax.semilogx(traj.t[1:], S[1:, 1, 1], label="A_2 (target)")
        ax.semilogx(traj.t[1:], B_dominant[1:], label="B_{2,1} (dominant off-target)")
        if p.size >= 3:  # a rare off-target feature exists
            B_other = S[:, 2, 1]
            ax.semilogx(traj.t[1:], B_other[1:], label="B_{2,3} (rare off-target)")
            ax.axvline(traj.t[int(np.argmax(B_other))], color="gray", ls=":",
                       label="peak of B_{2,3}")
        ax.set(xlabel="t", title="logits of a rare query")
        ax.legend(fontsize=8)

    def alphas(ax):
        for k in range(p.size):
            ax.semilogx(traj.t[1:], traj.observables["alpha"][1:, k], label=f"α_{k + 1}")
        ax.axhline(0.5, color="gray", lw=0.5)
        ax.set(xlabel="t", title="attention on the query's own feature")
        ax.legend(fontsize=8)

    return _figure(out / "imbalanced.png", [losses, logits, alphas])


def _check_imbalanced(config: dict[str, Any]) -> None:
    _positive(config, "T", "rtol", "atol")
    if not 0 < config["p_dominant"] < 1:
        raise ArgumentError(
            f"parameter 'p_dominant': must lie in (0, 1), got {config['p_dominant']}"
        )
    K, N = config["K"], config["N"]
    # more than MAX_COUNT_VECTORS count vectors is refused when the task is built (a failed
    # task in a sweep, not a refused sweep file); the memory bound covers the rest
    C = min(sm.n_count_vectors(N, K), sm.MAX_COUNT_VECTORS)
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
        Parameter("include_query", False, "query token inside the softmax (spec §(a)9.1)"),
        Parameter("T", 2000.0, "horizon", minimum=0.0),
        *SOLVER,
    ),
    run=run_imbalanced, plot=lambda out: draw_imbalanced(out),
    objective=lambda c: (sm.FeatureICL(c["K"]).objective(sm.make_dataset(c["K"], c["N"])),
                         sm.FeatureICL(c["K"]).init(rng=0, preset="normal")),
    report=lambda s: [f"α = ½ reached at {s['alpha_half']}", _rare_line(s),
                      f"per-query losses: {s['per_query_loss_at']}"],
    checks=_check_imbalanced,
)


# ------------------------------------------------------------------------ representations


def run_representations(config: dict[str, Any], out: Path, progress: bool = False
                        ) -> dict[str, Any]:
    """The YHLC flow for several head counts H; gap, its fitted rate, ridge errors."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = rp.make_dataset(config["d"], config["K"], config["N"], config["m"], config["tau"],
                           rng=config["seed"])
    runs, rates = {}, {}
    for H in config["H_values"]:
        model = rp.RepresentationTransformer(task.d, task.K, H)
        traj = simulate(model.objective(task), model.init(rng=config["seed"]), config["T"],
                        method="LSODA", rtol=config["rtol"], atol=config["atol"],
                        rates={"w": config["gamma"] ** 2},
                        record_at=np.linspace(0, config["T"], 201),
                        observables=model.observables(task), **budget_options(config))
        traj.save(out / f"heads_{H}.npz")
        runs[H] = traj
        gap = traj.observables["gap"]
        usable = (traj.t > 0.05 * config["T"]) & (gap > 1e-24)
        rates[str(H)] = (float(np.polyfit(traj.t[usable], np.log(gap[usable]), 1)[0])
                         if usable.sum() >= 3 else None)
    rng = np.random.default_rng(config["seed"] + 1)
    lam = rng.standard_normal((2000, task.m))
    noise = np.sqrt(task.tau) * rng.standard_normal((2000, task.m, task.K))
    labels = lam @ task.features + np.einsum("bm,bmk->bk", lam, noise)
    ridge_test = {}
    for name, penalty in (("m_tau", task.m * task.tau), ("N_tau", task.N * task.tau)):
        pred = rp.ridge(task, labels[:, : task.N], penalty)
        ridge_test[name] = float(np.mean((pred[:, task.N:] - labels[:, task.N:]) ** 2))
    summary = {
        "experiment": "icl_representations", "config": config,
        "final_gap": {str(H): r.observables["gap"][-1] for H, r in runs.items()},
        "fitted_log_gap_rate": rates,
        "ridge_error_final": {str(H): r.observables["ridge_error"][-1] for H, r in runs.items()},
        "ridge_error_ood_final": {str(H): r.observables["ridge_error_ood"][-1]
                                  for H, r in runs.items()},
        "ridge_test_mse_unseen_tokens": ridge_test,
    }

    return _finish(out, summary, draw_representations)


def draw_representations(out: Path) -> list[Path]:
    """Re-draw ``representations.png`` from the saved trajectories."""
    out = Path(out)
    summary = _summary(out, ("final_gap",), ("config", "N"))
    runs = {H: load_trajectory(out / f"heads_{H}.npz", ("gap", "ridge_error", "ridge_error_ood"))
            for H in summary["final_gap"]}
    N = summary["config"]["N"]

    def gap(ax):
        for H, traj in runs.items():
            ax.semilogy(traj.t, np.maximum(traj.observables["gap"], 1e-32), label=f"H = {H}")
        ax.set(xlabel="t", ylabel="L − inf L", title=f"loss gap (N = {N})")
        ax.legend(fontsize=8)

    def ridge_panel(ax):
        for H, traj in runs.items():
            ax.semilogy(traj.t, np.maximum(traj.observables["ridge_error"], 1e-32),
                        label=f"H = {H}")
            ax.semilogy(traj.t, np.maximum(traj.observables["ridge_error_ood"], 1e-32), ":")
        ax.set(xlabel="t", title="‖ŷ − ŷ_ridge‖²/K (dotted: OOD λ ~ N(1, 4I))")
        ax.legend(fontsize=8)

    return _figure(out / "representations.png", [gap, ridge_panel])


def _check_representations(config: dict[str, Any]) -> None:
    _positive(config, "T", "tau", "rtol", "atol")
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
        Parameter("tau", 0.1, "label-noise variance", minimum=0.0),
        Parameter("H_values", (2, 4, 5, 8), "head counts to compare", minimum=1,
                  maximum=10_000),
        Parameter("gamma", 1.0, "w's rate is γ²", minimum=0.0),
        seed_parameter("seed", 0, "seed of the dictionary and init"),
        Parameter("T", 1000.0, "horizon", minimum=0.0),
        *SOLVER,
    ),
    run=run_representations, plot=lambda out: draw_representations(out),
    objective=lambda c: (rp.RepresentationTransformer(c["d"], c["K"], c["H_values"][0]).objective(
        rp.make_dataset(c["d"], c["K"], c["N"], c["m"], c["tau"], rng=c["seed"])),
        rp.RepresentationTransformer(c["d"], c["K"], c["H_values"][0]).init(rng=c["seed"])),
    report=lambda s: [f"final gap by H: {s['final_gap']}",
                      f"fitted log-gap rate by H: {s['fitted_log_gap_rate']}",
                      f"ridge test MSE on unseen tokens: {s['ridge_test_mse_unseen_tokens']}"],
    checks=lambda c: _check_representations(c),
)


