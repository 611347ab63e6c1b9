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
    read_json,
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
    """Least-squares c in T ≈ c·K², and the free log-log exponent of T against K."""
    K = np.asarray(K, dtype=float)
    times = np.asarray(times, dtype=float)
    c = float(np.sum(times * K**2) / np.sum(K**4))
    exponent = float(np.polyfit(np.log(K), np.log(times), 1)[0])
    return {"c": c, "exponent": exponent}


def run_balanced(config: dict[str, Any], out: Path, progress: bool = False) -> dict[str, Any]:
    """For each K: the exact balanced flow from S = 0 with N = n_per_K·K, the time α = ½."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Ks = list(config["K_values"])
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
    fit = fit_K_squared(np.array(Ks), np.array(times))
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


ICL_BALANCED = Experiment(
    name="icl_balanced",
    description="Softmax ICL on balanced features (Huang, Cheng, Liang, ICML 2024): two phases "
                "and the K² time to α = ½",
    parameters=(
        Parameter("K_values", (4, 8, 16, 32), "numbers of features", minimum=2),
        Parameter("n_per_K", 20, "prompt length N = n_per_K·K", minimum=1),
        Parameter("T", 1e5, "horizon", minimum=0.0),
        *SOLVER,
    ),
    run=run_balanced, plot=draw_balanced,
    objective=lambda c: (sm.BalancedICL(c["K_values"][0], c["n_per_K"] * c["K_values"][0])
                         .objective(None), np.array([0.3])),
    report=lambda s: [f"time to α = ½: {s['time_to_alpha_half']}",
                      f"fit T ≈ {s['fit']['c']:.3f}·K² (free exponent {s['fit']['exponent']:.2f})"],
    checks=lambda c: _positive(c, "T", "rtol", "atol"),
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
    B_dominant, B_other = S[:, 0, 1], S[:, 2, 1]  # query feature 2 (index 1): off-targets
    peak = int(np.argmax(B_other))
    L = traj.observables["per_query_loss"]

    def at(t: float) -> int:
        return int(np.argmin(np.abs(traj.t - t)))

    summary = {
        "experiment": "icl_imbalanced", "config": config, "p": p,
        "alpha_half": {k: v.tolist() for k, v in traj.events.items()},
        "per_query_loss_at": {f"{t:g}": L[at(t)].tolist() for t in (40.0, 140.0, config["T"])},
        "rare_query_off_target": {
            "B_dominant_monotone_decreasing": bool(np.all(np.diff(B_dominant) <= 1e-15)),
            "B_other_peak": float(B_other[peak]), "B_other_peak_t": float(traj.t[peak]),
            "B_other_final": float(B_other[-1])},
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
    B_dominant, B_other = S[:, 0, 1], S[:, 2, 1]
    peak = int(np.argmax(B_other))

    def losses(ax):
        for k in range(p.size):
            ax.loglog(traj.t[1:], L[1:, k], label=f"L_{k + 1} (p = {p[k]:.2f})")
        ax.set(xlabel="t", title="per-query losses: dominant first")
        ax.legend(fontsize=8)

    def logits(ax):
        ax.semilogx(traj.t[1:], S[1:, 1, 1], label="A_2 (target)")
        ax.semilogx(traj.t[1:], B_dominant[1:], label="B_{2,1} (dominant off-target)")
        ax.semilogx(traj.t[1:], B_other[1:], label="B_{2,3} (rare off-target)")
        ax.axvline(traj.t[peak], color="gray", ls=":", label="peak of B_{2,3}")
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


ICL_IMBALANCED = Experiment(
    name="icl_imbalanced",
    description="Softmax ICL with one dominant feature (Huang, Cheng, Liang, ICML 2024): "
                "stage-wise convergence and the rise-then-fall of rare off-target logits",
    parameters=(
        Parameter("K", 4, "number of features", minimum=2),
        Parameter("N", 40, "prompt length", minimum=1),
        Parameter("p_dominant", 0.55, "probability of feature 1 (the rest share equally)",
                  minimum=0.0),
        Parameter("include_query", False, "query token inside the softmax (spec §(a)9.1)"),
        Parameter("T", 2000.0, "horizon", minimum=0.0),
        *SOLVER,
    ),
    run=run_imbalanced, plot=lambda out: draw_imbalanced(out),
    objective=lambda c: (sm.FeatureICL(c["K"]).objective(sm.make_dataset(c["K"], c["N"])),
                         sm.FeatureICL(c["K"]).init(rng=0, preset="normal")),
    report=lambda s: [f"α = ½ reached at {s['alpha_half']}",
                      f"rare off-target logit peaks at t = "
                      f"{s['rare_query_off_target']['B_other_peak_t']:.3g}",
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


ICL_REPRESENTATIONS = Experiment(
    name="icl_representations",
    description="ICL with representations (Yang, Huang, Liang, Chi, NeurIPS 2024): linear "
                "convergence, ridge regression, the number of heads",
    parameters=(
        Parameter("d", 6, "token dimension", minimum=1),
        Parameter("K", 12, "dictionary size", minimum=2),
        Parameter("N", 4, "prompt length", minimum=1),
        Parameter("m", 5, "representation dimension", minimum=1),
        Parameter("tau", 0.1, "label-noise variance", minimum=0.0),
        Parameter("H_values", (2, 4, 5, 8), "head counts to compare", minimum=1),
        Parameter("gamma", 1.0, "w's rate is γ²", minimum=0.0),
        Parameter("seed", 0, "seed of the dictionary and init", minimum=0),
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
    checks=lambda c: _positive(c, "T", "tau", "rtol", "atol"),
)


