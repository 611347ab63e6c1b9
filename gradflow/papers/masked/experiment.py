"""Experiments ``masked_ring``, ``masked_imbalanced`` and ``masked_scaling``: the gradient flow
of masked-patch reconstruction with one softmax-attention layer (Huang, Wen, Chi, Liang, arXiv
2403.02233 v1/v2), from Q(0) = 0, in exact population expectation.

The paper's theorem statements could not be read; the quantities measured here are those of
the reconstructed statements of docs/derivations/masked.md, §Reconstructed claims, and every
ledger claim says so in its source.

``masked_ring`` is the local-and-diverse case: a different own area per cluster, attention maps
per cluster at several times, the area-wide limit, the 1/t loss rate, FP against PP
correlations and the diversity metric. ``masked_imbalanced`` is the dominant-area case: the
phases by the sign of Δ0. ``masked_scaling`` is the time to half own-area attention against
N, C, γ and K, against the mean-field estimate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.experiment import (
    Experiment,
    Outcome,
    Parameter,
    check_memory,
    solver_options,
    solver_parameters,
)
from gradflow.papers.masked import protocol, theory
from gradflow.papers.masked.claims import CLAIMS
from gradflow.papers.masked.data import MASKS, balanced, imbalanced, ring
from gradflow.papers.masked.model import MASK_TOKENS, SOFTMAX, MaskedAttention, MaskedGrouped
from gradflow.trajectory import to_jsonable

__all__ = ["IMBALANCED", "RING", "SCALING", "summarize_imbalanced", "summarize_ring",
           "summarize_scaling", "train_imbalanced", "train_ring", "train_scaling"]

SOLVER_PARAMETERS = solver_parameters(**protocol.SOLVER,
                                      methods=("LSODA", "BDF", "Radau", "RK45", "DOP853"))

# ------------------------------------------------------------------------------ ring

RING_PARAMETERS = (
    Parameter("P", 12, "patches on the ring", minimum=2, maximum=16),
    Parameter("C", 4, "patches per area (an arc); must divide P", minimum=1, maximum=16),
    Parameter("K", 4, "clusters (cluster k's arcs start at offset k); K = C makes the design "
              "translation invariant, so one query is integrated", minimum=1, maximum=16),
    Parameter("gamma", 0.5, "masking ratio γ (Bernoulli masks; a fixed-size mask has γ = m/P)",
              positive=True),
    Parameter("mask", "bernoulli", "masking law", choices=MASKS),
    Parameter("m", 6, "masked patches of a fixed-size mask (mask = fixed)", minimum=1,
              maximum=16),
    Parameter("softmax", "all", "softmax keys: every patch or the unmasked ones only",
              choices=SOFTMAX),
    Parameter("value_pos", False, "the value carries the position too (a finite minimiser)"),
    Parameter("normalize", "sum", "loss summed over masked patches or averaged (÷E|M|)",
              choices=theory.NORMALIZATIONS),
    Parameter("mask_token", "zero", "[MASK] token: zero content, or a fixed orthogonal vector "
              "m_0 (its logit terms learned; couples all queries)", choices=MASK_TOKENS),
    Parameter("pp", "trained", "PP correlations trained, or frozen at 0 (with a mask token "
              "the shared row's C0 too)", choices=("trained", "frozen")),
    Parameter("t_end", 1e6, "horizon", positive=True),
    Parameter("per_decade", 10, "record points per decade of t", minimum=1, maximum=1000),
    *SOLVER_PARAMETERS,
)

MAP_TIMES = (0.0, 10.0, 100.0, 1e3, 1e4, 1e6)
"""Times of the attention maps drawn (those beyond the horizon are dropped)."""


def _ring_design(config: dict[str, Any]):
    if not 0 < config["gamma"] < 1:
        raise ArgumentError(f"parameter 'gamma': a masking ratio in (0, 1), got "
                            f"{config['gamma']:g}")
    fixed = config["mask"] == "fixed"
    if fixed and config["m"] >= config["P"]:
        raise ArgumentError(f"parameter 'm': at most P − 1 = {config['P'] - 1} (with every "
                            f"patch masked nothing is visible), got {config['m']}")
    if config["P"] % config["C"]:
        raise ArgumentError(f"parameter 'C': must divide P = {config['P']} (the arcs tile the "
                            f"ring), got {config['C']}")
    if config["K"] > config["C"]:
        raise ArgumentError(f"parameter 'K': at most C = {config['C']} (offsets k and k + C "
                            f"give the same partition), got {config['K']}")
    if config["C"] < 2:
        raise ArgumentError("parameter 'C': an area needs at least 2 patches (a masked patch's "
                            "target must be visible elsewhere in its area), got 1")
    return ring(config["P"], config["C"], config["K"], config["gamma"], mask=config["mask"],
                m=config["m"] if fixed else None)


def _ring_queries(config: dict[str, Any], design) -> tuple[int, ...]:
    if config["mask_token"] == "zero" and protocol.translation_invariant(design):
        return (0,)
    return tuple(range(design.P))


def _check_ring(config: dict[str, Any]) -> None:
    design = _ring_design(config)
    queries = _ring_queries(config, design)
    masks = 2.0 ** (design.P - 1)
    check_memory([("the mask enumeration's (K, queries, masks, P) arrays",
                   8.0 * 12 * design.K * len(queries) * masks * design.P, ("P", "K"))])
    MaskedAttention.for_design(design, queries=queries, **_model_options(config)).check_data(
        design)


def _model_options(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in ("softmax", "value_pos", "normalize", "mask_token")}


def _objective_ring(config: dict[str, Any]):
    design = _ring_design(config)
    model = MaskedAttention.for_design(design, queries=_ring_queries(config, design),
                                       **_model_options(config))
    return model.objective(design), model.init()


def _pp_rates(config: dict[str, Any]) -> dict[str, float] | None:
    """Freeze every PP correlation: C, and with a mask token the shared row's C0 (the
    effective PP row of a masked query is C + C0)."""
    if config["pp"] != "frozen":
        return None
    return {"C": 0.0, "C0": 0.0} if config["mask_token"] == "orthogonal" else {"C": 0.0}


def train_ring(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Query 0's flow (every query's when the design is not translation invariant or has a
    mask token), the attention maps of every query per cluster at :data:`MAP_TIMES`, the
    diversity along the flow."""
    design = _ring_design(config)
    queries = _ring_queries(config, design)
    times = [t for t in MAP_TIMES if t <= config["t_end"]]
    grid = protocol.record_grid(config["t_end"], config["per_decade"], times)
    start = time.perf_counter()
    traj, phase, model = protocol.ring_flow(
        design, config["t_end"], record_at=grid, queries=queries,
        rates=_pp_rates(config), progress=progress,
        **_model_options(config), **solver_options(config))
    seconds = time.perf_counter() - start
    maps, rows_B, rows_C = [], [], []
    for theta in traj.theta:
        params = model.layout.unpack(theta)
        m = model.attention_maps(params, design)                  # (K, n_q, P)
        maps.append(protocol.ring_maps(m[:, 0], design) if len(queries) == 1 else m)
        B, C = model.effective_rows(params)[:2]
        rows_B.append(B[0])
        rows_C.append(C[0])
    maps = np.array(maps)
    at = [int(np.argmin(np.abs(traj.t - t))) for t in times]
    arrays = {
        "t": traj.t, "map_times": np.array(times), "maps": maps[at],
        "diversity": np.array([theory.diversity(m) for m in maps]),
        "B0": np.array(rows_B), "C0": np.array(rows_C), "areas": design.areas,
        "feature_index": design.feature_index, "events": np.array(
            [np.nan if phase.levels[protocol.level_name(x)] is None else
             phase.levels[protocol.level_name(x)] for x in protocol.LEVELS]),
    }
    context = {"seconds": seconds, "queries": list(queries),
               "floor": protocol.floor_of(model, design),
               "ideal_diversity": theory.ideal_diversity(design)}
    return Outcome(trajectories={"query0": traj}, arrays={"ring": arrays}, context=context)


def summarize_ring(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Phase times, the area-wide limit, the fitted rates, FP against PP correlations, the
    diversity metric and the conservation of Σ_q C_pq."""
    traj, a, ctx = outcome.trajectories["query0"], outcome.arrays["ring"], outcome.context
    t, obs = traj.t, traj.observables
    own = obs["own_mass"][:, 0, :]                          # query 0, per cluster
    n_queries = len(ctx["queries"])
    t_end = config["t_end"]
    late = t_end / 100
    P, K = config["P"], a["areas"].shape[0]
    dist = theory.ring_distance(P)
    C_final, B_final = a["C0"][-1], a["B0"][-1]
    fi = a["feature_index"]
    # cluster 0's other areas: the one holding patch P − 1 (adjacent to 0), and the other ones
    adjacent = int(fi[0, P - 1])
    others = sorted(set(fi[0].tolist()) - {int(fi[0, 0]), adjacent})
    k_late = int(np.argmin(np.abs(t - t_end / 10)))
    d_log = np.log(t[-1] / t[k_late]) if t[k_late] > 0 else np.nan
    summary: dict[str, Any] = {
        "experiment": "masked_ring",
        "config": config,
        "status": "reconstructed (docs/derivations/masked.md, §Status)",
        "queries_integrated": ctx["queries"],
        "effective_gamma": float(config["m"] / config["P"] if config["mask"] == "fixed"
                                 else config["gamma"]),
        "note": ("times, masses, FP/PP correlations and the maps are query 0's; the loss, "
                 "its floor and gap are summed over the integrated queries"
                 + (f" ({n_queries})" if n_queries > 1 else "")),
        "times": {protocol.level_name(x): (None if np.isnan(v) else float(v))
                  for x, v in zip(protocol.LEVELS, a["events"], strict=True)},
        "own_mass_final": {"per_cluster": own[-1].tolist(), "mean": float(own[-1].mean())},
        "loss": {"initial": float(obs["loss"][0]), "final": float(obs["loss"][-1]),
                 "floor": ctx["floor"]},
        "fitted": {
            "own_mass_deficit_slope": theory.fitted_slope(t, 1 - own.mean(axis=1), late, t_end),
            "fp_target_per_log_t": float((traj.observables["own_fp"][-1, 0].mean()
                                          - traj.observables["own_fp"][k_late, 0].mean())
                                         / d_log),
            "pp_distance1_per_log_t": float((a["C0"][-1, dist == 1].mean()
                                             - a["C0"][k_late, dist == 1].mean()) / d_log),
        },
        "pp_by_distance": [float(C_final[dist == r].mean()) for r in range(P // 2 + 1)],
        "fp_cluster0": {"own": float(B_final[fi[0, 0]]), "adjacent_area": float(
            B_final[adjacent]), "other_areas": [float(B_final[j]) for j in others]},
        "within_area_cluster0": a["maps"][-1][0, 0, np.flatnonzero(
            a["areas"][0] == a["areas"][0, 0])].tolist(),
        "diversity": {"initial": float(a["diversity"][0]), "final": float(a["diversity"][-1]),
                      "ideal_area_wide": ctx["ideal_diversity"]},
        "pp_sum_drift": float(np.max(np.abs(obs["pp_sum"] - obs["pp_sum"][0]))),  # max over q
        "solver": {"nfev": int(traj.stats["nfev"]), "seconds": ctx["seconds"]},
        "clusters": K,
    }
    if "loss_gap" in obs:
        gap = obs["loss_gap"]
        summary["loss"].update(gap_final=float(gap[-1]), t_times_gap=float(t[-1] * gap[-1]))
        summary["fitted"]["loss_gap_slope"] = theory.fitted_slope(t, gap, late, t_end)
    return to_jsonable(summary)


def report_ring(summary: dict[str, Any]) -> list[str]:
    times, fit = summary["times"], summary["fitted"]
    shown = ", ".join(f"{k} = {v:.4g}" if v is not None else f"{k} not reached"
                      for k, v in times.items())
    lines = [f"own-area attention mass of query 0 (mean over clusters): {shown}; at t_end "
             f"{summary['own_mass_final']['mean']:.5f}"]
    if "loss_gap_slope" in fit:
        slope = fit["loss_gap_slope"]
        lines.append(f"L − L*: slope {'n/a' if slope is None else f'{slope:.3f}'} over the last "
                     f"two decades (reconstructed claim: −1); t·(L − L*) = "
                     f"{summary['loss']['t_times_gap']:.3f}")
    div = summary["diversity"]
    lines.append(f"diversity {div['initial']:.3f} → {div['final']:.3f} (exact area-wide "
                 f"attention: {div['ideal_area_wide']:.3f}); Σ_q C_0q drift "
                 f"{summary['pp_sum_drift']:.1e}")
    return lines


# ------------------------------------------------------------------------------ imbalanced

IMBALANCED_PARAMETERS = (
    Parameter("C_globals", (40, 40, 24, 16), "the dominant area's size, per design row",
              minimum=2, maximum=1000),
    Parameter("gamma_percents", (25, 50, 50, 50), "masking ratio γ in percent, per row",
              minimum=1, maximum=99),
    Parameter("n_local", 4, "local areas", minimum=1, maximum=100),
    Parameter("C_local", 6, "patches per local area", minimum=2, maximum=1000),
    Parameter("t_end", 1e4, "horizon", positive=True),
    Parameter("per_decade", 10, "record points per decade of t", minimum=1, maximum=1000),
    *SOLVER_PARAMETERS,
)


def _imbalanced_rows(config: dict[str, Any]) -> list[tuple[int, float]]:
    if len(config["C_globals"]) != len(config["gamma_percents"]):
        raise ArgumentError("parameters 'C_globals' and 'gamma_percents' need one entry per "
                            "row each")
    return [(int(c), g / 100) for c, g in zip(config["C_globals"], config["gamma_percents"],
                                              strict=True)]


def _imbalanced_design(config: dict[str, Any], C_global: int, gamma: float):
    P = C_global + config["n_local"] * config["C_local"]
    return imbalanced(P, C_global, config["n_local"], config["C_local"], gamma)


def _check_imbalanced(config: dict[str, Any]) -> None:
    for C_global, gamma in _imbalanced_rows(config):
        design = _imbalanced_design(config, C_global, gamma)
        try:
            size = len(MaskedGrouped.for_query(design, C_global).configurations(design).weight)
        except ArgumentError as exc:
            raise ArgumentError(f"parameters 'C_globals', 'n_local', 'C_local': {exc}") from None
        check_memory([("the count configurations' arrays", 8.0 * 40 * size * 4,
                       ("C_globals", "n_local", "C_local"))])


def _objective_imbalanced(config: dict[str, Any]):
    C_global, gamma = _imbalanced_rows(config)[0]
    design = _imbalanced_design(config, C_global, gamma)
    model = MaskedGrouped.for_query(design, C_global)
    return model.objective(design), model.init()


def _row_name(C_global: int, gamma: float, where: str) -> str:
    return f"Cg{C_global}_gamma{round(gamma * 100)}_{where}"


def train_imbalanced(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Per row: the flow of a query in a local area (p = C_global, the first local patch) and
    of one in the dominant area (p = 0), with the phase times."""
    trajectories, rows = {}, []
    grid = protocol.record_grid(config["t_end"], config["per_decade"])
    for C_global, gamma in _imbalanced_rows(config):
        design = _imbalanced_design(config, C_global, gamma)
        row: dict[str, Any] = {"P": design.P, "C_global": C_global, "gamma": gamma}
        for where, p in (("local", C_global), ("global", 0)):
            traj, times, model = protocol.grouped_flow(design, p, config["t_end"],
                                                       record_at=grid, progress=progress,
                                                       **solver_options(config))
            trajectories[_row_name(C_global, gamma, where)] = traj
            row[where] = {"levels": times.levels, "t_over": times.t_over,
                          "t_cross": times.t_cross,
                          "groups": [[list(g.areas), g.size] for g in model.groups]}
        rows.append(row)
    return Outcome(trajectories=trajectories, arrays={}, context={"rows": rows})


def _monotone(y: np.ndarray, sign: int) -> bool:
    return bool(np.all(sign * np.diff(y) >= -1e-12 * np.max(np.abs(y))))


def summarize_imbalanced(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Per row: the exact initial FP velocities and Δ0, the phase times against the mean-field
    t_over, the number of phases, the monotonicity of b_t and b_g, the other-local FP's peak."""
    rows = []
    for row in outcome.context["rows"]:
        C_global, gamma = row["C_global"], row["gamma"]
        design = _imbalanced_design(config, C_global, gamma)
        v = theory.initial_fp_velocity(design, 0, C_global)
        t_area = int(design.areas[0, C_global])
        gap = theory.information_gap(v, t_area, theory.dominant_area(design, 0, C_global))
        traj = outcome.trajectories[_row_name(C_global, gamma, "local")]
        b = traj.observables["b"]                            # groups: own, global, other locals
        loc = row["local"]
        t_half = loc["levels"]["t_half"]
        b_g_half = (float(np.interp(np.log(t_half), np.log(traj.t[1:]), b[1:, 1]))
                    if t_half else None)
        peak = int(np.argmax(b[:, 2])) if b.shape[1] > 2 else None
        rows.append({
            "P": design.P, "C_global": C_global, "gamma": gamma,
            "v_target0": float(v[t_area]), "v_global0": float(v[0]), "delta0": gap,
            "t_over": loc["t_over"], "t_over_mean_field": theory.t_over_mean_field(
                design, 0, C_global),
            "t_cross": loc["t_cross"], "t_half": t_half, "t_0.9": loc["levels"]["t_0.9"],
            "b_global_at_t_half": b_g_half,
            # 3 when a decoupling phase ends inside the horizon, 2 when there is none, None when
            # Δ0 > 0 but the horizon ends before the target FP catches up
            "phases": None if loc["t_over"] is None else (3 if loc["t_over"] > 0 else 2),
            "b_target_increasing": _monotone(b[:, 0], 1),
            "b_global_decreasing": _monotone(b[:, 1], -1),
            "other_local_peak": (None if peak is None else {"t": float(traj.t[peak]),
                                                            "b": float(b[peak, 2])}),
            "groups": loc["groups"],
            "global_query": {"t_half": row["global"]["levels"]["t_half"],
                             "t_0.9": row["global"]["levels"]["t_0.9"]},
        })
    return to_jsonable({"experiment": "masked_imbalanced", "config": config,
                        "status": "reconstructed (docs/derivations/masked.md, §Status)",
                        "rows": rows})


def report_imbalanced(summary: dict[str, Any]) -> list[str]:
    def time(value: float | None) -> str:
        return "not reached" if value is None else f"{value:.3g}"

    lines = []
    for r in summary["rows"]:
        if r["t_over"] is None:
            phases = "phases undetermined (the decoupling phase outlasts t_end)"
        elif r["t_over"] == 0:
            phases = "2 phases (no decoupling phase)"
        else:
            phases = f"3 phases (t_over = {r['t_over']:.3g})"
        lines.append(f"P = {r['P']}, C_g = {r['C_global']}, γ = {r['gamma']:g}: Δ0 = "
                     f"{r['delta0']:+.4f} → {phases}; t_cross {time(r['t_cross'])}, t_half "
                     f"{time(r['t_half'])}")
    return lines


# ------------------------------------------------------------------------------ scaling

SCALING_PARAMETERS = (
    Parameter("Ns", (2, 4, 8, 16, 4, 4, 4, 4), "areas per row (balanced, one cluster)",
              minimum=2, maximum=64),
    Parameter("Cs", (8, 8, 8, 8, 4, 16, 8, 8), "patches per area, per row", minimum=2,
              maximum=64),
    Parameter("gamma_percents", (50, 50, 50, 50, 50, 50, 25, 75), "masking ratio γ in percent,"
              " per row", minimum=1, maximum=99),
    Parameter("Ks", (1, 2, 4), "clusters of the ring rows (P = 12, C = 4, γ = ½)", minimum=1,
              maximum=4),
    Parameter("t_end", 1e4, "horizon (each flow stops at own-area mass 0.9)", positive=True),
    *SOLVER_PARAMETERS,
)


def _scaling_rows(config: dict[str, Any]) -> list[tuple[int, int, float]]:
    sizes = {len(config[k]) for k in ("Ns", "Cs", "gamma_percents")}
    if len(sizes) != 1:
        raise ArgumentError("parameters 'Ns', 'Cs' and 'gamma_percents' need one entry per row "
                            "each")
    return [(int(n), int(c), g / 100) for n, c, g in zip(
        config["Ns"], config["Cs"], config["gamma_percents"], strict=True)]


def _check_scaling(config: dict[str, Any]) -> None:
    for N, C, gamma in _scaling_rows(config):
        if N * C > 4096:
            raise ArgumentError(f"parameters 'Ns', 'Cs': N·C = {N * C} patches is above 4096")
        try:  # the count configurations of the row's query: refused beyond a memory bound
            design = balanced(N, C, gamma)
            MaskedGrouped.for_query(design, 0).configurations(design)
        except ArgumentError as exc:
            raise ArgumentError(f"parameters 'Ns', 'Cs' (N = {N}, C = {C}): {exc}") from None


def _objective_scaling(config: dict[str, Any]):
    N, C, gamma = _scaling_rows(config)[0]
    design = balanced(N, C, gamma)
    model = MaskedGrouped.for_query(design, 0)
    return model.objective(design), model.init()


def train_scaling(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Per balanced row: t_half and t_0.9 of query 0 (grouped flow, stopped at mass 0.9); per
    ring row: the same with K clusters (mask enumeration)."""
    rows, ring_rows = [], []
    for N, C, gamma in _scaling_rows(config):
        design = balanced(N, C, gamma)
        _, times, _ = protocol.grouped_flow(design, 0, config["t_end"], stop_at=0.9,
                                            levels=(0.5, 0.9), progress=progress,
                                            **solver_options(config))
        rows.append({"N": N, "C": C, "P": N * C, "gamma": gamma, **times.levels,
                     "mean_field": theory.t_half_mean_field(design, 0, 0)})
    for K in config["Ks"]:
        design = ring(12, 4, int(K), 0.5)
        # query 0's rows decouple from the others' (R2): one query is exact for its times
        _, times, _ = protocol.ring_flow(design, config["t_end"], queries=(0,), stop_at=0.9,
                                         levels=(0.5, 0.9), progress=progress,
                                         **solver_options(config))
        a_t = theory.initial_masses(design, 0, 0)[design.areas[0, 0]]
        ring_rows.append({"K": int(K), **times.levels,
                          "formula": 1 / (design.masked_probability * design.pi[0] * a_t),
                          "mean_field": theory.t_half_mean_field(design, 0, 0)})
    return Outcome(trajectories={}, arrays={}, context={"rows": rows, "ring_rows": ring_rows})


def summarize_scaling(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """t_half against the mean-field estimate per row; the fitted exponents of t_half in N (at
    C = 8, γ = ½) and in K (ring rows)."""
    rows = [dict(r, ratio=(r["t_half"] / r["mean_field"] if r["t_half"] else None))
            for r in outcome.context["rows"]]
    ring_rows = [dict(r, ratio=(r["t_half"] / r["formula"] if r["t_half"] else None))
                 for r in outcome.context["ring_rows"]]
    by_n = [r for r in rows if r["C"] == 8 and r["gamma"] == 0.5 and r["t_half"]]
    by_k = [r for r in ring_rows if r["t_half"]]

    def exponent(xs, ys):
        return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) >= 2 else None

    return to_jsonable({
        "experiment": "masked_scaling", "config": config,
        "status": "reconstructed (docs/derivations/masked.md, §Status)",
        "rows": rows, "ring_rows": ring_rows,
        "fitted": {"t_half_exponent_in_N": exponent([r["N"] for r in by_n],
                                                    [r["t_half"] for r in by_n]),
                   "mean_field_exponent_in_N": exponent([r["N"] for r in by_n],
                                                        [r["mean_field"] for r in by_n]),
                   "t_half_exponent_in_K": exponent([r["K"] for r in by_k],
                                                    [r["t_half"] for r in by_k])},
    })


def report_scaling(summary: dict[str, Any]) -> list[str]:
    lines = [f"N = {r['N']}, C = {r['C']}, γ = {r['gamma']:g}: t_half = {r['t_half']:.4g} "
             f"(mean field {r['mean_field']:.4g}, ratio {r['ratio']:.3f})"
             for r in summary["rows"] if r["t_half"]]
    lines += [f"ring K = {r['K']}: t_half = {r['t_half']:.4g} (1/(γπ a_t) = {r['formula']:.4g})"
              for r in summary["ring_rows"] if r["t_half"]]
    fit = summary["fitted"]
    if fit["t_half_exponent_in_N"] is not None:
        lines.append(f"t_half ∝ N^{fit['t_half_exponent_in_N']:.3f} (mean field "
                     f"N^{fit['mean_field_exponent_in_N']:.3f})")
    return lines


def _claims(name: str):
    return tuple(c for c in CLAIMS if c.experiment == name)


RING = Experiment(
    name="masked_ring",
    description="Masked vision pretraining (Huang, Wen, Chi, Liang, arXiv 2403.02233; "
                "reconstructed): area-wide, diverse attention on the ring design, to 1e6",
    parameters=RING_PARAMETERS,
    objective=_objective_ring,
    train=train_ring,
    summarize=summarize_ring,
    draw="gradflow.papers.masked.figures:draw_ring",
    report=report_ring,
    checks=_check_ring,
    claims=_claims("masked_ring"),
)

IMBALANCED = Experiment(
    name="masked_imbalanced",
    description="Masked vision pretraining (arXiv 2403.02233; reconstructed): a dominant area "
                "beside small ones; three phases when Δ0 > 0, two when Δ0 < 0",
    parameters=IMBALANCED_PARAMETERS,
    objective=_objective_imbalanced,
    train=train_imbalanced,
    summarize=summarize_imbalanced,
    draw="gradflow.papers.masked.figures:draw_imbalanced",
    report=report_imbalanced,
    checks=_check_imbalanced,
    claims=_claims("masked_imbalanced"),
)

SCALING = Experiment(
    name="masked_scaling",
    description="Masked vision pretraining (arXiv 2403.02233; reconstructed): time to half "
                "own-area attention against N, C, γ and K, with the mean-field estimate",
    parameters=SCALING_PARAMETERS,
    objective=_objective_scaling,
    train=train_scaling,
    summarize=summarize_scaling,
    draw="gradflow.papers.masked.figures:draw_scaling",
    report=report_scaling,
    checks=_check_scaling,
    claims=_claims("masked_scaling"),
)
