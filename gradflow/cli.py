"""The ``gradflow`` command line: run, list, check-grad, plot."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gradflow import experiments
from gradflow.errors import GradflowError
from gradflow.experiments.base import load_config_file, parse_assignments
from gradflow.gradcheck import check_gradient

__all__ = ["main"]


def _config(args: argparse.Namespace) -> dict:
    experiment = experiments.get(args.name)
    overrides = load_config_file(args.config) if args.config else {}
    overrides.update(parse_assignments(args.set))
    return experiment.config(overrides)


def _run(args: argparse.Namespace) -> int:
    experiment = experiments.get(args.name)
    config = _config(args)
    out = Path(args.out or Path("runs") / args.name)
    summary = experiment.run(config, out, not args.no_progress)
    print(f"wrote trajectories, summary.json and figures to {out}")
    for line in experiment.report(summary):
        print(line)
    return 0


def _list(args: argparse.Namespace) -> int:
    for name, experiment in experiments.REGISTRY.items():
        print(f"{name}: {experiment.description}")
        for p in experiment.parameters:
            extra = f" (choices: {', '.join(map(str, p.choices))})" if p.choices else ""
            print(f"    {p.name} = {p.default!r}: {p.help}{extra}")
    return 0


def _check_grad(args: argparse.Namespace) -> int:
    experiment = experiments.get(args.name)
    objective, theta0 = experiment.objective(_config(args))
    exact = check_gradient(objective, theta0, "complex")
    print(exact)
    print(check_gradient(objective, theta0, "central"))
    return 0 if exact.max_rel_error < 1e-10 else 1


def _plot(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    summary_file = out / "summary.json"
    if not summary_file.exists():
        raise GradflowError(f"{out} holds no summary.json: not a gradflow run folder")
    name = json.loads(summary_file.read_text()).get("experiment")
    for path in experiments.get(name).plot(out):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="experiment name (see 'gradflow list')")
        p.add_argument("--config", help="TOML file of parameter values")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one parameter (repeatable)")

    run = sub.add_parser("run", help="run an experiment and write its outputs")
    with_config(run)
    run.add_argument("--out", help="output folder (default runs/NAME)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(func=_run)
    sub.add_parser("list", help="list experiments and their parameters").set_defaults(func=_list)
    check = sub.add_parser("check-grad", help="check an experiment's gradient numerically")
    with_config(check)
    check.set_defaults(func=_check_grad)
    plot = sub.add_parser("plot", help="re-draw the figures of a saved run")
    plot.add_argument("dir", help="the run's output folder")
    plot.set_defaults(func=_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GradflowError as exc:
        print(f"gradflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
