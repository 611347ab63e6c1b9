"""The training procedures of the next-token-prediction paper (Huang, Liang, Yang, NeurIPS
2024): its two-stage normalised gradient flow (``docs/derivations/ntp.md``, §Two-stage
normalised flow) and the joint one-stage ablation."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.flow import log_grid, simulate
from gradflow.papers.ntp.data import NTPData
from gradflow.papers.ntp.model import NTPTransformer
from gradflow.solvers import IMPLICIT
from gradflow.trajectory import Trajectory

__all__ = ["SOLVER", "joint_flow", "solver_defaults", "two_stage"]

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
    references = references or {}
    stage1_data = data.stage1()
    theta = model.init(preset="zero") if theta0 is None else np.array(theta0, dtype=float)
    options = solver_defaults(**simulate_kwargs)
    stage1 = simulate(
        model.objective(stage1_data), theta, T0, normalize=normalize, rates={"W_kq": 0.0},
        record_at=log_grid(T0, per_decade=per_decade),
        observables=model.observables(stage1_data, references={
            k: v for k, v in references.items() if k == "W_ov"}),
        config={"stage": 1, "T0": T0}, **options,
    )
    theta = stage1.final_theta.copy()
    model.layout.unpack(theta)["W_kq"][...] = 0.0
    stage2 = simulate(
        model.objective(data), theta, T, normalize=normalize, rates={"W_ov": 0.0},
        record_at=log_grid(T, per_decade=per_decade),
        observables=model.observables(data, references=references),
        config={"stage": 2, "T": T},
        **options,
    )
    return stage1, stage2


def joint_flow(model: NTPTransformer, data: NTPData, T: float, *,
               references: dict[str, np.ndarray] | None = None, per_decade: int = 5,
               progress: bool = False, **simulate_kwargs: Any) -> Trajectory:
    """The ablation: both blocks trained together from zero by one block-normalised flow to
    time ``T`` (instead of the paper's two stages), with the solver of :func:`two_stage`."""
    return simulate(model.objective(data), model.init(preset="zero"), T, normalize="block",
                    record_at=log_grid(T, per_decade=per_decade),
                    observables=model.observables(data, references=references),
                    progress=progress, **solver_defaults(**simulate_kwargs))
