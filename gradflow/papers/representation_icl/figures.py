"""Figures of the ``icl_representations`` experiment, drawn from its run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradflow.plotting import load_trajectory, panel_figure, read_summary

__all__ = ["draw"]


def draw(out: Path) -> list[Path]:
    """Re-draw ``representations.png`` from the saved trajectories."""
    out = Path(out)
    summary = read_summary(out, ("final_gap",), ("config", "N"))
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

    return panel_figure(out / "representations.png", [gap, ridge_panel])
