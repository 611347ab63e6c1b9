"""Many members (seeds, instances) of one flow integrated as one stacked state:
:func:`simulate_ensemble`.

B members θ_b of one layout are stacked into one ODE state of size B·P and stepped by one
explicit Runge–Kutta solver, so SciPy's per-step Python overhead and NumPy's per-call overhead
are paid once per step for all members, and the gradient is evaluated for all members at once
through :meth:`gradflow.Model.batched_grad` (contract rule 11) where the objectives allow it.

Accuracy is per member: the solver's error norm is the *worst* member's RMS norm (the max over
members), never one RMS over the stacked state, which would let one member's error hide among B
(its error weighs 1/√B in the stacked RMS: at B = 100 a tolerance ten times looser for it). The
initial step is the smallest of the members' own initial steps (Hairer's rule, per member). So
every member is integrated to its own ``rtol``/``atol``, as its own :func:`gradflow.simulate`
would; the steps are the hardest member's, which costs the easy members work, not accuracy.

Members that finish, fail or hit a terminal event drop out of the stack without stopping the
others; each one's stop reason and error are kept on the :class:`EnsembleTrajectory`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import integrate

from gradflow import errors
from gradflow.checkpoint import (
    FORMAT,
    STATE,
    CheckpointStore,
    RunShape,
    _Checker,
    _json_text,
    content_hash,
    fingerprint,
    load_npz,
)
from gradflow.errors import (
    ArgumentError,
    BlowUpError,
    BudgetExceededError,
    GradflowError,
    GradientUnderflowError,
    NonFiniteError,
    ObservableError,
    SolverError,
    StallError,
)
from gradflow.events import Event
from gradflow.flow import (
    BLOW_UP_GROWTH,
    BLOW_UP_WINDOW,
    BUDGET_KEYS,
    CHECKPOINT_SECONDS,
    DEFAULT_MAX_NFEV,
    DEFAULT_MAX_WALL_TIME,
    STALL_ADVANCE,
    STALL_STEPS,
    _check_budget,
    _check_grid,
    _check_tolerances,
    _decade,
    _enter_next_piece_at_its_start,
    _event_value,
    _objective_identity,
    _OutOfBudget,
    _real,
    _root,
    _UserFunctionFailure,
)
from gradflow.layout import Layout
from gradflow.model import ModelObjective
from gradflow.objective import Objective, ScaledObjective
from gradflow.solvers import IMPLICIT, STIFF_WINDOW
from gradflow.trajectory import Trajectory, to_jsonable
from gradflow.vector_field import (
    UNDERFLOW_NORM,
    Clock,
    GradientUnderflow,
    Normalize,
    RateSchedule,
    VectorField,
)

__all__ = ["ENSEMBLE_METHODS", "EnsembleTrajectory", "simulate_ensemble"]


# ------------------------------------------------------------------------------ solvers


def _member_rms(x: np.ndarray, members: int) -> np.ndarray:
    """The RMS norm of each member's part of a stacked vector, shape (members,)."""
    x = x.reshape(members, -1)
    return np.sqrt(np.mean(x * x, axis=1))


class _PerMemberNorm:
    """Mixin for SciPy's explicit Runge–Kutta solvers: the error norm of a step is the largest
    of the members' RMS norms (``RungeKutta._estimate_error_norm`` is the hook SciPy's step
    uses for the accept/reject test and the next step size). :attr:`member_norms` keeps the
    members' norms of the last trial step: the member that limits the step is its argmax."""

    members: int = 1
    member_norms: np.ndarray | None = None

    def _estimate_error_norm(self, K: np.ndarray, h: float, scale: np.ndarray) -> float:
        norms = _member_rms(self._estimate_error(K, h) / scale, self.members)
        self.member_norms = norms
        return float(np.max(norms))  # a NaN of one member rejects the step, as alone


class EnsembleRK45(_PerMemberNorm, integrate.RK45):
    """RK45 (Dormand–Prince 5(4)) with the worst member's error norm."""


class EnsembleRK23(_PerMemberNorm, integrate.RK23):
    """RK23 (Bogacki–Shampine 3(2)) with the worst member's error norm."""


class EnsembleDOP853(_PerMemberNorm, integrate.DOP853):
    """DOP853 with the worst member's error norm: SciPy's combined 5th/3rd-order estimate
    (Hairer's), computed per member."""

    def _estimate_error_norm(self, K: np.ndarray, h: float, scale: np.ndarray) -> float:
        m = self.members
        err5 = (K.T @ self.E5 / scale).reshape(m, -1)
        err3 = (K.T @ self.E3 / scale).reshape(m, -1)
        e5, e3 = np.sum(err5 * err5, axis=1), np.sum(err3 * err3, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            norms = np.where((e5 == 0) & (e3 == 0), 0.0,
                             abs(h) * e5 / np.sqrt((e5 + 0.01 * e3) * err5.shape[1]))
        self.member_norms = norms
        return float(np.max(norms))


ENSEMBLE_METHODS: dict[str, type[integrate.OdeSolver]] = {
    "RK45": EnsembleRK45, "RK23": EnsembleRK23, "DOP853": EnsembleDOP853}
"""The solvers of :func:`simulate_ensemble`: SciPy's explicit Runge–Kutta methods with the
worst member's error norm. Implicit methods are refused (see :func:`simulate_ensemble`)."""

ERROR_ORDER = {"RK45": 4, "RK23": 2, "DOP853": 7}
"""Each method's error-estimator order, for the initial step (SciPy's values)."""


# ------------------------------------------------------------------------------ the field


class _Gradients:
    """The gradients of the active members, shape (m, P), by the fastest route the objectives
    allow: one ``batched_gradient`` call (a shared objective that has one, e.g. every
    :class:`~gradflow.ModelObjective`), one ``model.batched_grad`` call with the list of the
    members' data (per-member ModelObjectives of equal models), else a loop over members."""

    def __init__(self, objectives: list[Objective], shared: bool):
        self.objectives = objectives
        self.layout = objectives[0].layout
        self.route = "loop"
        if shared and callable(getattr(objectives[0], "batched_gradient", None)):
            self.route = "shared"
        elif not shared and _same_model(objectives):
            self.route = "model"
            self.model = objectives[0].model
            self.data = [o.data for o in objectives]

    def __call__(self, Y: np.ndarray, ids: np.ndarray) -> np.ndarray:
        if ids.size == 1:  # one member left: its own gradient, without stacking
            objective = self.objectives[0 if len(self.objectives) == 1 else int(ids[0])]
            G = np.asarray(objective.gradient(Y[0]), dtype=float)[None]
        elif self.route == "shared":
            G = self.objectives[0].batched_gradient(Y)
        elif self.route == "model":
            params = self.layout.unpack_batch(Y)
            G = self.layout.pack_batch(self.model.batched_grad(params,
                                                               [self.data[b] for b in ids]))
        else:
            objs = self.objectives
            G = np.stack([np.asarray(objs[0 if len(objs) == 1 else b].gradient(Y[i]),
                                     dtype=float) for i, b in enumerate(ids)])
        G = np.asarray(G, dtype=float)
        if G.shape != Y.shape:
            raise ArgumentError(f"the gradients of {len(ids)} members have shape {G.shape}, "
                                f"expected {Y.shape} (members, layout.size)")
        return G

    def scaled(self, Y: np.ndarray, ids: np.ndarray
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The scaled gradients (rule 7) of the active members and their log-scales, (m,)
        per block: through ``batched_scaled_gradient`` / ``model.batched_scaled_grad`` on the
        routes above, else member by member (``scaled_gradient`` of a
        :class:`~gradflow.ScaledObjective`, the plain gradient with log-scale 0 otherwise)."""
        names = self.layout.names
        m = ids.size
        if self.route == "shared" and callable(
                getattr(self.objectives[0], "batched_scaled_gradient", None)) and m > 1:
            G, ls = self.objectives[0].batched_scaled_gradient(Y)
        elif self.route == "model" and m > 1:
            blocks, ls = self.model.batched_scaled_grad(self.layout.unpack_batch(Y),
                                                        [self.data[b] for b in ids])
            G = self.layout.pack_batch(blocks)
        else:
            rows, ls_rows = [], []
            for i, b in enumerate(ids.tolist()):
                objective = self.objectives[0 if len(self.objectives) == 1 else b]
                if isinstance(objective, ScaledObjective):
                    g, scales = objective.scaled_gradient(Y[i])
                else:
                    g, scales = objective.gradient(Y[i]), dict.fromkeys(names, 0.0)
                rows.append(np.asarray(g, dtype=float))
                ls_rows.append([float(scales[k]) for k in names])
            G = np.stack(rows)
            ls = {k: np.array([r[j] for r in ls_rows]) for j, k in enumerate(names)}
        G = np.array(G, dtype=float)
        ls = {k: np.asarray(ls[k], dtype=float).reshape(-1) for k in names}
        if G.shape != Y.shape or any(v.shape != (m,) for v in ls.values()):
            raise ArgumentError(f"the scaled gradients of {m} members have shape {G.shape} "
                                f"and log-scales of shapes { {k: v.shape for k, v in ls.items()} }"
                                f", expected {Y.shape} and ({m},) per block")
        return G, ls


def _row_norms(V: np.ndarray) -> np.ndarray:
    """‖v‖₂ of each row without underflow (as :func:`gradflow.vector_field._norm`, per
    member): scaled by the row's largest entry, since the squares of entries below ~1e-154
    underflow long before the row loses its direction."""
    if V.shape[1] == 0:
        return np.zeros(V.shape[0])
    top = np.max(np.abs(V), axis=1)
    ok = (top > 0) & np.isfinite(top)
    U = V / np.where(ok, top, 1.0)[:, None]
    return np.where(ok, top * np.sqrt(np.sum(U * U, axis=1)), top)


def _same_model(objectives: list[Objective]) -> bool:
    """Whether every objective is a ModelObjective of one model class with equal models (by
    content hash): then one ``batched_grad`` call with the list of data serves them all."""
    if not all(type(o) is ModelObjective for o in objectives):
        return False
    first = objectives[0].model
    if any(type(o.model) is not type(first) for o in objectives):
        return False
    if all(o.model is first for o in objectives):
        return True
    try:
        key = content_hash(first, type(first).__name__)
        return all(o.model is first or content_hash(o.model, type(first).__name__) == key
                   for o in objectives)
    except ArgumentError:  # a model that cannot be hashed: loop rather than guess
        return False


class _StackedField:
    """``dY/dτ`` of the active members, flat; counts evaluations and enforces the budgets.

    Vectorised over the members: the batched gradient (or, normalised, the batched scaled
    gradient, each member divided by its own norm, as
    :class:`~gradflow.vector_field.VectorField` does for one) × the per-block rates × the
    clock's factor. A member whose normalised direction underflowed at a trial point is
    remembered in :attr:`flagged`; its accepted state is then judged by its own
    ``VectorField.check_state``."""

    def __init__(self, run: _EnsembleRun, piece: int):
        self.run = run
        rates = run.schedule.at(run.piece_t[piece])
        layout = run.layout
        self.rate = None
        if any(v != 1.0 for v in rates.values()):
            self.rate = np.ones(layout.size)
            for name, value in rates.items():
                self.rate[layout.slices[name]] = value
        self.fields = None
        if run.normalize is not None:
            objs = run.objectives
            self.fields = [VectorField(objs[0 if len(objs) == 1 else b], run.clock, rates,
                                       run.normalize) for b in range(run.B)]
            self.active = [k for k in layout.names if rates.get(k, 1.0) > 0]
            self.active_index = np.concatenate(
                [np.arange(layout.size)[layout.slices[k]] for k in self.active]
            ) if self.active else np.arange(0)
        self.flagged: set[int] = set()  # normalised members whose direction underflowed
        self.ids = np.arange(0)
        self.nonfinite: set[int] = set()  # members with a non-finite derivative this step
        self.primed: tuple[float, np.ndarray, np.ndarray] | None = None

    def directions(self, Y: np.ndarray, ids: np.ndarray) -> np.ndarray:
        run = self.run
        counters = run.counters
        counters["nfev"] += 1
        if counters["nfev"] > run.budgets[0]:
            raise _OutOfBudget("max_nfev")
        if time.perf_counter() > run.deadline:
            raise _OutOfBudget("max_wall_time")
        run.member_nfev[ids] += 1
        if self.fields is None:
            G = run.gradients(Y, ids)
            if self.rate is not None:
                G *= self.rate
        elif ids.size == 1:  # one member: its own VectorField, exactly as simulate's
            vf = self.fields[int(ids[0])]
            vf.underflow = None
            G = vf.direction(Y[0])[None]
            if vf.underflow is not None:
                self.flagged.add(int(ids[0]))
        else:
            G = self._normalized(Y, ids)
            if self.rate is not None:
                G *= self.rate
        bad = ~np.isfinite(G.sum(axis=1))  # one sum per member: NaN/inf propagate
        if bad.any():
            self.nonfinite.update(int(b) for b in ids[bad])
        return G

    def _normalized(self, Y: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``P(∇L)`` of each member, as :meth:`VectorField.direction` computes it for one."""
        layout = self.run.layout
        G, ls = self.run.gradients.scaled(Y, ids)
        flagged = np.zeros(ids.size, dtype=bool)
        if self.run.normalize == "global":
            if self.active:  # one common factor per member: rescale to its largest block
                top = np.max(np.stack([ls[k] for k in self.active]), axis=0)
                top = np.where(np.isfinite(top), top, 0.0)
                with np.errstate(invalid="ignore"):
                    for name in layout.names:
                        G[:, layout.slices[name]] *= np.exp(ls[name] - top)[:, None]
                part = G if len(self.active) == len(layout.names) else G[:, self.active_index]
                norm = _row_norms(part)
                flagged = norm < UNDERFLOW_NORM
                G /= np.where(norm > 0, norm, 1.0)[:, None]
        else:
            for name in layout.names:
                s = layout.slices[name]
                norm = _row_norms(G[:, s])
                if name in self.active:
                    flagged |= norm < UNDERFLOW_NORM
                G[:, s] /= np.where(norm > 0, norm, 1.0)[:, None]
        if flagged.any():
            self.flagged.update(int(b) for b in ids[flagged])
        return G

    def rows(self, taus: np.ndarray, Y: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """dY/dτ with one τ per member (the per-member initial steps)."""
        factor = np.ones_like(taus) if self.run.clock.name == "linear" else np.exp(taus)
        return -factor[:, None] * self.directions(Y, ids)

    def __call__(self, tau: float, y: np.ndarray) -> np.ndarray:
        primed, self.primed = self.primed, None
        if primed is not None and tau == primed[0] and np.array_equal(y, primed[1]):
            return primed[2].copy()  # known already: the initial step evaluated it
        m = self.ids.size
        G = self.directions(y.reshape(m, -1), self.ids)
        G *= -self.run.clock.dt_dtau(tau)
        return G.ravel()


# ------------------------------------------------------------------------------ the result


STOP_ERRORS: dict[str, type[GradflowError]] = {
    name: getattr(errors, name) for name in (
        "NonFiniteError", "SolverError", "StallError", "BlowUpError", "BudgetExceededError",
        "GradientUnderflowError", "ObservableError")}


class EnsembleTrajectory:
    """What :func:`simulate_ensemble` recorded: B members on one record grid.

    Attributes
    ----------
    t : ndarray, shape (n_rec,)
        The record grid (in t whatever the clock), common to all members.
    theta : ndarray, shape (B, n_rec, P), or None
        θ of each member at each record time; NaN at record times after the member stopped
        (``n_records[b]`` rows are recorded). None with ``store_theta=False``.
    observables : dict of str to ndarray, each shape (B, n_rec, ...)
        Float (or complex) arrays; NaN after a member stopped.
    n_records : ndarray of int, shape (B,)
        How many grid rows each member recorded.
    final_t : ndarray, shape (B,)
        Where each member ended: t_end, a terminal event's time, or the last accepted time
        before its failure.
    final_state : ndarray, shape (B, P)
        θ there (use :meth:`final_theta`, which refuses a failed member's).
    events : list of dict of str to ndarray
        Per member, the crossing times of each event.
    status, stop_reasons : list of str
        Per member, as ``Trajectory.stats["status"]``/``["stop_reason"]``: ``"finished"``,
        ``"event"``, or why it failed (``"non-finite"``, ``"budget"``, ``"stall"``,
        ``"blow-up"``, ``"solver failure"``, ``"gradient underflow"``, ``"observable"``,
        ``"event function"``).
    errors : list of GradflowError or None
        Per member, the error that stopped it (with ``.t`` and the partial ``.trajectory``),
        the one :func:`gradflow.simulate` would have raised; None if it did not fail.
    stats : dict
        ``nfev`` (stacked evaluations, each one gradient of every active member),
        ``member_nfev`` (per member), ``steps``, ``restarts`` (solver rebuilds after members
        dropped out), ``wall_time``, ``method``, ``route`` (how gradients were batched:
        ``"shared"``, ``"model"`` or ``"loop"``), ``rtol``, ``atol``, budgets, ``resumed``.
    config : dict
    layout : Layout
    """

    def __init__(self, *, t, theta, observables, n_records, final_t, final_state,
                 final_observables, has_final_row, events, status, stop_reasons, errors_,
                 stats, config, layout):
        self.t = t
        self.theta = theta
        self.observables = observables
        self.n_records = n_records
        self.final_t = final_t
        self.final_state = final_state
        self._final_observables = final_observables
        self._has_final_row = has_final_row
        self.events = events
        self.status = status
        self.stop_reasons = stop_reasons
        self.errors = errors_
        self.stats = stats
        self.config = config
        self.layout = layout

    @property
    def B(self) -> int:
        """The number of members."""
        return len(self.status)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask, shape (B,): members that did not fail (finished or stopped by a
        terminal event)."""
        return np.array([e is None for e in self.errors])

    @property
    def failed(self) -> list[int]:
        """The members that failed."""
        return [b for b, e in enumerate(self.errors) if e is not None]

    def __repr__(self) -> str:
        return (f"EnsembleTrajectory({self.B} members, {self.t.size} records to "
                f"t={self.t[-1]:g}, failed {self.failed}, observables {list(self.observables)})")

    def _check_member(self, b: Any) -> int:
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 0 <= b < self.B:
            raise ArgumentError(f"member must be an integer in [0, {self.B}), got {b!r}")
        return int(b)

    def raise_for_failures(self) -> None:
        """Raise the first failed member's error (its message names the member), if any."""
        if self.failed:
            raise self.errors[self.failed[0]]

    def final_theta(self, b: int | None = None) -> np.ndarray:
        """θ where member ``b`` ended, shape (P,); all members, shape (B, P), when ``b`` is
        None.

        Raises
        ------
        GradflowError
            The member's own error (e.g. :class:`~gradflow.errors.NonFiniteError`) if it
            failed: its last state is no answer (``final_state`` holds it, and
            ``errors[b].trajectory`` the partial trajectory). With ``b`` None, the first
            failed member's.
        """
        if b is None:
            self.raise_for_failures()
            return self.final_state
        b = self._check_member(b)
        if self.errors[b] is not None:
            raise self.errors[b]
        return self.final_state[b]

    def member(self, b: int, partial: bool = False) -> Trajectory:
        """Member ``b`` as the :class:`~gradflow.Trajectory` its own :func:`gradflow.simulate`
        would return: its grid rows, then its stop row (a terminal event's time, or for a
        failure the last accepted state) when that is not a grid time.

        Parameters
        ----------
        b : int
        partial : bool
            Return a failed member's partial trajectory (``stats["status"]`` says
            ``"failed: ..."``) instead of raising its error.

        Raises
        ------
        GradflowError
            Member ``b`` failed and ``partial`` is False: its own error.
        """
        b = self._check_member(b)
        if self.errors[b] is not None and not partial:
            raise self.errors[b]
        k = int(self.n_records[b])
        t = self.t[:k]
        theta = self.theta[b, :k] if self.theta is not None else None
        obs = {name: v[b, :k] for name, v in self.observables.items()}
        if self._has_final_row[b]:
            t = np.append(t, self.final_t[b])
            if theta is not None:
                theta = np.vstack([theta, self.final_state[b][None]])
            obs = {name: np.concatenate([v, self._final_observables[name][b][None]])
                   for name, v in obs.items()}
        stats = {**{k_: v for k_, v in self.stats.items() if k_ != "member_nfev"},
                 "nfev": int(self.stats["member_nfev"][b]), "status": self.status[b],
                 "stop_reason": self.stop_reasons[b], "member": b}
        return Trajectory(t=t, theta=theta, observables=obs, events=dict(self.events[b]),
                          stats=to_jsonable(stats), config={**self.config, "member": b},
                          layout=self.layout)


# ------------------------------------------------------------------------------ the run


class _Monitor:
    """Stalls and blow-ups of the stacked solver, judged per member: a stall (steps that no
    longer advance τ) is the fault of the member that limits the step (the largest error
    norm), and a blow-up when that member's max|θ| grew ×:data:`BLOW_UP_GROWTH` within the
    last :data:`BLOW_UP_WINDOW` of τ (as :class:`gradflow.flow._StepMonitor`, per member)."""

    def __init__(self, B: int):
        self.samples: deque[tuple[float, np.ndarray]] = deque(maxlen=64)
        self.latest = np.zeros(B)
        self.reset()

    def reset(self) -> None:
        """Forget the step history (after a restart: the stall was the dropped member's)."""
        self.frozen = 0
        self.times: deque[float] = deque(maxlen=STIFF_WINDOW + 1)
        self.nonfinite: set[int] = set()  # members with a non-finite trial value since

    def observe(self, tau: float, Y: np.ndarray, ids: np.ndarray) -> None:
        """Record the active members' max|θ| at τ (a sample every 0.1 % of τ)."""
        self.latest[ids] = np.max(np.abs(Y), axis=1)
        if not self.samples or tau >= self.samples[-1][0] * (1 + 1e-3) + 1e-300:
            self.samples.append((tau, self.latest.copy()))

    def after_step(self, tau: float, tau_old: float, Y: np.ndarray, ids: np.ndarray) -> bool:
        """Whether the solver stalled, after one accepted step."""
        self.observe(tau, Y, ids)
        self.times.append(tau)
        self.frozen = self.frozen + 1 if tau - tau_old <= 1e-12 * abs(tau) else 0
        advance = (self.times[-1] - self.times[0] if len(self.times) > STIFF_WINDOW
                   else np.inf)
        return self.frozen >= STALL_STEPS or advance < STALL_ADVANCE * abs(tau)

    def growth(self, b: int) -> float:
        if not self.samples:
            return 1.0
        now = self.samples[-1][0]
        before = [v[b] for tau, v in self.samples if tau <= now * (1 - BLOW_UP_WINDOW)]
        reference = before[-1] if before else self.samples[0][1][b]
        if reference > 0:
            return float(self.latest[b] / reference)
        return np.inf if self.latest[b] > 0 else 1.0


class _EnsembleRun:
    """One call of :func:`simulate_ensemble`."""

    def __init__(self, *, objectives, shared, thetas0, grid, clock, method, rtol, atol,
                 max_step, schedule, normalize, observables, events, store_theta, t_start,
                 t_end, store, progress, config, budgets):
        self.objectives = objectives
        self.layout: Layout = objectives[0].layout
        self.B, self.P = thetas0.shape
        self.gradients = _Gradients(objectives, shared)
        self.thetas0 = thetas0
        self.grid_t = grid
        self.clock = clock
        self.grid_tau = clock.tau(grid)
        self.method = method
        self.rtol, self.atol, self.max_step = rtol, atol, max_step
        self.schedule = schedule
        self.normalize = normalize
        self.observables = observables  # list of B dicts
        self.obs_names = list(observables[0])
        self.events = events  # list of B lists
        self.event_names = [e.name for e in events[0]]
        self.store_theta = store_theta
        breaks = schedule.breakpoints(t_start, t_end)
        self.piece_t = [t_start, *breaks, t_end]
        self.piece_tau = [float(clock.tau(t)) for t in self.piece_t]
        self.store = store
        self.progress = progress
        self.config = config
        self.budgets = budgets
        B, n = self.B, len(grid)
        self.counters = {"nfev": 0, "steps": 0, "restarts": 0, "wall_time": 0.0}
        self.member_nfev = np.zeros(B, dtype=np.int64)
        self.status = ["running"] * B
        self.reasons = ["running"] * B
        self.errors: list[GradflowError | None] = [None] * B
        self.error_info: list[list[Any] | None] = [None] * B  # [class, message, t] to save
        self.crossings: list[dict[str, list[float]]] = [
            {name: [] for name in self.event_names} for _ in range(B)]
        self.theta_rows = np.full((B, n, self.P), np.nan) if store_theta else None
        self.obs_rows: dict[str, np.ndarray] = {}
        self.obs_shapes: dict[str, tuple[int, ...]] = {}
        self.n_records = np.zeros(B, dtype=np.int64)
        self.final_t = np.full(B, np.nan)
        self.final_state = np.full((B, self.P), np.nan)
        self.final_obs: dict[str, np.ndarray] = {}
        self.has_final_row = np.zeros(B, dtype=bool)
        self.event_values = np.zeros((B, len(self.event_names)))
        self.monitor = _Monitor(B)
        self.saved_next = 0  # grid rows already in checkpoint segments

    # ------------------------------------------------------------------ recording

    def _observe(self, b: int, t: float, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Member b's observables at θ, validated as :class:`gradflow.flow._Recorder` does."""
        values = {}
        for name, fn in self.observables[b].items():
            try:
                value = np.asarray(fn(theta))
            except Exception as exc:
                raise _UserFunctionFailure(
                    "observable", name, t, f"raised {type(exc).__name__}: {exc}") from exc
            if value.dtype.kind not in "biufc":
                raise _UserFunctionFailure(
                    "observable", name, t, f"returned a value of dtype {value.dtype}; "
                    "observables must return numbers or numeric arrays")
            expected = self.obs_shapes.setdefault(name, value.shape)
            if value.shape != expected:
                raise _UserFunctionFailure(
                    "observable", name, t, f"returned shape {value.shape}, but shape "
                    f"{expected} at the first record time of the ensemble (every member's "
                    "observable of one name must have one shape: the records are stacked)")
            if name not in self.obs_rows:
                dtype = complex if value.dtype.kind == "c" else float
                self.obs_rows[name] = np.full((self.B, len(self.grid_t), *expected), np.nan,
                                              dtype=dtype)
                self.final_obs[name] = np.full((self.B, *expected), np.nan, dtype=dtype)
            elif value.dtype.kind == "c" and self.obs_rows[name].dtype.kind != "c":
                # a member (or a later time) is complex where the first value was real: keep
                # the imaginary parts, as each member's own simulate would
                self.obs_rows[name] = self.obs_rows[name].astype(complex)
                self.final_obs[name] = self.final_obs[name].astype(complex)
            values[name] = value
        return values

    def _record_row(self, b: int, k: int, theta: np.ndarray) -> None:
        values = self._observe(b, float(self.grid_t[k]), theta)
        if self.theta_rows is not None:
            self.theta_rows[b, k] = theta
        for name, value in values.items():
            self.obs_rows[name][b, k] = value
        self.n_records[b] = k + 1

    def _set_final(self, b: int, t: float, theta: np.ndarray, row: bool
                   ) -> _UserFunctionFailure | None:
        """Member b ends at (t, θ); ``row``: record it as an extra (off-grid) row. Returns the
        failure of an observable at that row (nothing is recorded for it), else None."""
        self.final_t[b] = t
        self.final_state[b] = theta
        if row:
            try:
                values = self._observe(b, t, theta)
            except _UserFunctionFailure as exc:
                return exc
            for name, value in values.items():
                self.final_obs[name][b] = value
            self.has_final_row[b] = True
        return None

    def _stop(self, b: int, reason: str, error: GradflowError | None, t: float,
              theta: np.ndarray) -> None:
        k = int(self.n_records[b])
        last_t = float(self.grid_t[k - 1]) if k else -np.inf
        failure = self._set_final(b, t, theta, row=t > last_t)
        if failure is not None and error is None:
            # a member that ended well but whose last row cannot be observed has failed, as
            # its own simulate would (a failed member keeps what it recorded before)
            reason = "observable" if failure.kind == "observable" else "event function"
            error = self._error(ObservableError, b, f"member {b}: {failure}; fix the "
                                "function", t)
        self.reasons[b] = reason
        if error is None:
            self.status[b] = ("finished" if reason == "finished" else
                              f"terminated by event {self._terminal_name(b)!r}")
        else:
            self.status[b] = f"failed: {reason}"
            self.errors[b] = error
            self.error_info[b] = [type(error).__name__, str(error), float(error.t)]

    def _terminal_name(self, b: int) -> str:
        times = {name: v[-1] for name, v in self.crossings[b].items() if v}
        return max(times, key=times.get) if times else "?"

    # ------------------------------------------------------------------ errors

    def _where(self, b: int, t: float) -> str:
        return (f"member {b} at t={t:.6g} of t_end={self.piece_t[-1]:g} ({self.method}, "
                f"{self.clock.name} clock)")

    def _error(self, cls: type[GradflowError], b: int, message: str, t: float,
               **extra: Any) -> GradflowError:
        """The member's error (its partial trajectory is attached by :meth:`_result`)."""
        exc = cls(f"{message}; the member's partial trajectory is attached as .trajectory "
                  "(and ensemble.member(b, partial=True))", t=t, **extra)
        exc.member = b  # type: ignore[attr-defined]
        return exc

    def _fail(self, b: int, kind: str, t: float, theta: np.ndarray, detail: str = "",
              **extra: Any) -> None:
        where = self._where(b, t)
        if kind == "non-finite":
            err = self._error(NonFiniteError, b, f"the flow of member {b} became non-finite "
                              f"after t={t:.6g} (last finite state there){detail}", t)
        elif kind == "blow-up":
            err = self._error(BlowUpError, b, f"the state of {where} grows without bound: "
                              f"max|θ| grew ×{detail} while the steps stopped advancing t — "
                              "a finite-time blow-up (is the loss bounded below?)", t)
        elif kind == "stall":
            err = self._error(StallError, b, f"the solver stopped advancing {where}: the "
                              f"accepted steps no longer move t ({detail}); check the "
                              "objective for a discontinuity, or run this member with "
                              "gradflow.simulate(method='auto')", t)
        elif kind == "gradient underflow":
            err = self._error(GradientUnderflowError, b, f"the gradient of {where} underflowed "
                              f"({detail}), so the normalised flow would freeze; implement "
                              "Model.scaled_grad (docs/guide.md, 'Max-margin flows on your "
                              "own model')", t, block=extra.get("block", ""))
        elif kind == "budget":
            budget = extra["budget"]
            limit = self.budgets[0] if budget == "max_nfev" else self.budgets[1]
            err = self._error(BudgetExceededError, b, f"the ensemble used its budget "
                              f"{budget}={limit:g} (shared by all members: {detail}) at "
                              f"{where}; raise {budget} (None for no limit) or loosen "
                              "rtol/atol; with checkpoint= a rerun with a larger budget "
                              "resumes", t, budget=budget)
        elif kind in ("observable", "event function"):
            err = self._error(ObservableError, b, f"member {b}: {detail}; fix the function",
                              t)
        else:
            err = self._error(SolverError, b, f"{self.method} failed for {where}: {detail}", t)
        self._stop(b, kind, err, t, theta)

    # ------------------------------------------------------------------ checkpoints

    def _shape_check(self, file: Path, info: dict[str, Any], arrays: dict[str, np.ndarray]
                     ) -> None:
        """Validate a saved ensemble state against this run (naming the file and field)."""
        check = _Checker(file)
        B, P, E, n_rec = self.B, self.P, len(self.event_names), len(self.grid_t)
        fields = {"piece", "tau", "h", "next", "active", "counters", "status", "reasons",
                  "errors", "crossings", "resumed", "obs_shapes"}
        if not fields <= set(info):
            check.fail(sorted(fields - set(info))[0], "is missing")
        n_pieces = len(self.piece_tau) - 1
        piece = check.integer("piece", info["piece"], 0, n_pieces)
        lo, hi = ((self.piece_tau[piece], self.piece_tau[piece + 1]) if piece < n_pieces
                  else (self.piece_tau[-2], self.piece_tau[-1]))
        tau = check.real("tau", info["tau"], lo, hi)
        k = check.integer("next", info["next"], 1, n_rec)
        if (k >= 2 and not self.grid_tau[k - 1] <= tau) or (
                k < n_rec and not tau < self.grid_tau[k]):
            check.fail("next", f"= {k} does not match the state's τ={tau:.17g}")
        active = info["active"]
        if not (isinstance(active, list) and all(isinstance(b, int) and 0 <= b < B
                                                 for b in active)
                and active == sorted(set(active))):
            check.fail("active", f"= {active!r} must be increasing member indices < {B}")
        for name in ("status", "reasons", "errors", "crossings"):
            if not isinstance(info[name], list) or len(info[name]) != B:
                check.fail(name, f"must list one entry per member ({B})")
        h = info["h"]
        if h is not None and not (isinstance(h, int | float) and np.isfinite(h) and h > 0):
            check.fail("h", f"= {h!r} must be None or a positive finite step size")
        for b in range(B):
            entry = info["errors"][b]
            if not (isinstance(info["status"][b], str) and isinstance(info["reasons"][b], str)
                    and (entry is None or (isinstance(entry, list) and len(entry) == 3
                                           and entry[0] in STOP_ERRORS
                                           and isinstance(entry[1], str)
                                           and isinstance(entry[2], int | float)))
                    and isinstance(info["crossings"][b], dict)
                    and sorted(info["crossings"][b]) == sorted(self.event_names)):
                check.fail(f"member {b}", "has a status, error or crossings of the wrong form")
            if (b in active) != (info["status"][b] == "running"):
                check.fail(f"status[{b}]", f"= {info['status'][b]!r} contradicts the active "
                           "members")
        expected = {"thetas": (len(active), P), "event_values": (B, E), "n_records": (B,),
                    "final_t": (B,), "final_state": (B, P), "has_final_row": (B,),
                    "member_nfev": (B,)}
        for name, shape in expected.items():
            if name not in arrays or arrays[name].shape != shape:
                got = arrays[name].shape if name in arrays else "nothing"
                check.fail(name, f"has shape {got}, expected {shape}")
        for name in self.obs_names:
            if f"final_obs/{name}" not in arrays:
                check.fail(f"final_obs/{name}", "is missing")
        if not np.all(np.isfinite(arrays["thetas"])):
            check.fail("thetas", "is not finite")
        if np.any(arrays["n_records"] > k) or np.any(arrays["n_records"][active] != k):
            check.fail("n_records", f"must be {k} (next) for every active member and at most "
                       "that for the others")

    def _restore(self, saved: dict[str, Any]) -> dict[str, Any]:
        info, arrays = saved["info"], saved["arrays"]
        rows = saved["rows"]
        k = info["next"]
        if self.theta_rows is not None:
            self.theta_rows[:, :k] = rows["theta"].reshape(k, self.B, self.P).transpose(1, 0, 2)
        self.obs_shapes = {name: tuple(shape) for name, shape in info["obs_shapes"].items()}
        for name in self.obs_names:
            block = rows[f"obs/{name}"]  # (k, B, *shape)
            shape = self.obs_shapes[name]
            dtype = complex if block.dtype.kind == "c" else float
            self.obs_rows[name] = np.full((self.B, len(self.grid_t), *shape), np.nan,
                                          dtype=dtype)
            self.obs_rows[name][:, :k] = np.moveaxis(block, 0, 1)
            self.final_obs[name] = arrays[f"final_obs/{name}"].astype(dtype)
        self.n_records = arrays["n_records"].astype(np.int64)
        self.final_t = arrays["final_t"].astype(float)
        self.final_state = arrays["final_state"].astype(float)
        self.has_final_row = arrays["has_final_row"].astype(bool)
        self.event_values = arrays["event_values"].astype(float)
        self.member_nfev = arrays["member_nfev"].astype(np.int64)
        self.counters = dict(info["counters"])
        self.status, self.reasons = list(info["status"]), list(info["reasons"])
        self.crossings = [{k_: list(v) for k_, v in c.items()} for c in info["crossings"]]
        for b, entry in enumerate(info["errors"]):
            if entry is not None:
                cls = STOP_ERRORS.get(entry[0], SolverError)
                exc = cls(entry[1], t=float(entry[2]))
                exc.member = b  # type: ignore[attr-defined]
                self.errors[b], self.error_info[b] = exc, entry
        self.saved_next = k
        state = {"piece": info["piece"], "tau": info["tau"], "h": info["h"], "next": k,
                 "active": np.asarray(info["active"], dtype=np.int64),
                 "Y": arrays["thetas"].copy(), "resumed": info["resumed"] + 1}
        _enter_next_piece_at_its_start(state, self.piece_tau)
        return state

    def _checkpoint(self, state: dict[str, Any]) -> None:
        """Save the grid rows recorded since the last save (a segment) and the state."""
        if self.store is None:
            return
        for name in self.obs_names:  # never evaluated successfully (every member failed first)
            if name not in self.obs_rows:
                self.obs_shapes.setdefault(name, ())
                self.obs_rows[name] = np.full((self.B, len(self.grid_t)), np.nan)
                self.final_obs[name] = np.full(self.B, np.nan)
        k0, k = self.saved_next, state["next"]
        rows = None
        if k > k0:
            rows = {"t": self.grid_t[k0:k]}
            if self.theta_rows is not None:
                rows["theta"] = self.theta_rows[:, k0:k].transpose(1, 0, 2).reshape(
                    k - k0, self.B * self.P)
            for name in self.obs_names:
                rows[f"obs/{name}"] = np.moveaxis(self.obs_rows[name][:, k0:k], 1, 0)
        info = {"piece": state["piece"], "tau": state["tau"], "h": state["h"], "next": k,
                "active": [int(b) for b in state["active"]], "counters": self.counters,
                "status": self.status, "reasons": self.reasons,
                "errors": self.error_info, "crossings": self.crossings,
                "resumed": state["resumed"], "obs_shapes": self.obs_shapes}
        arrays = {"thetas": state["Y"], "event_values": self.event_values,
                  "n_records": self.n_records, "final_t": self.final_t,
                  "final_state": self.final_state, "has_final_row": self.has_final_row,
                  "member_nfev": self.member_nfev,
                  **{f"final_obs/{name}": v for name, v in self.final_obs.items()}}
        self.store.save(rows, arrays, to_jsonable(info))
        self.saved_next = k
        self.last_save = time.perf_counter()

    # ------------------------------------------------------------------ the loop

    def execute(self) -> EnsembleTrajectory:
        saved = self.store.load_ensemble(self) if self.store is not None else None
        self.started = time.perf_counter()
        wall0 = saved["info"]["counters"]["wall_time"] if saved is not None else 0.0
        self.wall0 = wall0
        self.budget_stopped = False
        self.deadline = self.started + self.budgets[1] - wall0
        state = self._restore(saved) if saved is not None else self._fresh_state()
        self.last_save = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.grid_t), initial=state["next"], unit="rec",
                       desc=f"ensemble of {self.B} to t={self.grid_t[-1]:g}")
        self.bar = bar
        try:
            while state["active"].size and state["piece"] < len(self.piece_t) - 1:
                self._integrate_piece(state)
            for b in state["active"]:
                self._stop(int(b), "finished", None, float(self.grid_t[-1]),
                           state["Y"][list(state["active"]).index(b)])
            state["active"] = state["active"][:0]
            state["Y"] = state["Y"][:0]
        except _OutOfBudget as exc:
            self._budget_stop(state, exc.budget)
        finally:
            self.counters["wall_time"] = wall0 + time.perf_counter() - self.started
            if bar is not None:
                bar.close()
        if not self.budget_stopped:  # a budget stop saved its members as running
            self._checkpoint(state)
        return self._result(state)

    def _fresh_state(self) -> dict[str, Any]:
        ids = np.arange(self.B)
        Y = self.thetas0.copy()
        t0 = float(self.grid_t[0])
        active = []
        for b in ids:
            try:
                self._record_row(b, 0, Y[b])
                self.event_values[b] = [_event_value(e, Y[b], t0) for e in self.events[b]]
                active.append(b)
            except _UserFunctionFailure as exc:
                kind = "observable" if exc.kind == "observable" else "event function"
                self._fail(int(b), kind, t0, Y[b], detail=str(exc))
        active = np.asarray(active, dtype=np.int64)
        return {"piece": 0, "tau": self.piece_tau[0], "Y": Y[active], "active": active,
                "h": None, "next": 1, "resumed": 0}

    def _budget_stop(self, state: dict[str, Any], budget: str) -> None:
        """Every active member stops on a shared budget; the checkpoint keeps them running, so
        that a rerun with a larger budget resumes (as simulate's)."""
        self.counters["wall_time"] = self.wall0 + time.perf_counter() - self.started
        self._checkpoint(state)
        self.budget_stopped = True
        spent = (f"{self.counters['nfev']} stacked evaluations" if budget == "max_nfev"
                 else f"{time.perf_counter() - self.started:.1f} s")
        t = float(self.clock.t(state["tau"]))
        for i, b in enumerate(state["active"]):
            self._fail(int(b), "budget", t, state["Y"][i], detail=spent, budget=budget)
        state["active"] = state["active"][:0]
        state["Y"] = state["Y"][:0]

    def _make_solver(self, field: _StackedField, state: dict[str, Any], tau_end: float):
        ids = state["active"]
        field.ids = ids
        Y = state["Y"]
        tau = state["tau"]
        f = None
        if state["h"] is None:
            # a fresh start: the members' own initial steps (Hairer's rule, as SciPy's
            # select_initial_step), the smallest of them for the stack
            F0 = field.rows(np.full(ids.size, tau), Y, ids)
            ok = np.isfinite(F0.sum(axis=1))
            if not ok.all():
                for i in np.flatnonzero(~ok):
                    self._fail(int(ids[i]), "non-finite", float(self.clock.t(tau)), Y[i],
                               detail=" (its derivative at the start is not finite)")
                state.update(active=ids[ok], Y=Y[ok])
                if not ok.any():
                    return None
                return self._make_solver(field, state, tau_end)
            h = self._initial_step(field, tau, Y, F0, ids, tau_end)
            f = F0.ravel()
        else:
            h = min(state["h"], tau_end - tau)
        if f is not None:
            field.primed = (tau, Y.ravel(), f)
        self.monitor.reset()  # the step history before a restart was the dropped members'
        cls = ENSEMBLE_METHODS[self.method]
        solver = cls.__new__(cls)
        solver.members = ids.size
        cls.__init__(solver, field, tau, Y.ravel().copy(), tau_end, rtol=self.rtol,
                     atol=self.atol, max_step=self.max_step, first_step=h)
        field.primed = None
        return solver

    def _initial_step(self, field, tau, Y, F0, ids, tau_end) -> float:
        interval = abs(tau_end - tau)
        scale = self.atol + np.abs(Y) * self.rtol
        rms = np.sqrt
        d0 = rms(np.mean((Y / scale) ** 2, axis=1))
        d1 = rms(np.mean((F0 / scale) ** 2, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        h0 = np.minimum(h0, interval)
        F1 = field.rows(tau + h0, Y + h0[:, None] * F0, ids)
        d2 = rms(np.mean(((F1 - F0) / scale) ** 2, axis=1)) / h0
        order = ERROR_ORDER[self.method]
        with np.errstate(divide="ignore"):
            h1 = np.where((d1 <= 1e-15) & (d2 <= 1e-15), np.maximum(1e-6, h0 * 1e-3),
                          (0.01 / np.maximum(d1, d2)) ** (1 / (order + 1)))
        h = np.minimum(np.minimum(100 * h0, h1), min(interval, self.max_step))
        h = h[np.isfinite(h) & (h > 0)]  # a member whose trial point is NaN: leave it to
        return float(h.min()) if h.size else min(interval, self.max_step, 1e-6)  # the step

    def _integrate_piece(self, state: dict[str, Any]) -> None:
        piece = state["piece"]
        field = _StackedField(self, piece)
        tau_end = self.piece_tau[piece + 1]
        solver = self._make_solver(field, state, tau_end)
        while solver is not None and solver.status == "running":
            tau_old, y_old = solver.t, solver.y
            ids = state["active"]
            field.nonfinite.clear()
            field.flagged.clear()
            message = solver.step()
            self.counters["steps"] += 1
            m = ids.size
            Y = solver.y.reshape(m, self.P)
            Y_old = y_old.reshape(m, self.P)
            t_old = float(self.clock.t(tau_old))
            culprits: dict[int, tuple[str, str, dict[str, Any]]] = {}
            if solver.status == "failed":
                bad = sorted(field.nonfinite & set(ids.tolist()))
                if bad:
                    culprits = {b: ("non-finite", "", {}) for b in bad}
                else:
                    b = self._limiting(solver, ids)
                    self.monitor.observe(tau_old, Y_old, ids)
                    growth = self.monitor.growth(b)
                    culprits = {b: ("blow-up", f"{growth:.3g}", {}) if growth >= BLOW_UP_GROWTH
                                else ("solver failure", str(message), {})}
            else:
                rows_bad = ~np.isfinite(Y).all(axis=1)
                culprits = {int(b): ("non-finite", "", {}) for b in ids[rows_bad]}
                if field.fields is not None and not culprits:
                    culprits = self._underflows(field, Y, ids)
                self.monitor.nonfinite |= field.nonfinite
                if not culprits and self.monitor.after_step(solver.t, tau_old, Y, ids):
                    b = self._limiting(solver, ids)
                    growth = self.monitor.growth(b)
                    if b in self.monitor.nonfinite:
                        # its steps shrank against trial points where its field is not
                        # finite: that is the cause (simulate reports it so when the step
                        # size reaches machine spacing first)
                        culprits = {b: ("non-finite", " (its derivative is not finite just "
                                        "ahead: the steps shrank until they stalled)", {})}
                    elif growth >= BLOW_UP_GROWTH:
                        culprits = {b: ("blow-up", f"{growth:.3g}", {})}
                    else:
                        culprits = {b: ("stall", f"h = {solver.h_abs:.3g} in τ", {})}
            if culprits:
                keep = np.array([b not in culprits for b in ids.tolist()])
                for i, b in enumerate(ids.tolist()):
                    if b in culprits:
                        kind, detail, extra = culprits[b]
                        self._fail(b, kind, t_old, Y_old[i], detail=detail, **extra)
                self.counters["restarts"] += 1
                # the step size was the culprit's: the others start afresh (their own
                # initial steps) from the last accepted state
                state.update(active=ids[keep], Y=Y_old[keep], tau=tau_old, h=None)
                if not keep.any():
                    return
                solver = self._make_solver(field, state, tau_end)
                continue
            stopped = self._events(state, tau_old, solver, ids)
            self._record(state, solver, ids, stopped)
            keep = np.array([b not in stopped for b in ids.tolist()])
            state.update(tau=solver.t, Y=Y[keep], active=ids[keep], h=solver.h_abs)
            if not keep.any():
                return
            k_before = state.pop("k_before")
            if not keep.all() and solver.status == "running":  # (finished: the piece ends)
                self.counters["restarts"] += 1
                # the derivative is evaluated again on the smaller stack rather than taken
                # from this one: a batched gradient's rounding may depend on the stack, and a
                # run resumed here from a checkpoint evaluates it on the smaller stack too
                solver = self._make_solver(field, state, tau_end)
            if self._segment_done(k_before, state["next"]) or (
                    self.store is not None
                    and time.perf_counter() - self.last_save > CHECKPOINT_SECONDS):
                self.counters["wall_time"] = self.wall0 + time.perf_counter() - self.started
                self._checkpoint(state)
        if solver is not None and solver.status == "finished":
            state.update(piece=piece + 1, h=None)
            self._checkpoint(state)

    def _limiting(self, solver, ids: np.ndarray) -> int:
        """The member whose error norm limits the step (the largest; NaN first)."""
        norms = solver.member_norms
        if norms is None or norms.size != ids.size:
            return int(ids[0])
        norms = np.where(np.isnan(norms), np.inf, norms)
        return int(ids[int(np.argmax(norms))])

    def _underflows(self, field: _StackedField, Y: np.ndarray, ids: np.ndarray
                    ) -> dict[int, tuple[str, str, dict[str, Any]]]:
        out = {}
        for i, b in enumerate(ids.tolist()):
            vf = field.fields[b]
            if b in field.flagged:  # judged at its accepted state, as simulate does
                self.counters["nfev"] += 1
                try:
                    vf.check_state(Y[i])
                except GradientUnderflow as exc:
                    out[b] = ("gradient underflow", f"norm {exc.norm:.3g} of block "
                              f"{exc.block!r}", {"block": exc.block})
        return out

    def _events(self, state, tau_old, solver, ids) -> dict[int, float]:
        """Crossings in (tau_old, solver.t] per member; the τ of each member stopped by a
        terminal event (or by a failing event function, at tau_old)."""
        stopped: dict[int, float] = {}
        if not self.event_names:
            return stopped
        m = ids.size
        t_new = float(self.clock.t(solver.t))
        Y = solver.y.reshape(m, self.P)
        dense = None
        for i, b in enumerate(ids.tolist()):
            events = self.events[b]
            try:
                new = [_event_value(e, Y[i], t_new) for e in events]
                found = []
                for j, event in enumerate(events):
                    if event.crosses(self.event_values[b, j], new[j]):
                        if dense is None:
                            dense = solver.dense_output()

                        def member_dense(s, i=i, dense=dense):
                            return dense(s).reshape(m, self.P)[i]

                        found.append((_root(event, tau_old, solver.t, new[j], member_dense),
                                      event))
            except _UserFunctionFailure as exc:
                theta_old = np.asarray(solver.y_old).reshape(m, self.P)[i]
                self._fail(b, "event function", float(self.clock.t(tau_old)), theta_old,
                           detail=str(exc))
                stopped[b] = -np.inf
                continue
            stop = np.inf
            for tau, event in sorted(found, key=lambda x: x[0]):
                if tau > stop:
                    break
                self.crossings[b][event.name].append(float(self.clock.t(tau)))
                if event.terminal:
                    stop = tau
            self.event_values[b] = new
            if stop < np.inf:
                stopped[b] = stop
        return stopped

    def _record(self, state, solver, ids, stopped: dict[int, float]) -> None:
        """Record the grid times in (τ_old, solver.t] for the active members (up to a
        terminal event's τ for a member it stopped), then stop those members."""
        k0 = state["next"]
        state["k_before"] = k0
        m = ids.size
        k = k0
        dense = None
        Y = solver.y.reshape(m, self.P)
        while k < len(self.grid_tau) and self.grid_tau[k] <= solver.t:
            tau = self.grid_tau[k]
            if tau == solver.t:
                rows = Y
            else:
                if dense is None:
                    dense = solver.dense_output()
                rows = dense(tau).reshape(m, self.P)
            for i, b in enumerate(ids.tolist()):
                if b in stopped and (stopped[b] < tau or self.errors[b] is not None):
                    continue
                if self.status[b] != "running":
                    continue
                try:
                    self._record_row(b, k, rows[i])
                except _UserFunctionFailure as exc:
                    self._fail(b, "observable", float(self.grid_t[k]), rows[i],
                               detail=str(exc))
                    stopped[b] = -np.inf
            k += 1
        state["next"] = k
        if self.bar is not None and k > k0:
            self.bar.update(k - k0)
        for b, tau_stop in stopped.items():
            if self.status[b] != "running":
                continue  # failed (event or observable function)
            i = ids.tolist().index(b)
            if tau_stop == solver.t:
                theta = Y[i]
            else:
                if dense is None:
                    dense = solver.dense_output()
                theta = dense(tau_stop).reshape(m, self.P)[i]
            self._stop(b, "event", None, float(self.clock.t(tau_stop)), np.array(theta))

    def _segment_done(self, k0: int, k: int) -> bool:
        def decade(j: int) -> float:
            return _decade(self.grid_t[j]) if j < len(self.grid_t) else np.inf

        return k > k0 and decade(k) != decade(k0)

    # ------------------------------------------------------------------ the result

    def _result(self, state: dict[str, Any]) -> EnsembleTrajectory:
        stats = {**{k: v for k, v in self.counters.items()},
                 "member_nfev": self.member_nfev.tolist(), "method": self.method,
                 "route": self.gradients.route, "clock": self.clock.name, "rtol": self.rtol,
                 "atol": self.atol, "max_nfev": self.budgets[0],
                 "max_wall_time": self.budgets[1], "members": self.B,
                 "resumed": state["resumed"]}
        stats = to_jsonable(stats)
        events = [{k: np.asarray(v, dtype=float) for k, v in c.items()}
                  for c in self.crossings]
        result = EnsembleTrajectory(
            t=self.grid_t.copy(), theta=self.theta_rows, observables=dict(self.obs_rows),
            n_records=self.n_records, final_t=self.final_t, final_state=self.final_state,
            final_observables=self.final_obs, has_final_row=self.has_final_row, events=events,
            status=list(self.status), stop_reasons=list(self.reasons),
            errors_=list(self.errors), stats=stats, config=self.config, layout=self.layout)
        for b, err in enumerate(self.errors):
            if err is not None:  # the partial trajectory, as simulate attaches it
                err.trajectory = result.member(b, partial=True)
                if self.store is not None:
                    err.trajectory.save(self.store.path / f"partial_member{b:05d}.npz")
        return result


# ------------------------------------------------------------------------------ checkpoints


class EnsembleCheckpointStore(CheckpointStore):
    """A checkpoint folder of an ensemble run: :class:`~gradflow.checkpoint.CheckpointStore`'s
    folder ownership (the fingerprint in ``checkpoint.json``; another run's folder is refused),
    its atomic segment and state files, and its segment validation; the state holds every
    member's status, the active members' stacked θ and the per-member final rows.

    Segments hold the grid rows of all members: ``theta`` of shape (n, B·P) and
    ``obs/<name>`` of shape (n, B, ...), NaN for members that had stopped."""

    def load_ensemble(self, run: _EnsembleRun) -> dict[str, Any] | None:
        """The saved state and rows of ``run``, validated against it, or None for a fresh
        folder.

        Raises
        ------
        CheckpointError
            Naming the file and the field that is wrong.
        """
        file = self.path / STATE
        try:
            arrays = load_npz(file, "checkpoint state")
        except FileNotFoundError:
            self.segments = []
            return None
        meta = _json_text(arrays, "meta", file)
        check = _Checker(file)
        if not isinstance(meta, dict) or meta.get("fingerprint") != self.key:
            check.fail("fingerprint", "belongs to another run (this file was copied from "
                       "another folder)")
        if meta.get("format") != FORMAT or meta.get("kind") != "ensemble":
            check.fail("kind", "is not an ensemble state")
        arrays.pop("meta")
        run._shape_check(file, meta, arrays)
        shape = RunShape(grid_t=run.grid_t, grid_tau=run.grid_tau,
                         piece_tau=tuple(run.piece_tau), size=run.B * run.P,
                         store_theta=run.store_theta, observables=tuple(run.obs_names),
                         events=(), first_method=run.method, methods=frozenset(),
                         t_of_tau=run.clock.t)
        n = check.integer("n_segments", meta.get("n_segments"), 1)
        summaries = meta.get("segments")
        if not (isinstance(summaries, list) and len(summaries) == n):
            check.fail("segments", f"must list the n_segments={n} segments")
        segments = [self._load_segment(i, s, shape) for i, s in enumerate(summaries)]
        rows = {key: np.concatenate([s[key] for s in segments]) for key in segments[0]}
        if not np.array_equal(rows["t"], run.grid_t[:meta["next"]]):
            check.fail("next", f"= {meta['next']}, but the segments hold {rows['t'].size} rows "
                       "that are not the record grid's first ones")
        for name in run.obs_names:
            if rows[f"obs/{name}"].shape[1] != run.B:
                check.fail(f"obs/{name}", f"has {rows[f'obs/{name}'].shape[1]} members, "
                           f"expected {run.B}")
        self.segments = [list(s) for s in summaries]
        return {"arrays": arrays, "info": meta, "rows": rows}

    def save(self, rows: dict[str, np.ndarray] | None, arrays: dict[str, np.ndarray],
             info: dict[str, Any]) -> None:
        """:meth:`CheckpointStore.save`, the state marked as an ensemble's."""
        super().save(rows, arrays, {**info, "kind": "ensemble"})


# ------------------------------------------------------------------------------ simulate_ensemble


def _per_member(value: Any, B: int, name: str, is_item: Callable[[Any], bool]) -> list[Any]:
    """``value`` for every member: one shared item, or a sequence of B items."""
    if is_item(value):
        return [value] * B
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = list(value)
        if len(items) != B or not all(is_item(v) for v in items):
            raise ArgumentError(f"{name} must be one shared value or a sequence of one per "
                                f"member (B={B}), got {len(items)} entries")
        return items
    raise ArgumentError(f"{name}: expected one shared value or a sequence of B={B}, got "
                        f"{type(value).__name__}")


def _is_events(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(e, Event) for e in value)


def simulate_ensemble(
    objective: Objective | Sequence[Objective],
    thetas0: np.ndarray,
    t_end: float,
    *,
    t_start: float = 0.0,
    clock: Literal["linear", "log"] = "linear",
    method: str = "RK45",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    record_at: Sequence[float] | np.ndarray | None = None,
    observables: Mapping[str, Callable[[np.ndarray], Any]]
    | Sequence[Mapping[str, Callable[[np.ndarray], Any]]] | None = None,
    events: Sequence[Event] | Sequence[Sequence[Event]] = (),
    rates: Mapping[str, Any] | None = None,
    normalize: Normalize = None,
    store_theta: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_key: str | Sequence[str] | None = None,
    progress: bool = False,
    max_step: float = np.inf,
    config: Mapping[str, Any] | None = None,
    max_nfev: int | None = DEFAULT_MAX_NFEV,
    max_wall_time: float | None = DEFAULT_MAX_WALL_TIME,
) -> EnsembleTrajectory:
    """Integrate the gradient flows of B members as one stacked state.

    Member b follows dθ_b/dt = −R(t)·P(∇L_b(θ_b)) from ``thetas0[b]``, exactly the flow
    ``simulate(objective_b, thetas0[b], t_end, ...)`` integrates, to the same tolerances: the
    stacked solver's error norm is the worst member's RMS norm and its first step the smallest
    of the members' own. The members share the steps (the hardest member's), the solver's
    overhead and, through :meth:`gradflow.Model.batched_grad`, the gradient calls.

    Parameters
    ----------
    objective : Objective or sequence of B Objectives
        One objective shared by every member (its data shared: seeds of the initialisation),
        or one per member (per-member data: B random instances), all with the same layout.
        Gradients are batched when the one objective has ``batched_gradient`` (every
        :class:`~gradflow.ModelObjective`) or when the B objectives are ModelObjectives of
        equal models (``model.batched_grad`` with the list of data); otherwise each member's
        ``gradient`` is called in turn. ``stats["route"]`` says which.
    thetas0 : ndarray, shape (B, P)
        Finite initial parameters, one row per member, B ≥ 1.
    t_end, t_start, clock, rtol, atol, record_at, rates, normalize, store_theta, max_step
        As for :func:`gradflow.simulate`, the same for every member. The recorded states
        are allocated at once, B·n_rec·P·8 bytes: ``store_theta=False`` for large ensembles
        of large models. Normalised flows use the batched scaled gradient
        (:meth:`gradflow.Model.batched_scaled_grad`), each member divided by its own norm.
    method : {"RK45", "DOP853", "RK23"}
        An explicit Runge–Kutta method of :data:`ENSEMBLE_METHODS`. Implicit methods
        (``"BDF"``, ``"LSODA"``, ``"Radau"``) and ``"auto"`` are refused: a stiff member
        needs them, and with them its own step sequence; run those members with
        :func:`gradflow.simulate` (a sweep runs them in parallel processes).
    observables : mapping of str to callable, or sequence of B such mappings
        Evaluated at each record time, member by member; with the same names for every
        member. Recorded as arrays (B, n_rec, ...).
    events : sequence of Event, or sequence of B sequences of Event
        Located per member; a terminal event stops only its member.
    checkpoint : path, optional
        A folder, as for :func:`gradflow.simulate`: saved after each decade of the record
        grid (and every 60 s); a rerun with the same objectives and arguments resumes (with a
        larger budget too), bitwise equal to an uninterrupted run. Bound to the fingerprint
        of the objectives' ``checkpoint_key`` (every member's), the settings, ``thetas0`` and
        the grid; a folder of another run is refused.
    checkpoint_key : str or sequence of B str, optional
        With ``checkpoint=``, for objectives without a ``checkpoint_key`` of their own.
    progress : bool
    config : mapping, optional
        Stored in ``EnsembleTrajectory.config``.
    max_nfev : int or None
        The most *stacked* evaluations (each is one gradient of every active member: the same
        count as one member's own run would take, about) the ensemble may use; shared by all
        members: when it runs out, every member still running stops with
        :class:`~gradflow.errors.BudgetExceededError`. Default
        :data:`~gradflow.flow.DEFAULT_MAX_NFEV`. ``stats["member_nfev"]`` counts each member's
        gradient evaluations.
    max_wall_time : float or None
        Seconds for the whole ensemble, counted across resumes.

    Returns
    -------
    EnsembleTrajectory
        Members that failed (a non-finite state, a stall, a blow-up, the budget, an
        observable that raised) left the stack at their last accepted state while the others
        went on; ``errors[b]`` is the error its own ``simulate`` would have raised, and
        :meth:`~EnsembleTrajectory.final_theta` and :meth:`~EnsembleTrajectory.member` raise
        it. Nothing is raised for a member's failure.

    Raises
    ------
    ArgumentError
        Bad arguments, naming the argument and what was expected.
    CheckpointError
        ``checkpoint`` holds another run or is damaged.
    """
    if isinstance(objective, Sequence) and not isinstance(objective, str):
        objectives, shared = list(objective), False
        if not objectives:
            raise ArgumentError("objective: an empty sequence; give one objective or one per "
                                "member")
    else:
        objectives, shared = [objective], True
    for i, obj in enumerate(objectives):
        if not (isinstance(getattr(obj, "layout", None), Layout) and callable(
                getattr(obj, "gradient", None))):
            raise ArgumentError(f"objective[{i}] must be a gradflow Objective (a layout and "
                                f"a gradient), got {type(obj).__name__}")
        if obj.layout != objectives[0].layout:
            raise ArgumentError(f"objective[{i}] has layout {obj.layout!r}, objective[0] "
                                f"{objectives[0].layout!r}: every member needs the same layout")
    layout = objectives[0].layout
    thetas0 = np.asarray(thetas0)
    if thetas0.ndim != 2:
        raise ArgumentError(f"thetas0 must have shape (B, P) = (members, {layout.size}), got "
                            f"shape {thetas0.shape}; a single θ0 goes to gradflow.simulate")
    thetas0 = layout.check_stack(thetas0, "thetas0")
    if not np.isrealobj(thetas0) or thetas0.dtype.kind not in "biuf":
        raise ArgumentError(f"thetas0 must be real numbers, got dtype {thetas0.dtype}")
    thetas0 = thetas0.astype(float)
    B = thetas0.shape[0]
    if not shared and len(objectives) != B:
        raise ArgumentError(f"objective: {len(objectives)} objectives for B={B} members "
                            "(thetas0 rows); give one shared objective or one per member")
    bad = np.flatnonzero(~np.isfinite(thetas0).all(axis=1))
    if bad.size:
        raise ArgumentError(f"thetas0 must be finite; members {bad[:10].tolist()} are not")
    t_start, t_end = _real("t_start", t_start), _real("t_end", t_end)
    if not (np.isfinite(t_start) and t_start >= 0):
        raise ArgumentError(f"t_start must be finite and >= 0, got {t_start}")
    if not (np.isfinite(t_end) and t_end > t_start):
        raise ArgumentError(f"t_end must be finite and > t_start={t_start:g}, got {t_end}")
    clk = Clock(clock)
    if method not in ENSEMBLE_METHODS:
        hint = ("implicit methods need each member's own Jacobian and step sequence: run stiff "
                "members with gradflow.simulate (method='auto'), e.g. one per sweep task"
                if method in IMPLICIT or method == "auto" else "")
        raise ArgumentError(f"method must be one of {sorted(ENSEMBLE_METHODS)} (explicit "
                            f"Runge–Kutta) for simulate_ensemble, got {method!r}; {hint}")
    budgets = (_check_budget("max_nfev", max_nfev, integer=True),
               _check_budget("max_wall_time", max_wall_time, integer=False))
    rtol, atol, max_step = _check_tolerances(rtol, atol, max_step)
    if not isinstance(store_theta, bool | np.bool_):
        raise ArgumentError(f"store_theta must be True or False, got {store_theta!r}")
    grid = _check_grid(record_at, t_start, t_end)
    obs = _per_member(observables if observables is not None else {}, B, "observables",
                      lambda v: isinstance(v, Mapping))
    names = sorted(obs[0])
    for b, mapping in enumerate(obs):
        if sorted(mapping) != names:
            raise ArgumentError(f"observables[{b}] has names {sorted(mapping)}, observables[0] "
                                f"{names}: every member records the same observables")
        for name, fn in mapping.items():
            if not callable(fn):
                raise ArgumentError(f"observables[{name!r}] must be callable θ -> value")
    evs = _per_member(list(events), B, "events", _is_events)
    event_names = [e.name for e in evs[0]]
    if len(set(event_names)) != len(event_names):
        raise ArgumentError(f"event names must be distinct, got {event_names}")
    for b, member_events in enumerate(evs):
        if [(e.name, e.terminal, e.direction) for e in member_events] != [
                (e.name, e.terminal, e.direction) for e in evs[0]]:
            raise ArgumentError(f"events[{b}] differ from events[0] in names, terminal or "
                                "direction: every member has the same events")
    schedule = RateSchedule(rates, layout)
    schedule.breakpoints(t_start, t_end)
    VectorField(objectives[0], clk, {}, normalize)  # validates normalize
    run_config = to_jsonable({
        "t_start": t_start, "t_end": t_end, "clock": clk.name, "method": method,
        "rtol": rtol, "atol": atol, "rates": schedule.to_json(), "normalize": normalize,
        "max_step": max_step, "store_theta": store_theta, "observables": names,
        "events": [[e.name, e.terminal, e.direction] for e in evs[0]], "members": B,
        "shared_objective": shared, "layout": layout.to_json(), "ensemble": True,
        **dict(config or {}),
    })
    store = None
    if checkpoint is not None:
        keys = (list(checkpoint_key) if isinstance(checkpoint_key, Sequence)
                and not isinstance(checkpoint_key, str) else [checkpoint_key] * len(objectives))
        if len(keys) != len(objectives):
            raise ArgumentError(f"checkpoint_key: {len(keys)} keys for {len(objectives)} "
                                "objectives")
        identity = json.dumps([_objective_identity(o, k)
                               for o, k in zip(objectives, keys, strict=True)])
        settings = {k: v for k, v in run_config.items() if k not in BUDGET_KEYS}
        key, parts = fingerprint(settings, {"theta0": thetas0, "grid": grid}, identity)
        store = EnsembleCheckpointStore(checkpoint, key, parts)
    elif checkpoint_key is not None:
        raise ArgumentError("checkpoint_key is given without checkpoint=")
    run = _EnsembleRun(
        objectives=objectives, shared=shared, thetas0=thetas0, grid=grid, clock=clk,
        method=method, rtol=rtol, atol=atol, max_step=max_step, schedule=schedule,
        normalize=normalize, observables=obs, events=evs, store_theta=bool(store_theta),
        t_start=t_start, t_end=t_end, store=store, progress=progress, config=run_config,
        budgets=budgets)
    return run.execute()
