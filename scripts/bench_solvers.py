"""Which solver and clock should ``simulate(method="auto")`` pick?

Every registered experiment's main flow (and two flows outside the registry: the ZFB linear-ICL
reduced flow and the attention-SVM example model) is integrated to t = 1e8 — and, where the
experiment stops earlier, also, in a separate run, to its own horizon — by each scipy method
(RK45, DOP853, RK23, LSODA, BDF, Radau; ``"auto"`` too once ``simulate`` accepts it) in the
linear and the log clock, at ``simulate``'s default tolerances and at the tolerances the
experiment itself uses. Each case is built as its experiment builds it (objective, θ0,
``normalize``, ``rates``; the NTP experiment's ``jacobian_step`` for implicit methods). The
full run uses ``icl_imbalanced`` at N = 20 instead of the experiment's N = 40 (which is the
opt-in case ``icl_imbalanced_paper``: ~2 ms per gradient, ~5 minutes on its own).

Every objective evaluation is counted by a wrapper around the objective (``gradient`` and
``scaled_gradient`` calls; ``scaled_gradient`` is exposed only when the wrapped objective is a
:class:`gradflow.ScaledObjective`, which is how the engine chooses). This includes the
evaluations that build finite-difference Jacobians, which the solvers' own ``nfev`` leaves out
(BDF, Radau, ``jacobian_step``). A run is capped at ``--max-evals`` evaluations and
``--max-wall`` seconds (the wrapper raises); a capped or failed run is reported with the time it
reached (the last record time passed; 4 per decade). The evaluations at each record time give
the growth exponent k of E(t) ∝ t^k over the last two decades reached: k ≈ 1 is a method at
its stability limit. Steps are counted by a never-crossing event. With several instances, a
row whose first three instances were capped a decade or more short of T is not run on the
others (reported as skipped).

Wall time is one thread (BLAS/OpenMP pinned before NumPy is imported), one process, the cases
in sequence; single-instance runs shorter than 0.5 s are repeated (median of 3). Compare
ratios, not seconds: the load average at the start and end of each case is printed.

    python scripts/bench_solvers.py [--quick] [--cases NAME,...] [--methods M,...] [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from benchutil import markdown_table, median_time, write_json  # noqa: E402

import gradflow  # noqa: E402
from gradflow import flow  # noqa: E402
from gradflow.errors import ArgumentError, GradflowError  # noqa: E402
from gradflow.objective import ScaledObjective  # noqa: E402
from gradflow.papers import linear_icl as li  # noqa: E402
from gradflow.papers import ntp  # noqa: E402
from gradflow.papers import regular as rg  # noqa: E402
from gradflow.papers import representation_icl as rp  # noqa: E402
from gradflow.papers import softmax_icl as sm  # noqa: E402
from gradflow.papers.cooccurrence import experiment as cooc_exp  # noqa: E402
from gradflow.papers.ntp import experiment as ntp_exp  # noqa: E402
from gradflow.papers.regular import experiment as reg_exp  # noqa: E402
from gradflow.papers.representation_icl import experiment as rep_exp  # noqa: E402
from gradflow.papers.softmax_icl import experiment as icl_exp  # noqa: E402
from gradflow.trajectory import to_jsonable  # noqa: E402

METHOD_ORDER = ("RK45", "DOP853", "RK23", "LSODA", "BDF", "Radau")
CLOCKS = ("linear", "log")
_SIG = inspect.signature(gradflow.simulate).parameters
DEFAULT_TOL = (float(_SIG["rtol"].default), float(_SIG["atol"].default))
IMPLICIT = set(getattr(flow, "IMPLICIT", {"LSODA", "BDF", "Radau"}))
REPEAT_BELOW = 0.5  # seconds: shorter single-instance runs are repeated, median of REPEATS
REPEATS = 3
SKIP_AFTER = 3
"""Several instances: once this many in a row ended capped at least SKIP_DECADES decades
short of T, the row's other instances are not run (reported as skipped): capped runs are
most of the benchmark's time (the attention-SVM rows of explicit methods alone ~2 minutes)."""
SKIP_DECADES = 1
PER_DECADE = 4  # record (and evaluation-count) points per decade of t
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "attention_svm.py"


# ------------------------------------------------------------------------- counting wrapper


class _Budget(Exception):
    """Raised from inside the objective when a run has used up its evaluations or wall time."""

    def __init__(self, budget: str):
        super().__init__(budget)
        self.budget = budget


class Counted:
    """An objective that counts ``gradient`` calls and enforces the run's budget."""

    def __init__(self, inner: Any, max_evals: int, max_wall: float):
        self.inner = inner
        self.layout = inner.layout
        self.max_evals, self.max_wall = max_evals, max_wall
        self.reset()

    def reset(self) -> None:
        self.gradient_calls = 0
        self.scaled_calls = 0
        self.start = time.perf_counter()

    @property
    def evaluations(self) -> int:
        return self.gradient_calls + self.scaled_calls

    def _spend(self) -> None:
        if self.evaluations >= self.max_evals:
            raise _Budget("evaluations")
        if time.perf_counter() - self.start > self.max_wall:
            raise _Budget("wall")

    def value(self, theta):
        return self.inner.value(theta)

    def weighted_losses(self, theta):
        return self.inner.weighted_losses(theta)

    def gradient(self, theta):
        self._spend()
        self.gradient_calls += 1
        return self.inner.gradient(theta)


class CountedScaled(Counted):
    """:class:`Counted` for a :class:`~gradflow.ScaledObjective`: also counts
    ``scaled_gradient`` (what normalised flows call)."""

    def scaled_gradient(self, theta):
        self._spend()
        self.scaled_calls += 1
        return self.inner.scaled_gradient(theta)


def counted(objective: Any, max_evals: int, max_wall: float) -> Counted:
    cls = CountedScaled if isinstance(objective, ScaledObjective) else Counted
    return cls(objective, max_evals, max_wall)


class Probe:
    """The one observable of a run: at each record time (in grid order) it notes the
    evaluations, accepted steps and wall time so far, and keeps the latest θ (the run stores
    no states). Its :attr:`step_event` (never crossing) is called once per accepted step."""

    def __init__(self, objective: Counted, grid: np.ndarray):
        self.objective, self.grid = objective, grid
        self.rows: list[tuple[float, int, int, float]] = []
        self.theta: np.ndarray | None = None
        self.steps = -1  # the event function is also called once at the start
        self.step_event = gradflow.Event("steps", self._step)

    def _step(self, theta: np.ndarray) -> float:
        self.steps += 1
        return 1.0

    def __call__(self, theta: np.ndarray) -> float:
        k = len(self.rows)
        t = float(self.grid[k]) if k < len(self.grid) else float("nan")
        self.rows.append((t, self.objective.evaluations, max(self.steps, 0),
                          time.perf_counter() - self.objective.start))
        self.theta = np.array(theta, dtype=float)
        return float(self.objective.evaluations)

    @property
    def t_reached(self) -> float:
        return self.rows[-1][0] if self.rows else float("nan")


# --------------------------------------------------------------------------------- cases


@dataclass
class Instance:
    label: str
    objective: Any
    theta0: np.ndarray
    kwargs: dict[str, Any] = field(default_factory=dict)  # normalize, rates


@dataclass
class Variant:
    """A row: a method (or "auto") with optional solver_options."""

    label: str
    method: str
    solver_options: dict[str, Any] | None = None


@dataclass
class Case:
    name: str
    description: str
    instances: list[Instance]
    experiment: dict[str, Any]  # method, clock, rtol, atol, T (the experiment's own run)
    flow_type: str
    variants: list[Variant]
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.instances[0].objective.layout.size)

    def horizons(self, t_end: float) -> list[float]:
        T = self.experiment.get("T")
        return [t_end] + ([float(T)] if T is not None and T < t_end else [])

    def tolerances(self) -> dict[str, tuple[float, float]]:
        exp = (self.experiment.get("rtol"), self.experiment.get("atol"))
        if exp[0] is None or exp == DEFAULT_TOL:
            return {"default": DEFAULT_TOL}
        return {"default": DEFAULT_TOL, "experiment": (float(exp[0]), float(exp[1]))}


def _variants(auto: bool, implicit_options: dict[str, Any] | None = None,
              extra: tuple[Variant, ...] = ()) -> list[Variant]:
    rows = [Variant("auto", "auto")] if auto else []
    for method in METHOD_ORDER:
        options = implicit_options if method in IMPLICIT else None
        rows.append(Variant(method, method, options))
    return rows + list(extra)


def _exp(config: dict[str, Any], method: str, clock: str, T: float) -> dict[str, Any]:
    return {"method": method, "clock": clock, "rtol": config["rtol"], "atol": config["atol"],
            "T": T}


def case_cooccurrence(size: str, auto: bool, quick: bool) -> Case:
    overrides = ({"d": 16, "m": 8, "m1": 16, "counts": (6, 2, 2, 2)} if size == "small"
                 else {})
    config = cooc_exp.EXPERIMENT.config(overrides)
    data, model, theta0 = cooc_exp.build(config)
    inst = Instance(f"d={config['d']}, m={config['m']}, m1={config['m1']}",
                    model.objective(data), theta0)
    return Case(f"cooccurrence_{size}",
                f"co-occurrence, {size} size (d={config['d']}, L={config['L']}, "
                f"counts={config['counts']}, m={config['m']}, m1={config['m1']}; theory init)",
                [inst], _exp(config, config["method"], config["clock"], config["t_end"]),
                "plain gradient flow", _variants(auto))


def _ntp_stage2(config: dict[str, Any]) -> tuple[Any, np.ndarray, float]:
    """Stage 2's objective and θ0 (W_ov from the end of stage 1, W_kq = 0), as two_stage."""
    data = ntp_exp.build(config)
    model = ntp.NTPTransformer(data.d)
    theta0 = model.init(rng=config["init_seed"], preset=config["init"])
    options = {"method": config["method"], "rtol": config["rtol"], "atol": config["atol"]}
    stage1, _ = ntp.two_stage(model, data, T0=config["T0"], T=1e-3, theta0=theta0,
                              per_decade=1, **options)
    theta = stage1.final_theta.copy()
    model.layout.unpack(theta)["W_kq"][...] = 0.0
    return model.objective(data), theta, data.d


def case_ntp(dataset: str, auto: bool, quick: bool) -> Case:
    config = ntp_exp.EXPERIMENT.config({"dataset": dataset})
    objective, theta0, d = _ntp_stage2(config)
    js = {"jacobian_step": 1e-6}  # ntp.two_stage adds it for implicit methods
    extra = (Variant("LSODA, no jacobian_step", "LSODA"),)
    label = "fixture()" if dataset == "fixture" else (
        f"random_instance(seed={config['seed']}, K={config['K']}, "
        f"n_queries={config['n_queries']}, n_sentences={config['n_sentences']})")
    return Case(f"ntp_{dataset}",
                f"NTP stage 2 of two_stage on {label}: W_kq from 0, W_ov frozen at its "
                f"stage-1 value (T0 = {config['T0']:g}), d = {d}",
                [Instance(label, objective, theta0,
                          {"normalize": "block", "rates": {"W_ov": 0.0}})],
                _exp(config, config["method"], "linear", config["T"]),
                "normalised flow (block), max-margin", _variants(auto, js, extra),
                notes=["implicit methods get solver_options={'jacobian_step': 1e-6}, as "
                       "ntp.two_stage gives them; 'LSODA, no jacobian_step' is LSODA without"])


def case_regular(name: str, auto: bool, quick: bool) -> Case:
    if name == "even_pairs":
        config = reg_exp.EVEN_PAIRS.config()
        data = rg.even_pairs(config["L_max"])
        label = f"even_pairs(L_max={config['L_max']})"
    else:
        config = reg_exp.PARITY_COT.config()
        data = rg.parity_cot(config["L0"],
                             regularizer_lengths=range(1, config["regularizer_max"] + 1),
                             cot_format=config["cot_format"])
        label = (f"parity_cot(L0={config['L0']}, format {config['cot_format']}, regulariser "
                 f"1..{config['regularizer_max']})")
    model = rg.RegularTransformer(data.d, lam=config["lam"])
    inst = Instance(label, model.objective(data), model.init(preset="zero"),
                    {"rates": rg.phase_rates(model.lam, config["tau0"])})
    return Case(name, f"{label} as regular.train builds it: zero init, λ = {config['lam']:g}, "
                f"W's rate λ until τ0 = {config['tau0']:g} (experiment horizon "
                f"T = {config['T']:g})",
                [inst], _exp(config, config["method"], config["clock"], config["T"]),
                "plain gradient flow, piecewise rates (logistic, separable)", _variants(auto))


def case_icl_balanced(auto: bool, quick: bool) -> Case:
    config = icl_exp.ICL_BALANCED.config()
    Ks = config["K_values"][:1] if quick else config["K_values"]
    insts = []
    for K in Ks:
        model = sm.BalancedICL(K, config["n_per_K"] * K)
        insts.append(Instance(f"K={K}", model.objective(None), model.init(),
                              {"rates": {"A": model.rate}}))
    return Case("icl_balanced", f"BalancedICL(K, {config['n_per_K']}·K), K in {list(Ks)} "
                "(the experiment's values; one instance per K), rates={'A': model.rate}",
                insts, _exp(config, "LSODA", "linear", config["T"]),
                "plain gradient flow, scalar state", _variants(auto))


def case_icl_imbalanced(N: int | None, auto: bool, quick: bool) -> Case:
    """N None: the experiment's N (paper size, 12,341 count vectors, ~2 ms per gradient)."""
    config = icl_exp.ICL_IMBALANCED.config({} if N is None else {"N": N})
    K = config["K"]
    p = np.array([config["p_dominant"], *[(1 - config["p_dominant"]) / (K - 1)] * (K - 1)])
    task = sm.make_task(K, config["N"], p, include_query=config["include_query"])
    model = sm.FeatureICL(K)
    return Case("icl_imbalanced" + ("_paper" if N is None else ""),
                f"FeatureICL(K={K}), N = {config['N']}, p = "
                f"{np.round(p, 3).tolist()}, exact enumeration ({len(task.weights)} count "
                "vectors), S from 0", [Instance("p_dominant=0.55", model.objective(task),
                                                 model.init())],
                _exp(config, "LSODA", "linear", config["T"]), "plain gradient flow",
                _variants(auto))


def case_icl_representations(auto: bool, quick: bool) -> Case:
    config = rep_exp.ICL_REPRESENTATIONS.config()
    task = rp.make_task(config["d"], config["K"], config["N"], config["m"], config["tau"],
                           rng=config["seed"])
    Hs = config["H_values"][:1] if quick else config["H_values"]
    insts = []
    for H in Hs:
        model = rp.RepresentationTransformer(task.d, task.K, H)
        insts.append(Instance(f"H={H}", model.objective(task), model.init(rng=config["seed"]),
                              {"rates": {"w": config["gamma"] ** 2}}))
    return Case("icl_representations",
                f"RepresentationTransformer(d={config['d']}, K={config['K']}, H), N = "
                f"{config['N']}, m = {config['m']}, τ = {config['tau']:g}, H in {list(Hs)} "
                "(one instance per H; the state grows with H)", insts,
                _exp(config, "LSODA", "linear", config["T"]),
                "plain gradient flow (linear convergence to a finite minimum)", _variants(auto))


def case_linear_icl(auto: bool, quick: bool) -> Case:
    task = li.make_task(4, 10, "random", rng=4)
    model = li.LinearICLReduced(4)
    inst = Instance("d=4, N=10", model.objective(task), model.init(rng=1, task=task))
    return Case("linear_icl", "ZFB reduced population flow LinearICLReduced(4), N = 10, random "
                "Λ (rng 4), Assumption 3.3 init (rng 1); no registered experiment: settings of "
                "scripts/bench_icl.py (LSODA, rtol 1e-10, atol 1e-12, to its limit at t = 200)",
                [inst], {"method": "LSODA", "clock": "linear", "rtol": 1e-10, "atol": 1e-12,
                         "T": 200.0},
                "plain gradient flow (to a finite minimum)", _variants(auto))


def _attention_svm_module():
    spec = importlib.util.spec_from_file_location("attention_svm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_attention_svm(auto: bool, quick: bool) -> Case:
    svm = _attention_svm_module()
    model = svm.AttentionSVM(10)
    seeds = range(3) if quick else range(10)
    insts = [Instance(f"seed={s}", model.objective(svm.make_instance(rng=s)),
                      model.init(rng=100 + s), {"normalize": "global"}) for s in seeds]
    extra = (Variant("LSODA, jacobian_step 1e-6", "LSODA", {"jacobian_step": 1e-6}),)
    return Case("attention_svm", f"examples/attention_svm.py: AttentionSVM(10), "
                f"make_instance(rng=seed) (n = 6, T = 8, d = 10), θ0 = init(rng=100 + seed), "
                f"seeds {seeds.start}..{seeds.stop - 1}; out-of-tree, no experiment tolerances",
                insts, {"method": None, "clock": None, "rtol": None, "atol": None, "T": None},
                "normalised flow (global), max-margin", _variants(auto, None, extra))


BUILDERS: dict[str, Callable[[bool, bool], Case]] = {
    "cooccurrence_small": lambda a, q: case_cooccurrence("small", a, q),
    "cooccurrence_paper": lambda a, q: case_cooccurrence("paper", a, q),
    "ntp_fixture": lambda a, q: case_ntp("fixture", a, q),
    "ntp_random": lambda a, q: case_ntp("random", a, q),
    "even_pairs": lambda a, q: case_regular("even_pairs", a, q),
    "parity_cot": lambda a, q: case_regular("parity_cot", a, q),
    "icl_balanced": case_icl_balanced,
    "icl_imbalanced": lambda a, q: case_icl_imbalanced(20, a, q),
    "icl_imbalanced_paper": lambda a, q: case_icl_imbalanced(None, a, q),
    "icl_representations": case_icl_representations,
    "linear_icl": case_linear_icl,
    "attention_svm": case_attention_svm,
}
DEFAULT_CASES = tuple(name for name in BUILDERS if name != "icl_imbalanced_paper")
"""The full run. ``icl_imbalanced`` runs at N = 20 (1,771 count vectors); the experiment's
N = 40 (``icl_imbalanced_paper``, ~2 ms per gradient) alone takes ~5 minutes."""
QUICK_CASES = ("cooccurrence_small", "ntp_fixture", "even_pairs", "icl_balanced",
               "attention_svm")


# ------------------------------------------------------------------------------- "auto"


class _Quadratic:
    """½‖θ‖²: the smallest objective, to ask ``simulate`` whether it accepts a method."""

    layout = gradflow.Layout({"x": (1,)})

    def value(self, theta):
        return 0.5 * float(theta @ theta)

    def gradient(self, theta):
        return np.array(theta, dtype=float)

    def weighted_losses(self, theta):
        return np.array([self.value(theta)])


def auto_supported() -> bool:
    """Whether ``simulate`` accepts ``method="auto"`` (an ``AUTO`` constant or a METHODS
    entry announces it; otherwise ask simulate, which refuses with ArgumentError)."""
    if getattr(flow, "AUTO", None) is not None or "auto" in getattr(flow, "METHODS", {}):
        return True
    try:
        gradflow.simulate(_Quadratic(), np.ones(1), 1.0, method="auto", record_at=[0.0, 1.0])
    except ArgumentError:
        return False
    return True


# --------------------------------------------------------------------------------- runs


def _growth_exponent(rows: list[tuple[float, int, int, float]]) -> float | None:
    """k in E(t) ∝ t^k over the last two decades reached (from the record-time counts)."""
    pts = [(t, e) for t, e, _, _ in rows if t > 0 and e > 0]
    if len(pts) < 2:
        return None
    t2, e2 = pts[-1]
    earlier = [(t, e) for t, e in pts if t <= t2 / 100]
    if not earlier:
        return None
    t1, e1 = earlier[-1]
    return float(np.log(e2 / e1) / np.log(t2 / t1))


def run_one(inst: Instance, variant: Variant, clock: str, tol: tuple[float, float], T: float,
            budget: tuple[int, float], repeat: bool) -> dict[str, Any]:
    """One integration of one instance; never raises (failures are recorded). With
    ``repeat``, a reached run shorter than REPEAT_BELOW seconds is run REPEATS times in all
    and its wall is the median."""
    objective = counted(inst.objective, *budget)
    grid = flow.log_grid(T, per_decade=PER_DECADE)
    probe = Probe(objective, grid)
    kwargs = dict(inst.kwargs)
    if variant.solver_options:
        kwargs["solver_options"] = dict(variant.solver_options)
    row: dict[str, Any] = {"instance": inst.label, "variant": variant.label,
                           "method": variant.method, "clock": clock, "rtol": tol[0],
                           "atol": tol[1], "T": T, "stats": None, "message": None}

    def integrate(probe: Probe):
        objective.reset()
        return gradflow.simulate(objective, inst.theta0, T, method=variant.method, clock=clock,
                                 rtol=tol[0], atol=tol[1], record_at=grid,
                                 observables={"evaluations": probe},
                                 events=[probe.step_event], store_theta=False, **kwargs)

    start = time.perf_counter()
    try:
        traj = integrate(probe)
        row.update(status="reached", t_reached=T, stats=dict(traj.stats))
    except _Budget as exc:
        row.update(status=f"capped ({exc.budget})", t_reached=probe.t_reached)
    except ArgumentError as exc:
        row.update(status="refused", t_reached=0.0, message=str(exc))
    except GradflowError as exc:
        row.update(status="failed", t_reached=float(getattr(exc, "t", probe.t_reached)),
                   message=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a solver or model error is a result here, not a crash
        row.update(status="failed", t_reached=probe.t_reached,
                   message=f"{type(exc).__name__}: {exc}")
    row["wall"] = time.perf_counter() - start
    row.update(evaluations=objective.evaluations, gradient_calls=objective.gradient_calls,
               scaled_gradient_calls=objective.scaled_calls,
               steps=(row["stats"]["steps"] if row["stats"] else
                      None if row["status"] == "refused" else max(probe.steps, 0)),
               profile=[list(r) for r in probe.rows],
               growth_exponent=_growth_exponent(probe.rows))
    row["theta_T"] = probe.theta if row["status"] == "reached" else None
    if repeat and row["status"] == "reached" and row["wall"] < REPEAT_BELOW:
        walls = [row["wall"]]
        for _ in range(REPEATS - 1):
            start = time.perf_counter()
            integrate(Probe(objective, grid))
            walls.append(time.perf_counter() - start)
            if objective.evaluations != row["evaluations"]:
                row["repeat_evaluations_differ"] = objective.evaluations
        row["walls"] = walls
        row["wall"] = float(np.median(walls))
    return row


def gradient_microseconds(case: Case) -> float:
    """Median cost of one gradient (scaled gradient for normalised flows) at θ0; also the
    warm-up of the case's arrays."""
    inst = case.instances[0]
    normalised = inst.kwargs.get("normalize") is not None
    fn = inst.objective.scaled_gradient if normalised else inst.objective.gradient
    reps = 50 if case.size > 10_000 else 500
    seconds, _ = median_time(lambda: [fn(inst.theta0) for _ in range(reps)], 3)
    return 1e6 * seconds / reps


def _reference(rows: list[dict[str, Any]], case: Case) -> dict[str, np.ndarray]:
    """θ(T) per (instance, T) of the most trusted reached run: the experiment's own method and
    clock at its tolerances, else the tightest tolerances' DOP853, RK45 or LSODA run."""
    exp = case.experiment
    tight = min(r["rtol"] for r in rows)
    order = [(exp.get("method"), exp.get("clock"), exp.get("rtol"))]
    order += [(m, c, tight) for m in ("DOP853", "RK45", "LSODA") for c in CLOCKS]
    refs: dict[tuple[str, float], dict[str, Any]] = {}
    for method, clock, rtol in order:
        for r in rows:
            key = (r["instance"], r["T"])
            if (key not in refs and r["status"] == "reached" and r["variant"] == method
                    and r["clock"] == clock and r["rtol"] == rtol):
                refs[key] = r
    return refs


def run_case(case: Case, t_end: float, budget: tuple[int, float]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    micro = gradient_microseconds(case)
    print(f"### {case.name}: P = {case.size}, {micro:.1f} µs per gradient, load {load:.1f}",
          flush=True)
    rows = []
    repeat = len(case.instances) == 1
    for tol_name, tol in case.tolerances().items():
        for T in case.horizons(t_end):
            for variant in case.variants:
                for clock in CLOCKS:
                    short = 0
                    for inst in case.instances:
                        if short >= SKIP_AFTER:
                            r = {"instance": inst.label, "variant": variant.label,
                                 "method": variant.method, "clock": clock, "rtol": tol[0],
                                 "atol": tol[1], "T": T, "status": "skipped", "stats": None,
                                 "message": None, "theta_T": None, "deviation": None}
                        else:
                            r = run_one(inst, variant, clock, tol, T, budget, repeat)
                            far = r["t_reached"] <= T / 10**SKIP_DECADES
                            short = short + 1 if r["status"].startswith("capped") and far else 0
                        r["tolerance"] = tol_name
                        rows.append(r)
    refs = _reference(rows, case)
    for r in rows:
        ref = refs.get((r["instance"], r["T"]))
        if r["status"] == "skipped":
            continue
        if r["theta_T"] is not None and ref is not None:
            den = float(np.linalg.norm(ref["theta_T"]))
            r["deviation"] = float(np.linalg.norm(r["theta_T"] - ref["theta_T"])
                                   / (den if den > 0 else 1.0))
        else:
            r["deviation"] = None
    for r in rows:
        r.pop("theta_T")
    return {"name": case.name, "description": case.description, "state_size": case.size,
            "state_sizes": [int(i.objective.layout.size) for i in case.instances],
            "load_average": [load, os.getloadavg()[0]],
            "flow_type": case.flow_type, "gradient_us": micro, "experiment": case.experiment,
            "tolerances": {k: list(v) for k, v in case.tolerances().items()},
            "horizons": case.horizons(t_end), "notes": case.notes,
            "instances": [i.label for i in case.instances], "runs": rows}


# ------------------------------------------------------------------------------ reporting


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One (variant, clock, tolerance, T) over its instances: reached count, median and max
    evaluations, median wall (capped runs count with what they spent)."""
    skipped = sum(r["status"] == "skipped" for r in rows)
    rows = [r for r in rows if r["status"] != "skipped"]
    evals = [r["evaluations"] for r in rows]
    reached = [r for r in rows if r["status"] == "reached"]
    dev = [r["deviation"] for r in reached if r["deviation"] is not None]
    k = [r["growth_exponent"] for r in rows if r["growth_exponent"] is not None]
    steps = [r["steps"] for r in rows if r["steps"] is not None]
    chosen = sorted({str(r["stats"].get("method")) for r in reached})
    return {"n": len(rows), "reached": len(reached), "skipped": skipped, "chosen": chosen,
            "evaluations": float(np.median(evals)), "max_evaluations": int(max(evals)),
            "wall": float(np.median([r["wall"] for r in rows])),
            "steps": float(np.median(steps)) if steps else None,
            "t_reached": float(min(r["t_reached"] for r in rows)),
            "statuses": sorted({r["status"] for r in rows}),
            "deviation": float(max(dev)) if dev else None,
            "growth_exponent": float(np.median(k)) if k else None,
            "stats_nfev": float(np.median([r["stats"]["nfev"] for r in reached]))
            if reached else None}


def _groups(result: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    out: dict[tuple, list] = {}
    for r in result["runs"]:
        out.setdefault((r["tolerance"], r["T"], r["variant"], r["clock"]), []).append(r)
    return {k: aggregate(v) for k, v in out.items()}


def _best(groups: dict[tuple, dict[str, Any]], tol: str, T: float) -> tuple[float, float]:
    """Fewest median evaluations and shortest median wall among the rows that reached T in
    every instance (inf when none did)."""
    ok = [g for (tn, t, _, _), g in groups.items() if tn == tol and t == T
          and g["reached"] == g["n"]]
    if not ok:
        return float("inf"), float("inf")
    return min(g["evaluations"] for g in ok), min(g["wall"] for g in ok)


def _fmt_evals(g: dict[str, Any]) -> str:
    if g["n"] == 1:
        return f"{g['evaluations']:.0f}"
    return f"{g['evaluations']:.0f} ({g['max_evaluations']})"


def _fmt_reached(g: dict[str, Any]) -> str:
    if g["n"] + g["skipped"] > 1:
        text = f"{g['reached']}/{g['n']}"
        if g["reached"] < g["n"]:
            text += f" (t ≥ {g['t_reached']:.2g})"
        return text + (f", {g['skipped']} skipped" if g["skipped"] else "")
    if g["reached"]:
        return "yes"
    status = g["statuses"][0]
    if status == "refused":
        return "refused"
    return f"no: {status}, t = {g['t_reached']:.2g}"


def _ratio(value: float, best: float, reached: bool) -> str:
    if not reached or not np.isfinite(best) or best <= 0:
        return "—"
    return f"{value / best:.2f}"


def case_tables(result: dict[str, Any]) -> str:
    groups = _groups(result)
    multi = len(result["instances"]) > 1
    sizes = sorted(set(result.get("state_sizes", [result["state_size"]])))
    size = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]} (by instance)"
    lines = [f"## {result['name']}: {result['description']}", "",
             f"State P = {size}; {result['flow_type']}; one gradient (first instance) "
             f"{result['gradient_us']:.1f} µs; load average {result['load_average'][0]:.1f} → "
             f"{result['load_average'][1]:.1f} (2 cores)."]
    exp = result["experiment"]
    if exp.get("method"):
        lines.append(f"Experiment: {exp['method']}, {exp['clock']} clock, rtol {exp['rtol']:g}, "
                     f"atol {exp['atol']:g}, horizon {exp['T']:g}.")
    lines += [f"Note: {n}." for n in result["notes"]]
    if multi:
        lines.append("Several instances: reached = count; evaluations = median (max); wall = "
                     "median; ratios of medians; best = among rows reaching T on every "
                     "instance.")
    for T in result["horizons"]:
        for tol_name, (rtol, atol) in result["tolerances"].items():
            best_e, best_w = _best(groups, tol_name, T)
            table = []
            for (tn, t, variant, clock), g in groups.items():
                if tn != tol_name or t != T:
                    continue
                done = g["reached"] == g["n"]
                k = g["growth_exponent"]
                label = variant
                if variant == "auto" and g["chosen"] and g["chosen"] != ["auto"]:
                    label = f"auto → {', '.join(g['chosen'])}"  # what auto picked
                table.append([
                    label, clock, _fmt_reached(g), _fmt_evals(g), f"{g['wall']:.3f}",
                    _ratio(g["evaluations"], best_e, done), _ratio(g["wall"], best_w, done),
                    "—" if g["steps"] is None else f"{g['steps']:.0f}",
                    "—" if g["stats_nfev"] is None else f"{g['stats_nfev']:.0f}",
                    "—" if k is None else f"{k:.2f}",
                    "—" if g["deviation"] is None else f"{g['deviation']:.1e}"])
            which = "experiment's" if tol_name == "experiment" else "simulate's default"
            lines += ["", f"**t = {T:g}, {which} tolerances (rtol {rtol:g}, atol {atol:g})**",
                      "", markdown_table(
                          ["method", "clock", "reached", "evaluations", "wall s",
                           "evals ×best", "wall ×best", "steps", "solver nfev", "k (E∝t^k)",
                           "dev θ(T)"], table)]
    failures = {}
    for r in result["runs"]:
        if r.get("message") and r["status"] != "refused":
            failures.setdefault((r["variant"], r["clock"], r["message"].splitlines()[0][:160]),
                                []).append(f"{r['tolerance']} tol, T={r['T']:g}, "
                                           f"{r['instance']}")
    refused = sorted({r["variant"] for r in result["runs"] if r["status"] == "refused"})
    if refused:
        msg = next(r["message"] for r in result["runs"] if r["status"] == "refused")
        lines += ["", f"Refused ({', '.join(refused)}): {msg.splitlines()[0][:200]}"]
    if failures:
        lines += ["", "Failures:"]
        for (variant, clock, msg), where in failures.items():
            lines.append(f"- {variant}, {clock}: {msg} [{'; '.join(where[:3])}"
                         f"{'; …' if len(where) > 3 else ''}]")
    return "\n".join(lines)


def _short_status(g: dict[str, Any]) -> str:
    """A summary cell for a row that did not reach T everywhere: ref, cap, fail or k/n."""
    if g["statuses"] == ["refused"]:
        return "ref"
    if g["reached"] == 0:
        return "fail" if "failed" in g["statuses"] else "cap"
    return f"{g['reached']}/{g['n'] + g['skipped']}" + (" fail" if "failed" in g["statuses"]
                                                      else "")


def summary_tables(results: list[dict[str, Any]], t_end: float) -> str:
    labels = []
    for res in results:
        for r in res["runs"]:
            if r["variant"] not in labels:
                labels.append(r["variant"])
    out = []
    for metric, key in (("evaluations", "evaluations"), ("wall time", "wall")):
        for tol_name in ("default", "experiment"):
            table = []
            for res in results:
                if tol_name not in res["tolerances"]:
                    continue
                groups = _groups(res)
                best_e, best_w = _best(groups, tol_name, t_end)
                best = best_e if key == "evaluations" else best_w
                cells = []
                for label in labels:
                    parts = []
                    for clock in CLOCKS:
                        g = groups.get((tol_name, t_end, label, clock))
                        if g is None:
                            parts.append("")
                        elif g["reached"] < g["n"]:
                            parts.append(_short_status(g))
                        else:
                            parts.append(f"{g[key] / best:.2f}")
                    cells.append(" / ".join(parts) if any(parts) else "")
                table.append([res["name"], res["state_size"], *cells])
            if not table:
                continue
            which = "experiment's" if tol_name == "experiment" else "default"
            out += [f"## Summary: {metric} ratio to the case's best, t = {t_end:g}, {which} "
                    "tolerances (cells: linear / log clock; cap = budget hit, fail = solver "
                    "error, ref = refused, k/n = reached on k of n instances; ratios are of "
                    "medians, among rows that reached on every instance)", "",
                    markdown_table(["case", "P", *labels], table), ""]
    return "\n".join(out)


PROFILE_METHODS = ("RK45", "LSODA", "BDF")


def profile_table(results: list[dict[str, Any]], t_end: float) -> str:
    """Cumulative evaluations at each decade of t (first instance, default tolerances, linear
    clock): growth ×10 per decade is E ∝ t (a stability limit), a constant step is E ∝ log t."""
    decades = [10.0**k for k in range(0, int(np.floor(np.log10(t_end))) + 1)]
    rows = []
    for res in results:
        first = res["instances"][0]
        for method in PROFILE_METHODS:
            run = next((r for r in res["runs"] if r["variant"] == method and r["T"] == t_end
                        and r["tolerance"] == "default" and r["clock"] == "linear"
                        and r["instance"] == first and r["status"] != "skipped"), None)
            if run is None or run["status"] == "refused":
                continue
            at = {round(np.log10(t), 6): e for t, e, *_ in run["profile"] if t > 0}
            cells = [str(at.get(round(np.log10(t), 6), "—")) for t in decades]
            name = res["name"] + (f" ({first})" if len(res["instances"]) > 1 else "")
            rows.append([name, method, *cells,
                         "yes" if run["status"] == "reached" else run["status"]])
    return ("## Evaluations so far at t = 1, 10, …, t_end (first instance, default tolerances, "
            "linear clock)\n\n" + markdown_table(
                ["case", "method", *[f"{t:.0e}" for t in decades], "reached"], rows))


def best_lines(results: list[dict[str, Any]], t_end: float) -> str:
    rows = []
    for res in results:
        groups = _groups(res)
        for tol_name in res["tolerances"]:
            for T in res["horizons"]:
                ok = {k: g for k, g in groups.items() if k[0] == tol_name and k[1] == T
                      and g["reached"] == g["n"]}
                if not ok:
                    rows.append([res["name"], tol_name, f"{T:g}", "none reached", "—"])
                    continue
                be = min(ok, key=lambda k: ok[k]["evaluations"])
                bw = min(ok, key=lambda k: ok[k]["wall"])
                rows.append([res["name"], tol_name, f"{T:g}",
                             f"{be[2]} {be[3]} ({ok[be]['evaluations']:.0f})",
                             f"{bw[2]} {bw[3]} ({ok[bw]['wall']:.3f} s)"])
    return "## Cheapest per case\n\n" + markdown_table(
        ["case", "tolerances", "T", "fewest evaluations", "shortest wall"], rows)


def report_tables(results: list[dict[str, Any]], t_end: float, cases: bool = True) -> None:
    if cases:
        for result in results:
            print(case_tables(result) + f"\n\n({result['name']}: {result['seconds']:.1f} s)\n")
    print(summary_tables(results, t_end))
    print(profile_table(results, t_end) + "\n")
    print(best_lines(results, t_end))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: cases {', '.join(QUICK_CASES)}, fewer instances, "
                        "budget 5000 evaluations / 20 s")
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated subset of {', '.join(BUILDERS)}")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of the rows' methods (auto, RK45, …)")
    parser.add_argument("--t-end", type=float, default=1e8)
    parser.add_argument("--max-evals", type=int, default=None, help="default 20000")
    parser.add_argument("--max-wall", type=float, default=None, help="seconds; default 60")
    parser.add_argument("--json", default="bench_results/bench_solvers.json")
    parser.add_argument("--from-json", default=None, metavar="PATH",
                        help="print the tables of a saved run instead of running")
    args = parser.parse_args()
    if args.from_json:
        import json

        saved = json.loads(Path(args.from_json).read_text())
        report_tables(saved["cases"], saved["t_end"])
        print(f"\n(saved run: {saved['seconds']:.0f} s)")
        return
    names = (args.cases.split(",") if args.cases else
             list(QUICK_CASES if args.quick else DEFAULT_CASES))
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(BUILDERS)}")
    budget = (args.max_evals or (5000 if args.quick else 20_000),
              args.max_wall or (20.0 if args.quick else 60.0))
    auto = auto_supported()
    print(f"method='auto' {'accepted: included' if auto else 'not accepted by simulate: skipped'}"
          f"; budget {budget[0]} evaluations / {budget[1]:g} s per run; t_end {args.t_end:g}\n",
          flush=True)
    start = time.perf_counter()
    results = []
    for name in names:
        case = BUILDERS[name](auto, args.quick)
        if args.methods:
            case.variants = [v for v in case.variants if v.method in args.methods.split(",")]
        t0 = time.perf_counter()
        result = run_case(case, args.t_end, budget)
        result["seconds"] = time.perf_counter() - t0
        results.append(result)
        print(case_tables(result), flush=True)
        print(f"\n({name}: {result['seconds']:.1f} s)\n", flush=True)
    report_tables(results, args.t_end, cases=False)
    total = time.perf_counter() - start
    report = {"t_end": args.t_end, "budget": {"evaluations": budget[0],
                                              "wall_seconds": budget[1]},
              "default_tolerances": list(DEFAULT_TOL), "auto": auto, "seconds": total,
              "cases": results}
    out = write_json(args.json, to_jsonable(report))
    print(f"\ntotal {total:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
