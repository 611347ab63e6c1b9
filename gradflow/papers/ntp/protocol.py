"""The training procedures of the next-token-prediction paper (Huang, Liang, Yang, NeurIPS
2024): its two-stage normalised gradient flow (``docs/derivations/ntp.md``, §Two-stage
normalised flow) and the joint one-stage ablation."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, SolverError
from gradflow.flow import log_grid, simulate
from gradflow.layout import Layout
from gradflow.papers.ntp.data import NTPData
from gradflow.papers.ntp.model import NTPTransformer
from gradflow.solvers import IMPLICIT
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "QueryColumns", "clock_pair", "joint_flow", "joint_ngd", "solver_defaults",
           "stage_one", "stage_two", "stage_two_columns", "two_stage", "two_stage_ngd"]

SOLVER = {"method": "LSODA", "rtol": 1e-9, "atol": 1e-6,
          "solver_options": {"jacobian_step": 1e-6}}
"""The paper's flows' solver defaults, declared once (the reasons: :func:`two_stage`). The
``jacobian_step`` applies to the implicit methods only."""


def solver_defaults(**simulate_kwargs: Any) -> dict[str, Any]:
    """``simulate``'s solver keywords: those given, then :data:`SOLVER` for the rest; the
    absolute Jacobian step only for an implicit method (an explicit one has no Jacobian)."""
    options = {**SOLVER, **simulate_kwargs}
    step = {} if options["method"] not in IMPLICIT else SOLVER["solver_options"]
    options["solver_options"] = {**step, **(simulate_kwargs.get("solver_options") or {})}
    if not options["solver_options"]:
        del options["solver_options"]
    return options


def two_stage(
    model: NTPTransformer,
    data: NTPData,
    *,
    T0: float = 30.0,
    T: float = 300.0,
    references: dict[str, np.ndarray] | None = None,
    theta0: np.ndarray | None = None,
    per_decade: int = 20,
    normalize: str | None = "block",
    **simulate_kwargs: Any,
):
    """The paper's two-stage normalised gradient flow (``docs/derivations/ntp.md``, §Two-stage
    normalised flow).

    Stage 1 trains ``W_ov`` alone on the collocation pairs (``data.stage1()``) for time ``T0``
    with dW_ov/dt = −∇L_0/‖∇L_0‖_F; stage 2 freezes ``W_ov`` and trains ``W_kq`` on the main
    loss for time ``T`` with dW_kq/dt = −∇_{W_kq}L/‖∇_{W_kq}L‖_F. The largest exponential is
    factored out of each block's gradient before normalising (``scaled_grad``), so directions
    stay exact after the raw loss underflows.

    The default solver is :data:`SOLVER`: LSODA at rtol 1e-9, atol 1e-6 (entries of W that stay
    near 0 while others grow like t made atol 1e-12 force tiny steps beyond t ≈ 1e6) with its
    Jacobian by
    forward differences of absolute step 1e-6 (``solver_options={"jacobian_step": 1e-6}``):
    LSODA's own increments are relative to |W| ~ t, and past t ≈ 6e8 they exceed the O(1)
    scale on which the normalised field varies, so its Newton iteration stopped converging
    ("repeated convergence failures"). With the absolute step stage 2 reaches t = 1e10 in
    ~0.2 s. The normalised flow near the max-margin direction
    is mildly stiff (transverse deviations relax at an O(1) rate while W moves at unit speed),
    so explicit RK45 is stability-limited to O(1) steps (~95,000 evaluations to t = 2e4 on the
    fixture) while LSODA switches to its stiff mode (~1,700; ``scripts/bench_ntp.py``). The
    state is 2d² entries, far below the size where a dense Jacobian hurts.

    Parameters
    ----------
    model, data
    T0, T : float
        Durations of the two stages (stage-2 times restart at 0).
    references : dict, optional
        ``{"W_ov": W_ov*, "W_kq": W_kq*}`` for the cosine and distance observables.
    theta0 : ndarray, optional
        Start of stage 1 (default zero: a modelling choice of gradflow, docs/derivations/ntp.md,
        §Initialisation); its ``W_kq`` is replaced by zero in stage 2.
    per_decade : int
        Record points per decade of t.
    normalize : {"block", None}
        ``"block"``: the paper's normalised flow; ``None``: plain gradient flow of each stage.
    **simulate_kwargs
        Passed to both :func:`gradflow.simulate` calls (e.g. ``rtol``, ``atol``, ``method``);
        :data:`SOLVER` fills the solver keywords not given (:func:`solver_defaults`).

    Returns
    -------
    (Trajectory, Trajectory)
        Stage 1 (observables on the stage-1 data) and stage 2 (on the main data).
    """
    stage1 = stage_one(model, data, T0, theta0=theta0, references=references,
                       per_decade=per_decade, normalize=normalize, **simulate_kwargs)
    stage2 = stage_two(model, data, stage1.final_theta, T, references=references,
                       per_decade=per_decade, normalize=normalize, **simulate_kwargs)
    return stage1, stage2


def stage_one(
    model: NTPTransformer,
    data: NTPData,
    T0: float,
    *,
    theta0: np.ndarray | None = None,
    references: dict[str, np.ndarray] | None = None,
    record_at: Any = None,
    per_decade: int = 20,
    normalize: str | None = "block",
    **simulate_kwargs: Any,
) -> Trajectory:
    """Stage 1 of :func:`two_stage` alone: ``W_ov`` trained on the collocation pairs
    (``data.stage1()``) for time ``T0`` from ``theta0`` (default zero), ``W_kq`` frozen.

    ``record_at`` (default a log grid with ``per_decade`` points a decade) sets the record
    times; observables are on the stage-1 data, with the ``W_ov`` reference only.
    """
    references = references or {}
    stage1_data = data.stage1()
    theta = model.init(preset="zero") if theta0 is None else np.array(theta0, dtype=float)
    return simulate(
        model.objective(stage1_data), theta, T0, normalize=normalize, rates={"W_kq": 0.0},
        record_at=log_grid(T0, per_decade=per_decade) if record_at is None else record_at,
        observables=model.observables(stage1_data, references={
            k: v for k, v in references.items() if k == "W_ov"}),
        config={"stage": 1, "T0": T0}, **solver_defaults(**simulate_kwargs),
    )


def stage_two(
    model: NTPTransformer,
    data: NTPData,
    theta: np.ndarray,
    T: float,
    *,
    references: dict[str, np.ndarray] | None = None,
    record_at: Any = None,
    per_decade: int = 20,
    normalize: str | None = "block",
    extra_observables: dict[str, Any] | None = None,
    **simulate_kwargs: Any,
) -> Trajectory:
    """Stage 2 of :func:`two_stage` alone: ``W_ov`` frozen at its value in ``theta``,
    ``W_kq`` trained on the main loss for time ``T`` from zero (``theta``'s ``W_kq`` is
    replaced by zero).

    ``normalize=None`` integrates the plain gradient flow of the same loss (the same path on
    another clock: docs/derivations/ntp.md, §Two-stage normalised flow); ``extra_observables``
    are recorded beside the model's.
    """
    theta = np.array(theta, dtype=float)
    model.layout.unpack(theta)["W_kq"][...] = 0.0
    observables = {**model.observables(data, references=references or {}),
                   **(extra_observables or {})}
    return simulate(
        model.objective(data), theta, T, normalize=normalize, rates={"W_ov": 0.0},
        record_at=log_grid(T, per_decade=per_decade) if record_at is None else record_at,
        observables=observables, config={"stage": 2, "T": T},
        **solver_defaults(**simulate_kwargs),
    )


def joint_flow(model: NTPTransformer, data: NTPData, T: float, *,
               references: dict[str, np.ndarray] | None = None, per_decade: int = 5,
               progress: bool = False, normalize: str = "block", record_at: Any = None,
               **simulate_kwargs: Any) -> Trajectory:
    """The ablation: both blocks trained together from zero by one normalised flow to time
    ``T`` (instead of the paper's two stages), with the solver of :func:`two_stage`.

    ``normalize="block"`` (the CLI's ablation) divides each block's gradient by its own norm;
    ``"global"`` divides the joint gradient by its norm — the continuous-time limit of the
    prototype's joint NGD (:func:`joint_ngd`; docs/derivations/ntp.md, §Reference values of an
    independent prototype). ``record_at`` (default a log grid of
    ``per_decade`` points a decade) sets the record times.
    """
    return simulate(model.objective(data), model.init(preset="zero"), T, normalize=normalize,
                    record_at=log_grid(T, per_decade=per_decade) if record_at is None
                    else record_at,
                    observables=model.observables(data, references=references),
                    progress=progress, **solver_defaults(**simulate_kwargs))


class QueryColumns:
    """The stage-2 loss as a function of the ``W_kq`` columns of the seen queries only, for
    one-hot embeddings (an :class:`~gradflow.ScaledObjective`).

    With E = I the score of key token k for query q is W_kq[k, q], so the main loss depends
    on W_kq only through the columns of the queries in the data, and its gradient vanishes
    identically on every other column: stage 2 from W_kq = 0 never leaves the subspace of
    those columns. Integrating the K × |queries| block instead of all 2K² entries is
    therefore the same ODE (same vector field on the subspace, the same block norm), with a
    Jacobian 2K/|queries| times narrower (48 instead of 512 columns on a K = 16 instance
    with 3 queries, ~30× faster to t = 1e8).

    Parameters
    ----------
    model, data
    theta : ndarray
        A full state; its ``W_ov`` is the frozen output block (its ``W_kq`` is ignored).
    """

    def __init__(self, model: NTPTransformer, data: NTPData, theta: np.ndarray):
        if not np.array_equal(data.embedding, np.eye(data.K)):
            raise ArgumentError("QueryColumns needs one-hot embeddings E = I (otherwise the "
                                "gradient of W_kq is E B Eᵀ, not confined to query columns)")
        self.model, self.data = model, data
        self.queries = np.unique(data.query)
        self.base = np.array(theta, dtype=float)
        model.layout.unpack(self.base)["W_kq"][...] = 0.0
        self.layout = Layout({"W_kq": (data.K, self.queries.size)})

    def full(self, x: np.ndarray) -> np.ndarray:
        """The full state θ with these columns of W_kq set to ``x`` (complex-step safe)."""
        theta = self.base.astype(np.result_type(self.base, x))
        self.model.layout.unpack(theta)["W_kq"][:, self.queries] = np.reshape(
            x, (self.data.K, self.queries.size))
        return theta

    def value(self, x: np.ndarray) -> Any:
        return self.model.loss(self.model.layout.unpack(self.full(x)), self.data)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        grad = self.model.grad(self.model.layout.unpack(self.full(x)), self.data)
        return grad["W_kq"][:, self.queries].ravel()

    def scaled_gradient(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        blocks, log_scales = self.model.scaled_grad(self.model.layout.unpack(self.full(x)),
                                                    self.data)
        return blocks["W_kq"][:, self.queries].ravel(), {"W_kq": float(log_scales["W_kq"])}


def stage_two_columns(model: NTPTransformer, data: NTPData, theta: np.ndarray, T: float, *,
                      references: dict[str, np.ndarray] | None = None, record_at: Any = None,
                      per_decade: int = 20, **simulate_kwargs: Any
                      ) -> tuple[Trajectory, QueryColumns]:
    """Stage 2 of :func:`two_stage` on the query columns only (:class:`QueryColumns`, E = I):
    the same normalised flow from W_kq = 0 with ``theta``'s ``W_ov`` frozen, and the model's
    observables (evaluated on the full state). The trajectory's θ are the columns; map one
    back with ``objective.full(x)``."""
    objective = QueryColumns(model, data, theta)
    observables = {name: (lambda x, f=f: f(objective.full(x)))
                   for name, f in model.observables(data, references=references or {}).items()}
    traj = simulate(objective, np.zeros(objective.layout.size), T, normalize="block",
                    record_at=log_grid(T, per_decade=per_decade) if record_at is None
                    else record_at, observables=observables, config={"stage": 2, "T": T},
                    **solver_defaults(**simulate_kwargs))
    return traj, objective


def clock_pair(model: NTPTransformer, data: NTPData, theta: np.ndarray, T: float, S: float, *,
               per_decade: int = 400, **simulate_kwargs: Any) -> tuple[Trajectory, Trajectory]:
    """Stage 2 from the same ``theta`` twice: the normalised flow to time ``T`` and the plain
    gradient flow dW/ds = −∇L to time ``S`` (the same path, with ds = dt/‖∇_{W_kq}L‖:
    docs/derivations/ntp.md, §Two-stage normalised flow), both recording ``grad_norm_W_kq`` =
    ‖∇_{W_kq}L‖ on dense log grids (``per_decade``) from 1e-4."""
    objective = model.objective(data)
    layout = model.layout

    def grad_norm(th: np.ndarray) -> float:
        return float(np.linalg.norm(layout.unpack(objective.gradient(th))["W_kq"]))

    theta = np.array(theta, dtype=float)
    layout.unpack(theta)["W_kq"][...] = 0.0
    options = solver_defaults(**simulate_kwargs)
    ngf, gf = (simulate(objective, theta, end, normalize=normalize, rates={"W_ov": 0.0},
                        record_at=log_grid(end, per_decade=per_decade, t_min=1e-4),
                        observables={"grad_norm_W_kq": grad_norm}, config={"stage": 2},
                        **options)
               for end, normalize in ((T, "block"), (S, None)))
    return ngf, gf


# ------------------------------- discrete NGD (docs/derivations/ntp.md, §Two-stage normalised flow)


def _step_index(times: Any, eta: float, steps: int) -> dict[int, float]:
    """The step k (time k·η) at which each record time is taken, for k ≤ ``steps``."""
    out = {}
    for t in np.atleast_1d(np.asarray(times, dtype=float)):
        k = round(float(t) / eta)
        if not (0 <= k <= steps and abs(k * eta - t) <= 1e-9 * max(1.0, t)):
            raise ArgumentError(f"record time {t:g} is not a multiple of η = {eta:g} within "
                                f"[0, {steps * eta:g}]")
        out[k] = float(t)
    return out


def _ngd(objective: Any, theta: np.ndarray, eta: float, steps: int, blocks: tuple[str, ...],
         record: dict[int, float], start: float = 0.0) -> tuple[np.ndarray, list, list]:
    """``steps`` normalised steps θ ← θ − η g/‖g‖ on the blocks ``blocks`` (the others
    frozen), g their gradient taken jointly: each block's scaled gradient (the model's largest
    exponential factored out) is rescaled to the blocks' common factor before the joint norm,
    so the step is exact after the raw gradient underflows. Returns θ and the records."""
    layout = objective.layout
    theta = np.array(theta, dtype=float)
    ts, thetas = [], []
    if 0 in record:
        ts.append(start + record[0])
        thetas.append(theta.copy())
    for k in range(1, steps + 1):
        g, log_scales = objective.scaled_gradient(theta)
        scales = [float(log_scales[b]) for b in blocks]
        top = max(s for s in scales) if any(np.isfinite(scales)) else 0.0
        step = np.zeros_like(theta)
        for b, s in zip(blocks, scales, strict=True):
            if np.isfinite(s):
                step[layout.slices[b]] = g[layout.slices[b]] * np.exp(s - top)
        norm = float(np.linalg.norm(step))
        if not norm > 0:
            raise SolverError(f"NGD: the gradient of {blocks} vanished at step {k} "
                              f"(t = {start + k * eta:g}); its direction is undefined")
        theta -= eta * step / norm
        if k in record:
            ts.append(start + record[k])
            thetas.append(theta.copy())
    return theta, ts, thetas


def two_stage_ngd(model: NTPTransformer, data: NTPData, eta: float, T0: float, T: float, *,
                  theta0: np.ndarray | None = None, record_at: Any = ()) -> dict[str, Any]:
    """The paper's algorithm (docs/derivations/ntp.md, §Two-stage normalised flow): discrete
    normalised gradient descent, ``W_ov ← W_ov − η ∇L_0/‖∇L_0‖_F`` for T0/η steps on the
    collocation pairs, then ``W_kq ← W_kq − η ∇_{W_kq}L/‖∇_{W_kq}L‖_F`` for T/η steps from
    ``W_kq = 0``.

    ``record_at``: stage-2 times (multiples of η in [0, T]) at which θ is kept.

    Returns
    -------
    dict
        ``"stage1"``: θ after stage 1; ``"t"``, ``"theta"``: the stage-2 records.
    """
    if not (eta > 0 and T0 >= 0 and T > 0):
        raise ArgumentError(f"need η > 0, T0 >= 0, T > 0, got {eta}, {T0}, {T}")
    theta = model.init(preset="zero") if theta0 is None else np.array(theta0, dtype=float)
    theta, _, _ = _ngd(model.objective(data.stage1()), theta, eta, round(T0 / eta),
                       ("W_ov",), {})
    stage1 = theta.copy()
    model.layout.unpack(theta)["W_kq"][...] = 0.0
    steps = round(T / eta)
    _, ts, thetas = _ngd(model.objective(data), theta, eta, steps, ("W_kq",),
                         _step_index(record_at, eta, steps))
    return {"stage1": stage1, "t": np.array(ts), "theta": np.array(thetas)}


def joint_ngd(model: NTPTransformer, data: NTPData, eta: float, T: float, *,
              record_at: Any = ()) -> dict[str, Any]:
    """The independent prototype's ablation (docs/derivations/ntp.md, §Reference values of an
    independent prototype) as written: one-stage NGD on both blocks jointly from zero,
    ``W ← W − η ∇L/‖∇L‖_F`` with the Frobenius norm of the gradient of (W_kq, W_ov)
    together, on the main data only, for T/η steps.

    At W = 0 the ``W_kq`` gradient is exactly zero (W_ov = 0 makes the output independent of
    the attention), so the first steps move ``W_ov`` alone.

    Returns
    -------
    dict
        ``"t"``, ``"theta"``: θ at the record times (multiples of η in [0, T]).
    """
    if not (eta > 0 and T > 0):
        raise ArgumentError(f"need η > 0 and T > 0, got {eta}, {T}")
    steps = round(T / eta)
    _, ts, thetas = _ngd(model.objective(data), model.init(preset="zero"), eta, steps,
                         ("W_kq", "W_ov"), _step_index(record_at, eta, steps))
    return {"t": np.array(ts), "theta": np.array(thetas)}
