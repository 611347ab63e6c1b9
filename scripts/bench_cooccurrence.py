"""How fast is the co-occurrence flow at the paper's size, per gradient path, clock and method?

Prints a Markdown table and writes ``bench_results/bench_cooccurrence.json``. Timings are medians
of several rounds after a warm-up, in one process; compare ratios, not absolute seconds.

    python scripts/bench_cooccurrence.py [--rounds 5] [--t-end 1e8]
"""

from __future__ import annotations

import argparse

import numpy as np
from benchutil import markdown_table, median_time, write_json

import gradflow
from gradflow.papers import cooccurrence as cooc


def gradient_costs(rounds: int) -> list[dict]:
    data = cooc.make_dataset(rng=0)
    rows = []
    for label, kwargs in (("tokens (default)", {"path": "tokens"}), ("dense", {"path": "dense"}),
                          ("tokens, reduced v", {"path": "tokens", "reduced": True})):
        model = cooc.CooccurrenceTransformer(d=64, m=128, m1=256, rng=0, **kwargs)
        objective = model.objective(data)
        theta = model.init(rng=1, preset="theory", s1_mult=0.1)
        reps = 200

        def many(objective=objective, theta=theta, reps=reps):
            for _ in range(reps):
                objective.gradient(theta)

        seconds = median_time(many, rounds)[0] / reps
        rows.append({"path": label, "state_size": model.layout.size, "ms_per_gradient":
                     1e3 * seconds})
    return rows


def flow_costs(rounds: int, t_end: float) -> list[dict]:
    data = cooc.make_dataset(rng=0)
    model = cooc.CooccurrenceTransformer(d=64, m=128, m1=256, rng=0)
    objective = model.objective(data)
    theta0 = model.init(rng=1, preset="theory", s1_mult=0.1)
    grid = [0.0, 300.0, t_end] if t_end > 300 else [0.0, t_end]
    reference = gradflow.simulate(objective, theta0, t_end, method="DOP853", rtol=1e-11,
                                  atol=1e-14, record_at=grid,
                                  observables={"loss": objective.value})
    ref_loss = reference.observables["loss"]
    rows = []
    for method in ("RK45", "DOP853", "RK23"):
        for clock in ("linear", "log"):
            def run(method=method, clock=clock):
                return gradflow.simulate(objective, theta0, t_end, method=method, clock=clock,
                                         record_at=grid, observables={"loss": objective.value})

            seconds, traj = median_time(run, rounds)
            error = np.max(np.abs(traj.observables["loss"] - ref_loss) / ref_loss)
            rows.append({"method": method, "clock": clock, "nfev": traj.stats["nfev"],
                         "steps": traj.stats["steps"], "seconds": seconds,
                         "max_rel_loss_error": float(error)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--t-end", type=float, default=1e8)
    parser.add_argument("--out", default="bench_results/bench_cooccurrence.json")
    args = parser.parse_args()
    grads = gradient_costs(args.rounds)
    flows = flow_costs(args.rounds, args.t_end)
    base = grads[0]["ms_per_gradient"]
    print("## Gradient cost at the paper's size (d=64, L=5, n=60, m=128, m1=256)\n")
    print(markdown_table(
        ["path", "state size", "ms / gradient", "ratio to default"],
        [[r["path"], r["state_size"], f"{r['ms_per_gradient']:.3f}",
          f"{r['ms_per_gradient'] / base:.2f}"] for r in grads]))
    fastest = min(r["seconds"] for r in flows)
    print(f"\n## Flow to t = {args.t_end:g} (rtol 1e-6, atol 1e-9; error vs DOP853 rtol 1e-11)\n")
    print(markdown_table(
        ["method", "clock", "evaluations", "steps", "seconds", "ratio to fastest",
         "loss rel. error"],
        [[r["method"], r["clock"], r["nfev"], r["steps"], f"{r['seconds']:.3f}",
          f"{r['seconds'] / fastest:.2f}", f"{r['max_rel_loss_error']:.1e}"] for r in flows]))
    out = write_json(args.out, {"gradient": grads, "flow": flows, "t_end": args.t_end})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
