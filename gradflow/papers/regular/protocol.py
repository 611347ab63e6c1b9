"""The training and inference procedures of Huang, Liang, Yang (ICML 2025): the two-phase
gradient flow, the frozen-W control, and parity by chain-of-thought (truncated, Method 1, and
generated, Method 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, GradflowError
from gradflow.flow import log_grid, simulate
from gradflow.maxmargin import solve_max_margin
from gradflow.papers.regular import theory
from gradflow.papers.regular.data import (
    A_SYMBOL,
    B_SYMBOL,
    RegularData,
    all_strings,
    parity_cot,
)
from gradflow.papers.regular.model import RegularTransformer

__all__ = ["SOLVER", "cot_only_flow", "first_separable_state", "frozen_w_control",
           "gradient_descent", "parity_accuracy", "parity_by_cot_generation",
           "parity_by_truncated_cot", "phase_rates", "train"]

SOLVER = {"method": "LSODA", "clock": "log", "rtol": 1e-9, "atol": 1e-11}
"""The solver defaults of this paper's flows, declared once: the measured best for the small
state (``scripts/bench_regular.py``)."""


def phase_rates(lam: float, tau0: float) -> dict[str, list[tuple[float, float]]]:
    """The paper's two-phase rates for :func:`gradflow.simulate`: W's rate is λ for t < τ0 and
    1 afterwards (docs/derivations/regular.md, §Training rates; τ0 = η·t0 = 10 for the paper's
    η = 0.1, t0 = 100)."""
    return {"W": [(0.0, float(lam)), (float(tau0), 1.0)]}


def parity_by_truncated_cot(model: RegularTransformer, params: dict[str, np.ndarray],
                            strings: Sequence[Sequence[int]], max_position: int,
                            embedding: np.ndarray | None = None) -> np.ndarray:
    """Parity by truncated chain-of-thought at inference with an even-pairs model (Method 1;
    docs/derivations/regular.md, §Parity by chain of thought): L−1 times, z = a if T(window) > 0
    else b, then window ← (window[1:], z). The last z is the answer; returns +1 (even number of b's)
    or −1 per string, vectorised over strings of one length."""
    strings = np.asarray(strings, dtype=int)
    if strings.ndim != 2 or strings.shape[1] < 2:
        raise ArgumentError("strings must be an (n, L) array of one length L >= 2")
    window = strings.copy()
    z = np.zeros(len(strings), dtype=int)
    for _ in range(strings.shape[1] - 1):
        z = np.where(model.predict(params, window, max_position, embedding) > 0, A_SYMBOL,
                     B_SYMBOL)
        window = np.concatenate([window[:, 1:], z[:, None]], axis=1)
    return np.where(z == A_SYMBOL, 1, -1)


def parity_by_cot_generation(model: RegularTransformer, params: dict[str, np.ndarray],
                             strings: Sequence[Sequence[int]], max_position: int,
                             embedding: np.ndarray | None = None) -> np.ndarray:
    """Parity by generating the Format-B chain of thought with a CoT-trained model (Method 2;
    docs/derivations/regular.md, §Parity by chain of thought): z_k = a if T(x, z_1..z_{k−1}) > 0
    else b for k = 1..L−1; returns ±1 from the last z."""
    strings = np.asarray(strings, dtype=int)
    prefix = strings.copy()
    z = np.zeros(len(strings), dtype=int)
    for _ in range(strings.shape[1] - 1):
        z = np.where(model.predict(params, prefix, max_position, embedding) > 0, A_SYMBOL,
                     B_SYMBOL)
        prefix = np.concatenate([prefix, z[:, None]], axis=1)
    return np.where(z == A_SYMBOL, 1, -1)


def parity_accuracy(model, params, lengths, max_position, method) -> dict[str, float]:
    """Parity accuracy over all strings of each length by a CoT inference method."""
    out = {}
    for length in lengths:
        strings = all_strings(length)
        truth = np.where(strings.sum(axis=1) % 2 == 0, 1, -1)
        out[str(length)] = float(np.mean(method(model, params, strings, max_position) == truth))
    return out


def train(
    model: RegularTransformer,
    data: RegularData,
    T: float = 1e10,
    *,
    tau0: float = 10.0,
    theta0: np.ndarray | None = None,
    per_decade: int = 10,
    u_refs: dict[str, np.ndarray] | None = None,
    record_extra: Sequence[float] = (),
    moving_target: bool = True,
    **simulate_kwargs: Any,
):
    """Joint gradient flow from zero with the paper's two phases (docs/derivations/regular.md,
    §Training rates): W's rate is λ for t < τ0 and 1 afterwards (the jump is a breakpoint of the
    integration).

    The defaults (:data:`SOLVER`: LSODA in the log clock, rtol 1e-9, atol 1e-11) are the
    measured best for this small state (``scripts/bench_regular.py``). θ is stored at every
    record time (the state is small), so quantities relative to W(τ0) or to the first
    separable time can be derived afterwards; τ0 is always a record time, and so is every
    time of ``record_extra`` inside (0, T), replacing a grid point within 1e-9 (relative) of
    it (the claims ledger records the times its references are quoted at).
    ``moving_target=False`` leaves out the observable ``cos_moving`` (one max-margin problem
    per record).

    Returns
    -------
    Trajectory
        With the observables of :meth:`RegularTransformer.observables` and the ``separable``
        event.
    """
    theta = model.init(preset="zero") if theta0 is None else np.asarray(theta0, dtype=float)
    grid = np.union1d(log_grid(T, per_decade=per_decade), [tau0] if tau0 < T else [])
    extra = np.array([float(t) for t in record_extra if 0 < t < T])
    if extra.size:  # an extra time within 1e-9 (relative) of a grid point replaces it
        near = np.abs(grid[None, :] - extra[:, None]) <= 1e-9 * extra[:, None]
        grid = np.union1d(grid[~near.any(axis=0)], extra)
    observables = model.observables(data, u_refs=u_refs)
    if moving_target:
        observables["cos_moving"] = theory.cos_moving(model, data)
    return simulate(model.objective(data), theta, T, rates=phase_rates(model.lam, tau0),
                    record_at=grid, observables=observables,
                    events=[model.separable(data)],
                    config={"lam": model.lam, "tau0": tau0}, **{**SOLVER, **simulate_kwargs})


def first_separable_state(model: RegularTransformer, data: RegularData, *, tau0: float = 10.0,
                          search_to: float = 1e3, **simulate_kwargs: Any):
    """The first time u separates the attention outputs (the ``separable`` event of
    :func:`train`) and θ at exactly that time: the state of the max-margin candidate
    u*(W at first separability) (docs/derivations/regular.md, §Claims and their observables;
    a record grid would give the first record after it instead).

    Returns
    -------
    (float, ndarray)

    Raises
    ------
    GradflowError
        If u does not separate the features before ``search_to``.
    """
    events = train(model, data, search_to, tau0=tau0, per_decade=1, moving_target=False,
                   **simulate_kwargs).events["separable"]
    if events.size == 0:
        raise GradflowError(f"u does not separate the attention outputs before t = {search_to:g}")
    t_sep = float(events[0])
    theta = train(model, data, t_sep, tau0=tau0, per_decade=1, moving_target=False,
                  **simulate_kwargs).final_theta
    return t_sep, theta


def frozen_w_control(
    model: RegularTransformer,
    data: RegularData,
    theta_T1: np.ndarray,
    T1: float,
    T: float = 1e10,
    per_decade: int = 5,
    **simulate_kwargs: Any,
):
    """Freeze W at W(T1) and train u alone (Theorem 4.4's clean form): the features h_n(W_T1)
    are then fixed and cos(u, u*(W_T1)) must tend to 1 (observable ``cos_fixed``). The solver
    defaults are :data:`SOLVER`, as for :func:`train`.

    Raises
    ------
    InfeasibleError
        If the attention outputs at W(T1) are not linearly separable.
    """
    fwd = model.forward(model.layout.unpack(theta_T1), data)
    u_star = solve_max_margin(data.y[:, None] * fwd.h).w
    grid = log_grid(T, t_start=T1, per_decade=per_decade)
    return simulate(model.objective(data), theta_T1, T, t_start=T1, rates={"W": 0.0},
                    record_at=grid, observables=model.observables(data, u_refs={"fixed": u_star}),
                    config={"frozen_W_at": T1}, **{**SOLVER, **simulate_kwargs})


def gradient_descent(
    model: RegularTransformer,
    data: RegularData,
    steps: int,
    *,
    eta: float = 0.1,
    t0: int = 100,
    record: Sequence[int] = (),
) -> dict[int, np.ndarray]:
    """The paper's discrete two-phase GD from zero (docs/derivations/regular.md, §Training
    rates): u ← u − η∇_u L every step; W ← W − ηλ∇_W L for the first ``t0`` steps and
    W ← W − η∇_W L afterwards. Step k of GD corresponds to flow time η·k (the flow of
    :func:`train` has τ0 = η·t0).

    Returns
    -------
    dict
        θ after each step count of ``record`` (and after ``steps``).
    """
    if steps < 1 or eta <= 0:
        raise ArgumentError(f"gradient_descent needs steps >= 1 and eta > 0, got {steps}, {eta}")
    objective = model.objective(data)
    W = model.layout.slices["W"]
    theta = model.init(preset="zero")
    wanted = {int(k) for k in record} | {int(steps)}
    out = {}
    for k in range(int(steps)):
        g = objective.gradient(theta)
        g[W] *= model.lam if k < t0 else 1.0
        theta = theta - eta * g
        if k + 1 in wanted:
            out[k + 1] = theta.copy()
    return out


def cot_only_flow(
    T: float,
    *,
    L0: int = 4,
    lam: float = 2.0,
    tau0: float = 10.0,
    scale: float = 0.0,
    rng: Any = 0,
    record_at: Sequence[float] | None = None,
    **simulate_kwargs: Any,
):
    """The two-phase flow of the CoT loss alone (Format B, no even-pairs regulariser: the
    paper's remark, per the notes, that training on the CoT loss alone makes the gradient
    vanish; docs/derivations/regular.md, §Parity by chain of thought) from zero (``scale=0``) or
    from N(0, scale²) entries. The solver is :data:`SOLVER` with atol 1e-16, so that entries of size
    1e-8 are integrated to rtol; the observables are ``loss``, ``norm`` (‖θ‖) and
    ``accuracy``.

    Returns
    -------
    (RegularTransformer, RegularData, Trajectory)
    """
    data = parity_cot(L0, regularizer_lengths=[])
    model = RegularTransformer(data.d, lam=lam)
    objective = model.objective(data)
    theta0 = model.init(preset="zero") if scale == 0 else model.init(rng=rng, preset="normal",
                                                                     scale=scale)
    obs = model.observables(data)
    observables = {"loss": obs["loss"], "accuracy": obs["accuracy"],
                   "norm": lambda th: float(np.linalg.norm(th))}
    traj = simulate(objective, theta0, T, rates=phase_rates(lam, tau0), record_at=record_at,
                    observables=observables, **{**SOLVER, "atol": 1e-16, **simulate_kwargs})
    return model, data, traj
