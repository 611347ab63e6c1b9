"""Experiments: declared, validated parameters, the experiment record the CLI runs, and the
run-folder writer every experiment shares.

An :class:`Experiment` is a paper's figure as three functions of a validated config: ``train``
(the paper's protocol: integrates and returns an :class:`Outcome`), ``summarize`` (numbers from
the outcome, without changing it) and ``draw`` (figures from a run folder). :meth:`Experiment.run`
writes the folder: the outcome's trajectories and arrays as ``.npz`` files, ``summary.json``,
then the figures.

Bounds. Every integer parameter has a declared range (``gradflow list`` shows it): a maximum
where the parameter alone sets a size, and otherwise at most 2⁶³ − 1 (a NumPy int64); seeds are
unbounded (NumPy seeds are arbitrary non-negative integers). Sizes that only matter together
(a width times a vocabulary, a sample count times a sequence length) are bounded by each
experiment's estimate of the memory a run needs (:func:`check_memory`): a configuration whose
estimate exceeds :data:`MEMORY_LIMIT_GB` GiB (environment variable
``GRADFLOW_MEMORY_LIMIT_GB`` to change it) is refused before anything is allocated, naming the
parameters that set the largest part.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.claims import evaluate_summary
from gradflow.errors import ArgumentError
from gradflow.files import read_json, write_atomic, write_json
from gradflow.trajectory import to_jsonable

__all__ = [
    "BUDGET",
    "INT64_MAX",
    "MEMORY_LIMIT_GB",
    "Experiment",
    "Outcome",
    "Parameter",
    "budget_options",
    "check_memory",
    "ensemble_solver_options",
    "load_config_file",
    "log_records",
    "memory_limit",
    "non_finite_line",
    "non_finite_observables",
    "parse_assignments",
    "seed_parameter",
    "solver_parameters",
]

INT64_MAX = 2**63 - 1
"""The largest integer parameter accepted unless the parameter declares its own maximum."""


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of an experiment.

    Parameters
    ----------
    name : str
    default : int, float, str, bool or tuple of int
        Its type is the parameter's type.
    description : str
        What it means (``gradflow list`` adds the range of an integer parameter: see
        :attr:`help`).
    choices : sequence, optional
        Allowed values.
    minimum : float, optional
        Smallest allowed value (numbers, or every entry of a tuple).
    maximum : float, optional
        Largest allowed value (numbers, or every entry of a tuple). Integer parameters without
        one are bounded by :data:`INT64_MAX`; ``math.inf`` declares an unbounded integer (seeds).
    positive : bool, optional
        The value must be > 0 (a time, a tolerance, a rate); checked after ``minimum``.
    """

    name: str
    default: Any
    description: str
    choices: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def upper(self) -> float | None:
        """The effective maximum: declared, or int64's for integers, None for other kinds."""
        if self.maximum is not None:
            return self.maximum
        return INT64_MAX if self.kind in (int, tuple) else None

    @property
    def help(self) -> str:
        """The description, with the allowed range of an integer parameter."""
        if self.kind not in (int, tuple) or (self.minimum is None and self.maximum is None):
            return self.description
        low = f"{self.minimum:g} ≤ " if self.minimum is not None else ""
        high = f" ≤ {self.maximum}" if self.maximum is not None and math.isfinite(
            self.maximum) else ""
        what = "each entry" if self.kind is tuple else self.name
        return f"{self.description} [{low}{what}{high}]"

    def convert(self, value: Any) -> Any:
        """Convert ``value`` (a TOML value or a ``--set`` string) to the declared type.

        Raises
        ------
        ArgumentError
            Naming the key, the value and what is allowed.
        """
        kind = self.kind
        try:
            if kind is bool:
                converted = _to_bool(value)
            elif kind is tuple:
                items = value.split(",") if isinstance(value, str) else list(value)
                converted = tuple(_to_int(v) for v in items)
                if len(converted) != len(self.default):
                    raise ValueError(f"needs {len(self.default)} entries")
            elif kind is int:
                converted = _to_int(value)
            elif kind is float:
                if isinstance(value, bool):
                    raise ValueError("a boolean is not a number")
                converted = float(value)
                if not np.isfinite(converted):
                    raise ValueError("not a finite number")
            else:
                if not isinstance(value, str):
                    raise ValueError("expected a string")
                converted = value
        except (TypeError, ValueError, OverflowError) as exc:
            raise ArgumentError(
                f"parameter {self.name!r}: cannot use {value!r} ({exc}); expected "
                f"{_describe(self)}"
            ) from None
        if self.choices is not None and converted not in self.choices:
            raise ArgumentError(
                f"parameter {self.name!r}: {converted!r} is not one of {list(self.choices)}"
            )
        if kind is bool or kind is str:
            return converted
        values = converted if kind is tuple else (converted,)
        if self.minimum is not None and any(not (x >= self.minimum) for x in values):
            raise ArgumentError(
                f"parameter {self.name!r}: {converted!r} must be >= {self.minimum:g} "
                f"({self.description})"
            )
        if self.positive and any(not (x > 0) for x in values):
            raise ArgumentError(f"parameter {self.name!r}: must be > 0, got {converted!r}")
        upper = self.upper
        if upper is not None and any(not (x <= upper) for x in values):
            reason = ("a 64-bit integer" if upper == INT64_MAX else
                      f"{self.description}; see 'gradflow list'")
            shown = upper if isinstance(upper, int) else f"{upper:g}"
            raise ArgumentError(
                f"parameter {self.name!r}: {converted!r} must be <= {shown} ({reason})"
            )
        return converted


def _to_int(value: Any) -> int:
    if isinstance(value, bool | np.bool_):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, str):
        value = value.strip()
        try:
            return int(value)  # exact, however many digits
        except ValueError:
            value = float(value)  # "1e3"
    if isinstance(value, numbers.Integral):
        return int(value)
    if not isinstance(value, numbers.Real):
        raise ValueError("expected an integer")
    value = float(value)
    if not value.is_integer():
        raise ValueError("not an integer" if math.isfinite(value) else "not a finite number")
    return int(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError("expected true or false")


def _describe(param: Parameter) -> str:
    if param.kind is tuple:
        return f"{len(param.default)} comma-separated integers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[
        param.kind
    ]


@dataclass(frozen=True)
class Outcome:
    """What an experiment's ``train`` returns: the run's trajectories and arrays, and the
    objects its summary needs.

    Attributes
    ----------
    trajectories : dict of str to Trajectory
        Saved by :meth:`Experiment.run` as ``<name>.npz`` (e.g. ``trajectory``, ``stage1``).
    arrays : dict of str to dict of str to ndarray
        Further arrays (e.g. max-margin solutions), saved as ``<name>.npz`` with one entry per
        key.
    context : dict of str to Any
        Anything else ``summarize`` reads (the dataset, the model, a QP solution); not saved.
    """

    trajectories: Mapping[str, Any]
    arrays: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A named, configurable reproduction of one paper figure.

    Attributes
    ----------
    name : str
    description : str
        One line, naming the paper (authors, venue) and what the run shows.
    parameters : tuple of Parameter
    objective : callable config -> (objective, theta0)
        What ``gradflow check-grad`` checks.
    train : callable (config, out, progress) -> Outcome
        The paper's protocol on a validated config (``out`` is the run folder, for a
        checkpoint; ``progress`` reaches every ``simulate``).
    summarize : callable (outcome, config) -> dict
        The run's ``summary.json``: JSON-safe numbers computed from the outcome, which it must
        not change.
    draw : callable out -> list of Path, or str
        The figures, drawn from a run folder only; or where to find that function,
        ``"package.module"`` (its ``draw``) or ``"package.module:function"``, imported when
        first used, so that listing or checking an experiment does not import matplotlib.
    report : callable summary -> list of str
        The lines ``gradflow run`` prints after a run.
    checks : callable config -> None
        Cross-parameter validation; raises :class:`ArgumentError`.
    claims : tuple of Claim
        The paper's ledger claims this experiment also measures (:attr:`Claim.from_summary`):
        :meth:`run` evaluates them on the summary and saves them as ``claims.json``.
    train_ensemble : callable (configs, outs, progress) -> list of Outcome or Exception, optional
        The opt-in of sweeps to ensembles (:func:`gradflow.simulate_ensemble`): ``train`` of
        several configs that differ only in :attr:`ensemble_keys` (the seeds of one grid
        point), integrated together. It returns, per config in order, what ``train`` would
        have returned for it, or the exception ``train`` would have raised for it: one
        member's failure is that config's failure only. :meth:`run_ensemble` writes each
        config's run folder from it exactly as :meth:`run` does.
    ensemble_keys : tuple of str
        The parameters in which the configs of one ensemble may differ (seed parameters).
    ensemble_ok : callable config -> bool
        Whether a config may join an ensemble (e.g. only explicit solver methods, no
        per-run checkpoint); the others run alone through ``train``.
    """

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    objective: Callable[[dict[str, Any]], tuple[Any, Any]]
    train: Callable[[dict[str, Any], Path, bool], Outcome]
    summarize: Callable[[Outcome, dict[str, Any]], dict[str, Any]]
    draw: Callable[[Path], list[Path]] | str
    report: Callable[[dict[str, Any]], list[str]]
    checks: Callable[[dict[str, Any]], None] = field(default=lambda config: None)
    claims: tuple[Any, ...] = ()
    train_ensemble: Callable[[list[dict[str, Any]], list[Path], bool], list[Any]] | None = None
    ensemble_keys: tuple[str, ...] = ()
    ensemble_ok: Callable[[dict[str, Any]], bool] = field(default=lambda config: True)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated with ``overrides``, every value validated.

        Raises
        ------
        ArgumentError
            An unknown key (the allowed keys are listed), a wrong type or a value out of
            range, or a combination the experiment rejects.
        """
        declared = {p.name: p for p in self.parameters}
        config = self.defaults()
        for key, value in (overrides or {}).items():
            if key not in declared:
                raise ArgumentError(
                    f"experiment {self.name!r} has no parameter {key!r}; "
                    f"its parameters are {sorted(declared)}"
                )
            config[key] = declared[key].convert(value)
        self.checks(config)
        return config

    def run(self, config: dict[str, Any], out: str | Path, progress: bool = False
            ) -> dict[str, Any]:
        """Train, then write the run folder: each trajectory and array set as ``<name>.npz``,
        ``summary.json``, then the figures. Returns the summary.

        Everything is written atomically; a failure while drawing leaves the data files.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        return self._write(self.train(config, out, progress), config, out)

    def ensemble_group(self, config: Mapping[str, Any]) -> str | None:
        """The ensemble a config may join: a key equal for configs that differ only in
        :attr:`ensemble_keys`; None if the experiment has no :attr:`train_ensemble` or
        :attr:`ensemble_ok` refuses the config."""
        if self.train_ensemble is None or not self.ensemble_ok(dict(config)):
            return None
        rest = {k: v for k, v in config.items() if k not in self.ensemble_keys}
        return json.dumps(to_jsonable(rest), sort_keys=True)

    def run_ensemble(self, configs: Sequence[dict[str, Any]], outs: Sequence[str | Path],
                     progress: bool = False) -> list[dict[str, Any] | Exception]:
        """:meth:`run` of several configs of one ensemble (:meth:`ensemble_group`) at once,
        through :attr:`train_ensemble`: each config's run folder is written as :meth:`run`
        writes it.

        Returns
        -------
        list
            Per config, its summary, or the exception its training or writing raised (one
            config's failure is that config's only).

        Raises
        ------
        ArgumentError
            The experiment has no ``train_ensemble``, or the configs belong to different
            ensembles.
        """
        configs = [dict(c) for c in configs]
        groups = {self.ensemble_group(c) for c in configs}
        if None in groups or len(groups) != 1 or len(outs) != len(configs):
            raise ArgumentError(f"run_ensemble of {self.name!r}: the configs must be one "
                                f"ensemble (differing only in {list(self.ensemble_keys)}, each "
                                "accepted by ensemble_ok), one folder each")
        paths = [Path(o) for o in outs]
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
        outcomes = self.train_ensemble(configs, paths, progress)
        if len(outcomes) != len(configs):
            raise ArgumentError(f"{self.name}.train_ensemble returned {len(outcomes)} results "
                                f"for {len(configs)} configs")
        results: list[dict[str, Any] | Exception] = []
        for config, path, outcome in zip(configs, paths, outcomes, strict=True):
            if isinstance(outcome, Exception):
                results.append(outcome)
                continue
            try:
                results.append(self._write(outcome, config, path))
            except Exception as exc:  # this config's failure only
                results.append(exc)
        return results

    def _write(self, outcome: Outcome, config: dict[str, Any], out: Path) -> dict[str, Any]:
        """Write a run folder from a trained outcome (what :meth:`run` does after ``train``)."""
        for name, trajectory in outcome.trajectories.items():
            trajectory.save(out / f"{name}.npz")
        for name, arrays in outcome.arrays.items():
            write_atomic(out / f"{name}.npz", lambda fh, a=arrays: np.savez(fh, **a))
        summary = self.summarize(outcome, config)
        write_json(out / "summary.json", summary)
        if self.claims:
            rows = evaluate_summary(self.claims, summary, self.defaults())
            write_json(out / "claims.json", {"claims": [r.record() for r in rows]})
        self.plot(out)
        return summary

    def ledger_lines(self, out: str | Path) -> list[str]:
        """The lines ``gradflow run`` prints for the ledger rows of a run (``claims.json``)."""
        path = Path(out) / "claims.json"
        if not self.claims or not path.is_file():
            return []
        rows = read_json(path)["claims"]
        done = [r for r in rows if r["passed"] is not None]
        failed = [r["id"] for r in done if not r["passed"]]
        skipped = [f"{r['id']} ({r['error'].removeprefix('not applicable: ')})"
                   for r in rows if r["passed"] is None]
        lines = [f"claims ledger: {len(done) - len(failed)}/{len(done)} of this run's rows "
                 f"pass (claims.json)" + (f"; failing: {failed}" if failed else "")]
        if skipped:
            lines.append("not applicable at this run's parameters: " + "; ".join(skipped))
        return lines

    def plot(self, out: str | Path) -> list[Path]:
        """Draw the figures of a run folder (a saved run: nothing is integrated)."""
        draw = self.draw
        if isinstance(draw, str):  # "package.module" (its draw) or "package.module:function"
            module, _, name = draw.partition(":")
            draw = getattr(importlib.import_module(module), name or "draw")
        return draw(Path(out))


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """``["key=value", ...]`` to a dict of strings (converted later by the parameter types)."""
    out: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ArgumentError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML file of parameter values (a flat table).

    Raises
    ------
    ArgumentError
        Naming the file: missing, a folder, unreadable, not UTF-8, not TOML, or nested.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ArgumentError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ArgumentError(f"config file {path} is a folder; expected a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ArgumentError(
            f"config file {path} is not UTF-8 text (byte {exc.start}): expected a TOML file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ArgumentError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ArgumentError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise ArgumentError(
            f"config file {path}: expected flat key = value pairs, got tables {nested}"
        )
    return data


# ------------------------------------------------------------------------------ memory bound

MEMORY_LIMIT_GB = 8.0
"""Default limit on a run's estimated memory, in GiB (``GRADFLOW_MEMORY_LIMIT_GB``)."""
MEMORY_LIMIT_ENV = "GRADFLOW_MEMORY_LIMIT_GB"


def memory_limit() -> float:
    """The memory limit in bytes: ``$GRADFLOW_MEMORY_LIMIT_GB`` GiB, default
    :data:`MEMORY_LIMIT_GB`."""
    raw = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not raw:
        return MEMORY_LIMIT_GB * 2**30
    try:
        gib = float(raw)
    except ValueError:
        gib = math.nan
    if not (math.isfinite(gib) and gib > 0):
        raise ArgumentError(
            f"environment variable {MEMORY_LIMIT_ENV}: expected a positive number of GiB, "
            f"got {raw!r}"
        )
    return gib * 2**30


def _gib(n_bytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("TiB", 2**40), ("PiB", 2**50)):
        if n_bytes < 1024 * scale or unit == "PiB":
            return f"{n_bytes / scale:.3g} {unit}"
    raise AssertionError  # unreachable


def check_memory(parts: Sequence[tuple[str, float, Sequence[str]]]) -> None:
    """Refuse a configuration whose estimated memory exceeds :func:`memory_limit`.

    Parameters
    ----------
    parts : sequence of (what, bytes, parameters)
        The large allocations of a run (an estimate: the arrays that scale with the sizes, with
        the copies the solver and the gradient make), each with the parameters that set it.
        Computed with Python numbers, which do not overflow.

    Raises
    ------
    ArgumentError
        Naming the parameters of the largest part, the estimate and the limit.
    """
    sizes = [(what, float(min(n, 1e300)), tuple(names)) for what, n, names in parts]
    total = sum(n for _, n, _ in sizes)
    limit = memory_limit()
    if total <= limit:
        return
    what, largest, names = max(sizes, key=lambda part: part[1])
    listed = ", ".join(repr(name) for name in names) or "the sizes"
    raise ArgumentError(
        f"parameter{'s' if len(names) > 1 else ''} {listed}: this run would need about "
        f"{_gib(total)} of memory ({what}: {_gib(largest)}), more than the limit of "
        f"{_gib(limit)}; choose smaller values, or raise the limit with the environment "
        f"variable {MEMORY_LIMIT_ENV}"
    )


def log_records(t_end: float, per_decade: int, extra: int = 0) -> float:
    """The number of record times of ``log_grid(t_end, per_decade=...)`` (an upper bound)."""
    t_min = min(1e-3, t_end / 1e3)
    return per_decade * (math.log10(t_end / t_min) + 1) + 2 + extra


def non_finite_observables(t: np.ndarray, observables: Mapping[str, np.ndarray],
                           skip: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Observables with NaN or infinite values: an overflow (or an undefined ratio) that the
    summary must flag rather than report as a number.

    Returns
    -------
    dict
        Name to ``{"values": "inf" | "nan" | "inf and nan", "first_t": t, "records": k,
        "of": len(t)}`` for each observable (not in ``skip``) with a non-finite entry.
    """
    flagged: dict[str, dict[str, Any]] = {}
    for name, values in observables.items():
        if name in skip:
            continue
        values = np.asarray(values)
        if values.dtype.kind not in "fc" or values.shape[:1] != np.shape(t):
            continue
        bad = ~np.isfinite(values).reshape(len(t), -1).all(axis=1)
        if not bad.any():
            continue
        kinds = [k for k, test in (("inf", np.isinf), ("nan", np.isnan)) if test(values).any()]
        flagged[name] = {"values": " and ".join(kinds), "first_t": float(t[np.argmax(bad)]),
                         "records": int(bad.sum()), "of": len(t)}
    return flagged


def non_finite_line(flagged: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The report line warning of :func:`non_finite_observables` (none if nothing is flagged)."""
    if not flagged:
        return []
    items = [f"{name} ({v['values']} from t = {v['first_t']:g}, {v['records']}/{v['of']} "
             "records)" for name, v in flagged.items()]
    return ["warning: observables not finite (overflow, or a ratio with a zero denominator): "
            + "; ".join(items)]


def seed_parameter(name: str, default: int, description: str) -> Parameter:
    """A seed: any non-negative integer (NumPy seeds have no upper bound)."""
    return Parameter(name, default, description, minimum=0, maximum=math.inf)


BUDGET = (
    Parameter("max_nfev", 200_000, "work limit: gradient evaluations per flow (each simulate "
              "call), Jacobian columns included", minimum=1, maximum=10**12),
    Parameter("max_wall_time", 3600.0, "work limit: seconds of wall time per flow",
              minimum=0.0),
)
"""The work limits of :func:`gradflow.simulate`, as parameters every experiment shares."""


def budget_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``simulate``'s ``max_nfev`` and ``max_wall_time`` from a config with :data:`BUDGET`."""
    return {"max_nfev": int(config["max_nfev"]), "max_wall_time": float(config["max_wall_time"])}


def ensemble_solver_options(configs: Sequence[Mapping[str, Any]], per_config: int = 1
                            ) -> dict[str, Any]:
    """:func:`solver_options` for one ensemble of ``configs`` (each ``per_config`` members):
    the first config's method and tolerances (the configs differ only in seeds), and the sum of
    the members' work limits, since each config's ``max_nfev`` and ``max_wall_time`` bound one
    flow and the ensemble's are shared by all of them. A member that still fails in the
    ensemble is rerun alone by the sweep (:func:`gradflow.sweep.run_group`)."""
    options = solver_options(configs[0])
    options["max_nfev"] = per_config * sum(int(c["max_nfev"]) for c in configs)
    options["max_wall_time"] = per_config * sum(float(c["max_wall_time"]) for c in configs)
    return options


def solver_parameters(method: str, rtol: float, atol: float, *,
                      methods: Sequence[str] | None = None, clock: str | None = None,
                      clocks: Sequence[str] = ("linear", "log"), **extra: Any
                      ) -> tuple[Parameter, ...]:
    """The solver parameters of an experiment, with a paper's ``protocol.SOLVER`` as defaults.

    Parameters
    ----------
    method, rtol, atol : the paper's solver defaults (``protocol.SOLVER``)
    methods : sequence of str, optional
        The scipy methods the experiment offers (``method`` among them); ``None``: the method
        is the paper's, not a parameter.
    clock : str, optional
        The integration clock's default; ``None``: the experiment has no clock parameter.
    clocks : sequence of str
        The clocks offered.
    **extra
        Further keys of ``protocol.SOLVER`` (e.g. ``solver_options``) that are not parameters.

    Returns
    -------
    tuple of Parameter
        ``method`` (if offered), ``clock`` (if any), ``rtol`` and ``atol`` (both > 0), then
        :data:`BUDGET`.
    """
    if methods is not None and method not in methods:
        raise ArgumentError(f"method {method!r} is not among the offered methods {list(methods)}")
    method_parameter = () if methods is None else (
        Parameter("method", method, "scipy solver", choices=tuple(methods)),)
    clock_parameter = () if clock is None else (
        Parameter("clock", clock, "integration clock",
                  choices=(clock, *(c for c in clocks if c != clock))),)
    return (
        *method_parameter,
        *clock_parameter,
        Parameter("rtol", rtol, "solver relative tolerance", positive=True),
        Parameter("atol", atol, "solver absolute tolerance", positive=True),
        *BUDGET,
    )


def solver_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``simulate``'s solver keywords from a config with :func:`solver_parameters`: the
    configured method, clock and tolerances, and the budget. The paper's protocol functions
    fill the rest from their ``SOLVER``."""
    options = {k: config[k] for k in ("method", "clock", "rtol", "atol") if k in config}
    return {**options, **budget_options(config)}
