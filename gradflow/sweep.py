"""Sweeps: one experiment over a grid of parameter values × seeds, through any
``concurrent.futures.Executor``, resumable and append-only.

A sweep file (TOML)::

    experiment = "cooccurrence"   # or a researcher's own: "mypkg.experiments:EXPERIMENT"
    seed_key = "init_seed"        # the parameter the seeds are written to
    seeds = [0, 1, 2]

    [fixed]                       # the same for every task
    t_end = 1e4

    [grid]                        # every combination of these lists
    m = [32, 64, 128]

Each task (config, seed) runs the experiment into ``OUT/tasks/<key>/`` and appends one JSON line
to ``OUT/results.jsonl``: ``{"key", "config", "path", "status", "summary", "error"}``.
Re-running the same sweep skips every task whose key already has an ``ok`` line (failed tasks
are tried again); lines are written by the parent process only, one ``write`` each, and a torn
last line of a killed sweep is dropped when the file is read back.

The sweep folder has one owner (:mod:`gradflow.folders`): ``sweep.json`` names the sweep (its
experiment and task keys) and the process running it holds the folder's lock; every task holds
its task folder's lock while it runs. A local pool's workers end when the sweep process dies,
and a worker that dies costs only its task (retried once alone, then recorded as failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import socket
import threading
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradflow import folders, registry
from gradflow.errors import ArgumentError, GradflowError
from gradflow.trajectory import to_jsonable

__all__ = ["DEFAULT_ENSEMBLE", "ClusterError", "SweepSpec", "SweepWarning", "connect_dask",
           "dask_health", "load_results", "load_sweep", "run_group", "run_sweep", "run_task"]

RESULTS = "results.jsonl"
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PARENT_POLL = 0.5
"""Seconds between a local worker's checks that the sweep process is still alive."""
HEALTH_POLL = 2.0
"""Seconds between checks of an executor's ``health`` while no task finishes."""
SCHEDULER_CONNECT_TIMEOUT = 10.0
"""Seconds :func:`connect_dask` waits for a scheduler."""
DEFAULT_ENSEMBLE = 32
"""Default largest number of tasks (seeds of one grid point) one worker integrates as one
ensemble, for experiments with ``train_ensemble``. The per-member cost of a stacked step
falls steeply up to a few tens of members on the small models and flattens after (the
gradient's own cost takes over: ``docs/performance.md``), while a larger ensemble waits for
its slowest member and loses more to a killed worker."""


class ClusterError(GradflowError):
    """The executor cannot run the sweep: no scheduler, or no workers for too long (an error of
    the environment: exit 1). Finished tasks are saved; re-running the sweep continues."""


class SweepWarning(UserWarning):
    """Something a sweep skipped or retried (a damaged results line, a worker that died)."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the experiment (its name, or a ``package.module:OBJECT`` spec: what
    each worker looks up), its task configs, and the parameter seeds go to."""

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
    experiment = registry.get(data["experiment"])
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
    # what the file says (a name or a module:OBJECT spec), not experiment.name: workers and
    # sweep.json must reach the same experiment, and an unregistered one has no usable name
    return SweepSpec(experiment=data["experiment"], tasks=tuple(tasks),
                     seed_key=seed_key if seeds != [None] else None)


def _attempt_line() -> str:
    return f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"


def run_task(experiment_name: str, config: dict[str, Any], out: str) -> dict[str, Any]:
    """Run one task (in a worker): the experiment into ``out/tasks/<key>``, holding that
    folder's lock; return a result record.

    Never raises: an error becomes ``status: "error"`` with its message and traceback (a task
    folder still locked by a live process, e.g. a task of a killed sweep still running on a
    dask worker, is such an error: the next run of the sweep tries again).
    """
    key = SweepSpec.key(config)
    folder = Path(out) / "tasks" / key
    record: dict[str, Any] = {"key": key, "config": to_jsonable(config), "path": str(folder)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with folders.locked(folder):
            with (folder / "runs.log").open("a") as log:  # one line per attempt
                log.write(_attempt_line())
            summary = registry.get(experiment_name).run(config, folder, False)
        record.update(status="ok", summary=_scalars(summary), error=None)
    except Exception as exc:  # recorded, so the sweep goes on
        record.update(status="error", summary=None,
                      error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=5))
    return record


def run_group(experiment_name: str, configs: list[dict[str, Any]], out: str
              ) -> list[dict[str, Any]]:
    """Run tasks of one ensemble (seeds of one grid point: :meth:`Experiment.ensemble_group`)
    in a worker, as one :meth:`Experiment.run_ensemble`; return one record per task, as
    :func:`run_task` would.

    Every task folder is locked and gets its ``runs.log`` line, and each task's run folder,
    record and error are its own: a member's failure is that task's failure only. A task
    whose member failed is run again alone with :func:`run_task`, so that its record is the
    one its own run gives: in an ensemble the steps are the hardest member's and the work
    limits are shared (their sum), so a member may fail there (or fail otherwise) where it
    would not alone. Never raises: if the ensemble itself fails (not one member), every task
    is run alone, so that no task is recorded with another's error.
    """
    if len(configs) == 1:
        return [run_task(experiment_name, configs[0], out)]
    keys = [SweepSpec.key(c) for c in configs]
    paths = [Path(out) / "tasks" / key for key in keys]
    try:
        experiment = registry.get(experiment_name)
        with contextlib.ExitStack() as stack:
            for path in paths:
                path.mkdir(parents=True, exist_ok=True)
                stack.enter_context(folders.locked(path))
            for path in paths:
                with (path / "runs.log").open("a") as log:
                    log.write(_attempt_line())
            results = experiment.run_ensemble(configs, paths, False)
    except Exception:  # the ensemble as a whole: each task alone, with its own record
        return [run_task(experiment_name, c, out) for c in configs]
    records = []
    for key, config, path, result in zip(keys, configs, paths, results, strict=True):
        if isinstance(result, Exception):  # its own run decides: alone, its own limits
            records.append(run_task(experiment_name, config, out))
            continue
        record: dict[str, Any] = {"key": key, "config": to_jsonable(config), "path": str(path),
                                  "status": "ok", "summary": _scalars(result), "error": None}
        records.append(record)
    return records


def _jobs(experiment_name: str, pending: Mapping[str, dict[str, Any]], ensemble: int,
          workers: int | None) -> list[list[str]]:
    """The pending task keys in jobs: tasks of one ensemble group (the seeds of one grid
    point) together, at most ``ensemble`` per job and, for a local pool, small enough that
    every worker gets a job (processes × members); every other task alone."""
    experiment = registry.get(experiment_name)
    groups: dict[str, list[str]] = {}
    jobs: list[list[str]] = []
    for key, config in pending.items():
        group = experiment.ensemble_group(config) if ensemble > 1 else None
        if group is None:
            jobs.append([key])
        else:
            groups.setdefault(group, []).append(key)
    grouped = sum(len(keys) for keys in groups.values())
    size = ensemble
    if workers is not None and grouped:
        size = max(1, min(ensemble, -(-grouped // workers)))
    for keys in groups.values():
        jobs.extend(keys[i:i + size] for i in range(0, len(keys), size))
    return jobs


def _failed(key: str, config: Mapping[str, Any], out: Path, error: str) -> dict[str, Any]:
    """The record of a task that never returned one."""
    return {"key": key, "config": to_jsonable(dict(config)),
            "path": str(out / "tasks" / key), "status": "error", "summary": None,
            "error": error}


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


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"not a JSON object ({type(record).__name__})"
    if not isinstance(record.get("key"), str):
        return "no task key"
    if record.get("status") not in ("ok", "error"):
        return f"status {record.get('status')!r} is neither 'ok' nor 'error'"
    if record["status"] == "ok" and not (isinstance(record.get("config"), dict)
                                         and isinstance(record.get("summary"), dict)):
        return "an ok line without a config or summary table"
    return None


def load_results(out: str | Path) -> list[dict[str, Any]]:
    """The records of ``OUT/results.jsonl``, in file order.

    A torn last line (a write interrupted by a kill) is dropped silently; any other line that
    is not a result record (not UTF-8, not JSON, not an object, no key, …) is skipped with a
    :class:`SweepWarning` naming its line number: its task counts as unfinished.
    """
    path = Path(out) / RESULTS
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records, skipped = [], []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode())
        except UnicodeDecodeError:
            problem = "not UTF-8"
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it: a write cut short by a kill
                continue
            problem = "not JSON"
        else:
            problem = _record_problem(record)
        if problem is None:
            records.append(record)
        else:
            skipped.append(f"line {number}: {problem}")
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} line(s) that are not result records "
                      f"({'; '.join(skipped[:3])}{'; …' if len(skipped) > 3 else ''}); their "
                      "tasks count as unfinished", SweepWarning, stacklevel=2)
    return records


def finished(out: str | Path) -> dict[str, dict[str, Any]]:
    """The last ``ok`` record of every task key in ``OUT/results.jsonl``."""
    return {r["key"]: r for r in load_results(out) if r["status"] == "ok"}


def _compact(out: Path) -> dict[str, dict[str, Any]]:
    """Rewrite results.jsonl with one valid line per finished task (only under the sweep
    folder's lock, so no other process has it open for writing); return the ok records."""
    done = finished(out)
    path = out / RESULTS
    text = "".join(json.dumps(r) + "\n" for r in done.values())
    if path.exists() and path.read_bytes() != text.encode():
        tmp = path.with_name(f".{RESULTS}.tmp")
        with tmp.open("w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
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


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker once the sweep process ``parent`` is gone (a
    SIGKILLed sweep would otherwise leave its workers running, then waiting, for ever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="gradflow-exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def _pool(size: int | None) -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _attempts(out: Path, key: str) -> int:
    try:
        return (out / "tasks" / key / "runs.log").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_local(pending: dict[str, dict[str, Any]], experiment: str, out: Path,
               workers: int | None, jobs: list[list[str]]) -> Iterator[dict[str, Any]]:
    """Records of the pending tasks from a local pool of spawned processes.

    A worker that dies (SIGKILL, the OOM killer, a crash) breaks a ``ProcessPoolExecutor``
    and fails every task in it. Then the pool is rebuilt and the lost tasks are submitted again;
    the tasks that had started are suspects and run again one at a time, alone in a fresh
    process, so a task that kills its worker a second time is the culprit: it is recorded as
    failed (retried by the next run of the sweep) and the sweep goes on. A job of several
    tasks (an ensemble) that loses its worker makes all of them suspects: each then runs alone.
    """
    todo = dict(pending)
    lost: dict[str, int] = {}
    while todo:
        suspects = [k for k in todo if lost.get(k)]
        if suspects:
            batch_jobs = [suspects[:1]]
        else:
            batch_jobs = [kept for job in jobs if (kept := [k for k in job if k in todo])]
            known = {k for job in batch_jobs for k in job}
            batch_jobs += [[k] for k in todo if k not in known]
        batch = [k for job in batch_jobs for k in job]
        before = {k: _attempts(out, k) for k in batch}
        broken = False
        with _pool(1 if suspects else workers) as pool:
            futures = {pool.submit(run_group, experiment, [todo[k] for k in job], str(out)):
                       job for job in batch_jobs}
            for future in as_completed(futures):
                try:
                    records = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                for record in records:
                    todo.pop(record["key"], None)
                    yield record
        if not broken:
            continue
        unfinished = [k for k in batch if k in todo]
        started = [k for k in unfinished if _attempts(out, k) > before[k]]
        for key in started or unfinished:  # none started: the worker died before any task
            lost[key] = lost.get(key, 0) + 1
            if lost[key] >= 2:
                yield _failed(key, todo.pop(key), out,
                              "WorkerDied: the worker process running this task died twice, "
                              "the second time running it alone (killed by a signal, e.g. the "
                              "out-of-memory killer, or crashed); the next run of the sweep "
                              "tries it again")
        alone = [k for k in started or unfinished if k in todo]
        warnings.warn(f"a worker process of the sweep died; {len(alone)} task(s) that were "
                      f"running are retried one at a time, {len(todo) - len(alone)} "
                      "resubmitted", SweepWarning, stacklevel=2)


def _run_remote(pending: dict[str, dict[str, Any]], experiment: str, out: Path,
                executor: Executor, health: Callable[[], str | None] | None,
                health_timeout: float, jobs: list[list[str]]) -> Iterator[dict[str, Any]]:
    """Records of the pending tasks from any executor; ``health`` (if given) is asked while no
    task finishes, and a problem it reports for ``health_timeout`` seconds ends the sweep."""
    futures = {executor.submit(run_group, experiment, [pending[k] for k in job], str(out)):
               job for job in jobs}
    not_done = set(futures)
    stalled_since: float | None = None
    try:
        while not_done:
            done, not_done = wait(not_done, timeout=None if health is None else HEALTH_POLL,
                                  return_when=FIRST_COMPLETED)
            for future in done:
                job = futures[future]
                try:
                    records = future.result()
                except Exception as exc:  # the executor lost the job: recorded, retried later
                    for key in job:
                        yield _failed(key, pending[key], out,
                                      f"{type(exc).__name__}: {exc} (the executor could not "
                                      "run the task)")
                    continue
                yield from records
            if done or health is None:
                stalled_since = None
                continue
            problem = health()
            if problem is None:
                if stalled_since is not None:
                    warnings.warn("the executor can run tasks again; going on", SweepWarning,
                                  stacklevel=2)
                stalled_since = None
            elif stalled_since is None:
                stalled_since = time.monotonic()
                warnings.warn(f"{problem}; waiting up to {health_timeout:g} s for one",
                              SweepWarning, stacklevel=2)
            elif time.monotonic() - stalled_since >= health_timeout:
                raise ClusterError(
                    f"{problem} for {health_timeout:g} s; gave up with {len(not_done)} of "
                    f"{len(futures)} tasks unfinished (finished tasks are saved: re-run the "
                    "same sweep to continue)")
    finally:
        for future in not_done:
            future.cancel()


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: bool = False,
    force: bool = False,
    health: Callable[[], str | None] | None = None,
    health_timeout: float = 300.0,
    ensemble: int | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished task of ``spec``; return the record of each task that has one
    (finished before or now), in task order.

    Parameters
    ----------
    spec : SweepSpec
    out : path
        The sweep folder (``results.jsonl``, ``tasks/``, ``sweep.json``). It must be new or
        empty, or hold this same sweep (which then resumes); a folder holding another sweep or
        a run is refused with :class:`~gradflow.folders.FolderOwnedError` unless ``force``.
        While the sweep runs, this process holds the folder's lock; another process on it gets
        :class:`~gradflow.folders.FolderBusyError`.
    executor : concurrent.futures.Executor, optional
        Any executor (e.g. ``dask.distributed.Client(address).get_executor()``); only
        ``submit`` is used. Default: a local pool of ``workers`` freshly spawned processes
        with BLAS pinned to one thread each (the variables are set before the workers import
        NumPy); they end when this process dies, and a worker that dies costs only its task.
    workers : int, optional
        Size of the default pool (default: the number of CPUs); at least 1.
    progress : bool
        Show a progress bar over tasks.
    force : bool
        Delete what the folder holds (results, task folders) and start the sweep clean.
    health : callable () -> str or None, optional
        For ``executor``: asked every few seconds while no task finishes; returns None while
        the executor can make progress, else why not (:func:`dask_health`).
    health_timeout : float
        Seconds ``health`` may report a problem before the sweep gives up with
        :class:`ClusterError`.
    ensemble : int, optional
        For an experiment with ``train_ensemble``: the most tasks of one grid point (configs
        that differ only in its ``ensemble_keys``, the seeds) that one worker integrates as one
        :func:`gradflow.simulate_ensemble`; a local pool splits them further so that every
        worker has a job. Default :data:`DEFAULT_ENSEMBLE`; 1 runs every task alone. Each
        task keeps its own folder, record and failure; results are the same as alone up to
        the solver tolerance (each member is integrated to its own rtol/atol).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ArgumentError(f"workers must be a positive integer, got {workers!r}")
    if ensemble is None:
        ensemble = DEFAULT_ENSEMBLE
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise ArgumentError(f"ensemble (--ensemble) must be a positive integer, got "
                            f"{ensemble!r}")
    if not (isinstance(health_timeout, int | float) and health_timeout > 0):
        raise ArgumentError(f"health_timeout (--worker-timeout) must be a positive number of "
                            f"seconds, got {health_timeout!r}")
    out = folders.make_folder(out, "sweep folder")
    keys = spec.keys()
    with folders.locked(out):
        folders.claim_sweep(out, spec.identity(), force=force)
        done = _compact(out)
        records = {k: done[k] for k in keys if k in done}
        pending = {k: t for k, t in zip(keys, spec.tasks, strict=True) if k not in done}
        if pending:
            from tqdm.auto import tqdm

            jobs = _jobs(spec.experiment, pending, ensemble,
                         (workers or os.cpu_count() or 1) if executor is None else None)
            with (tqdm(total=len(keys), initial=len(records), unit="task",
                       disable=not progress) as bar, (out / RESULTS).open("a") as results):
                with contextlib.ExitStack() as stack:
                    if executor is None:
                        stack.enter_context(_one_blas_thread())
                        source: Iterable[dict[str, Any]] = _run_local(
                            pending, spec.experiment, out, workers, jobs)
                    else:
                        source = _run_remote(pending, spec.experiment, out, executor, health,
                                             health_timeout, jobs)
                    for record in source:
                        results.write(json.dumps(record) + "\n")
                        results.flush()
                        os.fsync(results.fileno())
                        records[record["key"]] = record
                        bar.update(1)
    return [records[k] for k in keys if k in records]


def connect_dask(address: str, timeout: float | None = None):
    """A ``dask.distributed.Client`` of the scheduler at ``address``, connected within
    ``timeout`` seconds (default :data:`SCHEDULER_CONNECT_TIMEOUT`).

    Raises
    ------
    ArgumentError
        ``address`` is not a scheduler address.
    ClusterError
        Nothing answered at ``address`` in time.
    """
    try:
        from dask.distributed import Client
        from distributed.comm import get_address_host_port, parse_address
    except ImportError:
        raise GradflowError("--scheduler needs dask.distributed: pip install "
                            "'gradflow[dask]'") from None
    timeout = SCHEDULER_CONNECT_TIMEOUT if timeout is None else timeout
    try:  # checked before a Client exists: a Client that fails half-built leaves its loop
        if parse_address(address)[0] != "inproc":
            get_address_host_port(address)
        return Client(address, timeout=timeout)
    except (ValueError, TypeError) as exc:
        raise ArgumentError(f"scheduler address {address!r} is not usable: {exc}") from None
    except OSError as exc:
        raise ClusterError(f"no dask scheduler answered at {address!r} within {timeout:g} s "
                           f"({exc})") from None


def dask_health(client: Any) -> Callable[[], str | None]:
    """The ``health`` of a dask ``client`` for :func:`run_sweep`: a problem while the scheduler
    has no workers or does not answer."""
    address = getattr(client.scheduler, "address", "?")

    def check() -> str | None:
        try:
            workers = client.nthreads()
        except Exception as exc:  # any failure to ask means no usable cluster
            return f"the dask scheduler at {address} does not answer ({type(exc).__name__}: " \
                   f"{exc})"
        return None if workers else f"the dask scheduler at {address} has no workers"

    return check
