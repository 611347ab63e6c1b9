"""Integrate dθ/dt = −R·P(∇L(θ)) with SciPy's adaptive ODE solvers: :func:`simulate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import integrate, optimize

from gradflow.checkpoint import CheckpointStore, fingerprint
from gradflow.errors import ArgumentError, NonFiniteError, SolverError
from gradflow.events import Event
from gradflow.objective import Objective
from gradflow.trajectory import Trajectory, to_jsonable
from gradflow.vector_field import Clock, Normalize, RateSchedule, VectorField

__all__ = ["METHODS", "log_grid", "simulate"]

METHODS: dict[str, type[integrate.OdeSolver]] = {
    "RK45": integrate.RK45,
    "RK23": integrate.RK23,
    "DOP853": integrate.DOP853,
    "Radau": integrate.Radau,
    "BDF": integrate.BDF,
    "LSODA": integrate.LSODA,
}
"""The ``scipy.integrate`` solver classes ``simulate`` accepts, by name."""

IMPLICIT = {"Radau", "BDF", "LSODA"}
MAX_DENSE_JACOBIAN_STATE = 2000
"""Largest state for which an implicit method may build a dense finite-difference Jacobian
(2000² float64 = 32 MB). At the co-occurrence paper size (57,344 entries) LSODA's dense
Jacobian would need 24.5 GiB."""
CHECKPOINT_SECONDS = 60.0
"""With ``checkpoint=``, also save when this much wall time passed since the last save."""


def log_grid(
    t_end: float, t_start: float = 0.0, per_decade: int = 10, t_min: float | None = None
) -> np.ndarray:
    """A log-spaced record grid from ``t_start`` to ``t_end`` (both included).

    Parameters
    ----------
    t_end : float
    t_start : float
        When 0, the grid is 0 followed by log-spaced points from ``t_min``.
    per_decade : int
        Points per decade of t.
    t_min : float, optional
        First positive point when ``t_start == 0``; default ``min(1e-3, t_end/1e3)``.

    Returns
    -------
    ndarray, shape (k,), strictly increasing.
    """
    if not (np.isfinite(t_end) and t_end > t_start >= 0):
        raise ArgumentError(f"log_grid needs 0 <= t_start < t_end, got {t_start}, {t_end}")
    if per_decade < 1:
        raise ArgumentError(f"per_decade must be >= 1, got {per_decade}")
    lo = t_start if t_start > 0 else (t_min if t_min is not None else min(1e-3, t_end / 1e3))
    if not 0 < lo < t_end:
        raise ArgumentError(f"t_min must lie in (0, t_end={t_end:g}), got {lo}")
    n = max(2, int(np.ceil(np.log10(t_end / lo) * per_decade)) + 1)
    grid = np.geomspace(lo, t_end, n)
    grid[-1] = t_end
    return grid if t_start > 0 else np.concatenate([[0.0], grid])


def _check_grid(record_at: Any, t_start: float, t_end: float) -> np.ndarray:
    if record_at is None:
        return log_grid(t_end, t_start)
    grid = np.asarray(record_at, dtype=float).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ArgumentError("record_at must be a non-empty array of finite times")
    if np.any(np.diff(grid) <= 0):
        raise ArgumentError("record_at must be strictly increasing")
    if grid[0] < t_start or grid[-1] > t_end:
        raise ArgumentError(
            f"record_at must lie within [t_start={t_start:g}, t_end={t_end:g}], "
            f"got [{grid[0]:g}, {grid[-1]:g}]"
        )
    # the start and end states are always recorded
    return np.unique(np.concatenate([[t_start], grid, [t_end]]))


def _decade(t: float) -> float:
    return np.floor(np.log10(t)) if t > 0 else -np.inf


class _Recorder:
    """Collects θ and observables at the record grid; hands out finished segments."""

    def __init__(self, observables: Mapping[str, Callable], store_theta: bool):
        self.observables = dict(observables)
        self.store_theta = store_theta
        self.rows: dict[str, list[Any]] = {"t": [], **{f"obs/{k}": [] for k in observables}}
        if store_theta:
            self.rows["theta"] = []
        self.saved = 0  # rows already written to checkpoint segments

    def __len__(self) -> int:
        return len(self.rows["t"])

    def add(self, t: float, theta: np.ndarray) -> None:
        self.rows["t"].append(float(t))
        if self.store_theta:
            self.rows["theta"].append(np.array(theta, dtype=float))
        for name, fn in self.observables.items():
            self.rows[f"obs/{name}"].append(np.asarray(fn(theta)))

    def extend(self, segment: Mapping[str, np.ndarray]) -> None:
        for key, values in segment.items():
            self.rows[key].extend(list(values))
        self.saved = len(self)

    def unsaved(self) -> dict[str, np.ndarray] | None:
        if self.saved == len(self):
            return None
        out = {k: np.asarray(v[self.saved :]) for k, v in self.rows.items()}
        self.saved = len(self)
        return out

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
        t = np.asarray(self.rows["t"], dtype=float)
        theta = np.asarray(self.rows["theta"]) if self.store_theta else None
        obs = {k: np.asarray(self.rows[f"obs/{k}"]) for k in self.observables}
        return t, theta, obs


class _Run:
    """One call of :func:`simulate`: the solver loop with recording, events and checkpoints."""

    def __init__(self, objective, theta0, grid, clock, method, solver_kwargs, schedule, normalize,
                 recorder, events, breaks, t_start, t_end, store, progress, config):
        self.objective = objective
        self.clock = clock
        self.method = method
        self.solver_kwargs = solver_kwargs
        self.schedule = schedule
        self.normalize = normalize
        self.recorder = recorder
        self.events = events
        self.config = config
        self.store = store
        self.grid_t = grid
        self.grid_tau = clock.tau(grid)
        self.piece_t = [t_start, *breaks, t_end]
        self.piece_tau = [clock.tau(t) for t in self.piece_t]
        self.theta0 = theta0
        self.progress = progress
        self.crossings: dict[str, list[float]] = {e.name: [] for e in events}
        self.counters = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0, "wall_time": 0.0}
        self.status = "running"

    # ------------------------------------------------------------------ state

    def _fresh_state(self) -> dict[str, Any]:
        theta = np.array(self.theta0, dtype=float)
        self.recorder.add(self.grid_t[0], theta)
        return {"piece": 0, "tau": self.piece_tau[0], "theta": theta, "h": None, "next": 1,
                "event_values": [float(e.function(theta)) for e in self.events], "resumed": 0}

    def _restore(self, saved: dict[str, Any]) -> dict[str, Any]:
        info, arrays = saved["info"], saved["arrays"]
        for segment in saved["segments"]:
            self.recorder.extend(segment)
        self.crossings = {k: list(v) for k, v in info["crossings"].items()}
        self.counters = info["counters"]
        self.status = info["status"]
        self.segment_index = info["n_segments"]
        return {"piece": info["piece"], "tau": info["tau"], "theta": arrays["theta"],
                "h": info["h"], "next": info["next"],
                "event_values": list(arrays["event_values"]), "resumed": info["resumed"] + 1}

    def _checkpoint(self, state: dict[str, Any]) -> None:
        if self.store is None:
            return
        rows = self.recorder.unsaved()
        if rows is not None:
            self.segment_index += 1
        info = {
            "piece": state["piece"], "tau": state["tau"], "h": state["h"], "next": state["next"],
            "crossings": self.crossings, "counters": self.counters, "status": self.status,
            "n_segments": self.segment_index, "resumed": state["resumed"],
        }
        arrays = {"theta": state["theta"],
                  "event_values": np.asarray(state["event_values"], dtype=float)}
        self.store.save(self.segment_index - 1, rows, arrays, to_jsonable(info))
        self.last_save = time.perf_counter()

    # ------------------------------------------------------------------ loop

    def execute(self) -> Trajectory:
        self.segment_index = 0
        saved = self.store.load_state() if self.store is not None else None
        state = self._restore(saved) if saved is not None else self._fresh_state()
        self.last_save = time.perf_counter()
        start = time.perf_counter()
        wall0 = self.counters["wall_time"]
        bar = _progress_bar(self.progress, len(self.grid_t), state["next"], self.grid_t[-1])
        try:
            while self.status == "running" and state["piece"] < len(self.piece_t) - 1:
                self._integrate_piece(state, bar, start, wall0)
            if self.status == "running":
                self.status = "finished"
        finally:
            self.counters["wall_time"] = wall0 + time.perf_counter() - start
            if bar is not None:
                bar.close()
        self._checkpoint(state)
        return self._trajectory(state)

    def _integrate_piece(self, state, bar, start, wall0) -> None:
        piece = state["piece"]
        field = VectorField(self.objective, self.clock,
                            self.schedule.at(self.piece_t[piece]), self.normalize)
        tau_end = self.piece_tau[piece + 1]
        kwargs = dict(self.solver_kwargs)
        step = kwargs.pop("jacobian_step", None)
        if step is not None:
            kwargs["jac"] = _forward_difference_jacobian(field, step)
        if state["h"] is not None:
            kwargs["first_step"] = min(state["h"], tau_end - state["tau"])
        if not np.all(np.isfinite(field(state["tau"], state["theta"]))):
            # a non-finite start would hand the solver a NaN first step (an endless loop)
            self._fail(state, field, None, state["tau"], state["theta"], None)
        solver = METHODS[self.method](field, state["tau"], state["theta"], tau_end, **kwargs)
        nfev0 = dict(self.counters)
        while solver.status == "running":
            tau_old, theta_old = solver.t, solver.y
            message = solver.step()
            self.counters.update(
                nfev=nfev0["nfev"] + solver.nfev, njev=nfev0["njev"] + solver.njev,
                nlu=nfev0["nlu"] + solver.nlu, steps=self.counters["steps"] + 1,
            )
            if solver.status == "failed":
                self._fail(state, field, solver, tau_old, theta_old, message)
            if not np.all(np.isfinite(solver.y)):
                self._fail(state, field, solver, tau_old, theta_old, None)
            dense = _LazyDense(solver)
            stop_tau = self._events(state, tau_old, solver, dense)
            recorded = self._record(state, min(solver.t, stop_tau), solver, dense, bar)
            if stop_tau < np.inf:
                theta_stop = solver.y if stop_tau == solver.t else dense(stop_tau)
                if self.recorder.rows["t"][-1] < self.clock.t(stop_tau):
                    self.recorder.add(self.clock.t(stop_tau), theta_stop)
                state.update(tau=stop_tau, theta=np.array(theta_stop), h=None)
                return
            state.update(tau=solver.t, theta=solver.y, h=_step_size(solver))
            if (recorded and self._segment_done(state)) or (
                self.store is not None
                and time.perf_counter() - self.last_save > CHECKPOINT_SECONDS
            ):
                self.counters["wall_time"] = wall0 + time.perf_counter() - start
                self._checkpoint(state)
        state.update(piece=piece + 1, h=None)
        self.counters["wall_time"] = wall0 + time.perf_counter() - start
        self._checkpoint(state)

    def _segment_done(self, state: dict[str, Any]) -> bool:
        k = state["next"]
        return k >= len(self.grid_t) or _decade(self.grid_t[k - 1]) != _decade(self.grid_t[k])

    def _record(self, state, tau_stop, solver, dense, bar) -> bool:
        k0 = state["next"]
        k = k0
        while k < len(self.grid_tau) and self.grid_tau[k] <= tau_stop:
            tau = self.grid_tau[k]
            self.recorder.add(self.grid_t[k], solver.y if tau == solver.t else dense(tau))
            k += 1
        state["next"] = k
        if bar is not None and k > k0:
            bar.update(k - k0)
            bar.set_postfix(t=f"{self.grid_t[k - 1]:.3g}", refresh=False)
        return k > k0

    def _events(self, state, tau_old, solver, dense) -> float:
        """Record crossings in (tau_old, solver.t]; return the τ of a terminal one or inf."""
        stop = np.inf
        new_values = [float(e.function(solver.y)) for e in self.events]
        found = []
        for event, before, after in zip(self.events, state["event_values"], new_values,
                                        strict=True):
            if event.crosses(before, after):
                found.append((_root(event, tau_old, solver.t, after, dense), event))
        for tau, event in sorted(found, key=lambda x: x[0]):
            if tau > stop:
                break
            self.crossings[event.name].append(float(self.clock.t(tau)))
            if event.terminal:
                stop = tau
                self.status = f"terminated by event {event.name!r}"
        state["event_values"] = new_values
        return stop

    def _fail(self, state, field, solver, tau_old, theta_old, message: str | None) -> None:
        """Raise with the partial trajectory; ``message`` None means a non-finite state."""
        t_old = float(self.clock.t(tau_old))
        if self.recorder.rows["t"][-1] < t_old:
            self.recorder.add(t_old, theta_old)
        self.status = f"failed: {message or 'non-finite state'}"
        partial = self._trajectory(state)
        t_fail = float(self.clock.t(solver.t)) if solver is not None else t_old
        nonfinite = message is None or not np.all(np.isfinite(field.direction(theta_old)))
        if self.store is not None:
            partial.save(self.store.path / "partial.npz")
        if nonfinite:
            raise NonFiniteError(
                f"the flow became non-finite near t={t_fail:.6g} (last finite state at "
                f"t={t_old:.6g}); the partial trajectory is attached as .trajectory",
                t=t_old, trajectory=partial,
            )
        raise SolverError(
            f"{self.method} failed at t={t_fail:.6g} ({self.clock.name} clock): {message}; "
            "the partial trajectory is attached as .trajectory",
            t=t_old, trajectory=partial,
        )

    def _trajectory(self, state: dict[str, Any]) -> Trajectory:
        t, theta, obs = self.recorder.arrays()
        stats = {**self.counters, "method": self.method, "clock": self.clock.name,
                 "rtol": self.solver_kwargs["rtol"], "atol": self.solver_kwargs["atol"],
                 "status": self.status, "resumed": state["resumed"]}
        events = {k: np.asarray(v, dtype=float) for k, v in self.crossings.items()}
        return Trajectory(t=t, theta=theta, observables=obs, events=events, stats=stats,
                          config=self.config, layout=self.objective.layout)


class _LazyDense:
    """The solver's dense output of the last step, built on first use."""

    def __init__(self, solver: integrate.OdeSolver):
        self.solver = solver
        self.interpolant = None

    def __call__(self, tau: float) -> np.ndarray:
        if self.interpolant is None:
            self.interpolant = self.solver.dense_output()
        return self.interpolant(tau)


def _root(event: Event, tau_old: float, tau_new: float, value_new: float, dense) -> float:
    if value_new == 0.0:
        return tau_new
    try:
        return optimize.brentq(lambda s: event.function(dense(s)), tau_old, tau_new,
                               xtol=1e-14 * max(1.0, abs(tau_new)), rtol=4 * np.finfo(float).eps)
    except ValueError:  # rounding left no sign change on the interpolant: use the step end
        return tau_new


def _step_size(solver: integrate.OdeSolver) -> float | None:
    h = getattr(solver, "h_abs", None)
    return float(h) if h is not None and np.isfinite(h) and h > 0 else None


def _progress_bar(enabled: bool, total: int, done: int, t_end: float):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="rec", desc=f"flow to t={t_end:g}")


def _forward_difference_jacobian(field: VectorField, step: float) -> Callable:
    """``jac(τ, θ)``: forward differences of ``field`` with the absolute increment ``step``,
    shape (P, P); P + 1 field evaluations."""

    def jac(tau: float, theta: np.ndarray) -> np.ndarray:
        base = field(tau, theta)
        columns = np.empty((theta.size, theta.size))
        probe = np.array(theta, dtype=float)
        for j in range(theta.size):
            probe[j] += step
            columns[j] = (field(tau, probe) - base) / (probe[j] - theta[j])  # rounded step
            probe[j] = theta[j]
        return columns.T

    return jac


def simulate(
    objective: Objective,
    theta0: np.ndarray,
    t_end: float,
    *,
    t_start: float = 0.0,
    clock: Literal["linear", "log"] = "linear",
    method: str = "RK45",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    record_at: Sequence[float] | np.ndarray | None = None,
    observables: Mapping[str, Callable[[np.ndarray], Any]] | None = None,
    events: Sequence[Event] = (),
    rates: Mapping[str, Any] | None = None,
    normalize: Normalize = None,
    store_theta: bool = True,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    max_step: float = np.inf,
    solver_options: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Trajectory:
    """Integrate the gradient flow dθ/dt = −R(t)·P(∇L(θ)) from ``t_start`` to ``t_end``.

    Parameters
    ----------
    objective : Objective
        Provides ``layout``, ``value`` and the closed-form ``gradient``.
    theta0 : ndarray, shape (P,)
        Finite initial parameters.
    t_end : float
        Horizon (> t_start).
    t_start : float
        Start time (≥ 0); θ(t_start) = θ0.
    clock : {"linear", "log"}
        Integrate in t, or in τ = log(1+t) with dθ/dτ = (1+t)·dθ/dt. Times are reported in t.
    method : {"RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA"}
        A ``scipy.integrate`` solver class. Implicit methods are refused on states larger than
        :data:`MAX_DENSE_JACOBIAN_STATE` unless ``solver_options`` supplies ``jac``,
        ``jac_sparsity`` or LSODA's ``lband``/``uband`` (a dense finite-difference Jacobian of
        the state would be built otherwise).
    rtol, atol : float
        Solver tolerances (on θ).
    record_at : array_like, optional
        Times at which θ and the observables are stored (strictly increasing, within
        [t_start, t_end]; both ends are always added). Default :func:`log_grid`.
    observables : mapping of str to callable θ -> float or array
        Evaluated at each record time; stored in ``Trajectory.observables``.
    events : sequence of Event
        Zero crossings located along the flow; times in ``Trajectory.events``.
    rates : mapping of block name to float or list of (t_from, value)
        Per-block rate multipliers (0 freezes a block), constant or piecewise constant in t;
        the flow is integrated piece by piece so no step straddles a jump.
    normalize : {None, "global", "block"}
        Normalised flow: the gradient over all trained blocks, or each block separately, is
        divided by its norm before the rates apply.
    store_theta : bool
        Store θ at every record time (``False`` keeps only observables: long sweeps).
    checkpoint : path, optional
        A folder. After each finished segment (a decade of the record grid, a rate piece, or
        60 s of wall time) the recorded rows and the solver state are saved there; calling
        ``simulate`` again with the same arguments resumes from the last save. For explicit
        Runge–Kutta methods the resumed run is bitwise identical to an uninterrupted one.
    progress : bool
        Show a progress bar (counts record times).
    max_step : float
        Largest solver step, in the clock's variable.
    solver_options : mapping, optional
        Extra keyword arguments for the solver class, plus one of gradflow's own:
        ``jacobian_step`` (implicit methods) — build the Jacobian by forward differences of
        the vector field with this *absolute* increment instead of the solver's increments
        relative to |θ|. Needed when θ grows without bound but the field varies on an O(1)
        scale (normalised max-margin flows: past |θ| ~ 1e8 LSODA's relative increments exceed
        that scale and its Newton iteration stops converging).
    config : mapping, optional
        Stored in ``Trajectory.config`` beside simulate's own settings.

    Returns
    -------
    Trajectory

    Raises
    ------
    ArgumentError
        Bad arguments; the message names the argument and what was expected.
    NonFiniteError, SolverError
        The flow blew up or the solver failed; ``.t`` is the time reached and
        ``.trajectory`` the partial trajectory (also saved as ``partial.npz`` in the
        checkpoint folder when there is one).
    CheckpointError
        ``checkpoint`` holds another run or is corrupt.
    """
    layout = objective.layout
    theta0 = np.asarray(layout.check_vector(theta0, "theta0"))
    if not np.isrealobj(theta0):
        raise ArgumentError("theta0 must be real")
    theta0 = theta0.astype(float)
    if not np.all(np.isfinite(theta0)):
        bad = [k for k, v in layout.unpack(theta0).items() if not np.all(np.isfinite(v))]
        raise ArgumentError(f"theta0 must be finite; non-finite entries in blocks {bad}")
    t_start, t_end = float(t_start), float(t_end)
    if not (np.isfinite(t_start) and t_start >= 0):
        raise ArgumentError(f"t_start must be finite and >= 0, got {t_start}")
    if not (np.isfinite(t_end) and t_end > t_start):
        raise ArgumentError(f"t_end must be finite and > t_start={t_start:g}, got {t_end}")
    clk = Clock(clock)
    if method not in METHODS:
        raise ArgumentError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(value) and value > 0):
            raise ArgumentError(f"{name} must be a positive finite number, got {value!r}")
    if not max_step > 0:
        raise ArgumentError(f"max_step must be > 0, got {max_step!r}")
    options = dict(solver_options or {})
    jacobian_step = options.get("jacobian_step")
    if jacobian_step is not None and not (method in IMPLICIT and np.isfinite(jacobian_step)
                                          and jacobian_step > 0):
        raise ArgumentError(
            f"solver_options['jacobian_step'] must be a positive number and needs an implicit "
            f"method ({sorted(IMPLICIT)}); got {jacobian_step!r} with method={method!r}"
        )
    if (method in IMPLICIT and layout.size > MAX_DENSE_JACOBIAN_STATE
            and not {"jac", "jac_sparsity", "lband", "uband"} & set(options)):
        raise ArgumentError(
            f"method={method!r} would build a dense {layout.size}×{layout.size} finite-"
            f"difference Jacobian ({layout.size ** 2 * 8 / 2**30:.1f} GiB); use an explicit "
            "method (RK45, DOP853) or pass solver_options with 'jac', 'jac_sparsity' or "
            "LSODA's 'lband'/'uband'"
        )
    grid = _check_grid(record_at, t_start, t_end)
    observables = dict(observables or {})
    for name, fn in observables.items():
        if not callable(fn):
            raise ArgumentError(f"observables[{name!r}] must be callable θ -> value")
    events = list(events)
    for e in events:
        if not isinstance(e, Event):
            raise ArgumentError(f"events must be gradflow.Event objects, got {type(e).__name__}")
    names = [e.name for e in events]
    if len(set(names)) != len(names):
        raise ArgumentError(f"event names must be distinct, got {names}")
    schedule = RateSchedule(rates, layout)
    breaks = schedule.breakpoints(t_start, t_end)
    VectorField(objective, clk, {}, normalize)  # validates normalize
    run_config = {
        "t_start": t_start, "t_end": t_end, "clock": clk.name, "method": method,
        "rtol": rtol, "atol": atol, "rates": schedule.to_json(), "normalize": normalize,
        "max_step": max_step, "store_theta": store_theta, "observables": sorted(observables),
        "events": [[e.name, e.terminal, e.direction] for e in events],
        "solver_options": {k: v for k, v in options.items() if k != "jac"},
        "layout": layout.to_json(), **dict(config or {}),
    }
    run_config = to_jsonable(run_config)
    store = None
    if checkpoint is not None:
        key = fingerprint(run_config, {"theta0": theta0, "grid": grid})
        store = CheckpointStore(checkpoint, key)
    solver_kwargs = {"rtol": rtol, "atol": atol, "max_step": max_step, **options}
    run = _Run(objective, theta0, grid, clk, method, solver_kwargs, schedule, normalize,
               _Recorder(observables, store_theta), events, breaks, t_start, t_end, store,
               progress, run_config)
    return run.execute()
