"""Aggregate figures of a sweep: mean ± spread across seeds of a summary quantity against a swept
parameter, with an optional predicted power law."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gradflow import folders
from gradflow.errors import ArgumentError
from gradflow.plotting import save, serialized
from gradflow.sweep import SweepWarning, finished

__all__ = ["aggregate", "sweep_plot"]


def _manifest(out: Path) -> dict[str, Any]:
    """The folder's ``sweep.json`` (which tasks belong to the sweep), validated."""
    path = out / folders.SWEEP_FILE
    if not path.is_file():
        raise ArgumentError(f"{out} holds no {folders.SWEEP_FILE}: not a sweep folder")
    try:
        manifest = folders.read_json(path)
    except ValueError as exc:
        raise ArgumentError(f"{path} is unreadable ({exc}): cannot tell which results belong "
                            "to the sweep") from None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("keys"), list)
            and all(isinstance(k, str) for k in manifest["keys"])):
        raise ArgumentError(f"{path} is not a gradflow sweep record (no list of task keys)")
    return manifest


def _is_number(value: Any) -> bool:
    """A plottable summary value (booleans count as 0/1; non-finite numbers are saved as
    strings, so they are not)."""
    return isinstance(value, int | float)


def aggregate(out: str | Path, x: str, y: str) -> dict[str, Any]:
    """Group the finished tasks of a sweep by parameter ``x``; mean, std and count of summary
    key ``y`` (dotted, e.g. ``phase1_end`` or ``final.rho23``) per group.

    Only the tasks listed in ``sweep.json`` count, one (the last ``ok``) record each. The
    tasks of a group may differ only in the sweep's seed: a second grid parameter that varies
    within a group is an :class:`ArgumentError` (it would be averaged as if it were a seed).
    Tasks whose ``y`` is not a number (e.g. ``phase1_end`` is null when phase 1 did not end
    before ``t_end``) are left out of their group, counted in ``skipped`` and warned about.

    Returns
    -------
    dict with ``x`` (sorted values), ``mean``, ``std``, ``n`` (lists) and ``skipped``
    (``{x value: number of tasks without a numeric y}``).
    """
    out = Path(out)
    manifest = _manifest(out)
    done = finished(out)
    records = [done[k] for k in dict.fromkeys(manifest["keys"]) if k in done]
    if not records:
        raise ArgumentError(f"{out} has no finished sweep tasks (results.jsonl)")
    params = sorted(set().union(*(r["config"] for r in records)))
    if any(x not in r["config"] for r in records):
        raise ArgumentError(f"no swept parameter {x!r}; parameters: {params}")
    quantities = sorted(set().union(*(r["summary"] for r in records)))
    if y not in quantities:
        raise ArgumentError(f"no summary quantity {y!r}; available: {quantities[:40]}")
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        value = r["config"][x]
        if isinstance(value, list | dict):
            raise ArgumentError(f"parameter {x!r} is not a single number or name ({value!r}); "
                                "sweep-plot needs a scalar parameter for its x axis")
        groups.setdefault(value, []).append(r)
    seed_key = manifest.get("seed_key", "<unknown>")
    for value, members in groups.items():
        varying = sorted(k for k in params if k not in (x, seed_key)
                         and len({repr(m["config"].get(k)) for m in members}) > 1)
        if seed_key == "<unknown>" and len(varying) <= 1:  # a sweep.json that predates seed_key
            continue
        if varying:
            raise ArgumentError(
                f"the tasks with {x} = {value!r} also differ in {varying}; sweep-plot averages "
                f"over the seeds ({seed_key!r}) only: plot a sweep whose grid varies {x!r} "
                "alone, or each value of the other parameter in a sweep of its own")
    values = {v: [float(r["summary"][y]) for r in members if _is_number(r["summary"].get(y))]
              for v, members in groups.items()}
    skipped = {v: len(groups[v]) - len(values[v]) for v in groups
               if len(groups[v]) > len(values[v])}
    if not any(values.values()):
        seen = sorted({repr(r["summary"].get(y)) for r in records})
        raise ArgumentError(
            f"no finished task has a numeric {y!r} (values: {', '.join(seen)}); e.g. "
            "phase1_end is null when phase 1 did not end before t_end: nothing to plot")
    if skipped:
        warnings.warn(f"{sum(skipped.values())} of {len(records)} tasks have no numeric {y!r} "
                      f"and are left out (at {x} = {', '.join(map(repr, sorted(skipped)))})",
                      SweepWarning, stacklevel=2)
    xs = sorted(v for v in values if values[v])
    return {"x": xs, "mean": [float(np.mean(values[v])) for v in xs],
            "std": [float(np.std(values[v])) for v in xs], "n": [len(values[v]) for v in xs],
            "skipped": skipped}


@serialized
def sweep_plot(out: str | Path, x: str, y: str, *, reference_slope: float | None = None,
               log: bool = True, path: str | Path | None = None) -> Path:
    """Draw mean ± std of ``y`` against ``x`` (log-log by default); with ``reference_slope``
    also c·x^slope through the geometric mean of the data (e.g. −1 for T1 ∝ 1/m)."""
    from matplotlib.figure import Figure

    data = aggregate(out, x, y)
    if not all(_is_number(v) for v in data["x"]):
        raise ArgumentError(f"parameter {x!r} takes values {data['x']}: not numbers to plot")
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
