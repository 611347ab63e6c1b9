"""The ``gradflow`` command line: run, resume, list, check-grad, plot, sweep, sweep-plot."""

from __future__ import annotations

import argparse
import functools
import os
import select
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from gradflow import folders, registry
from gradflow.claims import STATUSES, evaluate, write_ledger
from gradflow.errors import (
    ArgumentError,
    CheckpointError,
    GradflowError,
    NonFiniteError,
    ObservableError,
    SolverError,
)
from gradflow.experiment import load_config_file, parse_assignments
from gradflow.files import read_json
from gradflow.folders import FolderBusyError
from gradflow.gradcheck import check_gradient
from gradflow.sweep import (
    ClusterError,
    SweepWarning,
    connect_dask,
    dask_health,
    load_sweep,
    run_sweep,
)
from gradflow.sweep_plot import sweep_plot

__all__ = ["main"]


def _config(args: argparse.Namespace) -> dict:
    experiment = registry.get(args.name)
    overrides = load_config_file(args.config) if args.config else {}
    overrides.update(parse_assignments(args.set))
    return experiment.config(overrides)


RUN_FILE = folders.RUN_FILE
"""A run folder's identity, written into an empty folder before integrating: what
``gradflow resume`` re-runs (:func:`gradflow.folders.claim_run`)."""
PARTIAL_FILE = "partial.npz"
"""Where a run that ended early keeps what it had computed (``gradflow.Trajectory.load``)."""


def _folder_command(command: Callable[[argparse.Namespace], int]):
    """For the commands that write run and sweep folders: a folder in use by another process or
    a dask cluster that cannot run the sweep is an error of the environment (exit 1, not the
    exit 2 of bad input), and a sweep's warnings are printed as ``gradflow: warning:`` lines."""

    @functools.wraps(command)
    def wrapped(args: argparse.Namespace) -> int:
        default_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, SweepWarning):
                print(f"gradflow: warning: {message}", file=sys.stderr)
            else:
                default_show(message, category, filename, lineno, file, line)

        with warnings.catch_warnings():
            warnings.simplefilter("always", SweepWarning)
            warnings.showwarning = show
            try:
                return command(args)
            except (FolderBusyError, ClusterError) as exc:
                print(f"gradflow: error: {exc}", file=sys.stderr)
                return 1

    return wrapped


def _default_out(name: str) -> Path:
    """``runs/<experiment name>``: named after the experiment, not after a ``module:OBJECT``
    spec, whose dots and colon make a poor folder name."""
    return Path("runs") / registry.get(name).name


def _execute(name: str, config: dict, out: Path, progress: bool) -> int:
    """Run (or resume) ``name`` into ``out``, whose lock the caller holds and which it has
    claimed for this run (so ``run.json`` already names it)."""
    experiment = registry.get(name)
    try:
        summary = experiment.run(config, out, progress)
    except (SolverError, NonFiniteError, ObservableError) as exc:
        if exc.trajectory is None:
            raise
        # the API attaches the partial trajectory; at the command line it goes to a file
        path = exc.trajectory.save(out / PARTIAL_FILE)
        message = str(exc).replace("is attached as .trajectory", f"is saved as {path}")
        raise GradflowError(message if str(path) in message
                            else f"{message} (partial trajectory: {path})") from exc
    print(f"wrote trajectories, summary.json and figures to {out}")
    for line in [*experiment.report(summary), *experiment.ledger_lines(out)]:
        print(line)
    return 0


@_folder_command
def _run(args: argparse.Namespace) -> int:
    experiment = registry.get(args.name)
    overrides = load_config_file(args.config) if args.config else {}
    overrides.update(parse_assignments(args.set))
    if args.checkpoint:
        if "checkpoint" not in experiment.defaults():
            raise GradflowError(f"experiment {args.name!r} has no checkpointed runs (it is fast)")
        overrides["checkpoint"] = True
    config = experiment.config(overrides)
    out = folders.make_folder(args.out or _default_out(args.name), "--out")
    with folders.locked(out):
        folders.claim_run(out, args.name, config, force=args.force, validate=experiment.config)
        return _execute(args.name, config, out, not args.no_progress)


@_folder_command
def _resume(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    if not (out / RUN_FILE).is_file():
        raise GradflowError(f"{out} has no {RUN_FILE}: not a gradflow run folder")
    with folders.locked(out):
        try:
            saved = folders.read_json(out / RUN_FILE)
            name, config = saved["experiment"], saved["config"]
            if not (isinstance(name, str) and isinstance(config, dict)):
                raise ValueError("'experiment' must be a name and 'config' a table")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GradflowError(f"{out} has no readable {RUN_FILE}: not a gradflow run folder "
                                f"({exc})") from None
        config = registry.get(name).config(config)  # validated again
        return _execute(name, config, out, not args.no_progress)


@_folder_command
def _sweep(args: argparse.Namespace) -> int:
    spec = load_sweep(args.file)
    with ExitStack() as stack:
        executor = health = None
        if args.scheduler:
            client = stack.enter_context(connect_dask(args.scheduler))
            executor, health = client.get_executor(), dask_health(client)
        records = run_sweep(spec, args.out, executor=executor, workers=args.workers,
                            progress=not args.no_progress, force=args.force, health=health,
                            health_timeout=args.worker_timeout, ensemble=args.ensemble)
    failed = [r for r in records if r.get("status") != "ok"]
    print(f"{len(records) - len(failed)}/{len(spec.tasks)} tasks finished; results in "
          f"{Path(args.out) / 'results.jsonl'}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


@_folder_command
def _sweep_plot(args: argparse.Namespace) -> int:
    path = sweep_plot(args.dir, args.x, args.y, reference_slope=args.reference_slope,
                      log=not args.linear)
    print(f"wrote {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.name:  # one experiment: also checks that a plugin or a spec loads
        shown, problems = {args.name: registry.get(args.name)}, []
    else:
        shown, problems = registry.available(), registry.problems()
    origin = {e.name: p.distribution for p in registry.plugins() for e in p.experiments}
    for name, experiment in shown.items():
        plugin = f" [plugin: {origin[name]}]" if name in origin else ""
        print(f"{name}: {experiment.description}{plugin}")
        for p in experiment.parameters:
            extra = f" (choices: {', '.join(map(str, p.choices))})" if p.choices else ""
            print(f"    {p.name} = {p.default!r}: {p.help}{extra}")
    for problem in problems:  # listed, not fatal: the other experiments are usable
        print(f"unavailable: {problem}")
    return 0


CHECK_GRAD_EXIT = {"ok": 0, "mismatch": 1, "unresolved": 3, "zero": 3}
"""Exit status of ``gradflow check-grad`` per verdict (2 stays "bad arguments")."""


def _check_grad(args: argparse.Namespace) -> int:
    experiment = registry.get(args.name)
    objective, theta0 = experiment.objective(_config(args))
    if args.perturb:
        # a block whose gradient vanishes at the initialisation (e.g. a read-out started at 0
        # zeroes the gradient of everything before it) is "zero" there: nothing to compare
        theta0 = theta0 + args.perturb * np.random.default_rng(0).standard_normal(theta0.shape)
    check = check_gradient(objective, theta0, "complex")
    print(check)
    return CHECK_GRAD_EXIT[check.verdict]


def _recorded_experiment(out: Path) -> tuple[str | None, Path | None]:
    """The experiment a run folder was started with, as given (a name or a ``module:OBJECT``
    spec), from its ``run.json``, or for a sweep's task folder from the sweep's ``sweep.json``;
    ``(None, None)`` if neither says. (``summary.json`` holds only the experiment's own name,
    which does not reach an unregistered experiment.)"""
    records = [out / RUN_FILE]
    if out.parent.name == "tasks":
        records.append(out.parent.parent / folders.SWEEP_FILE)
    for path in records:
        try:
            name = folders.read_json(path).get("experiment")
        except (OSError, ValueError, AttributeError):  # absent or damaged: try the next
            continue
        if isinstance(name, str):
            return name, path
    return None, None


def _plot(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    summary_file = out / "summary.json"
    if not summary_file.is_file():
        raise GradflowError(f"{out} holds no summary.json: not a gradflow run folder")
    summarised = read_json(summary_file).get("experiment")
    if not isinstance(summarised, str):
        raise CheckpointError(f"{summary_file} names no experiment (got {summarised!r})")
    name, source = _recorded_experiment(out)
    if name is None:
        name, source = summarised, summary_file
    try:
        experiment = registry.get(name)
    except ArgumentError as exc:
        raise CheckpointError(f"{source} names an experiment that cannot be used: {exc}") from None
    for path in experiment.plot(out):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="experiment name (see 'gradflow list'), or "
                       "package.module:OBJECT for an experiment of your own")
        p.add_argument("--config", help="TOML file of parameter values")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one parameter (repeatable)")

    run = sub.add_parser("run", help="run an experiment and write its outputs")
    with_config(run)
    run.add_argument("--out", help="output folder (default runs/<experiment name>)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--checkpoint", action="store_true",
                     help="checkpoint into OUT/checkpoint (resume with 'gradflow resume OUT')")
    run.add_argument("--force", action="store_true",
                     help="if OUT holds another run (or a sweep), delete its contents first "
                     "(never a folder in use, nor a non-empty folder that is not gradflow's)")
    run.set_defaults(func=_run)
    resume = sub.add_parser("resume", help="resume (or re-run) a run folder from its checkpoint")
    resume.add_argument("dir", help="the run's output folder")
    resume.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    resume.set_defaults(func=_resume)
    sweep = sub.add_parser("sweep", help="run a sweep file (TOML) over a grid × seeds")
    sweep.add_argument("file", help="the sweep file")
    sweep.add_argument("--out", required=True, help="the sweep folder")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local processes (default: all CPUs)")
    where.add_argument("--scheduler", help="a dask.distributed scheduler address")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.add_argument("--force", action="store_true",
                       help="start clean: delete what OUT holds (another sweep's, or this "
                       "one's, results and task folders) first")
    sweep.add_argument("--worker-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="with --scheduler: give up after the scheduler has had no workers "
                       "this long (default 300)")
    sweep.add_argument("--ensemble", type=int, default=None, metavar="N",
                       help="integrate up to N seeds of one grid point as one ensemble per "
                       "worker, for experiments that support it (default 32; 1: each task "
                       "alone)")
    sweep.set_defaults(func=_sweep)
    splot = sub.add_parser("sweep-plot", help="aggregate figure of a sweep folder")
    splot.add_argument("dir", help="the sweep folder")
    splot.add_argument("--x", required=True, help="swept parameter")
    splot.add_argument("--y", required=True, help="summary quantity (dotted, e.g. final.rho23)")
    splot.add_argument("--reference-slope", type=float, help="draw c·x^slope (e.g. -1)")
    splot.add_argument("--linear", action="store_true", help="linear instead of log-log axes")
    splot.set_defaults(func=_sweep_plot)
    listing = sub.add_parser("list", help="list experiments and their parameters")
    listing.add_argument("name", nargs="?", help="only this experiment (a name, or "
                         "package.module:OBJECT)")
    listing.set_defaults(func=_list)
    check = sub.add_parser(
        "check-grad", help="check an experiment's gradient numerically",
        description="Compare the experiment's closed-form gradient at its initial point with the "
        "complex step (primary) and central differences (cross-check), per block, and print "
        "a verdict per block: ok, zero (both sides 0 or underflowed: nothing checked), "
        "unresolved (the numerical references cannot decide), mismatch (the closed form "
        "disagrees with references that agree). Exit status 0: all ok; 1: a mismatch; "
        "3: unresolved or zero; 2: bad arguments.")
    with_config(check)
    check.add_argument("--perturb", type=float, default=0.0, metavar="SIGMA",
                       help="check at θ0 + SIGMA·N(0, 1) (seed 0) instead of θ0, for blocks "
                       "whose gradient vanishes at the initialisation")
    check.set_defaults(func=_check_grad)
    plot = sub.add_parser("plot", help="re-draw the figures of a saved run")
    plot.add_argument("dir", help="the run's output folder")
    plot.set_defaults(func=_plot)
    claims = sub.add_parser(
        "claims", help="check the papers' claims: the claims ledger",
        description="Run each paper's protocols once and evaluate every claim of its ledger "
        "(papers/<paper>/claims.py): reproduced, a stated discrepancy pinned to what the flow "
        "does, or not simulated. Writes OUT/claims.json, OUT/claims.md and the figures of the "
        "discrepancies. Exit status 0: every claim passed; 1: some did not.")
    claims.add_argument("papers", nargs="*", metavar="PAPER",
                        help="papers to check (default: all with a ledger)")
    claims.add_argument("--out", default="runs/claims", help="output folder (default "
                        "runs/claims)")
    claims.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    claims.set_defaults(func=_claims)
    return parser


def _claims(args: argparse.Namespace) -> int:
    papers = args.papers or registry.ledger_papers()
    ledgers = [registry.ledger(paper) for paper in papers]  # every name checked before running
    out = folders.make_folder(args.out, "--out")
    results = []
    for ledger in ledgers:
        if not args.no_progress:
            print(f"{ledger.paper}: {len(ledger.claims)} claims", file=sys.stderr)
        results += evaluate(ledger.claims, ledger.runs, progress=not args.no_progress,
                            figures=out / "figures")
    json_path, md_path = write_ledger(results, out)
    failed = [r.claim.id for r in results if r.passed is False]
    counts = {s: sum(r.claim.status == s for r in results) for s in STATUSES}
    passed = sum(r.passed is True for r in results)
    print(f"{len(results)} claims ({', '.join(f'{n} {s}' for s, n in counts.items())}): "
          f"{passed} passed" + (f", failed: {failed}" if failed else ""))
    print(f"wrote {json_path} and {md_path}")
    return 1 if failed else 0


def _os_error_message(exc: OSError, args: argparse.Namespace) -> str:
    """``<path>: <reason>`` for an OSError, with the run's folder when the error has no path."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        folder = getattr(args, "out", None) or getattr(args, "dir", None)
        if folder is None and args.command == "run":
            try:
                folder = _default_out(args.name)
            except GradflowError:  # reporting one error must not raise another
                folder = None
        return f"{reason} (in {folder})" if folder else reason
    message = f"{exc.filename}: {reason}"
    if exc.filename2 is not None:
        message += f" (and {exc.filename2})"
    if isinstance(exc, FileExistsError) and not Path(exc.filename).is_dir():
        message += " (a folder is expected there, not a file)"
    elif isinstance(exc, NotADirectoryError):
        message += " (a file stands where this path needs a folder)"
    return message


def _stdout_is_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone; if so, point it at /dev/null (Python
    would otherwise report the unflushed output again at exit)."""
    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        closed = any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout not a file
        return False
    if closed:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return closed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line. Exit status: 0 success, 2 bad input (``gradflow: error: ...``
    naming the argument or file), 1 the environment (a file that cannot be written or read:
    full disk, read-only file system, permissions; out of memory) or a failed task; 3 see
    ``check-grad``. No traceback is shown for any of these."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GradflowError as exc:
        print(f"gradflow: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError as exc:
        if _stdout_is_closed():  # gradflow list | head: the reader left, nothing to report
            return 1
        print(f"gradflow: error: {_os_error_message(exc, args)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gradflow: error: {_os_error_message(exc, args)}", file=sys.stderr)
        return 1
    except MemoryError as exc:
        print(f"gradflow: error: out of memory{f': {exc}' if str(exc) else ''} (choose smaller "
              "sizes)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
