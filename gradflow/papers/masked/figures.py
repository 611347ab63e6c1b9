"""Figures of the masked-pretraining experiments, drawn from a run folder only: attention maps
per cluster at several times, the own-area mass and the loss gap against t on log axes, FP and
PP correlations with the phase boundaries marked, and t_half against N, C, γ and K with the
mean-field estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gradflow.papers.masked import theory
from gradflow.plotting import (
    draw_figures,
    load_arrays,
    load_trajectory,
    read_summary,
    save,
    serialized,
)

__all__ = ["draw_imbalanced", "draw_ring", "draw_scaling"]

PHASE_STYLE = {"t_over": ("tab:red", "t_over"), "t_cross": ("tab:purple", "t_cross"),
               "t_half": ("k", "t_half"), "t_0.9": ("0.5", "t_0.9"), "t_0.99": ("0.7", "t_0.99")}


def _mark(ax, times: dict) -> None:
    for name, value in times.items():
        if value and name in PHASE_STYLE:
            color, label = PHASE_STYLE[name]
            ax.axvline(value, color=color, lw=0.8, ls="--", label=f"{label} = {value:.3g}")


def attention_maps(a: dict[str, np.ndarray], path: Path) -> Path:
    maps, times = a["maps"], a["map_times"]
    K = maps.shape[1]
    fig = Figure(figsize=(2.3 * len(times), 2.3 * K + 0.6))
    axes = fig.subplots(K, len(times), squeeze=False)
    for j, t in enumerate(times):
        for k in range(K):
            ax = axes[k, j]
            ax.imshow(maps[j, k], vmin=0, vmax=max(float(maps[j].max()), 1e-12), cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(f"t = {t:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"cluster {k}\nquery p", fontsize=8)
    fig.suptitle("mask-averaged attention E[α_pq | p masked] (rows: query p, columns: key q)",
                 fontsize=10)
    return save(fig, path)


def convergence(traj, summary: dict, path: Path) -> Path:
    t, obs = traj.t, traj.observables
    keep = t > 0
    fig = Figure(figsize=(11, 4.4))
    ax1, ax2 = fig.subplots(1, 2)
    own = obs["own_mass"][:, 0, :]
    for k in range(own.shape[1]):
        ax1.plot(t[keep], 1 - own[keep, k], lw=1, label=f"cluster {k}")
    ref = 1 - own[keep].mean(axis=1)
    ax1.plot(t[keep], ref[-1] * np.sqrt(t[keep][-1] / t[keep]), "k:", label="∝ t^(−1/2)")
    ax1.set(xscale="log", yscale="log", xlabel="t", ylabel="1 − A_own",
            title="own-area attention deficit (query 0)")
    _mark(ax1, summary["times"])
    ax1.legend(fontsize=7)
    if "loss_gap" in obs:
        gap = obs["loss_gap"]
        ax2.plot(t[keep], gap[keep], color="tab:blue", label="L − L*")
        ax2.plot(t[keep], gap[keep][-1] * t[keep][-1] / t[keep], "k:", label="∝ 1/t")
        ax2.set(xscale="log", yscale="log", xlabel="t", ylabel="L − L*",
                title=f"loss gap to the floor L* = {summary['loss']['floor']:.5g}")
        ax2.legend(fontsize=8)
    return save(fig, path)


def correlations(traj, a: dict[str, np.ndarray], summary: dict, path: Path) -> Path:
    t = traj.t
    keep = t > 0
    fig = Figure(figsize=(16, 4.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    B, C, fi = a["B0"], a["C0"], a["feature_index"]
    own_features = fi[:, 0]
    for k, f in enumerate(own_features):
        ax1.plot(t[keep], B[keep, f], lw=1.2, label=f"own area, cluster {k}")
    for f in sorted(set(fi.ravel().tolist()) - set(own_features.tolist())):
        ax1.plot(t[keep], B[keep, f], lw=0.6, color="0.6")
    ax1.plot([], [], lw=0.6, color="0.6", label="other areas")
    ax1.set(xscale="log", xlabel="t", ylabel="B_{0,(k,j)}", title="FP correlations of query 0")
    _mark(ax1, summary["times"])
    ax1.legend(fontsize=7)
    P = C.shape[1]
    dist = theory.ring_distance(P)
    for r in range(P // 2 + 1):
        ax2.plot(t[keep], C[keep][:, dist == r].mean(axis=1), label=f"distance {r}")
    ax2.set(xscale="log", xlabel="t", ylabel="C_{0q}", title="PP correlations by ring distance")
    _mark(ax2, summary["times"])
    ax2.legend(fontsize=7)
    ax3.plot(t[keep], a["diversity"][keep], color="tab:green", label="diversity")
    ax3.axhline(summary["diversity"]["ideal_area_wide"], color="k", ls=":",
                label="exact area-wide attention")
    ax3.set(xscale="log", xlabel="t", ylabel="Div", title="attention diversity (all queries)")
    _mark(ax3, summary["times"])
    ax3.legend(fontsize=7)
    return save(fig, path)


@serialized
def draw_ring(out: Path) -> list[Path]:
    """``attention_maps.png``, ``convergence.png`` and ``correlations.png`` from a run folder
    of ``masked_ring``."""
    out = Path(out)
    summary = read_summary(out, ("times",), ("loss", "floor"), ("diversity", "ideal_area_wide"))
    a = load_arrays(out / "ring.npz", ("maps", "map_times", "B0", "C0", "feature_index",
                                   "diversity"))
    traj = load_trajectory(out / "query0.npz", ("own_mass", "loss"))
    return draw_figures([
        ("attention_maps.png", lambda: attention_maps(a, out / "attention_maps.png")),
        ("convergence.png", lambda: convergence(traj, summary, out / "convergence.png")),
        ("correlations.png", lambda: correlations(traj, a, summary, out / "correlations.png")),
    ])


def phases(out: Path, summary: dict, path: Path) -> Path:
    rows = summary["rows"]
    fig = Figure(figsize=(5.2 * len(rows), 8))
    axes = fig.subplots(2, len(rows), squeeze=False)
    for j, r in enumerate(rows):
        name = f"Cg{r['C_global']}_gamma{round(r['gamma'] * 100)}_local.npz"
        traj = load_trajectory(out / name, ("b", "masses"))
        t, keep = traj.t, traj.t > 0
        b, m = traj.observables["b"], traj.observables["masses"]
        times = {"t_over": r["t_over"], "t_cross": r["t_cross"], "t_half": r["t_half"]}
        top, bottom = axes[0, j], axes[1, j]
        labels = ["own area (mass: given it is visible)", *[
            f"{len(areas)} area{'s' * (len(areas) > 1)} of {size} patches"
            for areas, size in r["groups"][1:]]]
        for g in range(b.shape[1]):
            top.plot(t[keep], b[keep, g], label=labels[g])
            bottom.plot(t[keep], m[keep, g], label=labels[g])
        top.set(xscale="log", xlabel="t", ylabel="FP correlation b",
                title=f"P = {r['P']}, C_g = {r['C_global']}, γ = {r['gamma']:g}: Δ0 = "
                      f"{r['delta0']:+.4f}, {r['phases']} phases")
        bottom.set(xscale="log", xlabel="t", ylabel="attention mass per area (unmasked patches)")
        for ax in (top, bottom):
            _mark(ax, times)
            ax.legend(fontsize=7)
    return save(fig, path)


@serialized
def draw_imbalanced(out: Path) -> list[Path]:
    """``phases.png`` from a run folder of ``masked_imbalanced``."""
    out = Path(out)
    summary = read_summary(out, ("rows",))
    return draw_figures([("phases.png", lambda: phases(out, summary, out / "phases.png"))])


def scaling(summary: dict, path: Path) -> Path:
    rows, ring_rows = summary["rows"], summary["ring_rows"]
    fig = Figure(figsize=(16, 4.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    by_n = [r for r in rows if r["C"] == 8 and r["gamma"] == 0.5 and r["t_half"]]
    ax1.plot([r["N"] for r in by_n], [r["t_half"] for r in by_n], "o-", label="flow")
    ax1.plot([r["N"] for r in by_n], [r["mean_field"] for r in by_n], "s--", label="mean field")
    ax1.set(xscale="log", yscale="log", xlabel="N (areas, C = 8, γ = ½)", ylabel="t_half",
            title="time to own-area mass ½ against N")
    ax1.legend(fontsize=8)
    labels = [f"N={r['N']} C={r['C']} γ={r['gamma']:g}" for r in rows if r["t_half"]]
    ratios = [r["ratio"] for r in rows if r["t_half"]]
    ax2.barh(range(len(ratios)), ratios, color="tab:blue")
    ax2.set_yticks(range(len(ratios)), labels, fontsize=7)
    ax2.axvline(1, color="k", lw=0.8)
    ax2.set(xlabel="t_half / mean-field estimate", title="the estimate per design")
    ks = [r for r in ring_rows if r["t_half"]]
    ax3.plot([r["K"] for r in ks], [r["t_half"] for r in ks], "o-", label="flow (ring)")
    ax3.plot([r["K"] for r in ks], [r["formula"] for r in ks], "s--", label="1/(γπ_k a_t)")
    ax3.set(xscale="log", yscale="log", xlabel="K (clusters)", ylabel="t_half",
            title="the factor K")
    ax3.legend(fontsize=8)
    return save(fig, path)


@serialized
def draw_scaling(out: Path) -> list[Path]:
    """``scaling.png`` from a run folder of ``masked_scaling``."""
    out = Path(out)
    summary = read_summary(out, ("rows",), ("ring_rows",))
    return draw_figures([("scaling.png", lambda: scaling(summary, out / "scaling.png"))])
