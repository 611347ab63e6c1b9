"""The flows of the masked-pretraining experiments: the gradient flow from Q(0) = 0 of one query
(the rows decouple, docs/derivations/masked.md §Reductions R2), with the phase times located
as events on the solver's dense output (grid-based times were up to 10% off in the
independent prototype, docs/derivations/masked.md §Phases).

The paper's GD is Q_{τ+1} = Q_τ − η∇L(Q_τ); its flow time is t = ητ for the summed loss
(t = ητ/E|M| for the averaged one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.flow import log_grid, simulate
from gradflow.papers.masked import theory
from gradflow.papers.masked.data import MaskedDesign
from gradflow.papers.masked.model import MaskedAttention, MaskedGrouped
from gradflow.trajectory import Trajectory

__all__ = ["LEVELS", "SOLVER", "PhaseTimes", "floor_of", "grouped_flow", "level_name",
           "model_flow", "record_grid", "ring_flow", "ring_maps", "translation_invariant"]

SOLVER = {"method": "LSODA", "rtol": 1e-9, "atol": 1e-11}
"""The flows' solver: LSODA on these small states (24 entries for a ring query, 2R + 1 for a
grouped one) reaches t = 1e6 in ~680 evaluations; RK45 in the log clock gives the same phase
times to 1e-9 relative at 1.4× the evaluations (measured for docs/derivations/masked.md,
§Solver)."""

LEVELS = (0.5, 0.9, 0.99)
"""Own-area attention masses whose first passage times are located: t_half, t_0.9, t_0.99."""


def level_name(level: float) -> str:
    return "t_half" if level == 0.5 else f"t_{level:g}"


def record_grid(t_end: float, per_decade: int, extra: Any = ()) -> np.ndarray:
    """``log_grid(t_end, per_decade=...)`` with the times ``extra`` (within (0, t_end]) added."""
    extra = np.asarray(extra, dtype=float)
    return np.union1d(log_grid(t_end, per_decade=per_decade),
                      extra[(extra > 0) & (extra <= t_end)])


def translation_invariant(design: MaskedDesign) -> bool:
    """Whether query p's flow is query 0's rotated by p (docs/derivations/masked.md, §Designs,
    R5): rotating every partition by one patch maps cluster k's onto cluster k + 1's (and
    K − 1's onto 0's), the clusters weigh the same, and every area has the same amplitude law
    (one fixed amplitude for all, or i.i.d. amplitudes on equally many areas)."""
    rolled = np.roll(design.areas, 1, axis=1)   # rolled[k, q] = a_k(q − 1)
    areas = np.roll(design.areas, -1, axis=0)   # cluster k + 1
    same = all(_same_partition(rolled[k], areas[k]) for k in range(design.K))
    if len(design.amplitude_probs[0]) == 1:
        amplitudes = np.concatenate([z.ravel() for z in design.amplitudes])
        uniform = bool(np.all(amplitudes == amplitudes[0]))
    else:  # i.i.d. per area from one support: the law of a relabelled area is the same
        uniform = len(set(design.n_areas)) == 1
    return bool(same and uniform and np.allclose(design.pi, design.pi[0]))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def ring_maps(maps0: np.ndarray, design: MaskedDesign) -> np.ndarray:
    """Every query's mask-averaged attention map from query 0's, by rotation (R5):
    ᾱ_k(p, q) = ᾱ_{(k−p) mod K}(0, q − p).

    Parameters
    ----------
    maps0 : ndarray, shape (K, P)
        Query 0's map in each cluster.

    Returns
    -------
    ndarray, shape (K, P, P)
    """
    if not translation_invariant(design):
        raise ArgumentError("ring_maps: the design is not translation invariant (a ring with "
                            "K = C, equal cluster weights and one amplitude law), so query "
                            "0's map does not give the others'; integrate every query "
                            "(queries=range(P)) and use attention_maps")
    K, P = maps0.shape
    out = np.empty((K, P, P))
    for p in range(P):  # P rotations of a (K, P) array: bookkeeping, not a hot path
        out[:, p, :] = np.roll(np.roll(maps0, p, axis=0), p, axis=1)
    return out


@dataclass(frozen=True)
class PhaseTimes:
    """First passage times of one query's flow (None: not reached by the horizon).

    Attributes
    ----------
    levels : dict of str to float or None
        ``t_half``, ``t_0.9``, ``t_0.99``: own-area mass (mean over clusters) ≥ ½, 0.9, 0.99.
    t_over : float or None
        First t with ḃ_t ≥ |ḃ_g| (the target FP outruns the decoupling global FP); 0 when
        Δ0 ≤ 0 (grouped flows only).
    t_cross : float or None
        First t with A_own ≥ A_g, the own-area mass passes the dominant area's (grouped).
    """

    levels: dict[str, float | None]
    t_over: float | None = None
    t_cross: float | None = None


def _first(traj: Trajectory, name: str) -> float | None:
    times = traj.events.get(name, np.array([]))
    return float(times[0]) if len(times) else None


def _check_visible(mass: float, who: str) -> None:
    if not np.isfinite(mass):
        raise ArgumentError(f"{who}: its own area is never visible when it is masked (in some "
                            "cluster the area has one patch, or a fixed-size mask hides every "
                            "patch), so the own-area mass and its passage times are undefined; "
                            "give every area at least two patches and keep m < P")


def _level_events(mass, levels: Sequence[float], terminal_at: float | None) -> list[Event]:
    return [Event(level_name(x), lambda th, x=x: float(mass(th)) - x,
                  terminal=terminal_at is not None and x == terminal_at, direction=1)
            for x in levels]


def model_flow(model: MaskedAttention | MaskedGrouped, design: MaskedDesign, t_end: float, *,
               record_at: Any = None, progress: bool = False, **solver: Any) -> Trajectory:
    """The flow of ``model`` on ``design`` from Q(0) = 0 with the model's observables."""
    return simulate(model.objective(design), model.init(), t_end, record_at=record_at,
                    observables=model.observables(design), progress=progress,
                    **{**SOLVER, **solver})


def ring_flow(design: MaskedDesign, t_end: float, *, record_at: Any = None,
              queries: Sequence[int] = (0,), levels: Sequence[float] = LEVELS,
              stop_at: float | None = None, rates: dict[str, float] | None = None,
              progress: bool = False, **options: Any) -> tuple[Trajectory, PhaseTimes,
                                                                 MaskedAttention]:
    """The flow of ``queries``' rows (mask enumeration) from Q(0) = 0 to ``t_end``.

    Parameters
    ----------
    design : MaskedDesign
    t_end : float
    record_at : array_like, optional
        Default ``log_grid(t_end)``.
    queries : sequence of int
        Default query 0 (a translation-invariant design needs no other).
    levels : own-area masses whose passage times are located
        (the mass of ``queries[0]``, averaged over the clusters)
    stop_at : float, optional
        Stop at the first passage of this level (one of ``levels``).
    rates : dict, optional
        Per-block rates; ``{"C": 0.0}`` freezes the PP correlations at 0.
    **options
        Model options (``softmax``, ``value_pos``, ``normalize``, ``mask_token``) and solver
        options (``method``, ``rtol``, ``atol``, ``max_nfev``, …).
    """
    model_keys = ("softmax", "value_pos", "normalize", "mask_token")
    model = MaskedAttention.for_design(design, queries=tuple(queries),
                                       **{k: options.pop(k) for k in model_keys if k in options})
    solver = {**SOLVER, **options}
    unpack = model.layout.unpack

    def mass(th):  # the first query's, as the experiments' summaries report it
        return model.own_mass(unpack(th), design)[0].mean()

    _check_visible(mass(model.init()), f"query {model.queries[0]}")

    if stop_at is not None and stop_at not in levels:
        raise ArgumentError(f"stop_at must be one of the levels {tuple(levels)}, got {stop_at}")
    traj = simulate(model.objective(design), model.init(), t_end,
                    record_at=record_grid(t_end, 10) if record_at is None else record_at,
                    observables=model.observables(design),
                    events=_level_events(mass, levels, stop_at), rates=rates,
                    progress=progress, **solver)
    return traj, PhaseTimes({level_name(x): _first(traj, level_name(x)) for x in levels}), model


def grouped_flow(design: MaskedDesign, p: int, t_end: float, *, record_at: Any = None,
                 levels: Sequence[float] = LEVELS, stop_at: float | None = None,
                 progress: bool = False, **options: Any) -> tuple[Trajectory, PhaseTimes,
                                                                  MaskedGrouped]:
    """The flow of query ``p`` of a one-cluster design in its group coordinates, with the phase
    times of docs/derivations/masked.md, §Phases: the passage levels of the own-area mass,
    t_over (ḃ_t ≥ |ḃ_g|, g the group of the largest other area) and t_cross (A_own ≥ A_g)."""
    model_keys = ("softmax", "normalize")
    model = MaskedGrouped.for_query(design, p, **{k: options.pop(k) for k in model_keys
                                                  if k in options})
    solver = {**SOLVER, **options}
    unpack = model.layout.unpack
    g = model.dominant_group

    def mass(th):
        return model.masses(unpack(th), design)[0]

    _check_visible(mass(model.init()), f"query {p}")

    def overtake(th):
        return -model.velocity_gap(unpack(th), design)

    def cross(th):
        m = model.masses(unpack(th), design)
        return float(m[0] - m[g])

    events = [*_level_events(mass, levels, stop_at),
              Event("t_over", overtake, direction=1), Event("t_cross", cross, direction=1)]
    traj = simulate(model.objective(design), model.init(), t_end,
                    record_at=record_grid(t_end, 10) if record_at is None else record_at,
                    observables=model.observables(design), events=events,
                    progress=progress, **solver)
    t_over = 0.0 if model.velocity_gap(unpack(model.init()), design) <= 0 else _first(
        traj, "t_over")
    m0 = model.masses(unpack(model.init()), design)
    t_cross = 0.0 if m0[0] >= m0[g] else _first(traj, "t_cross")
    times = PhaseTimes({level_name(x): _first(traj, level_name(x)) for x in levels}, t_over,
                       t_cross)
    return traj, times, model


def floor_of(model: MaskedAttention | MaskedGrouped, design: MaskedDesign) -> float | None:
    """L* of the model's queries, or None where it has no closed form."""
    if model.softmax != "all" or getattr(model, "value_pos", False):
        return None
    queries = model.queries if isinstance(model, MaskedAttention) else (model.p,)
    return theory.floor(design, queries, model.normalize)
