"""Experiments ``attention_svm_local`` and ``attention_svm_global``: the normalised flow of the
one-layer attention model on the authors' instances (Tarzanagh, Li, Zhang, Oymak, NeurIPS 2023;
Tarzanagh, Li, Thrampoulidis, Oymak, "Transformers as support vector machines").

``attention_svm_local`` is the authors' local-convergence setting (n = 6, T = 8, d = 10, many
instances, their initialisation): the direction of W(t) against the SVM of its own selection
to t = 1e8, the t⁻² law, ‖W‖ ∝ t, which instances change selection and when, and whether the
limit selection is locally optimal. ``attention_svm_global`` starts every flow at W = 0 and
compares the selection it finds with the globally optimal one, over a range of dimensions d.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.ensemble import ENSEMBLE_METHODS
from gradflow.errors import ArgumentError, InfeasibleError, SolverError
from gradflow.experiment import (
    Experiment,
    Outcome,
    Parameter,
    check_memory,
    ensemble_solver_options,
    log_records,
    seed_parameter,
    solver_options,
    solver_parameters,
)
from gradflow.papers.attention_svm import protocol, theory
from gradflow.papers.attention_svm.claims import CLAIMS
from gradflow.papers.attention_svm.data import ATTENTIONS, random_instance
from gradflow.papers.attention_svm.model import LOSSES, AttentionSVMModel
from gradflow.trajectory import to_jsonable

__all__ = ["GLOBAL", "LOCAL", "instance", "summarize_global", "summarize_local",
           "train_global", "train_local"]

GD_HORIZON = protocol.LR * protocol.STEPS
"""t = ηk at the authors' last iteration (η = 0.1, k = 2000): t = 200."""

_COMMON = (
    Parameter("n", 6, "sequences per instance", minimum=1, maximum=100_000),
    Parameter("T", 8, "tokens per sequence", minimum=2, maximum=100_000),
    seed_parameter("seed", 0, "instance i draws its data from rng [seed, i] and θ0 from "
                   "[seed, i, 1]"),
    Parameter("attention", "cross", "query of each sequence: its own (cross), its token at "
              "position 0 (self), or one shared by all (the prompt p of the token-selection "
              "paper)", choices=ATTENTIONS),
    Parameter("loss", "logistic", "loss ℓ(y f)", choices=LOSSES),
    Parameter("per_decade", 10, "record points per decade of t", minimum=1, maximum=1000),
)

def _instances(default: int) -> Parameter:
    return Parameter("instances", default, "instances (each its own data and θ0)", minimum=1,
                     maximum=100_000)


LOCAL_PARAMETERS = (
    *_COMMON[:2],
    Parameter("d", 10, "token dimension", minimum=1, maximum=1000),
    _instances(100),
    *_COMMON[2:],
    Parameter("init", "uniform", "θ0: the authors' nn.Linear default U(−1/√d, 1/√d) "
              "('uniform') or N(0, 1/d²) entries", choices=("uniform", "normal")),
    Parameter("init_scale", 1.0, "θ0 multiplied by this", positive=True),
    Parameter("t_end", 1e8, "horizon of the flow", positive=True),
    Parameter("fit_from", 1e4, "start of the window [fit_from, t_end] of the fitted slopes",
              positive=True),
    *solver_parameters(**protocol.SOLVER, methods=("auto", "BDF", "LSODA", "Radau", "RK45")),
)

GLOBAL_PARAMETERS = (
    *_COMMON[:2],
    Parameter("dims", (4, 6, 10), "the token dimensions d compared", minimum=1,
              maximum=1000),
    _instances(20),
    *_COMMON[2:],
    Parameter("t_end", 1e4, "horizon of the flow (the selection has settled long before on "
              "these instances: docs/derivations/attention_svm.md, §Experiments)", positive=True),
    *solver_parameters(**protocol.SOLVER, methods=("auto", "BDF", "LSODA", "Radau", "RK45")),
)


def instance(config: dict[str, Any], i: int, d: int | None = None):
    """The data and model of instance ``i`` of a config (d from the config unless given)."""
    d = config["d"] if d is None else d
    data = random_instance(config["n"], config["T"], d, attention=config["attention"],
                           rng=[config["seed"], i])
    return data, AttentionSVMModel(d, loss=config["loss"])


def _memory(config: dict[str, Any], d: int) -> None:
    state = d * d
    records = log_records(config["t_end"], config["per_decade"], extra=1)
    check_memory([
        ("the solver's Jacobian", 8.0 * 3 * state * state, ("d",)),
        ("the pairwise gradient's (n, T, T) arrays",
         8.0 * 4 * config["n"] * config["T"] ** 2, ("n", "T")),
        ("the stored states of every instance", 8.0 * records * state * 2, ("per_decade",)),
    ])


def _check_local(config: dict[str, Any]) -> None:
    if not 0 < config["fit_from"] < config["t_end"]:
        raise ArgumentError(f"parameter 'fit_from': must lie in (0, t_end={config['t_end']:g}),"
                            f" got {config['fit_from']:g}")
    _memory(config, config["d"])


def _check_global(config: dict[str, Any]) -> None:
    if len(set(config["dims"])) != len(config["dims"]):
        raise ArgumentError(f"parameter 'dims': the dimensions must differ, got "
                            f"{config['dims']}")
    _memory(config, max(config["dims"]))


def _objective_local(config: dict[str, Any]):
    data, model = instance(config, 0)
    return model.objective(data), model.init(rng=[config["seed"], 0, 1], preset=config["init"],
                                             scale=config["init_scale"])


def _objective_global(config: dict[str, Any]):
    data, model = instance(config, 0, config["dims"][0])
    return model.objective(data), 1e-3 * model.init(rng=[config["seed"], 0, 1])


def _bar(total: int, progress: bool, label: str):
    if not progress:
        return lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=label, unit="instance")

    def step() -> None:
        bar.update(1)
        if bar.n == total:
            bar.close()

    return step


# ------------------------------------------------------------------------------ local


LOCAL_COLUMNS = ("one_minus_cos", "norm", "log_off_mass", "last_change", "n_changes",
                 "changed_after_gd", "locally_optimal", "globally_optimal", "score_gap",
                 "nearest_higher", "nfev", "seconds", "final_selection")


def train_local(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """The normalised flow of every instance from the authors' initialisation, with the SVM of
    its selection tracked along it and the limit selection's local-optimality test."""
    grid = protocol.record_grid(config["t_end"], config["per_decade"], [GD_HORIZON])
    options = solver_options(config)
    N = config["instances"]
    columns: dict[str, list[Any]] = {k: [] for k in LOCAL_COLUMNS}
    example = None
    step = _bar(N, progress, "attention_svm_local")
    for i in range(N):
        data, model = instance(config, i)
        theta0 = _theta0_local(config, model, i)
        start = time.perf_counter()
        traj = protocol.normalized_flow(model, data, config["t_end"], theta0=theta0,
                                        record_at=grid, **options)
        seconds = time.perf_counter() - start
        example = traj if i == 0 else example
        _add_instance(columns, model, data, traj, seconds)
        step()
    arrays = {k: np.array(v) for k, v in columns.items()}
    arrays["t"] = grid
    return Outcome(trajectories={"instance0": example}, arrays={"tracks": arrays})


def _theta0_local(config: dict[str, Any], model: AttentionSVMModel, i: int) -> np.ndarray:
    return model.init(rng=[config["seed"], i, 1], preset=config["init"],
                      scale=config["init_scale"])


def _add_instance(columns: dict[str, list[Any]], model: AttentionSVMModel, data: Any,
                  traj: Any, seconds: float) -> None:
    """One instance's row of the local experiment's tracks, from its trajectory."""
    track = protocol.svm_track(model, data, traj)
    final = track.final
    test = (theory.local_optimality(data, final, track.final_solution)
            if track.final_solution is not None else None)
    k_gd = int(np.argmin(np.abs(track.t - GD_HORIZON)))
    for key, value in (
        ("one_minus_cos", track.one_minus_cos), ("norm", track.norm),
        ("log_off_mass", traj.observables["log_off_mass"]),
        ("last_change", track.last_change), ("n_changes", track.changes.size),
        ("changed_after_gd", bool(np.any(track.selected[k_gd] != final))),
        ("locally_optimal", bool(test.locally_optimal) if test else False),
        ("globally_optimal", bool(test.globally_optimal) if test else False),
        ("score_gap", test.score_gap if test else np.nan),
        ("nearest_higher", test.nearest_higher if test else np.nan),
        ("nfev", traj.stats["nfev"]), ("seconds", seconds), ("final_selection", final),
    ):
        columns[key].append(value)


def train_local_ensemble(configs: list[dict[str, Any]], outs: list[Path],
                         progress: bool = False) -> list[Outcome | Exception]:
    """:func:`train_local` of configs that differ only in ``seed``, every instance of every
    config one member of one :func:`gradflow.simulate_ensemble` (explicit methods only: see
    :data:`LOCAL` ``ensemble_ok``). A config whose instance failed gets that instance's
    error; ``seconds`` is the ensemble's wall time shared equally by its members."""
    config = configs[0]
    grid = protocol.record_grid(config["t_end"], config["per_decade"], [GD_HORIZON])
    N = config["instances"]
    members = [(c, i, *instance(c, i)) for c in configs for i in range(N)]
    thetas0 = np.stack([_theta0_local(c, model, i) for c, i, _, model in members])
    start = time.perf_counter()
    ens = protocol.normalized_flow_ensemble(
        [model for *_, model in members], [data for _, _, data, _ in members],
        config["t_end"], thetas0=thetas0, record_at=grid, progress=progress,
        **ensemble_solver_options(configs, per_config=N))
    seconds = (time.perf_counter() - start) / len(members)
    results: list[Outcome | Exception] = []
    for j in range(len(configs)):
        rows = range(j * N, (j + 1) * N)
        failed = [ens.errors[b] for b in rows if ens.errors[b] is not None]
        if failed:
            results.append(failed[0])
            continue
        columns: dict[str, list[Any]] = {k: [] for k in LOCAL_COLUMNS}
        for b in rows:
            _, _, data, model = members[b]
            _add_instance(columns, model, data, ens.member(b), seconds)
        arrays = {k: np.array(v) for k, v in columns.items()}
        arrays["t"] = grid
        example = ens.member(rows[0])
        results.append(Outcome(trajectories={"instance0": example}, arrays={"tracks": arrays}))
    return results


def _at(t: np.ndarray, values: np.ndarray, when: float) -> np.ndarray:
    return values[..., int(np.argmin(np.abs(t - when)))]


def _decades(t_end: float) -> list[float]:
    return [10.0**k for k in range(2, int(np.floor(np.log10(t_end))) + 1)]


def summarize_local(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """1 − cos at each decade (median, max), fitted slopes against the predictions, the
    selections' changes and local optimality, the solver's cost."""
    a = outcome.arrays["tracks"]
    t, omc, norm = a["t"], a["one_minus_cos"], a["norm"]
    window = (t >= config["fit_from"]) & (t <= config["t_end"])
    steady = a["last_change"] < config["fit_from"]  # no change inside the fit window
    median = np.nanmedian(omc, axis=0)
    slopes = [theory.fitted_slope(t[window], row[window]) for row in omc[steady]
              if np.all(row[window] > 0)]
    usable = window & (median > 0)
    late = a["last_change"][a["last_change"] > 0]
    return to_jsonable({
        "experiment": "attention_svm_local",
        "config": config,
        "one_minus_cos": {f"{x:g}": {"median": float(np.nanmedian(_at(t, omc, x))),
                                     "max": float(np.nanmax(_at(t, omc, x)))}
                          for x in _decades(config["t_end"])},
        "fitted": {
            "one_minus_cos_slope_median": (theory.fitted_slope(t[usable], median[usable])
                                           if usable.sum() >= 2 else None),
            "one_minus_cos_slope_range": [min(slopes), max(slopes)] if slopes else None,
            "instances_fitted": len(slopes),
            "norm_slope_median": theory.fitted_slope(t[window], np.median(norm, axis=0)[window]),
            "norm_over_t_range": [float((norm[:, -1] / t[-1]).min()),
                                  float((norm[:, -1] / t[-1]).max())],
        },
        "predicted": {"one_minus_cos_slope": theory.COS_SLOPE, "norm_slope": theory.NORM_SLOPE},
        "selection": {
            "changed_after_gd_horizon": int(a["changed_after_gd"].sum()),
            "gd_horizon": GD_HORIZON,
            "changed_after_fit_from": int((~steady).sum()),
            "last_change_quantiles": {q: float(np.quantile(a["last_change"], float(q)))
                                      for q in ("0.5", "0.9", "1")},
            "changes_after_gd_horizon_at": sorted(float(x) for x in late if x > GD_HORIZON),
            "locally_optimal": int(a["locally_optimal"].sum()),
            "globally_optimal": int(a["globally_optimal"].sum()),
            "instances": len(a["nfev"]),
            "min_score_gap": float(np.nanmin(a["score_gap"])),
        },
        "solver": {"nfev_median": float(np.median(a["nfev"])), "nfev_max": int(a["nfev"].max()),
                   "seconds_median": float(np.median(a["seconds"])),
                   "seconds_max": float(a["seconds"].max())},
    })


def report_local(summary: dict[str, Any]) -> list[str]:
    """The lines ``gradflow run attention_svm_local`` prints."""
    fit, sel = summary["fitted"], summary["selection"]
    last = list(summary["one_minus_cos"])[-1]
    slope = fit["one_minus_cos_slope_median"]
    return [
        f"1 − cos to the SVM of the selection at t = {last}: median "
        f"{summary['one_minus_cos'][last]['median']:.2e}, max "
        f"{summary['one_minus_cos'][last]['max']:.2e}",
        f"slope of the median 1 − cos: {'n/a' if slope is None else f'{slope:.3f}'} (predicted "
        f"-2); of the median ‖W‖: {fit['norm_slope_median']:.4f} (predicted 1)",
        f"selection changed after the authors' horizon t = {sel['gd_horizon']:g}: "
        f"{sel['changed_after_gd_horizon']}/{sel['instances']}; limit selections locally "
        f"optimal: {sel['locally_optimal']}/{sel['instances']}, globally: "
        f"{sel['globally_optimal']}/{sel['instances']}",
    ]


# ------------------------------------------------------------------------------ global


def train_global(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """For each d and instance: the flow from W = 0, its limit selection against the globally
    optimal one, and 1 − cos to each one's SVM."""
    grid = protocol.record_grid(config["t_end"], config["per_decade"])
    options = solver_options(config)
    N, dims = config["instances"], config["dims"]
    shape = (len(dims), N)
    result = {k: np.zeros(shape, dtype=dtype) for k, dtype in (
        ("globally_optimal", bool), ("locally_optimal", bool), ("optimal_tokens", float),
        ("opt_feasible", bool), ("one_minus_cos_final", float), ("one_minus_cos_opt", float),
        ("last_change", float), ("nfev", int), ("unfinished", bool))}
    failures: list[str] = []
    step = _bar(len(dims) * N, progress, "attention_svm_global")
    for j, d in enumerate(dims):
        for i in range(N):
            data, model = instance(config, i, d)
            opt = theory.optimal_selection(data)
            try:
                traj = protocol.normalized_flow(model, data, config["t_end"],
                                                theta0=model.init(preset="zero"),
                                                record_at=grid, **options)
            except SolverError as exc:
                # e.g. no selection is separable (small d): the loss has a finite minimiser,
                # around which the normalised field has no direction and the flow chatters
                result["unfinished"][j, i] = True
                failures.append(f"d = {d}, instance {i}: {type(exc).__name__} at t = "
                                f"{exc.t:g}")
                step()
                continue
            track = protocol.svm_track(model, data, traj)
            final, W = track.final, model.weight(model.layout.unpack(traj.final_theta))
            test = (theory.local_optimality(data, final, track.final_solution)
                    if track.final_solution is not None else None)
            opt_solution = track.solutions.get(tuple(opt.tolist()), None)
            if opt_solution is None:
                try:
                    opt_solution = theory.max_margin(data, opt)
                except InfeasibleError:  # no W selects the optimal tokens
                    opt_solution = None
            result["globally_optimal"][j, i] = bool(np.all(final == opt))
            result["locally_optimal"][j, i] = bool(test.locally_optimal) if test else False
            result["optimal_tokens"][j, i] = float(np.mean(final == opt))
            result["opt_feasible"][j, i] = opt_solution is not None
            result["one_minus_cos_final"][j, i] = track.one_minus_cos[-1]
            result["one_minus_cos_opt"][j, i] = (theory.one_minus_cos(W, opt_solution.w)
                                                 if opt_solution is not None else np.nan)
            result["last_change"][j, i] = track.last_change
            result["nfev"][j, i] = traj.stats["nfev"]
            step()
    result["dims"] = np.array(dims)
    return Outcome(trajectories={}, arrays={"selections": result},
                   context={"failures": failures})


def summarize_global(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Per d: the fractions of instances whose limit selection is globally and locally
    optimal, and 1 − cos to the SVMs."""
    a = outcome.arrays["selections"]
    rows = {}
    for j, d in enumerate(a["dims"].tolist()):
        done = ~a["unfinished"][j]
        if not done.any():
            rows[str(d)] = {"finished": 0, "instances": int(done.size)}
            continue
        g = a["globally_optimal"][j][done]
        rows[str(d)] = {
            "finished": int(done.sum()), "instances": int(done.size),
            "globally_optimal": float(g.mean()),
            "locally_optimal": float(a["locally_optimal"][j][done].mean()),
            "optimal_tokens": float(a["optimal_tokens"][j][done].mean()),
            "opt_svm_feasible": float(a["opt_feasible"][j][done].mean()),
            "one_minus_cos_final_median": float(np.nanmedian(
                a["one_minus_cos_final"][j][done])),
            "one_minus_cos_opt_median_when_global": (
                float(np.nanmedian(a["one_minus_cos_opt"][j][done][g])) if g.any() else None),
            "last_change_max": float(a["last_change"][j][done].max()),
            "nfev_median": float(np.median(a["nfev"][j][done])),
        }
    return to_jsonable({"experiment": "attention_svm_global", "config": config, "by_d": rows,
                        "unfinished": list(outcome.context.get("failures", []))})


def report_global(summary: dict[str, Any]) -> list[str]:
    """The lines ``gradflow run attention_svm_global`` prints."""
    lines = []
    for d, r in summary["by_d"].items():
        if not r["finished"]:
            lines.append(f"d = {d}: no flow finished (see 'unfinished' in summary.json)")
            continue
        lines.append(f"d = {d}: limit selection globally optimal {r['globally_optimal']:.0%}, "
                     f"locally optimal {r['locally_optimal']:.0%}, optimal tokens "
                     f"{r['optimal_tokens']:.0%}; median 1 − cos to its SVM "
                     f"{r['one_minus_cos_final_median']:.1e} ({r['finished']}/{r['instances']} "
                     "flows finished)")
    if summary["unfinished"]:
        lines.append(f"warning: {len(summary['unfinished'])} flows did not finish (no "
                     "separable selection?): " + "; ".join(summary["unfinished"][:5]))
    return lines


LOCAL = Experiment(
    name="attention_svm_local",
    description="Attention as an SVM (Tarzanagh et al., NeurIPS 2023 / 'Transformers as SVMs'): "
                "local convergence of the normalised flow to the SVM of its selection, to 1e8",
    parameters=LOCAL_PARAMETERS,
    objective=_objective_local,
    train=train_local,
    summarize=summarize_local,
    draw="gradflow.papers.attention_svm.figures:draw_local",
    report=report_local,
    checks=_check_local,
    claims=tuple(c for c in CLAIMS if c.experiment == "attention_svm_local"),
    train_ensemble=train_local_ensemble,
    ensemble_keys=("seed",),
    # the default method ('auto': BDF) is implicit, and this normalised flow is stiff (RK45
    # does not reach t = 1e4 in 20,000 evaluations): only explicit runs join an ensemble
    ensemble_ok=lambda config: config["method"] in ENSEMBLE_METHODS,
)

GLOBAL = Experiment(
    name="attention_svm_global",
    description="Attention as an SVM (Tarzanagh et al., NeurIPS 2023 / 'Transformers as SVMs'): "
                "the selection the flow from W = 0 finds against the globally optimal one",
    parameters=GLOBAL_PARAMETERS,
    objective=_objective_global,
    train=train_global,
    summarize=summarize_global,
    draw="gradflow.papers.attention_svm.figures:draw_global",
    report=report_global,
    checks=_check_global,
)
