"""Sweeps: one experiment over a grid of parameter values × seeds, through any
``concurrent.futures.Executor``, resumable and append-only.

A sweep file (TOML)::

    experiment = "cooccurrence"
    seed_key = "init_seed"        # the parameter the seeds are written to
    seeds = [0, 1, 2]

    [fixed]                       # the same for every task
    t_end = 1e4

    [grid]                        # every combination of these lists
    m = [32, 64, 128]

Each task (config, seed) runs the experiment into ``OUT/tasks/<key>/`` and appends one JSON line
to ``OUT/results.jsonl``: ``{"key", "config", "seed", "status", "summary", "path", "error"}``.
Re-running the same sweep skips every task whose key already has an ``ok`` line (failed tasks
are tried again); lines are written by the parent process only, one ``write`` each, and a torn
last line of a killed sweep is dropped when the file is read back.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import tomllib
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradflow.errors import ArgumentError, GradflowError
from gradflow.trajectory import to_jsonable

__all__ = ["SweepSpec", "load_results", "load_sweep", "run_sweep", "run_task"]

RESULTS = "results.jsonl"
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the experiment, its task configs, and the parameter seeds go to."""

    experiment: str
    tasks: tuple[dict[str, Any], ...]
    seed_key: str | None = None

    @staticmethod
    def key(config: Mapping[str, Any]) -> str:
        """A stable name for a task: a hash of its validated config."""
        text = json.dumps(to_jsonable(dict(config)), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def keys(self) -> list[str]:
        """The task keys, in task order."""
        return [self.key(t) for t in self.tasks]

    def identity(self) -> dict[str, Any]:
        """What ``sweep.json`` records: the experiment, a hash of the spec (experiment and the
        set of task keys), the seed key and the task keys."""
        keys = self.keys()
        spec = json.dumps({"experiment": self.experiment, "keys": sorted(keys)})
        return {"experiment": self.experiment,
                "spec": hashlib.sha256(spec.encode()).hexdigest()[:16],
                "seed_key": self.seed_key, "keys": keys}


def _read_sweep_file(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ArgumentError(f"sweep file {source} does not exist") from None
    except IsADirectoryError:
        raise ArgumentError(f"sweep file {source} is a folder, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ArgumentError(f"sweep file {source} is not UTF-8 text ({exc.reason} at byte "
                            f"{exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArgumentError(f"sweep file {source} is not valid TOML: {exc}") from None


def load_sweep(source: str | Path | Mapping[str, Any]) -> SweepSpec:
    """Read and validate a sweep file (or an already parsed mapping).

    Every task config is validated by the experiment's declared parameters before anything
    runs, so a bad key or value fails the whole sweep at once, naming the file and the key.
    A parameter may be set in one place only: ``[fixed]``, ``[grid]`` or ``seed_key``.
    """
    from gradflow import experiments

    if isinstance(source, Mapping):
        data, where = dict(source), "sweep"
    else:
        data, where = _read_sweep_file(source), f"sweep file {source}"
    allowed = {"experiment", "seed_key", "seeds", "fixed", "grid"}
    unknown = set(data) - allowed
    if unknown:
        raise ArgumentError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
    if "experiment" not in data:
        raise ArgumentError(f"{where}: 'experiment' is required")
    if not isinstance(data["experiment"], str):
        raise ArgumentError(f"{where}: 'experiment' must be a string naming an experiment, got "
                            f"{data['experiment']!r}")
    experiment = experiments.get(data["experiment"])
    tables = {}
    for table in ("fixed", "grid"):
        value = data.get(table, {})
        if not isinstance(value, Mapping):
            raise ArgumentError(f"{where}: {table!r} must be a table ([{table}] with parameter "
                                f"= value lines), got {value!r}")
        tables[table] = dict(value)
    fixed, grid = tables["fixed"], tables["grid"]
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ArgumentError(f"{where}: grid {name!r}: expected a non-empty list, got "
                                f"{values!r}")
    seeds = data.get("seeds", [None])
    seed_key = data.get("seed_key")
    if seed_key is not None and not isinstance(seed_key, str):
        raise ArgumentError(f"{where}: 'seed_key' must be a parameter name (a string), got "
                            f"{seed_key!r}")
    if seeds != [None] and seed_key is None:
        raise ArgumentError(f"{where}: 'seeds' needs 'seed_key' (the parameter to set)")
    if not isinstance(seeds, list) or not seeds:
        raise ArgumentError(f"{where}: 'seeds' must be a non-empty list, got {seeds!r}")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise ArgumentError(f"{where}: {both} set both in [fixed] and in [grid]; the grid would "
                            "override the fixed value: keep one")
    if seed_key is not None and seeds != [None]:
        for table, values in (("grid", grid), ("fixed", fixed)):
            if seed_key in values:
                raise ArgumentError(
                    f"{where}: seed_key {seed_key!r} is also a [{table}] key; the seeds would "
                    f"override its {table} value {values[seed_key]!r}: set it in one place")
    names = list(grid)
    tasks, origins = [], []
    try:
        for values in itertools.product(*(grid[n] for n in names)):
            for seed in seeds:
                overrides = {**fixed, **dict(zip(names, values, strict=True))}
                if seed is not None:
                    overrides[seed_key] = seed
                tasks.append(experiment.config(overrides))
                origins.append(dict(zip(names, values, strict=True))
                               | ({seed_key: seed} if seed is not None else {}))
    except ArgumentError as exc:
        raise ArgumentError(f"{where}: {exc}") from None
    first: dict[str, int] = {}
    for i, key in enumerate(SweepSpec.key(t) for t in tasks):
        if key in first:
            raise ArgumentError(
                f"{where}: two tasks have the same configuration ({origins[first[key]]} and "
                f"{origins[i]}): duplicate grid values or seeds, or values equal after "
                "conversion")
        first[key] = i
    return SweepSpec(experiment=experiment.name, tasks=tuple(tasks),
                     seed_key=seed_key if seeds != [None] else None)


def run_task(experiment_name: str, config: dict[str, Any], out: str) -> dict[str, Any]:
    """Run one task (in a worker): the experiment into ``out``; return a result record.

    Never raises: an error becomes ``status: "error"`` with its message and traceback.
    """
    from gradflow import experiments

    key = SweepSpec.key(config)
    folder = Path(out) / "tasks" / key
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "runs.log").open("a") as log:  # one line per attempt
        log.write(f"{os.getpid()}\n")
    record: dict[str, Any] = {"key": key, "config": to_jsonable(config), "path": str(folder)}
    try:
        summary = experiments.get(experiment_name).run(config, folder, False)
        record.update(status="ok", summary=_scalars(summary), error=None)
    except Exception as exc:  # recorded, so the sweep goes on
        record.update(status="error", summary=None,
                      error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=5))
    return record


def _scalars(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten the numbers, strings and booleans of a summary into ``a.b.c`` keys (lists of
    more than 8 entries are left out to keep result lines small)."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_scalars(value, f"{name}."))
        elif isinstance(value, list) and len(value) <= 8 and all(
                isinstance(v, int | float | str | bool) or v is None for v in value):
            out[name] = value
        elif isinstance(value, int | float | str | bool) or value is None:
            out[name] = value
    return out


def load_results(out: str | Path) -> list[dict[str, Any]]:
    """The records of ``OUT/results.jsonl`` (a torn last line is skipped)."""
    path = Path(out) / RESULTS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # torn line of an interrupted write
    return records


def _compact(out: Path) -> dict[str, dict[str, Any]]:
    """Rewrite results.jsonl with one valid line per finished task; return the ok records."""
    records = load_results(out)
    done = {r["key"]: r for r in records if r.get("status") == "ok"}
    path = out / RESULTS
    if path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
        tmp.replace(path)
    return done


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Pin BLAS/OpenMP to one thread in worker processes started inside the block."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run every unfinished task of ``spec`` and return all records (finished before + now).

    Parameters
    ----------
    spec : SweepSpec
    out : path
        The sweep folder (``results.jsonl``, ``tasks/``, ``sweep.json``).
    executor : concurrent.futures.Executor, optional
        Any executor (e.g. ``dask.distributed.Client(address).get_executor()``); only
        ``submit`` is used. Default: a local pool of ``workers`` freshly spawned processes
        with BLAS pinned to one thread each (the variables are set before the workers import
        NumPy).
    workers : int, optional
        Size of the default pool (default: the number of CPUs).
    progress : bool
        Show a progress bar over tasks.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "sweep.json"
    description = {"experiment": spec.experiment, "keys": [SweepSpec.key(t) for t in spec.tasks]}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("experiment") != spec.experiment:
            raise GradflowError(
                f"{out} holds a sweep of {saved.get('experiment')!r}, not {spec.experiment!r}"
            )
    manifest.write_text(json.dumps(description, indent=2))
    done = _compact(out)
    pending = [t for t in spec.tasks if SweepSpec.key(t) not in done]
    records = list(done.values())
    if not pending:
        return records
    from tqdm.auto import tqdm

    bar = tqdm(total=len(spec.tasks), initial=len(done), unit="task", disable=not progress)
    own = executor is None
    with contextlib.ExitStack() as stack:
        if own:
            stack.enter_context(_one_blas_thread())
            executor = stack.enter_context(ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")))
        futures = [executor.submit(run_task, spec.experiment, task, str(out)) for task in pending]
        with (out / RESULTS).open("a") as results:
            for future in as_completed(futures):
                record = future.result()
                results.write(json.dumps(record) + "\n")
                results.flush()
                os.fsync(results.fileno())
                records.append(record)
                bar.update(1)
    bar.close()
    return records
