"""Figure helpers shared by the experiments: thread-safe drawing and saving.

Matplotlib's object-oriented API (``matplotlib.figure.Figure``, no pyplot state) is used
everywhere, but its font and text parsers are still not thread-safe, and sweeps may run
experiments in threads (e.g. a dask cluster with ``processes=False``). Every public drawing
function is therefore wrapped in :func:`serialized`, which holds one process-wide lock.

Figures come after the results: a run's trajectory and summary are written first, and a
figure that cannot be drawn (a degenerate but valid run, such as a zero initialisation whose
curves are all 0 on a log axis) is skipped with a printed warning by :func:`draw_figures`,
never turning a finished run into a failure. Log axes without a positive finite value are
drawn linear, with a note (:func:`save`).
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gradflow.errors import CheckpointError, GradflowError
from gradflow.files import read_json
from gradflow.trajectory import Trajectory

__all__ = ["FIGURE_LOCK", "draw_figures", "field", "load_arrays", "load_trajectory", "save",
           "serialized"]

FIGURE_LOCK = threading.RLock()
F = TypeVar("F", bound=Callable[..., Any])


def serialized(function: F) -> F:
    """Run ``function`` while holding :data:`FIGURE_LOCK`."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with FIGURE_LOCK:
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _has_positive(ax: Any, axis: str) -> bool:
    """Whether a line of ``ax`` has a positive finite data coordinate on ``axis`` ("x" or "y");
    lines drawn in axes coordinates on that axis (``axvline`` for "y") do not count."""
    for line in ax.get_lines():
        in_data = line.get_transform().contains_branch_seperately(ax.transData)
        if not in_data[0 if axis == "x" else 1]:
            continue
        values = np.asarray(line.get_xdata() if axis == "x" else line.get_ydata(), dtype=float)
        if np.any(np.isfinite(values) & (values > 0)):
            return True
    return False


def _linear_where_nothing_positive(fig: Any) -> None:
    """Make a log axis linear (with a note) when none of its lines has a positive finite value:
    Matplotlib cannot place log ticks there (e.g. a loss that is exactly 0, a ratio that is
    infinite at every record)."""
    for ax in fig.axes:
        for axis in ("x", "y"):
            scale = ax.get_xscale() if axis == "x" else ax.get_yscale()
            if scale == "log" and ax.get_lines() and not _has_positive(ax, axis):
                (ax.set_xscale if axis == "x" else ax.set_yscale)("linear")
                ax.text(0.5, 0.5, f"no positive finite values for a log {axis} axis",
                        transform=ax.transAxes, ha="center", va="center", color="gray")


def save(fig: Any, path: str | Path, dpi: int = 130) -> Path:
    """Tight layout, then write ``fig`` to ``path`` (atomically: a failed write leaves no
    partial file)."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*log-scaled")  # handled just below
        _linear_where_nothing_positive(fig)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
            tmp.replace(path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (
                    None, str(tmp)):
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
            raise
    return path


def draw_figures(figures: Sequence[tuple[str, Callable[[], Path]]]) -> list[Path]:
    """Draw each ``(name, draw)``; a figure whose drawing fails is skipped with a warning on
    stderr (the run's results are already written). Errors of the environment (``OSError``,
    ``MemoryError``) and gradflow's own errors still propagate.

    Returns
    -------
    list of Path
        The figures written.
    """
    written = []
    for name, draw in figures:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # inf/NaN curves are skipped
                warnings.filterwarnings("ignore", message=".*no positive values")  # see save
                written.append(draw())
        except (OSError, MemoryError, GradflowError):
            raise
        except Exception as exc:  # a degenerate run: keep the results, skip the figure
            print(f"gradflow: warning: figure {name} was not drawn ({type(exc).__name__}: "
                  f"{exc})", file=sys.stderr)
    return written


def load_trajectory(path: str | Path, observables: Sequence[str] = ()) -> Trajectory:
    """``Trajectory.load(path)``, checking that the figures' ``observables`` are present.

    Raises
    ------
    CheckpointError
        Naming the file and the missing observables.
    """
    traj = Trajectory.load(path)
    missing = [name for name in observables if name not in traj.observables]
    if missing:
        raise CheckpointError(
            f"{path} has no observable{'s' if len(missing) > 1 else ''} {missing}: not a "
            "trajectory of this experiment (the figures need them)"
        )
    return traj


def load_arrays(path: str | Path, keys: Sequence[str], what: str = "a file of this experiment"
                ) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` file ``path`` (no pickle).

    Raises
    ------
    CheckpointError
        Naming the file when it is missing, damaged or lacks a key (``what`` it should be).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in keys}
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not {what} ({exc})") from None


def field(data: Mapping[str, Any], path: str | Path, *keys: str) -> Any:
    """``data[keys[0]][keys[1]]...`` of a JSON file read from ``path``, naming the file and the
    key when it is missing."""
    value: Any = data
    for i, key in enumerate(keys):
        if not isinstance(value, Mapping) or key not in value:
            raise CheckpointError(
                f"{path} has no {'.'.join(keys[: i + 1])!r}: not a summary of this experiment"
            )
        value = value[key]
    return value


@serialized
def panel_figure(path: Path, panels: Sequence[Callable[[Any], None]]) -> list[Path]:
    """Draw ``panels``: a list of callables, each drawing into one axis (the figure is skipped
    with a warning when it cannot be drawn)."""
    from matplotlib.figure import Figure

    def draw_all() -> Path:
        fig = Figure(figsize=(5.4 * len(panels), 4.3))
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, draw in zip(axes[0], panels, strict=True):
            draw(ax)
        return save(fig, path, dpi=120)

    return draw_figures([(path.name, draw_all)])


def read_summary(out: Path, *keys: tuple[str, ...]) -> dict[str, Any]:
    """The run's summary.json, checked to hold ``keys`` (each a path of nested keys)."""
    summary = read_json(out / "summary.json")
    for path in keys:
        field(summary, out / "summary.json", *path)
    return summary
