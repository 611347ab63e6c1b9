"""Figures of the ``even_pairs`` and ``parity_cot`` experiments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gradflow.files import read_json
from gradflow.plotting import draw_figures, field, load_trajectory, save, serialized
from gradflow.trajectory import Trajectory

__all__ = ["draw"]


OBSERVABLES = ("scores", "W_norm", "u_norm", "W_change", "attention_pos", "attention_neg",
               "t_loss", "cos_moving", "cos_first_separable", "cos_saturated", "loss",
               "normalized_margin")
"""The observables the figure draws."""


@serialized
def draw(out: Path) -> list[Path]:
    """Write ``dynamics.png`` (six panels) from a saved run folder (skipped with a warning
    when it cannot be drawn)."""
    out = Path(out)
    traj = load_trajectory(out / "trajectory.npz", OBSERVABLES)
    control_file = out / "frozen_w_control.npz"  # absent when h(W_T1) is not separable
    control = (load_trajectory(control_file, ("cos_fixed",)) if control_file.exists()
               else None)
    summary = read_json(out / "summary.json")
    tau0 = field(summary, out / "summary.json", "config", "tau0")
    name = field(summary, out / "summary.json", "experiment")
    return draw_figures([("dynamics.png",
                          lambda: _dynamics(traj, control, tau0, name, out / "dynamics.png"))])


def _dynamics(traj: Trajectory, control: Trajectory | None, tau0: float, name: str,
              path: Path) -> Path:
    t, o = traj.t, traj.observables
    pos = t > 0
    fig = Figure(figsize=(16, 9))
    axes = fig.subplots(2, 3)

    ax = axes[0, 0]  # phase-1 growth exponents
    early = pos & (t <= 3.0)
    scores = o["scores"].mean(axis=2)
    ax.loglog(t[early], scores[early, 0], label="s_1 (position 1)")
    for ell in range(1, min(3, scores.shape[1])):  # short strings have fewer positions
        ax.loglog(t[early], -scores[early, ell], label=f"−s_{ell + 1}")
    ax.loglog(t[early], o["W_norm"][early], label="‖W‖")
    t_ref = t[early]
    ax.loglog(t_ref, scores[early, 0][0] * t_ref / t_ref[0], "k:", lw=1, label="slope 1")
    ax.loglog(t_ref, o["W_norm"][early][0] * (t_ref / t_ref[0]) ** 2, "k--", lw=1,
              label="slope 2")
    ax.set(xlabel="t", title="phase 1: s_1 ∝ t, −s_ℓ≥2 ∝ t², ‖W‖ ∝ t²")
    ax.legend(fontsize=8)

    ax = axes[0, 1]  # ‖u‖ against ln t
    ax.plot(np.log(t[pos]), o["u_norm"][pos], label="‖u‖")
    ax.plot(np.log(t[pos]), o["W_change"][pos], label="‖W − W(τ0)‖")
    ax.axvline(np.log(tau0), color="gray", ls=":", label="τ0")
    for when in traj.events.get("separable", []):
        ax.axvline(np.log(when), color="black", ls="--", lw=1, label="separable")
    ax.set(xlabel="ln t", title="‖u‖ = Ω(log t); attention keeps moving slowly")
    ax.legend(fontsize=8)

    ax = axes[0, 2]  # attention by position
    positions = np.arange(1, o["attention_pos"].shape[1] + 1)
    ax.bar(positions - 0.2, o["attention_pos"][-1], width=0.4, label="positive strings")
    ax.bar(positions + 0.2, o["attention_neg"][-1], width=0.4, label="negative strings")
    ax.set(xlabel="position", ylabel="mean attention",
           title=f"attention at t = {t[-1]:g} (longest strings)")
    ax.legend(fontsize=8)

    ax = axes[1, 0]  # t·L(t)
    late = t >= 10
    ax.semilogx(t[late], o["t_loss"][late])
    ax.set(xlabel="t", ylabel="t · L(t)", title="loss rate O(1/t): t·L(t) bounded")

    ax = axes[1, 1]  # cosines
    for name, label in (("cos_moving", "cos(u, u*(W_t))"),
                        ("cos_first_separable", "cos(u, u*(W at first separability))"),
                        ("cos_saturated", "cos(u, u*_∞)")):
        ax.semilogx(t[pos], o[name][pos], label=label)
    if control is not None:
        ax.semilogx(control.t, control.observables["cos_fixed"], "k--",
                    label=f"frozen W at t={control.t[0]:g}: cos(u, u*(W_T1))")
    ax.set(xlabel="t", ylim=(0.8, 1.005), title="direction of u")
    ax.legend(fontsize=8)

    ax = axes[1, 2]  # loss and margin
    ax.loglog(t[pos], o["loss"][pos], label="loss")
    ax.set(xlabel="t", title="loss; normalised margin (right)")
    twin = ax.twinx()
    twin.semilogx(t[pos], o["normalized_margin"][pos], color="tab:red", label="margin")
    twin.axhline(0, color="tab:red", lw=0.5)
    ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(name)
    return save(fig, path, dpi=120)
