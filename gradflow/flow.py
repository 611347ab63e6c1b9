"""Integrate dθ/dt = −R·P(∇L(θ)) with SciPy's adaptive ODE solvers: :func:`simulate`."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import integrate, optimize

from gradflow.checkpoint import CheckpointStore, RunShape, fingerprint
from gradflow.errors import (
    ArgumentError,
    BlowUpError,
    BudgetExceededError,
    GradientUnderflowError,
    NonFiniteError,
    ObservableError,
    SolverError,
    StallError,
    StiffnessError,
)
from gradflow.events import Event
from gradflow.objective import Objective
from gradflow.solvers import (
    AUTO_IMPLICIT,
    FALLBACK,
    IMPLICIT,
    MAX_DENSE_JACOBIAN_STATE,
    METHODS,
    STABILITY_LIMIT,
    STIFF_WINDOW,
    auto_method,
    finite_difference_jacobian,
)
from gradflow.trajectory import Trajectory, to_jsonable
from gradflow.vector_field import (
    Clock,
    GradientUnderflow,
    Normalize,
    RateSchedule,
    VectorField,
)

__all__ = ["DEFAULT_MAX_NFEV", "DEFAULT_MAX_WALL_TIME", "METHODS", "log_grid", "simulate"]

CHECKPOINT_SECONDS = 60.0
"""With ``checkpoint=``, also save when this much wall time passed since the last save."""
DEFAULT_MAX_NFEV = 200_000
"""Default evaluation budget of :func:`simulate`: every call of the objective's gradient
(solver stages, Jacobian columns, start checks). The experiments' flows to t = 1e8-1e10 take
10²-10⁴ (``docs/performance.md``); 200,000 is ~20× the largest, and at the co-occurrence
paper size (~3 ms an evaluation) about ten minutes."""
DEFAULT_MAX_WALL_TIME = 3600.0
"""Default wall-time budget of :func:`simulate`, in seconds (one hour)."""
STALL_STEPS = 10
"""Consecutive accepted steps that leave τ unchanged (or move it by less than 1e-12·|τ|)
after which the solver is said to have stalled."""
STALL_ADVANCE = 1e-8
"""The solver has also stalled when :data:`STIFF_WINDOW` accepted steps together advance τ by
less than this fraction of |τ|: at that pace t_end is ≳1e8 windows away."""
BLOW_UP_WINDOW = 1e-2
BLOW_UP_GROWTH = 1e2
"""A stall or a solver failure while max|θ| grew by this factor within the last
:data:`BLOW_UP_WINDOW` of τ (1 % of the time so far) is reported as a finite-time blow-up
(max|θ| ~ 1/(t* − t)); a flow that grows like a power of t, or like e^t at t ≲ 400, does
not qualify:
steps that stop advancing t while the state keeps growing. A stall without growth (a
discontinuous or chattering field) is a :class:`~gradflow.errors.StallError`."""

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


class _OutOfBudget(Exception):
    def __init__(self, budget: str):
        super().__init__(budget)
        self.budget = budget


class _UserFunctionFailure(Exception):
    """An observable or event raised or returned something that cannot be recorded."""

    def __init__(self, kind: str, name: str, t: float, what: str):
        super().__init__(f"{kind} {name!r} {what} at t={t:.6g}")
        self.kind, self.name, self.t, self.what = kind, name, t, what


class _Meter:
    """Counts every evaluation of the right-hand side and enforces the work limits."""

    def __init__(self, counters: dict[str, Any], max_nfev: float, max_wall_time: float):
        self.counters = counters
        self.max_nfev = max_nfev
        self.deadline = time.perf_counter() + max_wall_time - counters["wall_time"]

    def wrap(self, field: VectorField) -> Callable[[float, np.ndarray], np.ndarray]:
        """``field`` counted, budgeted, shape-checked; remembers the last non-finite value
        (a solver that fails on a NaN at a trial point reports only a step-size symptom)."""
        counters = self.counters
        size = field.objective.layout.size
        self.nonfinite_at: float | None = None

        def metered(tau: float, theta: np.ndarray) -> np.ndarray:
            counters["nfev"] += 1
            if counters["nfev"] > self.max_nfev:
                raise _OutOfBudget("max_nfev")
            if time.perf_counter() > self.deadline:
                raise _OutOfBudget("max_wall_time")
            value = field(tau, theta)
            if value.shape != (size,):
                raise ArgumentError(f"objective.gradient returned shape {value.shape}, "
                                    f"expected ({size},) (objective.layout.size)")
            # one sum instead of an isfinite array: NaN/inf propagate (an overflowing sum of
            # finite values also flags, which only matters near a blow-up anyway)
            if self.nonfinite_at is None and not np.isfinite(value.sum()):
                self.nonfinite_at = float(tau)
            return value

        return metered


class _StepMonitor:
    """Watches accepted steps: stalls, blow-ups and an explicit method at its stability limit.

    Stiffness is Hairer's test for explicit Runge–Kutta methods (Hairer & Wanner, *Solving
    Ordinary Differential Equations II*, §IV.2): ρ = ‖k_new − k_s‖/‖θ_new − θ_s‖, from the
    last stage k_s (at θ_s) and the derivative at the new state, estimates the Jacobian's
    spectral radius where the stages probe it; h·ρ near the stability limit means the step
    size is set by stability, not accuracy. It costs no evaluation (the solver keeps its
    stages). A stall or a failure is judged a blow-up by :meth:`growth`: max|θ| against its
    value :data:`BLOW_UP_WINDOW` of τ earlier, from samples taken every 0.1 % of τ.
    """

    def __init__(self, method: str, reference: float):
        self.limit = STABILITY_LIMIT.get(method)
        self.frozen = 0
        self.samples: deque[tuple[float, float]] = deque(maxlen=64)  # (τ, max|θ|)
        self.latest = reference
        self.times: deque[float] = deque(maxlen=STIFF_WINDOW + 1)  # τ of the last steps
        self.h_rho: deque[float] = deque(maxlen=STIFF_WINDOW)

    def after_step(self, solver, tau_old: float, theta_old: np.ndarray) -> str | None:
        """``"stall"``, ``"blow-up"``, ``"stiff"`` or None after one accepted step."""
        self.latest = float(np.max(np.abs(solver.y)))
        if not self.samples or solver.t >= self.samples[-1][0] * (1 + 1e-3) + 1e-300:
            self.samples.append((solver.t, self.latest))
        self.times.append(solver.t)
        moved = solver.t - tau_old
        self.frozen = self.frozen + 1 if moved <= 1e-12 * abs(solver.t) else 0
        advance = (self.times[-1] - self.times[0] if len(self.times) > STIFF_WINDOW
                   else np.inf)
        if self.frozen >= STALL_STEPS or advance < STALL_ADVANCE * abs(solver.t):
            return "blow-up" if self.growth() >= BLOW_UP_GROWTH else "stall"

        if self.limit is not None:
            s = solver.n_stages - 1
            theta_s = theta_old + moved * (solver.A[s, :s] @ solver.K[:s])
            dy = solver.y - theta_s
            dy_norm = float(np.sqrt(dy @ dy))
            if dy_norm > 0:
                dk = solver.K[solver.n_stages] - solver.K[s]
                self.h_rho.append(moved * float(np.sqrt(dk @ dk)) / dy_norm)
            if self.stiff():
                return "stiff"
        return None

    def growth(self) -> float:
        """max|θ| now over max|θ| at the last sample at least :data:`BLOW_UP_WINDOW`·|τ|
        before now (the oldest sample if all are more recent)."""
        if not self.samples:
            return 1.0
        now = self.samples[-1][0]
        before = [norm for tau, norm in self.samples if tau <= now * (1 - BLOW_UP_WINDOW)]
        reference = before[-1] if before else self.samples[0][1]
        if reference > 0:
            return self.latest / reference
        return np.inf if self.latest > 0 else 1.0

    def stiff(self) -> bool:
        return (self.limit is not None and len(self.h_rho) == STIFF_WINDOW
                and float(np.median(self.h_rho)) >= 0.5 * self.limit)

    def describe_stiffness(self) -> str:
        if not self.h_rho:
            return ""
        return (f"median h·ρ = {np.median(self.h_rho):.2g} over the last {len(self.h_rho)} "
                f"steps, against a stability limit of ≈{self.limit}")


class _Recorder:
    """Collects θ and observables at the record grid; hands out finished segments.

    Observables are validated as they are recorded: each must return a number or a numeric
    array, and keep the shape it had at the first record time; a row is appended only when
    every observable gave a valid value, so a failure leaves the recorded rows consistent.
    """

    def __init__(self, observables: Mapping[str, Callable], store_theta: bool):
        self.observables = dict(observables)
        self.store_theta = store_theta
        self.rows: dict[str, list[Any]] = {"t": [], **{f"obs/{k}": [] for k in observables}}
        if store_theta:
            self.rows["theta"] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.saved = 0  # rows already written to checkpoint segments

    def __len__(self) -> int:
        return len(self.rows["t"])

    def _value(self, name: str, fn: Callable, t: float, theta: np.ndarray) -> np.ndarray:
        try:
            value = np.asarray(fn(theta))
        except Exception as exc:
            raise _UserFunctionFailure(
                "observable", name, t, f"raised {type(exc).__name__}: {exc}") from exc
        if value.dtype.kind not in "biufc":
            raise _UserFunctionFailure(
                "observable", name, t,
                f"returned a value of dtype {value.dtype} ({type(fn(theta)).__name__}); "
                "observables must return numbers or numeric arrays")
        expected = self.shapes.setdefault(name, value.shape)
        if value.shape != expected:
            raise _UserFunctionFailure(
                "observable", name, t,
                f"returned shape {value.shape}, but shape {expected} at the first record time")
        return value

    def add(self, t: float, theta: np.ndarray) -> None:
        values = {name: self._value(name, fn, t, theta) for name, fn in self.observables.items()}
        self.rows["t"].append(float(t))
        if self.store_theta:
            self.rows["theta"].append(np.array(theta, dtype=float))
        for name, value in values.items():
            self.rows[f"obs/{name}"].append(value)

    def extend(self, segment: Mapping[str, np.ndarray]) -> None:
        for key, values in segment.items():
            self.rows[key].extend(list(values))
            if key.startswith("obs/") and len(values):
                self.shapes.setdefault(key[4:], np.shape(values[0]))
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


def _event_value(event: Event, theta: np.ndarray, t: float) -> float:
    """``event.function(θ)`` as a float; raises :class:`_UserFunctionFailure` otherwise."""
    try:
        raw = event.function(theta)
    except Exception as exc:
        raise _UserFunctionFailure(
            "event", event.name, t, f"raised {type(exc).__name__}: {exc}") from exc
    value = np.asarray(raw)
    if value.shape != () or value.dtype.kind not in "biuf":
        raise _UserFunctionFailure(
            "event", event.name, t,
            f"returned {type(raw).__name__} of shape {value.shape} and dtype {value.dtype}; "
            "an event function must return a real number")
    value = float(value)
    if np.isnan(value):
        raise _UserFunctionFailure("event", event.name, t, "returned NaN (it could never fire)")
    return value


class _Run:
    """One call of :func:`simulate`: the solver loop with recording, events and checkpoints."""

    def __init__(self, objective, theta0, grid, clock, method, solver_kwargs, schedule, normalize,
                 recorder, events, breaks, t_start, t_end, store, progress, config, budgets):
        self.objective = objective
        self.clock = clock
        self.requested = method
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
        self.budgets = budgets
        self.crossings: dict[str, list[float]] = {e.name: [] for e in events}
        self.counters = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0, "wall_time": 0.0}
        self.switches: list[dict[str, Any]] = []
        self.status = "running"
        self.stop_reason = "running"

    @property
    def auto(self) -> bool:
        return self.requested == "auto"

    # ------------------------------------------------------------------ state

    @property
    def first_method(self) -> str:
        if not self.auto:
            return self.requested
        return auto_method(self.objective.layout.size, self.normalize is not None)

    def shape(self) -> RunShape:
        """What a checkpoint of this run must agree with."""
        return RunShape(
            grid_t=self.grid_t, grid_tau=self.grid_tau, piece_tau=tuple(self.piece_tau),
            size=self.objective.layout.size, store_theta=self.recorder.store_theta,
            observables=tuple(self.recorder.observables),
            events=tuple((e.name, e.terminal) for e in self.events),
            first_method=self.first_method, methods=frozenset(METHODS),
            t_of_tau=self.clock.t)

    def _fresh_state(self) -> dict[str, Any]:
        theta = np.array(self.theta0, dtype=float)
        t0 = float(self.grid_t[0])
        self.recorder.add(t0, theta)
        return {"piece": 0, "tau": self.piece_tau[0], "theta": theta, "h": None, "next": 1,
                "event_values": [_event_value(e, theta, t0) for e in self.events],
                "resumed": 0, "method": self.first_method}

    def _restore(self, saved: dict[str, Any]) -> dict[str, Any]:
        """The loop's state from a checkpoint that :meth:`CheckpointStore.load_state` has
        validated against :meth:`shape`."""
        info, arrays = saved["info"], saved["arrays"]
        for segment in saved["segments"]:
            self.recorder.extend(segment)
        self.crossings = {k: list(v) for k, v in info["crossings"].items()}
        self.counters = info["counters"]
        self.status = info["status"]
        self.stop_reason = info["stop_reason"]
        self.switches = list(info["switches"])
        state = {"piece": info["piece"], "tau": info["tau"], "theta": arrays["theta"],
                 "h": info["h"], "next": info["next"],
                 "event_values": list(arrays["event_values"]), "resumed": info["resumed"] + 1,
                 "method": info["method"]}
        _enter_next_piece_at_its_start(state, self.piece_tau)
        return state

    def _checkpoint(self, state: dict[str, Any]) -> None:
        if self.store is None:
            return
        info = {
            "piece": state["piece"], "tau": state["tau"], "h": state["h"], "next": state["next"],
            "crossings": self.crossings, "counters": self.counters, "status": self.status,
            "stop_reason": self.stop_reason, "resumed": state["resumed"],
            "method": state["method"], "switches": self.switches,
        }
        arrays = {"theta": state["theta"],
                  "event_values": np.asarray(state["event_values"], dtype=float)}
        self.store.save(self.recorder.unsaved(), arrays, to_jsonable(info))
        self.last_save = time.perf_counter()

    # ------------------------------------------------------------------ loop

    def execute(self) -> Trajectory:
        saved = self.store.load_state(self.shape()) if self.store is not None else None
        self.started = time.perf_counter()
        self.wall0 = saved["info"]["counters"]["wall_time"] if saved is not None else 0.0
        state = None
        try:
            state = self._restore(saved) if saved is not None else self._fresh_state()
            self.last_save = time.perf_counter()
            self.meter = _Meter(self.counters, *self.budgets)
            bar = _progress_bar(self.progress, len(self.grid_t), state["next"], self.grid_t[-1])
            try:
                while self.status == "running" and state["piece"] < len(self.piece_t) - 1:
                    self._integrate_piece(state, bar)
                if self.status == "running":
                    self.status = self.stop_reason = "finished"
            finally:
                self._clock_in()
                if bar is not None:
                    bar.close()
        except _UserFunctionFailure as exc:
            self._fail_user_function(state, exc)
        self._checkpoint(state)
        return self._trajectory(state)

    def _clock_in(self) -> None:
        self.counters["wall_time"] = self.wall0 + time.perf_counter() - self.started

    def _make_solver(self, metered, state: dict[str, Any], tau_end: float):
        method = state["method"]
        kwargs = dict(self.solver_kwargs)
        step = kwargs.pop("jacobian_step", None)
        if (method in IMPLICIT and "jac" not in kwargs
                and not {"lband", "uband", "jac_sparsity"} & set(kwargs)):
            # the solvers' own increments are relative to |θ_j|: see solvers.jacobian_increment
            kwargs["jac"] = finite_difference_jacobian(metered, step)
        if method not in IMPLICIT:
            for key in ("jac", "jac_sparsity", "lband", "uband", "jacobian_step"):
                kwargs.pop(key, None)
        if state["h"] is not None:
            kwargs["first_step"] = min(state["h"], tau_end - state["tau"])
        return METHODS[method](metered, state["tau"], state["theta"], tau_end, **kwargs)

    def _switch(self, state: dict[str, Any], to: str, why: str) -> None:
        self.switches.append({"t": float(self.clock.t(state["tau"])), "from": state["method"],
                              "to": to, "why": why})
        state.update(method=to, h=None)

    def _integrate_piece(self, state, bar) -> None:
        piece = state["piece"]
        field = VectorField(self.objective, self.clock,
                            self.schedule.at(self.piece_t[piece]), self.normalize)
        metered = self.meter.wrap(field)
        tau_end = self.piece_tau[piece + 1]
        try:
            if self.normalize is not None:
                self.counters["nfev"] += 1
                field.check_state(state["theta"])
            start_ok = np.all(np.isfinite(metered(state["tau"], state["theta"])))
            solver = self._make_solver(metered, state, tau_end)
        except (GradientUnderflow, _OutOfBudget) as exc:
            self._fail(state, field, None, state["tau"], state["theta"], exc)
        if not start_ok:
            # a non-finite start would hand the solver a NaN first step (an endless loop)
            self._fail(state, field, None, state["tau"], state["theta"], None)
        monitor = _StepMonitor(state["method"], float(np.max(np.abs(state["theta"]))))
        base = {"njev": self.counters["njev"], "nlu": self.counters["nlu"]}
        while solver.status == "running":
            tau_old, theta_old = solver.t, solver.y
            try:
                message = solver.step()
            except (GradientUnderflow, _OutOfBudget) as exc:
                self._fail(state, field, solver, tau_old, theta_old, exc, monitor)
            self.counters.update(njev=base["njev"] + int(solver.njev),
                                 nlu=base["nlu"] + int(solver.nlu),
                                 steps=self.counters["steps"] + 1)
            if solver.status == "failed":
                fallback = FALLBACK.get(state["method"]) if self.auto else None
                if fallback is not None:
                    self._switch(state, fallback, f"{state['method']} failed: {message}")
                    return
                self._fail(state, field, solver, tau_old, theta_old, message, monitor)
            if not np.all(np.isfinite(solver.y)):
                self._fail(state, field, solver, tau_old, theta_old, None, monitor)
            if field.underflow is not None:  # a trial point lost its direction: this state?
                self.counters["nfev"] += 1
                try:
                    field.check_state(solver.y)
                except GradientUnderflow as exc:
                    self._fail(state, field, solver, tau_old, theta_old, exc, monitor)
            verdict = monitor.after_step(solver, tau_old, theta_old)
            if verdict == "stall" and self.auto and FALLBACK.get(state["method"]):
                self._switch(state, FALLBACK[state["method"]], f"{state['method']} stalled")
                return
            if verdict in ("stall", "blow-up"):
                self._fail(state, field, solver, tau_old, theta_old, verdict, monitor)
            dense = _LazyDense(solver)
            stop_tau = self._events(state, tau_old, solver, dense)
            next_before = state["next"]
            self._record(state, min(solver.t, stop_tau), solver, dense, bar)
            if stop_tau < np.inf:
                theta_stop = solver.y if stop_tau == solver.t else dense(stop_tau)
                if self.recorder.rows["t"][-1] < self.clock.t(stop_tau):
                    self.recorder.add(self.clock.t(stop_tau), theta_stop)
                state.update(tau=stop_tau, theta=np.array(theta_stop), h=None)
                return
            state.update(tau=solver.t, theta=solver.y, h=_step_size(solver))
            if self._segment_done(next_before, state["next"]) or (
                self.store is not None
                and time.perf_counter() - self.last_save > CHECKPOINT_SECONDS
            ):
                self._clock_in()
                self._checkpoint(state)
            if (verdict == "stiff" and self.auto
                    and self.objective.layout.size <= MAX_DENSE_JACOBIAN_STATE):
                self._switch(state, AUTO_IMPLICIT,
                             f"{state['method']} at its stability limit "
                             f"({monitor.describe_stiffness()})")
                return
        state.update(piece=piece + 1, h=None)
        self._clock_in()
        self._checkpoint(state)

    def _segment_done(self, k0: int, k: int) -> bool:
        """Whether recording the grid times k0 … k−1 in one step finished a decade of the
        record grid: the next time to record, grid[k] (none: past the end), lies in a later
        decade than grid[k0] did. One step may finish several decades; they close one
        segment, since a state to resume from exists only at the end of a step."""
        def decade(j: int) -> float:
            return _decade(self.grid_t[j]) if j < len(self.grid_t) else np.inf

        return k > k0 and decade(k) != decade(k0)

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
        t_new = float(self.clock.t(solver.t))
        new_values = [_event_value(e, solver.y, t_new) for e in self.events]
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
                self.stop_reason = "event"
        state["event_values"] = new_values
        return stop

    # ------------------------------------------------------------------ failures

    def _partial(self, state, t_old: float, theta_old: np.ndarray) -> Trajectory:
        """The trajectory so far, with the last accepted state appended (never checkpointed)."""
        if self.recorder.rows["t"][-1] < t_old:
            try:
                self.recorder.add(t_old, theta_old)
            except _UserFunctionFailure:
                pass  # keep what was recorded; the state is in .trajectory.stats anyway
        return self._trajectory(state)

    def _fail_user_function(self, state, exc: _UserFunctionFailure) -> None:
        self.status = f"failed: {exc}"
        self.stop_reason = exc.kind
        partial = self._trajectory(state) if state is not None else None
        if partial is not None and self.store is not None:
            partial.save(self.store.path / "partial.npz")
        needs = ("a real number" if exc.kind == "event"
                 else "a number or a numeric array of one shape")
        raise ObservableError(
            f"{exc}; fix the {exc.kind} function (it must return {needs}); the rows recorded "
            "before are attached as .trajectory"
            + (" and saved as partial.npz in the checkpoint folder" if self.store else ""),
            t=exc.t, trajectory=partial,
        ) from exc.__cause__

    def _fail(self, state, field, solver, tau_old, theta_old, cause, monitor=None) -> None:
        """Raise the :class:`SolverError` subclass (or :class:`NonFiniteError`) that names
        why the integration ended at the last accepted state (tau_old, theta_old).

        ``cause``: None (non-finite state), a solver message, ``"stall"``, ``"blow-up"``, a
        :class:`GradientUnderflow` or an :class:`_OutOfBudget`.
        """
        self._clock_in()
        t_old = float(self.clock.t(tau_old))
        t_end = self.piece_t[-1]
        where = f"at t={t_old:.6g} of t_end={t_end:g} ({state['method']}, {self.clock.name} clock)"
        saved = (" and saved as partial.npz in the checkpoint folder" if self.store is not None
                 else "")
        attached = f"the partial trajectory is attached as .trajectory{saved}"
        if isinstance(cause, _OutOfBudget):
            # the checkpoint keeps the last accepted state: a resume with a larger budget
            # continues from it
            self._checkpoint(state)
        if isinstance(cause, GradientUnderflow):
            self.stop_reason = "gradient underflow"
        elif isinstance(cause, _OutOfBudget):
            self.stop_reason = "budget"
        elif cause is None:
            self.stop_reason = "non-finite"
        elif cause in ("stall", "blow-up"):
            self.stop_reason = cause
        else:
            growing = monitor is not None and monitor.growth() >= BLOW_UP_GROWTH
            self.stop_reason = "blow-up" if growing else "solver failure"
        self.status = f"failed: {self.stop_reason}"
        partial = self._partial(state, t_old, theta_old)
        if self.store is not None:
            partial.save(self.store.path / "partial.npz")
        kwargs = {"t": t_old, "trajectory": partial}
        if isinstance(cause, GradientUnderflow):
            unit = "all trained blocks" if cause.block == "*" else f"block {cause.block!r}"
            raise GradientUnderflowError(
                f"the gradient of {unit} underflowed {where}: norm {cause.norm:.3g} (below "
                f"{1e-292:.0e}) while the loss is {cause.loss:.3g}, so the normalised flow "
                "would freeze. Remedy: implement the scaled gradient — Model.scaled_grad("
                "params, data) -> (blocks, log_scales) with block b of the gradient equal to "
                "exp(log_scales[b])·blocks[b], the largest exponential factored out (for a "
                "ScaledObjective: scaled_gradient(θ)); see docs/guide.md, 'Max-margin flows "
                f"on your own model'. {attached}", block=cause.block, **kwargs)
        if isinstance(cause, _OutOfBudget):
            limit = self.budgets[0] if cause.budget == "max_nfev" else self.budgets[1]
            spent = (f"{self.counters['nfev']} evaluations" if cause.budget == "max_nfev"
                     else f"{self.counters['wall_time']:.1f} s")
            if monitor is not None and monitor.stiff():
                raise StiffnessError(
                    f"simulate used its budget {cause.budget}={limit:g} ({spent}) {where}: "
                    f"the flow is stiff — {state['method']}'s steps sit at its stability "
                    f"limit ({monitor.describe_stiffness()}). Use method='auto' or an "
                    "implicit method ('BDF', 'LSODA'; on states above "
                    f"{MAX_DENSE_JACOBIAN_STATE} entries pass solver_options with 'jac' or "
                    f"'jac_sparsity'). {attached}", budget=cause.budget, **kwargs)
            raise BudgetExceededError(
                f"simulate used its budget {cause.budget}={limit:g} ({spent}) {where}; "
                f"raise {cause.budget} (None for no limit), loosen rtol/atol, or check the "
                "initial state (huge weights make the first time scales tiny); with "
                f"checkpoint= a rerun with a larger budget resumes. {attached}",
                budget=cause.budget, **kwargs)
        if self.stop_reason == "non-finite" or (
            self.stop_reason == "solver failure"
            and (self.meter.nonfinite_at is not None
                 or not np.all(np.isfinite(field.direction(theta_old))))
        ):
            self.stop_reason = "non-finite"
            self.status = "failed: non-finite state"
            partial.stats.update(status=self.status, stop_reason=self.stop_reason)
            t_fail = float(self.clock.t(solver.t)) if solver is not None else t_old
            raise NonFiniteError(
                f"the flow became non-finite near t={t_fail:.6g} (last finite state at "
                f"t={t_old:.6g}); {attached}", **kwargs)
        if self.stop_reason == "blow-up":
            growth = monitor.growth() if monitor is not None else np.inf
            raise BlowUpError(
                f"the state grows without bound {where}: max|θ| grew ×{growth:.3g} to "
                f"{np.max(np.abs(theta_old)):.3g} beyond anything recorded before, while the "
                "steps stopped advancing t — a finite-time "
                f"blow-up of the flow (is the loss bounded below?). {attached}", **kwargs)
        if self.stop_reason == "stall":
            raise StallError(
                f"the solver stopped advancing {where}: its accepted steps no longer move t "
                f"(h = {_step_size(solver) or 0:.3g} in τ; {STALL_STEPS} steps below "
                f"1e-12·|τ|, or {STIFF_WINDOW} below {STALL_ADVANCE:g}·|τ| together). Try "
                "method='auto' or another method, or check the objective for a discontinuity "
                f"(a gradient that changes sign abruptly makes steps chatter). {attached}",
                **kwargs)
        raise SolverError(f"{state['method']} failed {where}: {cause}; {attached}", **kwargs)

    def _trajectory(self, state: dict[str, Any] | None) -> Trajectory:
        t, theta, obs = self.recorder.arrays()
        method = state["method"] if state is not None else self.requested
        stats = {**self.counters, "method": method, "method_requested": self.requested,
                 "switches": self.switches, "clock": self.clock.name,
                 "rtol": self.solver_kwargs["rtol"], "atol": self.solver_kwargs["atol"],
                 "max_nfev": self.budgets[0], "max_wall_time": self.budgets[1],
                 "status": self.status, "stop_reason": self.stop_reason,
                 "resumed": state["resumed"] if state is not None else 0}
        events = {k: np.asarray(v, dtype=float) for k, v in self.crossings.items()}
        return Trajectory(t=t, theta=theta, observables=obs, events=events,
                          stats=to_jsonable(stats), config=self.config,
                          layout=self.objective.layout)


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


BUDGET_KEYS = frozenset({"max_nfev", "max_wall_time"})
"""Keys of ``config`` left out of a checkpoint's fingerprint: work limits, not identity."""
MIN_RTOL = 100 * float(np.finfo(float).eps)
"""The smallest rtol SciPy's solvers honour (they raise smaller values to it)."""


def _real(name: str, value: Any) -> float:
    """``value`` as a float, or an :class:`ArgumentError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ArgumentError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _check_budget(name: str, value: Any, integer: bool) -> float:
    if value is None:
        return np.inf
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not (value > 0) or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise ArgumentError(f"{name} must be {kind} or None, got {value!r}")
    return float(value)


def _enter_next_piece_at_its_start(state: dict[str, Any], piece_tau: Sequence[float]) -> None:
    """A restored state saved after the last step of a rate piece, before the piece count
    moved on: the uninterrupted run goes on with the next piece (and a fresh step size)."""
    if state["piece"] < len(piece_tau) - 1 and state["tau"] == piece_tau[state["piece"] + 1]:
        state.update(piece=state["piece"] + 1, h=None)


def _check_tolerances(rtol: Any, atol: Any, max_step: Any) -> tuple[float, float, float]:
    """rtol, atol and max_step as floats, refused (naming them) unless usable."""
    rtol, atol, max_step = (_real(k, v) for k, v in
                            (("rtol", rtol), ("atol", atol), ("max_step", max_step)))
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(value) and value > 0):
            raise ArgumentError(f"{name} must be a positive finite number, got {value!r}")
    if not MIN_RTOL <= rtol < 1:
        # scipy silently raises a smaller rtol to 100·ε; rtol ≥ 1 controls nothing
        raise ArgumentError(f"rtol must lie in [{MIN_RTOL:.3g}, 1), got {rtol!r}")
    if not max_step > 0:
        raise ArgumentError(f"max_step must be > 0, got {max_step!r}")
    return rtol, atol, max_step


def _objective_identity(objective: Objective, checkpoint_key: Any) -> str:
    """What identifies ``objective`` in a checkpoint's fingerprint (JSON of both keys).

    A checkpoint folder may only resume its own run, and nothing else tells gradflow which
    data a hand-written objective integrates: without a key of its own (``ModelObjective``
    hashes its model and data) the caller must vouch for one.
    """
    own = getattr(objective, "checkpoint_key", None)  # a ModelObjective hashes here
    if own is not None and not (isinstance(own, str) and own):
        raise ArgumentError(f"{type(objective).__name__}.checkpoint_key must be a non-empty "
                            f"string, got {own!r}")
    if checkpoint_key is not None and not (isinstance(checkpoint_key, str) and checkpoint_key):
        raise ArgumentError(f"checkpoint_key must be a non-empty string, got {checkpoint_key!r}")
    if own is None and checkpoint_key is None:
        raise ArgumentError(
            f"checkpoint= needs to know which objective it holds, and "
            f"{type(objective).__name__} has no checkpoint_key (a gradflow.ModelObjective has "
            "one: a hash of its model's fixed quantities and its data). Pass "
            "simulate(..., checkpoint_key='...'), a string that you vouch identifies this "
            "objective and its data (a folder made under the same key with other data would "
            "be resumed), or give the objective a checkpoint_key attribute, e.g. "
            "gradflow.checkpoint.content_hash of its data")
    return json.dumps([own, checkpoint_key])


def simulate(
    objective: Objective,
    theta0: np.ndarray,
    t_end: float,
    *,
    t_start: float = 0.0,
    clock: Literal["linear", "log"] = "linear",
    method: str = "auto",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    record_at: Sequence[float] | np.ndarray | None = None,
    observables: Mapping[str, Callable[[np.ndarray], Any]] | None = None,
    events: Sequence[Event] = (),
    rates: Mapping[str, Any] | None = None,
    normalize: Normalize = None,
    store_theta: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_key: str | None = None,
    progress: bool = False,
    max_step: float = np.inf,
    solver_options: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    max_nfev: int | None = DEFAULT_MAX_NFEV,
    max_wall_time: float | None = DEFAULT_MAX_WALL_TIME,
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
    method : {"auto", "RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA"}
        ``"auto"`` (default): the measured rule of :mod:`gradflow.solvers` — an implicit
        method on small states, RK45 on large ones, a switch to the implicit method when an
        explicit one sits at its stability limit, and a fallback when an implicit one fails;
        ``stats["method"]`` and ``stats["switches"]`` say what ran. Otherwise a
        ``scipy.integrate`` solver class by name, used as it is. Implicit methods are refused
        on states larger than :data:`~gradflow.solvers.MAX_DENSE_JACOBIAN_STATE` unless
        ``solver_options`` supplies ``jac``, ``jac_sparsity`` or LSODA's ``lband``/``uband``.
        LSODA gets gradflow's forward-difference Jacobian with the increment of
        :func:`~gradflow.solvers.jacobian_increment` (LSODA's own fails at large θ).
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
        ``simulate`` again with the same objective and arguments resumes from the last save
        (budgets aside: a rerun with a larger ``max_nfev`` or ``max_wall_time`` resumes). For
        explicit Runge–Kutta methods the resumed run is bitwise identical to an
        uninterrupted one. The folder is bound to the run's fingerprint: the objective's
        ``checkpoint_key``, ``checkpoint_key=``, the settings, θ0 and the record grid.
    checkpoint_key : str, optional
        With ``checkpoint=``: a string you vouch identifies the objective and its data. Needed
        when the objective has no ``checkpoint_key`` of its own (a hand-written
        :class:`Objective`; every :class:`~gradflow.ModelObjective` has one, a content hash of
        the model and the data); with one, both must match to resume.
    progress : bool
        Show a progress bar (counts record times).
    max_step : float
        Largest solver step, in the clock's variable.
    solver_options : mapping, optional
        Extra keyword arguments for the solver class, plus one of gradflow's own:
        ``jacobian_step`` (implicit methods) — a fixed *absolute* forward-difference
        increment for the Jacobian instead of the default
        :func:`~gradflow.solvers.jacobian_increment` (which already adapts to ‖θ‖).
    config : mapping, optional
        Stored in ``Trajectory.config`` beside simulate's own settings.
    max_nfev : int or None
        Work limit: the most evaluations of the objective's gradient (every one: solver
        stages, Jacobian columns, start checks) this run may use, counted across resumes;
        default :data:`DEFAULT_MAX_NFEV`. None: no limit.
    max_wall_time : float or None
        Work limit in seconds of wall time, counted across resumes; default
        :data:`DEFAULT_MAX_WALL_TIME`. None: no limit.

    Returns
    -------
    Trajectory

    Raises
    ------
    ArgumentError
        Bad arguments; the message names the argument and what was expected.
    NonFiniteError, SolverError
        The integration ended before ``t_end``; ``.t`` is the last accepted time and
        ``.trajectory`` the partial trajectory (also saved as ``partial.npz`` in the
        checkpoint folder when there is one). The :class:`SolverError` subclasses name why:
        :class:`~gradflow.errors.BudgetExceededError` (a work limit;
        :class:`~gradflow.errors.StiffnessError` when an explicit method was
        stability-limited), :class:`~gradflow.errors.StallError` (steps that no longer
        advance t), :class:`~gradflow.errors.BlowUpError` (a finite-time blow-up),
        :class:`~gradflow.errors.GradientUnderflowError` (a normalised flow whose gradient
        underflowed: implement the scaled gradient). Each message gives the time and what to
        try; the checkpoint of a budget stop resumes.
    ObservableError
        An observable or event function raised, or returned a value that cannot be recorded;
        carries ``.t`` and the rows recorded so far.
    CheckpointError
        ``checkpoint`` holds another run, was written by an older gradflow, or is damaged
        or edited (the message names the file and the field).
    """
    layout = objective.layout
    theta0 = np.asarray(layout.check_vector(theta0, "theta0"))
    if not np.isrealobj(theta0):
        raise ArgumentError("theta0 must be real")
    theta0 = theta0.astype(float)
    if not np.all(np.isfinite(theta0)):
        bad = [k for k, v in layout.unpack(theta0).items() if not np.all(np.isfinite(v))]
        raise ArgumentError(f"theta0 must be finite; non-finite entries in blocks {bad}")
    t_start, t_end = _real("t_start", t_start), _real("t_end", t_end)
    if not (np.isfinite(t_start) and t_start >= 0):
        raise ArgumentError(f"t_start must be finite and >= 0, got {t_start}")
    if not (np.isfinite(t_end) and t_end > t_start):
        raise ArgumentError(f"t_end must be finite and > t_start={t_start:g}, got {t_end}")
    clk = Clock(clock)
    if method != "auto" and method not in METHODS:
        raise ArgumentError(
            f"method must be 'auto' or one of {sorted(METHODS)}, got {method!r}")
    budgets = (_check_budget("max_nfev", max_nfev, integer=True),
               _check_budget("max_wall_time", max_wall_time, integer=False))
    rtol, atol, max_step = _check_tolerances(rtol, atol, max_step)
    options = dict(solver_options or {})
    jacobian_step = options.get("jacobian_step")
    if jacobian_step is not None and not (method in IMPLICIT | {"auto"}
                                          and np.isfinite(jacobian_step) and jacobian_step > 0):
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
    if not isinstance(store_theta, bool | np.bool_):
        raise ArgumentError(f"store_theta must be True or False, got {store_theta!r}")
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
        identity = _objective_identity(objective, checkpoint_key)
        # work limits are not identity: a rerun with a larger budget resumes (also when a
        # caller's config records them, as the experiments' configs do)
        settings = {k: v for k, v in run_config.items() if k not in BUDGET_KEYS}
        key, parts = fingerprint(settings, {"theta0": theta0, "grid": grid}, identity)
        store = CheckpointStore(checkpoint, key, parts)
    elif checkpoint_key is not None:
        raise ArgumentError("checkpoint_key is given without checkpoint=: it identifies the "
                            "objective of a checkpoint folder, and there is none")
    solver_kwargs = {"rtol": rtol, "atol": atol, "max_step": max_step, **options}
    run = _Run(objective, theta0, grid, clk, method, solver_kwargs, schedule, normalize,
               _Recorder(observables, store_theta), events, breaks, t_start, t_end, store,
               progress, run_config, budgets)
    return run.execute()
