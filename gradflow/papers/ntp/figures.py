"""Figures of the ``ntp`` experiment: directional convergence with the predicted slopes, the loss
excess with the predicted rate, and the learned attention scores per query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gradflow.files import read_json
from gradflow.papers.ntp import theory
from gradflow.papers.ntp.data import FIXTURE_NAMES
from gradflow.plotting import draw_figures, field, load_arrays, load_trajectory, save, serialized
from gradflow.trajectory import Trajectory

__all__ = ["draw"]


def _slope_guide(ax, t: np.ndarray, y: np.ndarray, slope: float, label: str) -> None:
    """A line of the predicted slope through the last point (log-log)."""
    guide = y[-1] * (t / t[-1]) ** slope
    ax.plot(t, guide, "k:", lw=1, label=label)


def convergence(stage1: Trajectory, stage2: Trajectory, summary: dict, path: Path) -> Path:
    fig = Figure(figsize=(16, 4.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for ax, traj, block in ((ax1, stage1, "W_ov"), (ax2, stage2, "W_kq")):
        keep = traj.t > 0
        t = traj.t[keep]
        for name, slope, color in (("one_minus_cos", theory.COS_SLOPE, "tab:blue"),
                                   ("dist", theory.DIST_SLOPE, "tab:orange")):
            y = traj.observables[f"{name}_{block}"][keep]
            ax.plot(t, y, color=color, label=f"{name.replace('_', ' ')}({block}, {block}*)")
            if np.all(y[t >= t[-1] / 10] > 1e-12):
                _slope_guide(ax, t[t >= t[-1] / 10], y[t >= t[-1] / 10], slope,
                             f"slope {slope:g} (predicted)")
        ax.set(xscale="log", yscale="log", xlabel="t (stage time)",
               title=f"stage {1 if block == 'W_ov' else 2}: direction of {block}")
        ax.legend(fontsize=8)
    keep = stage2.t > 0
    t, excess = stage2.t[keep], stage2.observables["loss_excess"][keep]
    positive = excess > 0
    ax3.plot(t[positive], excess[positive], color="tab:green", label="L − L∞(W_ov)")
    rate = summary["predicted"]["stage2_loss_rate"]
    late = t[positive] >= summary["config"]["fit_from"]
    if late.any():
        t_late = t[positive][late]
        anchor = excess[positive][late][-1]
        ax3.plot(t_late, anchor * np.exp(rate * (t_late - t_late[-1])), "k:",
                 label=f"rate −1/‖W_kq*‖ = {rate:.4f}")
    ax3.set(yscale="log", xlabel="t (stage 2)", title="stage 2: loss excess (linear rate)")
    ax3.legend(fontsize=8)
    return save(fig, path)


def attention_scores(stage2: Trajectory, W_kq_star: np.ndarray, queries: np.ndarray,
                     names: str | None, path: Path) -> Path:
    """Final normalised score columns Ŵ_kq[:, q] against Ŵ_kq*[:, q] for each seen query."""
    W = stage2.block("W_kq")[-1]
    W = W / np.linalg.norm(W)
    star = W_kq_star / np.linalg.norm(W_kq_star)
    fig = Figure(figsize=(4.5 * len(queries), 3.6))
    axes = fig.subplots(1, len(queries), squeeze=False)
    tokens = np.arange(W.shape[0])
    labels = [names[k] if names else str(k) for k in tokens]
    for ax, q in zip(axes[0], queries, strict=True):
        ax.bar(tokens - 0.2, W[:, q], width=0.4, label="trained (normalised)")
        ax.bar(tokens + 0.2, star[:, q], width=0.4, label="W_kq* (normalised)")
        ax.set_xticks(tokens, labels)
        ax.set(title=f"scores of key tokens for query {labels[q]}", xlabel="key token")
        ax.axhline(0, color="black", lw=0.5)
    axes[0, 0].legend(fontsize=8)
    return save(fig, path)


def _max_margin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """W_kq* and the query tokens saved by the run, naming the file when it is unusable."""
    arrays = load_arrays(path, ("W_kq", "queries"), "the max-margin file of an ntp run")
    return arrays["W_kq"], arrays["queries"]


@serialized
def draw(out: Path) -> list[Path]:
    """Write ``convergence.png`` and ``attention_scores.png`` from a saved run folder (a figure
    that cannot be drawn is skipped with a warning)."""
    out = Path(out)
    stage1 = load_trajectory(out / "stage1.npz", ("one_minus_cos_W_ov", "dist_W_ov"))
    stage2 = load_trajectory(out / "stage2.npz", ("one_minus_cos_W_kq", "dist_W_kq",
                                                  "loss_excess"))
    summary_file = out / "summary.json"
    summary = read_json(summary_file)
    for keys in (("predicted", "stage2_loss_rate"), ("config", "fit_from"),
                 ("config", "dataset")):
        field(summary, summary_file, *keys)
    W_kq_star, queries = _max_margin(out / "max_margin.npz")
    names = FIXTURE_NAMES if summary["config"]["dataset"] == "fixture" else None
    return draw_figures([
        ("convergence.png", lambda: convergence(stage1, stage2, summary,
                                                out / "convergence.png")),
        ("attention_scores.png", lambda: attention_scores(stage2, W_kq_star, queries, names,
                                                          out / "attention_scores.png")),
    ])
