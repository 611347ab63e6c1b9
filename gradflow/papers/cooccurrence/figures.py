"""Figures of the ``cooccurrence`` experiment: paper Figure 1 and a panel of theory checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gradflow.papers.cooccurrence import theory
from gradflow.plotting import draw_figures, load_trajectory, save, serialized
from gradflow.trajectory import Trajectory

__all__ = ["draw"]

TYPE_COLORS = {1: "tab:orange", 2: "tab:green", 3: "tab:red", 4: "tab:purple"}


def _finish(ax, traj: Trajectory, **axes_settings) -> None:
    """Apply axis settings, mark the Phase-1 end, add the legend."""
    ax.set(**axes_settings)
    if traj.events["phase1_end"].size:
        ax.axvline(traj.events["phase1_end"][0], color="black", ls="--", lw=1.2,
                   label="end of Phase 1")
    ax.legend(fontsize=8)


def _plot_losses(ax, t: np.ndarray, obs: dict[str, np.ndarray], keep: np.ndarray) -> None:
    ax.plot(t[keep], obs["loss"][keep], color="tab:blue", lw=2, label="total")
    for k, color in TYPE_COLORS.items():
        ax.plot(t[keep], obs[f"loss_type{k}"][keep], color=color, label=f"type {k}")


def figure1(traj: Trajectory, path: Path) -> Path:
    """(a) attention score correlations KQ(key, query) over log t; (b) total and per-type
    losses; (c) the losses over Phase 1 on linear axes, where the one-target types rise then
    fall. The dashed line is the Phase-1 end (first time every sample is correct)."""
    t, obs = traj.t, traj.observables
    pos = t > 0
    fig = Figure(figsize=(16, 4.4))
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    names = ["μ1", "μ2", "μ3"]
    for (i, j), style in (((1, 0), "-"), ((0, 1), "--"), ((2, 0), "-"), ((2, 1), "--")):
        ax_a.plot(t[pos], obs["KQ"][pos, i, j], style, label=f"KQ({names[i]}, {names[j]})")
    _finish(ax_a, traj, xscale="log", xlabel="t (flow time = GD steps × lr)",
            ylabel="μ_iᵀ W_Kᵀ W_Q μ_j", title="(a) attention score correlations")
    _plot_losses(ax_b, t, obs, pos)
    _finish(ax_b, traj, xscale="log", yscale="log", xlabel="t", ylabel="training loss",
            title="(b) total and per-type losses")
    t1 = traj.events["phase1_end"]
    _plot_losses(ax_c, t, obs, t <= (2.0 * t1[0] if t1.size else t[-1]))
    _finish(ax_c, traj, xlabel="t", ylabel="training loss", title="(c) Phase 1, linear axes")
    return save(fig, path)


def theory_panel(traj: Trajectory, path: Path) -> Path:
    """Balancing ratios with their predicted bands, and the Phase-2 rate constant."""
    pos = traj.t > 0
    t, obs = traj.t[pos], {k: v[pos] for k, v in traj.observables.items()}
    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    for ax, name, band in ((axes[0, 0], "rho23", theory.RHO23_BAND),
                           (axes[0, 1], "R", theory.R_BAND)):
        ax.plot(t, obs[name], color="black")
        ax.axhspan(*band, color="tab:green", alpha=0.15, label=f"predicted {list(band)}")
        _finish(ax, traj, xscale="log", xlabel="t",
                title={"rho23": "ρ23 = s_I2/s_I3",
                       "R": "R = (s_I234 − s_I1)/(s_I1 − s_I2)"}[name])
    ax = axes[1, 0]
    ax.plot(t, obs["B1"], label="B1 = s_all/(s_I234 − s_I1)")
    ax.plot(t, obs["B2"], label="B2 = s_all/(s_I1 − s_I2)")
    _finish(ax, traj, xscale="log", xlabel="t", title="B1, B2 = O(1)")
    ax = axes[1, 1]
    c = obs["rate_constant"] if "rate_constant" in obs else theory.rate_constant(
        t, obs["loss"], obs["u_norm_sq"])
    ax.plot(t, c, color="black", label="1/(L̂·t·‖u‖²)")
    window = (t >= 1) & (t <= 1e6)
    if window.any():
        mid = np.sqrt(c[window].min() * c[window].max())
        if np.isfinite(mid) and mid > 0:  # not for a degenerate run (‖u‖ = 0 or infinite)
            ax.axhspan(mid / np.sqrt(2), mid * np.sqrt(2), color="tab:green", alpha=0.15,
                       label="factor-2 band (Thm F.8)")
    _finish(ax, traj, xscale="log", yscale="log", xlabel="t",
            title="Phase-2 loss rate constant")
    return save(fig, path)


OBSERVABLES = ("loss", *(f"loss_type{k}" for k in TYPE_COLORS), "KQ", "rho23", "R", "B1", "B2",
               "u_norm_sq")
"""The observables the figures draw."""


@serialized
def draw(out: Path) -> list[Path]:
    """Write ``figure1.png`` and ``theory_checks.png`` into the run folder ``out`` from its
    ``trajectory.npz`` (a figure that cannot be drawn is skipped with a warning)."""
    out = Path(out)
    traj = load_trajectory(out / "trajectory.npz", OBSERVABLES)
    return draw_figures([("figure1.png", lambda: figure1(traj, out / "figure1.png")),
                         ("theory_checks.png",
                          lambda: theory_panel(traj, out / "theory_checks.png"))])
