"""Figures of the softmax-ICL experiments, drawn from their run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradflow.errors import CheckpointError
from gradflow.plotting import load_trajectory, panel_figure, read_summary

__all__ = ["draw_balanced", "draw_imbalanced"]


def draw_balanced(out: Path) -> list[Path]:
    """Re-draw ``balanced.png`` from the saved trajectories and summary."""
    out = Path(out)
    summary = read_summary(out, ("time_to_alpha_half",), ("fit",))
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

    return panel_figure(out / "balanced.png", [alpha, scaling, loss])


def draw_imbalanced(out: Path) -> list[Path]:
    """Re-draw ``imbalanced.png`` from the saved trajectory."""
    out = Path(out)
    traj = load_trajectory(out / "imbalanced.npz", ("S", "per_query_loss", "alpha"))
    p = np.asarray(read_summary(out, ("p",))["p"], dtype=float)
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

    return panel_figure(out / "imbalanced.png", [losses, logits, alphas])
