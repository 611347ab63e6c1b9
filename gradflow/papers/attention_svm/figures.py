"""Figures of the attention-SVM experiments, drawn from a run folder only: the direction of W(t)
against the SVM of its selection (with the predicted t⁻² slope and the authors' GD horizon),
‖W‖/t, when selections settle, and the global experiment's fractions per dimension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gradflow.papers.attention_svm import theory
from gradflow.plotting import draw_figures, load_arrays, read_summary, save, serialized

__all__ = ["draw_global", "draw_local"]


def convergence(a: dict[str, np.ndarray], summary: dict, path: Path) -> Path:
    t, omc, norm = a["t"], a["one_minus_cos"], a["norm"]
    keep = t > 0
    fig = Figure(figsize=(16, 4.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for row in omc:
        ax1.plot(t[keep], row[keep], color="0.7", lw=0.6)
    median = np.nanmedian(omc, axis=0)
    ax1.plot(t[keep], median[keep], color="tab:blue", lw=2, label="median over instances")
    late = keep & (t >= summary["config"]["fit_from"])
    if late.any() and np.all(median[late] > 0):
        anchor = median[late][-1]
        ax1.plot(t[late], anchor * (t[late] / t[late][-1]) ** theory.COS_SLOPE, "k:",
                 label="slope −2 (predicted)")
    gd = summary["selection"]["gd_horizon"]
    for ax in (ax1, ax2):
        ax.axvline(gd, color="tab:red", lw=0.8, ls="--", label=f"authors' GD end (t = {gd:g})")
    ax1.set(xscale="log", yscale="log", xlabel="t", ylabel="1 − cos(W(t), W^mm(selection(t)))",
            title="direction of W against the SVM of its selection")
    ax1.legend(fontsize=8)
    ax2.plot(t[keep], np.median(norm[:, keep], axis=0), color="tab:green", label="median ‖W‖")
    ax2.fill_between(t[keep], norm[:, keep].min(axis=0), norm[:, keep].max(axis=0),
                     color="tab:green", alpha=0.2, label="range")
    ax2.plot(t[keep], t[keep], "k:", label="‖W‖ = t (predicted late)")
    ax2.set(xscale="log", yscale="log", xlabel="t", ylabel="‖W(t)‖_F",
            title="unit speed: ‖W‖ ∝ t")
    ax2.legend(fontsize=8)
    last = np.sort(a["last_change"])
    ax3.step(np.r_[1e-3, np.maximum(last, 1e-3)], np.r_[0, np.arange(1, last.size + 1)]
             / last.size, where="post", color="tab:purple")
    ax3.axvline(gd, color="tab:red", lw=0.8, ls="--")
    ax3.set(xscale="log", xlabel="t", ylabel="fraction of instances",
            title="selection settled for good by t (last change)")
    return save(fig, path)


@serialized
def draw_local(out: Path) -> list[Path]:
    """``convergence.png`` from a run folder of ``attention_svm_local``."""
    out = Path(out)
    summary = read_summary(out, ("config", "fit_from"), ("selection", "gd_horizon"))
    a = load_arrays(out / "tracks.npz", ("t", "one_minus_cos", "norm", "last_change"))
    return draw_figures([("convergence.png",
                          lambda: convergence(a, summary, out / "convergence.png"))])


def fractions(a: dict[str, np.ndarray], path: Path) -> Path:
    dims = a["dims"]
    x = np.arange(dims.size)
    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    for k, (key, label) in enumerate((("globally_optimal", "globally optimal selection"),
                                      ("locally_optimal", "locally optimal selection"),
                                      ("opt_feasible", "SVM of the optimal tokens feasible"))):
        done = ~a["unfinished"]
        share = [a[key][j][done[j]].mean() if done[j].any() else np.nan for j in x]
        ax1.bar(x + (k - 1) * 0.27, share, width=0.27, label=label)
    ax1.set_xticks(x, [str(d) for d in dims])
    ax1.set(xlabel="d", ylabel="fraction of instances", ylim=(0, 1.05),
            title="limit selection of the flow from W = 0 (finished flows)")
    ax1.legend(fontsize=8)
    for j in range(dims.size):
        done = ~a["unfinished"][j]
        values = a["one_minus_cos_final"][j][done]
        ax2.scatter(np.full(values.size, j), values, s=10,
                    c=np.where(a["globally_optimal"][j][done], "tab:blue", "tab:orange"))
    ax2.set_xticks(x, [str(d) for d in dims])
    ax2.set(yscale="log", xlabel="d", ylabel="1 − cos to the SVM of the limit selection",
            title="blue: globally optimal, orange: only locally")
    return save(fig, path)


@serialized
def draw_global(out: Path) -> list[Path]:
    """``selections.png`` from a run folder of ``attention_svm_global``."""
    out = Path(out)
    read_summary(out, ("by_d",))
    a = load_arrays(out / "selections.npz", ("dims", "globally_optimal", "locally_optimal",
                                         "opt_feasible", "one_minus_cos_final",
                                         "unfinished"))
    return draw_figures([("selections.png", lambda: fractions(a, out / "selections.png"))])
