"""The result of :func:`gradflow.simulate`: recorded times, states, observables and events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.checkpoint import load_npz, save_npz
from gradflow.errors import ArgumentError, CheckpointError
from gradflow.layout import Layout

__all__ = ["Trajectory", "to_jsonable"]

FORMAT = "gradflow-trajectory-1"


def to_jsonable(value: Any) -> Any:
    """Convert NumPy scalars and arrays (recursively) to plain JSON types; NaN/inf to strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class Trajectory:
    """Recorded states of a gradient flow.

    Attributes
    ----------
    t : ndarray, shape (n_rec,)
        Record times, in t whatever the clock.
    theta : ndarray, shape (n_rec, P), or None
        θ at each record time (None when the run did not store states).
    observables : dict of str to ndarray, each shape (n_rec, ...)
    events : dict of str to ndarray
        Crossing times (in t) of each named event; empty when it never crossed.
    stats : dict
        Solver statistics: ``nfev``, ``njev``, ``nlu``, ``steps``, ``wall_time``, ``method``,
        ``clock``, ``rtol``, ``atol``, ``status`` and ``resumed`` (segments replayed from a
        checkpoint).
    config : dict
        Everything that made the run (simulate's arguments and the caller's ``config``).
    layout : Layout or None
        Names and shapes of the blocks of θ.
    """

    t: np.ndarray
    theta: np.ndarray | None
    observables: dict[str, np.ndarray] = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    layout: Layout | None = None

    def __repr__(self) -> str:
        t_end = self.t[-1] if self.t.size else float("nan")
        return (
            f"Trajectory({self.t.size} records to t={t_end:g}, observables={list(self.observables)}"
            f", events={ {k: v.tolist() for k, v in self.events.items()} })"
        )

    @property
    def final_theta(self) -> np.ndarray:
        """θ at the last record time."""
        if self.theta is None:
            raise ArgumentError("this trajectory stored no states (store_theta=False)")
        return self.theta[-1]

    def block(self, name: str) -> np.ndarray:
        """One parameter block over time, shape (n_rec, *block_shape)."""
        if self.theta is None or self.layout is None:
            raise ArgumentError("this trajectory stored no states or no layout")
        return self.layout.block(self.theta, name)

    def with_observables(self, **derived: np.ndarray) -> Trajectory:
        """A copy with further observables computed after the run (``self`` is unchanged).

        Parameters
        ----------
        **derived : ndarray, shape (n_rec, ...)
            One value per record time; a name already recorded is an error.
        """
        for name, values in derived.items():
            if name in self.observables:
                raise ArgumentError(f"observable {name!r} is already recorded")
            if np.shape(values)[:1] != self.t.shape:
                raise ArgumentError(f"derived observable {name!r} has shape "
                                    f"{np.shape(values)}; needs {self.t.size} records first")
        return replace(self, observables={**self.observables, **derived})

    def value_at(self, name: str, t: float) -> np.ndarray:
        """The recorded observable ``name`` at the record time nearest to ``t``."""
        if name not in self.observables:
            raise ArgumentError(f"no observable {name!r}; recorded: {list(self.observables)}")
        return self.observables[name][int(np.argmin(np.abs(self.t - t)))]

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary: events, stats, config, layout and final observables."""
        final = {k: v[-1] for k, v in self.observables.items() if v.size}
        return to_jsonable(
            {
                "format": FORMAT,
                "t_final": float(self.t[-1]) if self.t.size else None,
                "n_records": int(self.t.size),
                "events": {k: v for k, v in self.events.items()},
                "final_observables": final,
                "stats": self.stats,
                "config": self.config,
                "layout": self.layout.to_json() if self.layout is not None else None,
            }
        )

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``, atomically, never pickled) and a JSON summary beside it
        (``.json``).

        Returns
        -------
        Path of the ``.npz`` file.

        Raises
        ------
        ArgumentError
            An observable or event holds Python objects (it could only be stored pickled);
            the message names it.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"t": self.t}
        if self.theta is not None:
            arrays["theta"] = self.theta
        for k, v in self.observables.items():
            arrays[f"obs/{k}"] = np.asarray(v)
        for k, v in self.events.items():
            arrays[f"event/{k}"] = np.asarray(v, dtype=float)
        summary = self.summary()
        arrays["meta"] = np.array(json.dumps(summary))
        save_npz(path, arrays, compressed=True)
        path.with_suffix(".json").write_text(json.dumps(summary, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        """Read a file written by :meth:`save`; never unpickles.

        Raises
        ------
        CheckpointError
            If the file is missing, corrupt, or not a gradflow trajectory.
        """
        path = Path(path)
        try:
            arrays = load_npz(path, "trajectory")
        except FileNotFoundError:
            raise CheckpointError(f"no trajectory file at {path}") from None
        try:
            meta = json.loads(str(arrays.pop("meta")))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            t = arrays.pop("t")
        except Exception as exc:
            raise CheckpointError(f"{path} is not a gradflow trajectory ({exc})") from exc
        theta = arrays.pop("theta", None)
        observables = {k[4:]: v for k, v in arrays.items() if k.startswith("obs/")}
        events = {k[6:]: v for k, v in arrays.items() if k.startswith("event/")}
        layout = Layout.from_json(meta["layout"]) if meta.get("layout") else None
        return cls(t=t, theta=theta, observables=observables, events=events,
                   stats=meta.get("stats", {}), config=meta.get("config", {}), layout=layout)
