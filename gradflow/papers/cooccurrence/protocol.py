"""The training procedure of the co-occurrence paper: one gradient flow from the paper's
initialisation, recorded densely over Phase 1 and on a log grid after it (Yang, Kailkhura,
Wang, Liang, NeurIPS 2024, Condition 1 and the experiment of Appendix A, Figure 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.ensemble import simulate_ensemble
from gradflow.flow import log_grid, simulate
from gradflow.numerics import logistic_loss
from gradflow.papers.cooccurrence.data import CooccurrenceData
from gradflow.papers.cooccurrence.model import CooccurrenceTransformer
from gradflow.papers.cooccurrence.theory import rate_constant
from gradflow.trajectory import Trajectory

__all__ = ["REPORT_TIMES", "SNAPSHOT_TIMES", "SOLVER", "flow", "flow_ensemble", "flow_state",
           "gradient_descent", "ledger_flow", "phase1_flow", "record_grid"]

SOLVER = {"method": "RK45", "clock": "linear", "rtol": 1e-6, "atol": 1e-9}
"""The solver defaults of this paper's flows: the loss decays like 1/t (Thm 3.3), so the flow is
non-stiff and an explicit method on the linear clock is cheapest (``docs/performance.md``)."""

REPORT_TIMES = (1.0, 300.0, 1e4, 1e8)
"""Times at which the summary reports the loss (300 = the paper's 30,000 GD steps at lr 0.01)."""


def record_grid(t_end: float, per_decade: int) -> np.ndarray:
    """A fine linear grid over Phase 1 (t ≤ 1, step 0.01), the log grid, and the report times."""
    phase1 = np.linspace(0.0, min(1.0, t_end), 101)
    report = [t for t in REPORT_TIMES if t <= t_end]
    return np.unique(np.concatenate([phase1, log_grid(t_end, per_decade=per_decade), report]))


def flow(model: CooccurrenceTransformer, data: CooccurrenceData, theta0: np.ndarray,
         t_end: float, *, per_decade: int = 20, store_theta: bool = False,
         checkpoint: str | Path | None = None, progress: bool = False,
         config: dict[str, Any] | None = None, **solver: Any) -> Trajectory:
    """The gradient flow of the paper's loss from ``theta0`` to ``t_end``.

    Parameters
    ----------
    model, data, theta0 : the model, its training set and θ(0), shape (layout.size,)
    t_end : float
    per_decade : int
        Record points per decade of t after Phase 1 (:func:`record_grid`).
    store_theta, checkpoint, progress, config :
        As for :func:`gradflow.simulate`.
    **solver
        ``simulate``'s solver keywords; :data:`SOLVER` fills the ones not given.

    Returns
    -------
    Trajectory
        The model's observables, the ``phase1_end`` event and the derived observable
        ``rate_constant`` = 1/(L̂·t·‖u‖²) (Thm 3.3; NaN at t = 0).
    """
    traj = simulate(model.objective(data), theta0, t_end, **{**SOLVER, **solver},
                    record_at=record_grid(t_end, per_decade),
                    observables=model.observables(data), events=[model.phase1_end(data)],
                    store_theta=store_theta, checkpoint=checkpoint, progress=progress,
                    config=config)
    obs = traj.observables
    return traj.with_observables(rate_constant=rate_constant(traj.t, obs["loss"],
                                                             obs["u_norm_sq"]))


def flow_ensemble(models: Sequence[CooccurrenceTransformer], datas: Sequence[CooccurrenceData],
                  thetas0: np.ndarray, t_end: float, *, per_decade: int = 20,
                  store_theta: bool = False, progress: bool = False,
                  configs: Sequence[dict[str, Any]] | None = None, **solver: Any
                  ) -> list[Trajectory | Exception]:
    """:func:`flow` of B members (models, datasets and θ(0) of seeds) as one
    :func:`gradflow.simulate_ensemble`: each member integrated to the tolerances its own
    :func:`flow` would use.

    Parameters
    ----------
    models, datas : sequences of B
        Each member's model (its output signs) and training set; of one size.
    thetas0 : ndarray, shape (B, P)
    t_end, per_decade, store_theta, progress :
        As for :func:`flow`, shared.
    configs : sequence of B dicts, optional
        Stored in each member's ``Trajectory.config``.
    **solver
        ``simulate_ensemble``'s solver keywords; :data:`SOLVER` fills the ones not given.

    Returns
    -------
    list of Trajectory or Exception
        Per member what :func:`flow` returns, or the error its run ended with.
    """
    B = len(models)
    ens = simulate_ensemble(
        [m.objective(d) for m, d in zip(models, datas, strict=True)], thetas0, t_end,
        **{**SOLVER, **solver}, record_at=record_grid(t_end, per_decade),
        observables=[m.observables(d) for m, d in zip(models, datas, strict=True)],
        events=[[m.phase1_end(d)] for m, d in zip(models, datas, strict=True)],
        store_theta=store_theta, progress=progress)
    out: list[Trajectory | Exception] = []
    for b in range(B):
        if ens.errors[b] is not None:
            out.append(ens.errors[b])
            continue
        traj = ens.member(b)
        if configs is not None:
            traj = dataclasses.replace(traj, config={**traj.config, **configs[b]})
        obs = traj.observables
        out.append(traj.with_observables(rate_constant=rate_constant(traj.t, obs["loss"],
                                                                     obs["u_norm_sq"])))
    return out


SNAPSHOT_TIMES = (0.0, 1.0, 300.0, 1e4, 1e6, 1e8)
"""Times at which :func:`ledger_flow` keeps θ (t = 0, the report times and 1e6)."""


def _ledger_observables(model: CooccurrenceTransformer, data: CooccurrenceData,
                        theta0: np.ndarray) -> dict[str, Any]:
    """Observables the claims ledger reads beyond :meth:`CooccurrenceTransformer.observables`.

    ``margins`` (n,): y_i F_i; ``KQ_dot``, ``VV_dot`` (3, 3): the exact time derivatives of
    μ_iᵀ W_Kᵀ W_Q μ_j and μ_iᵀ W_Vᵀ W_V μ_j under the flow, −(∇W_K)ᵀW_Q − W_Kᵀ∇W_Q and
    −(∇W_V)ᵀW_V − W_Vᵀ∇W_V from the closed-form gradient; ``attention_change``:
    max over samples, keys and queries of |A(θ) − A(θ0)|; ``grad_norm_sq``: ‖∇L̂‖² = −dL̂/dt;
    ``G_dot``: the model's observable of that name, computed from the same gradient.
    """
    layout, mu = model.layout, data.embedding[:3]
    A0 = model.forward(layout.unpack(theta0), data).A
    cache: dict[str, Any] = {}

    def state(theta: np.ndarray) -> dict[str, Any]:
        if cache.get("theta") is not theta or not np.array_equal(cache["copy"], theta):
            p = layout.unpack(theta)
            fwd, g = model.forward(p, data), model.grad(p, data)
            m_dot = -(g["W_K"].T @ p["W_Q"] + p["W_K"].T @ g["W_Q"])
            v_dot = -(g["W_V"].T @ p["W_V"] + p["W_V"].T @ g["W_V"])
            # the model's G_dot observable, from the same gradient (one gradient per record)
            u_dot = -(np.sqrt(model.m1) * g["v"] if model.reduced else model.a @ g["W"])
            g_dot = mu @ (p["W_V"].T @ u_dot - g["W_V"].T @ fwd.u)
            cache.update(theta=theta, copy=theta.copy(), margins=data.y * fwd.F, G_dot=g_dot,
                         KQ_dot=mu @ m_dot @ mu.T, VV_dot=mu @ v_dot @ mu.T,
                         attention_change=float(np.abs(fwd.A - A0).max()),
                         grad_norm_sq=float(sum(np.sum(v * v) for v in g.values())))
        return cache

    return {name: (lambda key: lambda th: state(th)[key])(name)
            for name in ("margins", "G_dot", "KQ_dot", "VV_dot", "attention_change",
                         "grad_norm_sq")}


def ledger_flow(model: CooccurrenceTransformer, data: CooccurrenceData, theta0: np.ndarray,
                t_end: float = 1e8, *, per_decade: int = 20,
                snapshots: tuple[float, ...] = SNAPSHOT_TIMES, **solver: Any) -> dict[str, Any]:
    """The paper's flow as :func:`flow` integrates it, with the extra records of the ledger.

    The same solver (:data:`SOLVER`), record grid (:func:`record_grid`), observables and
    ``phase1_end`` event as :func:`flow`, plus :func:`_ledger_observables`; θ is kept only at
    the ``snapshots`` times of the grid (storing it at all ~320 records would take 150 MB at
    the paper's size).

    Returns
    -------
    dict
        ``traj``: the Trajectory (no θ; ``rate_constant`` derived as in :func:`flow`);
        ``theta``: {snapshot time: θ}; ``model``, ``data``, ``theta0``.
    """
    grid = record_grid(t_end, per_decade)
    keep = {float(t) for t in snapshots if t <= t_end}
    missing = keep - {float(t) for t in grid}
    if missing:
        raise ValueError(f"snapshot times {sorted(missing)} are not on the record grid")
    kept: dict[float, np.ndarray] = {}
    calls = [0]

    def snapshot(theta: np.ndarray) -> float:
        k = calls[0]
        calls[0] += 1
        if k < grid.size and float(grid[k]) in keep:
            kept[float(grid[k])] = np.array(theta, dtype=float)
        return float(k)

    observables = {**model.observables(data), **_ledger_observables(model, data, theta0),
                   "record_index": snapshot}
    traj = simulate(model.objective(data), theta0, t_end, **{**SOLVER, **solver},
                    record_at=grid, observables=observables, events=[model.phase1_end(data)],
                    store_theta=False)
    if traj.t.size != grid.size or not np.array_equal(traj.t, grid) or set(kept) != keep:
        raise RuntimeError("ledger_flow: the recorder did not visit the record grid in order")
    obs = traj.observables
    traj = traj.with_observables(rate_constant=rate_constant(traj.t, obs["loss"],
                                                             obs["u_norm_sq"]))
    return {"traj": traj, "theta": kept, "model": model, "data": data, "theta0": theta0}


def phase1_flow(model: CooccurrenceTransformer, data: CooccurrenceData, theta0: np.ndarray,
                t_max: float, *, n_records: int = 251, **solver: Any) -> dict[str, Any]:
    """Phase 1 only: the flow from ``theta0`` stopped at T1, the first time every sample is
    correctly classified (the terminal ``phase1_end`` event), or at ``t_max``.

    Records on a uniform grid of ``n_records`` points over [0, t_max] (and at T1) the losses
    (total and per type), G(μ1..3), KQ and VV of the special tokens, ‖u‖² and min_i y_i F_i;
    cheap observables only (no gradient), so that ensembles of draws stay fast.

    Returns
    -------
    dict
        ``traj`` (ends at T1 when Phase 1 ended), ``t1`` (float, NaN if it did not end),
        ``theta_t1`` (θ at the last record: θ(T1) when it ended), ``model``, ``data``,
        ``theta0``.
    """
    layout, mu = model.layout, data.embedding[:3]
    masks = data.type_masks
    cache: dict[str, Any] = {}

    def state(theta: np.ndarray) -> dict[str, Any]:
        if cache.get("theta") is not theta or not np.array_equal(cache["copy"], theta):
            p = layout.unpack(theta)
            fwd = model.forward(p, data)
            margins = data.y * fwd.F
            cache.update(theta=theta, copy=theta.copy(), p=p, fwd=fwd, margins=margins,
                         losses=logistic_loss(margins))
        return cache

    last: dict[str, np.ndarray] = {}

    def keep(theta: np.ndarray) -> float:
        last["theta"] = np.array(theta, dtype=float)
        return 0.0

    def type_loss(k: int) -> Any:
        return lambda th: float(np.mean(state(th)["losses"][masks[k]])) if masks[k].any() \
            else np.nan

    observables = {
        "loss": lambda th: float(np.mean(state(th)["losses"])),
        **{f"loss_type{k}": type_loss(k) for k in (1, 2, 3, 4)},
        "G": lambda th: mu @ state(th)["fwd"].G,
        "KQ": lambda th: (mu @ state(th)["p"]["W_K"].T) @ (state(th)["p"]["W_Q"] @ mu.T),
        "VV": lambda th: (mu @ state(th)["p"]["W_V"].T) @ (state(th)["p"]["W_V"] @ mu.T),
        "u_norm_sq": lambda th: float(state(th)["fwd"].u @ state(th)["fwd"].u),
        "min_margin": lambda th: float(np.min(state(th)["margins"])),
        "keep": keep,
    }
    traj = simulate(model.objective(data), theta0, t_max, **{**SOLVER, **solver},
                    record_at=np.linspace(0.0, t_max, n_records), observables=observables,
                    events=[model.phase1_end(data, terminal=True)], store_theta=False)
    t1 = traj.events["phase1_end"]
    return {"traj": traj, "t1": float(t1[0]) if t1.size else float("nan"),
            "theta_t1": last["theta"], "model": model, "data": data, "theta0": theta0}


def flow_state(model: CooccurrenceTransformer, data: CooccurrenceData, theta0: np.ndarray,
               t: float, **solver: Any) -> np.ndarray:
    """θ(t) of the paper's flow from ``theta0`` (no observables; :data:`SOLVER` fills the
    solver keywords not given)."""
    traj = simulate(model.objective(data), theta0, t, **{**SOLVER, **solver}, record_at=[0.0, t],
                    store_theta=True)
    return traj.final_theta


def gradient_descent(model: CooccurrenceTransformer, data: CooccurrenceData,
                     theta0: np.ndarray, lr: float, steps: int) -> np.ndarray:
    """The paper's training procedure (App. A): full-batch gradient descent on the mean loss,
    θ ← θ − lr·∇L̂(θ), for ``steps`` steps (lr 0.01 and 30,000 epochs in the paper)."""
    objective = model.objective(data)
    theta = np.array(theta0, dtype=float)
    for _ in range(int(steps)):
        theta -= lr * objective.gradient(theta)
    return theta
