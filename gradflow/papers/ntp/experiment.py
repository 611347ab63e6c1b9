"""Experiment ``ntp``: two-stage normalised training of the next-token transformer (Huang,
Liang, Yang, NeurIPS 2024): convergence in direction to the two max-margin solutions, the
linear loss rate, and predictions under dataset shift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.experiment import (
    Experiment,
    Outcome,
    Parameter,
    check_memory,
    log_records,
    seed_parameter,
    solver_options,
    solver_parameters,
)
from gradflow.papers.ntp import claims, protocol, theory
from gradflow.papers.ntp.data import NTPData, fixture, fixture_unseen, make_dataset, random_instance
from gradflow.papers.ntp.model import NTPTransformer
from gradflow.trajectory import to_jsonable

__all__ = ["EXPERIMENT", "build", "summarize", "train"]

PARAMETERS = (
    Parameter("dataset", "fixture", "the 8-token fixture, or a random realizable instance "
              "(modelling choices of gradflow: docs/derivations/ntp.md, §Fixture and random "
              "instances)", choices=("fixture", "random")),
    Parameter("K", 16, "random instance: vocabulary size", minimum=3, maximum=10_000),
    Parameter("n_queries", 3, "random instance: number of query tokens", minimum=1,
              maximum=10_000),
    Parameter("n_sentences", 30, "random instance: sentences drawn", minimum=1,
              maximum=1_000_000),
    seed_parameter("seed", 0, "random instance: seed"),
    Parameter("stage1", "optimal", "stage-1 collocation pairs: tokens optimal in the data or "
              "every token (a modelling choice of gradflow: docs/derivations/ntp.md, §Stage-1 "
              "data)", choices=("optimal", "all")),
    Parameter("init", "zero", "start of stage 1: zero weights (a modelling choice of gradflow: "
              "docs/derivations/ntp.md, §Initialisation) or N(0, 1) entries (then stage 1's own "
              "convergence is visible; on the fixture, zero starts exactly on the W_ov* "
              "direction)", choices=("zero", "normal")),
    seed_parameter("init_seed", 0, "seed of the 'normal' initialisation"),
    Parameter("T0", 30.0, "duration of stage 1 (train W_ov)", positive=True),
    Parameter("T", 300.0, "duration of stage 2 (train W_kq)", positive=True),
    Parameter("fit_from", 30.0, "start of the late window [fit_from, T] for fitted slopes",
              minimum=0.0),
    Parameter("per_decade", 20, "record points per decade of t", minimum=1,
              maximum=10_000),
    Parameter("ablation", True, "also run joint one-stage training of both blocks"),
    *solver_parameters(**protocol.SOLVER, methods=("LSODA", "RK45", "DOP853", "BDF")),
)


STAGE1_SETS = {"optimal": "the tokens that occur as optimal (the default: docs/derivations/"
                          "ntp.md, §Stage-1 data; the independent prototype used all pairs: "
                          "--set stage1=all)",
               "all": "every collocation pair (the set of the independent prototype, "
                      "docs/derivations/ntp.md, §Reference values of an independent prototype; "
                      "the default is stage1=optimal, §Stage-1 data)"}
"""How ``report`` names the stage-1 set a run uses (the claims ledger reports both)."""
FIXTURE_K = 8
"""Vocabulary size of the fixture (docs/derivations/ntp.md, §Fixture and random instances)."""
LONGEST_SENTENCE = 6
"""Longest sentence of a random instance (``ntp.random_instance``'s default lengths)."""


def memory_parts(config: dict[str, Any]) -> list[tuple[str, float, tuple[str, ...]]]:
    """The large allocations of a run (for :func:`~gradflow.experiment.check_memory`)."""
    random = config["dataset"] == "random"
    K = config["K"] if random else FIXTURE_K
    n = config["n_sentences"] if random else 16
    state = 2 * K * K
    implicit = config["method"] in ("LSODA", "BDF")  # a dense Jacobian and its factors
    solver = 3.0 * state * state if implicit else 17.0 * state
    stage1 = K if config["stage1"] == "all" else min(K, n)  # tokens with stage-1 constraints
    sizes = ("K",) if random else ()
    return [
        (f"the solver's {'Jacobian' if implicit else 'stages'} (method={config['method']})",
         8.0 * solver, sizes),
        ("the max-margin constraints of W_kq (a K×K matrix per sentence token)",
         8.0 * 3 * n * LONGEST_SENTENCE * K * K, (*sizes, "n_sentences") if random else ()),
        ("the max-margin constraints of W_ov (a K×K matrix per stage-1 token and other token)",
         8.0 * 3 * stage1 * K * K * K, (*sizes, "stage1")),
        ("the recorded observables", 8.0 * 3 * log_records(config["T"], config["per_decade"])
         * 4 * K, ("per_decade", "T")),
    ]


def _check_config(config: dict[str, Any]) -> None:
    if not 0 < config["fit_from"] < config["T"]:
        raise ArgumentError(
            f"parameter 'fit_from': must lie in (0, T={config['T']:g}), got {config['fit_from']}"
        )
    if config["dataset"] == "random" and config["K"] < 7:
        raise ArgumentError(f"parameter 'K': a random instance needs K >= 7, got {config['K']}")
    if config["dataset"] == "random" and config["n_queries"] > config["K"]:
        raise ArgumentError(f"parameter 'n_queries': at most K={config['K']} query tokens, got "
                            f"{config['n_queries']}")
    check_memory(memory_parts(config))


def build(config: dict[str, Any]) -> NTPData:
    """The dataset of a validated config (stage-1 set applied)."""
    if config["dataset"] == "fixture":
        base = fixture()
    else:
        base = random_instance(config["seed"], K=config["K"], n_queries=config["n_queries"],
                                   n_sentences=config["n_sentences"])
    return make_dataset([base.sentence(i) for i in range(base.n)], base.y,
                            base.collocation, embedding=base.embedding, stage1=config["stage1"],
                            names=base.names)


def unseen_sentences(data: NTPData, config: dict[str, Any]) -> list[tuple[list[int], Any]]:
    """Test sentences with their expected token (fixture) or None (random: 12 new sentences on
    the seen queries)."""
    if config["dataset"] == "fixture":
        return [(s, y) for s, y, _ in fixture_unseen()]
    gen = np.random.default_rng(config["seed"] + 1)
    seen = {tuple(data.sentence(i)) for i in range(data.n)}
    queries = np.unique(data.query)
    out: list[tuple[list[int], Any]] = []
    for _ in range(200):
        q = int(gen.choice(queries))
        length = int(gen.integers(2, 6))
        context = gen.choice(np.setdiff1d(np.arange(data.K), [q]), size=length - 1,
                             replace=False)
        sentence = [*map(int, context), q]
        if tuple(sentence) not in seen:
            seen.add(tuple(sentence))
            out.append((sentence, None))
        if len(out) == 12:
            break
    return out


def _objective(config: dict[str, Any]):
    data = build(config)
    model = NTPTransformer(data.d)
    return model.objective(data), model.init(rng=config["seed"], preset="normal")


def train(config: dict[str, Any], out: Path, progress: bool = False) -> Outcome:
    """Solve both max-margin problems, then the paper's two stages (and the ablation)."""
    data = build(config)
    model = NTPTransformer(data.d)
    ov, kq = theory.max_margin_ov(data), theory.max_margin_kq(data)
    references = {"W_ov": ov.w, "W_kq": kq.w}
    options = {**solver_options(config), "progress": progress}
    theta0 = model.init(rng=config["init_seed"], preset=config["init"])
    stage1, stage2 = protocol.two_stage(model, data, T0=config["T0"], T=config["T"],
                                        references=references, theta0=theta0,
                                        per_decade=config["per_decade"], **options)
    joint = None
    if config["ablation"]:
        joint = protocol.joint_flow(model, data, config["T"], references=references, **options)
    return Outcome(
        trajectories={"stage1": stage1, "stage2": stage2},
        arrays={"max_margin": {"W_ov": ov.w, "W_kq": kq.w, "queries": np.unique(data.query)}},
        context={"data": data, "model": model, "ov": ov, "kq": kq, "joint": joint},
    )


def _fit(x: np.ndarray, y: np.ndarray, *, log_x: bool = True, log_y: bool = True
         ) -> float | None:
    """The least-squares slope of (log) y against (log) x; None when a value is unusable (not
    finite, or not positive on a log scale) or fewer than 2 distinct x are given: no line is
    determined then, and a number would be meaningless."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    usable = np.isfinite(x) & np.isfinite(y)
    if log_x:
        usable &= x > 0
    if log_y:
        usable &= y > 0
    if not usable.all() or np.unique(x).size < 2:
        return None
    if log_y:
        return theory.fitted_slope(x, y, log_x=log_x)
    return float(np.polyfit(np.log(x) if log_x else x, y, 1)[0])


def summarize(outcome: Outcome, config: dict[str, Any]) -> dict[str, Any]:
    """Max-margin values, fitted slopes and rates against the predictions, unseen sentences."""
    context = outcome.context
    data, model, ov, kq = context["data"], context["model"], context["ov"], context["kq"]
    s1, s2 = outcome.trajectories["stage1"], outcome.trajectories["stage2"]
    o1, o2 = s1.observables, s2.observables
    late = (s2.t >= config["fit_from"]) & (s2.t <= config["T"])
    late1 = (s1.t >= min(config["fit_from"], config["T0"]) / 3) & (s1.t > 0)
    fits = {
        "stage2_one_minus_cos_slope": _fit(s2.t[late], o2["one_minus_cos_W_kq"][late]),
        "stage2_dist_slope": _fit(s2.t[late], o2["dist_W_kq"][late]),
        "stage2_loss_excess_rate": _fit(s2.t[late], o2["loss_excess"][late], log_x=False),
        "stage2_off_optimal_mass_rate": _fit(s2.t[late], o2["log_off_optimal_mass"][late],
                                             log_x=False, log_y=False),
        "stage1_loss_rate": _fit(s1.t[late1], o1["loss"][late1], log_x=False),
    }
    fits["points"] = {"stage2": int(late.sum()), "stage1": int(late1.sum())}
    predicted = {"one_minus_cos_slope": theory.COS_SLOPE, "dist_slope": theory.DIST_SLOPE,
                 "stage2_loss_rate": theory.loss_rate(kq.w),
                 "stage1_loss_rate": theory.loss_rate(ov.w)}
    params = model.layout.unpack(s2.final_theta)
    unseen = unseen_sentences(data, config)
    predictions = theory.predict_unseen(data, [s for s, _ in unseen], kq.w, model=model,
                                        params=params)
    table = [{"sentence": "".join(data.name(t) for t in p.sentence), "expected":
              None if y is None else data.name(y),
              **{k: None if v is None else data.name(v) for k, v in
                 (("by_closure", p.by_closure), ("by_score", p.by_score), ("model", p.model))},
              "confidence": p.confidence, "note": p.note}
             for p, (_, y) in zip(predictions, unseen, strict=True)]
    summary = {
        "experiment": "ntp",
        "config": config,
        "max_margin": {"W_ov_norm_sq": ov.norm**2, "W_kq_norm_sq": kq.norm**2,
                       "W_ov_support": int(ov.support.size), "W_kq_support": int(kq.support.size),
                       "W_ov_constraints": int(ov.multipliers.size),
                       "W_kq_constraints": int(kq.multipliers.size)},
        "stage1_final": {k: o1[k][-1] for k in ("loss", "one_minus_cos_W_ov", "norm_W_ov")},
        "stage2_final": {k: o2[k][-1] for k in ("loss", "loss_excess", "accuracy",
                                                "one_minus_cos_W_kq", "dist_W_kq")},
        "fitted": fits,
        "predicted": predicted,
        "unseen": table,
        "solver": {"stage1": s1.stats, "stage2": s2.stats},
    }
    if context["joint"] is not None:
        oj = context["joint"].observables
        summary["joint_ablation"] = {"one_minus_cos_W_ov": oj["one_minus_cos_W_ov"][-1],
                                     "one_minus_cos_W_kq": oj["one_minus_cos_W_kq"][-1],
                                     "norm_W_ov": oj["norm_W_ov"][-1],
                                     "norm_W_kq": oj["norm_W_kq"][-1]}
    return to_jsonable(summary)


def report(summary: dict[str, Any]) -> list[str]:
    """The lines ``gradflow run ntp`` prints."""
    fit, pred, mm = summary["fitted"], summary["predicted"], summary["max_margin"]
    determined = [row for row in summary["unseen"] if row["by_score"] is not None]
    agree = sum(row["model"] == row["by_score"] for row in determined)
    none = (f"no fit: fewer than 2 record times with usable values in [fit_from, T] = "
            f"[{summary['config']['fit_from']:g}, {summary['config']['T']:g}]")

    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    slopes = (fit["stage2_one_minus_cos_slope"], fit["stage2_dist_slope"])
    stage1 = summary["config"]["stage1"]
    return [f"stage-1 set: {STAGE1_SETS.get(stage1, stage1)}",
            f"‖W_ov*‖² = {mm['W_ov_norm_sq']:.6g}, ‖W_kq*‖² = {mm['W_kq_norm_sq']:.6g}",
            f"stage 2 slopes: 1−cos {shown(slopes[0])} (predicted -2), "
            f"dist {shown(slopes[1])} (predicted -1)" + (f"; {none}" if None in slopes else ""),
            f"stage 2 loss-excess rate {fit['stage2_loss_excess_rate']} "
            f"(predicted {pred['stage2_loss_rate']:.5f})",
            f"unseen sentences predicted as the extended order says: {agree}/{len(determined)}"
            f" ({len(summary['unseen']) - len(determined)} undetermined)"]


EXPERIMENT = Experiment(
    name="ntp",
    description="Next-token prediction (Huang, Liang, Yang, NeurIPS 2024): two-stage "
                "normalised flow, max-margin limits, loss rate, dataset shift",
    parameters=PARAMETERS,
    objective=_objective,
    train=train,
    summarize=summarize,
    draw="gradflow.papers.ntp.figures",
    report=report,
    checks=_check_config,
    claims=tuple(c for c in claims.CLAIMS if c.experiment == "ntp"),
)
