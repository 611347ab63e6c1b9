"""Declared, validated experiment parameters and the experiment record the CLI runs."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError, CheckpointError

__all__ = [
    "BUDGET",
    "Experiment",
    "Parameter",
    "budget_options",
    "load_config_file",
    "non_finite_line",
    "non_finite_observables",
    "parse_assignments",
    "read_json",
    "write_atomic",
    "write_json",
]



@dataclass(frozen=True)
class Parameter:
    """One declared parameter of an experiment.

    Parameters
    ----------
    name : str
    default : int, float, str, bool or tuple of int
        Its type is the parameter's type.
    help : str
    choices : sequence, optional
        Allowed values.
    minimum : float, optional
        Smallest allowed value (numbers, or every entry of a tuple).
    """

    name: str
    default: Any
    help: str
    choices: Sequence[Any] | None = None
    minimum: float | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

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
        except (TypeError, ValueError) as exc:
            raise ArgumentError(
                f"parameter {self.name!r}: cannot use {value!r} ({exc}); expected "
                f"{_describe(self)}"
            ) from None
        if self.choices is not None and converted not in self.choices:
            raise ArgumentError(
                f"parameter {self.name!r}: {converted!r} is not one of {list(self.choices)}"
            )
        numbers = converted if kind is tuple else (converted,)
        if self.minimum is not None and kind is not bool and kind is not str and any(
            not (x >= self.minimum) for x in numbers
        ):
            raise ArgumentError(
                f"parameter {self.name!r}: {converted!r} must be >= {self.minimum:g}"
            )
        return converted


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, str):
        value = value.strip()
        as_float = float(value)
        if not as_float.is_integer():
            raise ValueError("not an integer")
        return int(as_float)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not an integer")
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
class Experiment:
    """A named, configurable reproduction of one paper figure.

    Attributes
    ----------
    name : str
    description : str
    parameters : tuple of Parameter
    run : callable (config dict, out dir, progress) -> summary dict
        Integrates, writes ``trajectory.npz``, ``summary.json`` and the figures into the
        folder and returns the summary.
    plot : callable (out dir) -> list of Path
        Re-draws the figures from a saved run without integrating.
    objective : callable config -> (objective, theta0)
        What ``gradflow check-grad`` checks.
    report : callable summary -> list of str
        The lines ``gradflow run`` prints after a run.
    checks : callable config -> None
        Cross-parameter validation; raises :class:`ArgumentError`.
    """

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    run: Callable[[dict[str, Any], Path, bool], dict[str, Any]]
    plot: Callable[[Path], list[Path]]
    objective: Callable[[dict[str, Any]], tuple[Any, Any]]
    report: Callable[[dict[str, Any]], list[str]]
    checks: Callable[[dict[str, Any]], None] = field(default=lambda config: None)

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


# ------------------------------------------------------------------------------ outputs


def write_atomic(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write a file through ``write(file object)`` into a temporary sibling, then rename it.

    A failure (a full disk, a read-only file system) leaves the previous file, if any, intact
    and removes the partial temporary file; the ``OSError`` is re-raised with the path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            write(fh)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if (isinstance(exc, OSError) and exc.errno is not None
                and exc.filename in (None, str(tmp))):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (:func:`write_atomic`)."""
    text = json.dumps(data, indent=2)
    return write_atomic(path, lambda fh: fh.write(text), mode="w")


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object written by gradflow (a summary), naming the file if it is not one.

    Raises
    ------
    CheckpointError
        Missing, unreadable, not UTF-8, not JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a JSON file written by gradflow ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} holds a JSON {type(data).__name__}, not the object gradflow writes"
        )
    return data


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


BUDGET = (
    Parameter("max_nfev", 200_000, "work limit: gradient evaluations per flow (each simulate "
              "call), Jacobian columns included", minimum=1),
    Parameter("max_wall_time", 3600.0, "work limit: seconds of wall time per flow",
              minimum=0.0),
)
"""The work limits of :func:`gradflow.simulate`, as parameters every experiment shares."""


def budget_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """``simulate``'s ``max_nfev`` and ``max_wall_time`` from a config with :data:`BUDGET`."""
    return {"max_nfev": int(config["max_nfev"]), "max_wall_time": float(config["max_wall_time"])}
