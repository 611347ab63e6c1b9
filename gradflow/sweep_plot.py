"""Aggregate figures of a sweep: mean ± spread across seeds of a summary quantity against a swept
parameter, with an optional predicted power law."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.plotting import save, serialized
from gradflow.sweep import load_results

__all__ = ["aggregate", "sweep_plot"]


def aggregate(out: str | Path, x: str, y: str) -> dict[str, Any]:
    """Group the ok records of a sweep by parameter ``x``; mean, std and count of summary key
    ``y`` (dotted, e.g. ``phase1_end`` or ``final.rho23``) per group.

    Returns
    -------
    dict with ``x`` (sorted values), ``mean``, ``std``, ``n`` (lists).
    """
    records = [r for r in load_results(out) if r.get("status") == "ok"]
    if not records:
        raise ArgumentError(f"{out} has no finished sweep tasks (results.jsonl)")
    if x not in records[0]["config"]:
        raise ArgumentError(f"no swept parameter {x!r}; parameters: {sorted(records[0]['config'])}")
    if y not in records[0]["summary"]:
        raise ArgumentError(
            f"no summary quantity {y!r}; available: {sorted(records[0]['summary'])[:40]}"
        )
    groups: dict[Any, list[float]] = {}
    for r in records:
        value = r["summary"].get(y)
        if isinstance(value, int | float):
            groups.setdefault(r["config"][x], []).append(float(value))
    xs = sorted(groups)
    return {"x": xs, "mean": [float(np.mean(groups[v])) for v in xs],
            "std": [float(np.std(groups[v])) for v in xs], "n": [len(groups[v]) for v in xs]}


@serialized
def sweep_plot(out: str | Path, x: str, y: str, *, reference_slope: float | None = None,
               log: bool = True, path: str | Path | None = None) -> Path:
    """Draw mean ± std of ``y`` against ``x`` (log-log by default); with ``reference_slope``
    also c·x^slope through the geometric mean of the data (e.g. −1 for T1 ∝ 1/m)."""
    from matplotlib.figure import Figure

    data = aggregate(out, x, y)
    xs, mean, std = (np.asarray(data[k], dtype=float) for k in ("x", "mean", "std"))
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    ax.errorbar(xs, mean, yerr=std, fmt="o-", capsize=3,
                label=f"{y} (mean ± std over {min(data['n'])}–{max(data['n'])} seeds)")
    if reference_slope is not None and np.all(xs > 0) and np.all(mean > 0):
        c = np.exp(np.mean(np.log(mean) - reference_slope * np.log(xs)))
        grid = np.geomspace(xs.min(), xs.max(), 50)
        ax.plot(grid, c * grid**reference_slope, "k:", label=f"∝ {x}^{reference_slope:g}")
    if log:
        ax.set(xscale="log", yscale="log")
    ax.set(xlabel=x, ylabel=y)
    ax.legend(fontsize=8)
    target = Path(path) if path else Path(out) / f"sweep_{y.replace('.', '_')}_vs_{x}.png"
    return save(fig, target, dpi=120)
