"""Figures of the ``cooccurrence`` experiment: paper Figure 1 and a panel of theory checks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gradflow.theory import cooccurrence as theory
from gradflow.trajectory import Trajectory

__all__ = ["draw"]

TYPE_COLORS = {1: "tab:orange", 2: "tab:green", 3: "tab:red", 4: "tab:purple"}


def _phase_line(ax, traj: Trajectory) -> None:
    if traj.events["phase1_end"].size:
        ax.axvline(traj.events["phase1_end"][0], color="black", ls="--", lw=1.2,
                   label="end of Phase 1")


def figure1(traj: Trajectory, path: Path) -> Path:
    """(a) attention score correlations KQ(key, query) over log t; (b) total and per-type
    losses; (c) the losses over Phase 1 on linear axes, where the one-target types rise then
    fall. The dashed line is the Phase-1 end (first time every sample is correct)."""
    pos = traj.t > 0
    t, obs = traj.t[pos], {k: v[pos] for k, v in traj.observables.items()}
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(16, 4.4))
    names = ["μ1", "μ2", "μ3"]
    for (i, j), style in (((1, 0), "-"), ((0, 1), "--"), ((2, 0), "-"), ((2, 1), "--")):
        ax_a.plot(t, obs["KQ"][:, i, j], style, label=f"KQ({names[i]}, {names[j]})")
    ax_a.set(xscale="log", xlabel="t (flow time = GD steps × lr)",
             ylabel="μ_iᵀ W_Kᵀ W_Q μ_j", title="(a) attention score correlations")
    _phase_line(ax_a, traj)
    ax_a.legend(fontsize=8)
    ax_b.plot(t, obs["loss"], color="tab:blue", lw=2, label="total")
    for k, color in TYPE_COLORS.items():
        ax_b.plot(t, obs[f"loss_type{k}"], color=color, label=f"type {k}")
    ax_b.set(xscale="log", yscale="log", xlabel="t", ylabel="training loss",
             title="(b) total and per-type losses")
    _phase_line(ax_b, traj)
    ax_b.legend(fontsize=8)
    t1 = traj.events["phase1_end"]
    early = traj.t <= (2.0 * t1[0] if t1.size else traj.t[-1])
    ax_c.plot(traj.t[early], traj.observables["loss"][early], color="tab:blue", lw=2,
              label="total")
    for k, color in TYPE_COLORS.items():
        ax_c.plot(traj.t[early], traj.observables[f"loss_type{k}"][early], color=color,
                  label=f"type {k}")
    ax_c.set(xlabel="t", ylabel="training loss", title="(c) Phase 1, linear axes")
    _phase_line(ax_c, traj)
    ax_c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def theory_panel(traj: Trajectory, path: Path) -> Path:
    """Balancing ratios with their predicted bands, and the Phase-2 rate constant."""
    pos = traj.t > 0
    t, obs = traj.t[pos], {k: v[pos] for k, v in traj.observables.items()}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, name, band in ((axes[0, 0], "rho23", theory.RHO23_BAND),
                           (axes[0, 1], "R", theory.R_BAND)):
        ax.plot(t, obs[name], color="black")
        ax.axhspan(*band, color="tab:green", alpha=0.15, label=f"predicted {list(band)}")
        ax.set(xscale="log", xlabel="t", title={"rho23": "ρ23 = s_I2/s_I3",
                                                  "R": "R = (s_I234 − s_I1)/(s_I1 − s_I2)"}[name])
        _phase_line(ax, traj)
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    ax.plot(t, obs["B1"], label="B1 = s_all/(s_I234 − s_I1)")
    ax.plot(t, obs["B2"], label="B2 = s_all/(s_I1 − s_I2)")
    ax.set(xscale="log", xlabel="t", title="B1, B2 = O(1)")
    _phase_line(ax, traj)
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    c = obs["rate_constant"] if "rate_constant" in obs else theory.rate_constant(
        t, obs["loss"], obs["u_norm_sq"])
    ax.plot(t, c, color="black", label="1/(L̂·t·‖u‖²)")
    window = (t >= 1) & (t <= 1e6)
    if window.any():
        mid = np.sqrt(c[window].min() * c[window].max())
        ax.axhspan(mid / np.sqrt(2), mid * np.sqrt(2), color="tab:green", alpha=0.15,
                   label="factor-2 band (Thm F.8)")
    ax.set(xscale="log", yscale="log", xlabel="t", title="Phase-2 loss rate constant")
    _phase_line(ax, traj)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def draw(traj: Trajectory, out: Path) -> list[Path]:
    """Write ``figure1.png`` and ``theory_checks.png`` into ``out``."""
    return [figure1(traj, out / "figure1.png"), theory_panel(traj, out / "theory_checks.png")]
