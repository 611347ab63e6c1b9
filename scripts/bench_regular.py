"""Which solver and clock integrate even pairs (L_max = 6) to t = 1e10 fastest?

Prints a Markdown table and writes ``bench_results/bench_regular.json``; medians of several
rounds after a warm-up. Compare ratios, not absolute seconds.

    python scripts/bench_regular.py [--rounds 3] [--t-end 1e10]
"""

from __future__ import annotations

import argparse

from benchutil import markdown_table, median_time, write_json

import gradflow
from gradflow.papers import regular as rg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--t-end", type=float, default=1e10)
    parser.add_argument("--out", default="bench_results/bench_regular.json")
    args = parser.parse_args()
    data = rg.even_pairs(6)
    model = rg.RegularTransformer(data.d, lam=2.0)
    objective = model.objective(data)
    grid = gradflow.log_grid(args.t_end, per_decade=1)
    rows = []
    for method in ("LSODA", "RK45", "DOP853"):
        for clock in ("log", "linear"):
            def run(method=method, clock=clock):
                return gradflow.simulate(objective, model.init(), args.t_end, method=method,
                                         clock=clock, rtol=1e-9, atol=1e-11,
                                         rates=rg.phase_rates(2.0, 10.0), record_at=grid)

            seconds, traj = median_time(run, args.rounds)
            u = model.layout.unpack(traj.final_theta)["u"]
            rows.append({"method": method, "clock": clock, "nfev": traj.stats["nfev"],
                         "seconds": seconds, "u_norm": float((u @ u) ** 0.5)})
    best = min(r["seconds"] for r in rows)
    print(f"## Even pairs (L_max = 6, λ = 2, τ0 = 10) to t = {args.t_end:g}, rtol 1e-9\n")
    print(markdown_table(
        ["method", "clock", "evaluations", "seconds", "ratio to fastest", "‖u(T)‖"],
        [[r["method"], r["clock"], r["nfev"], f"{r['seconds']:.3f}",
          f"{r['seconds'] / best:.2f}", f"{r['u_norm']:.6f}"] for r in rows]))
    print(f"\nwrote {write_json(args.out, rows)}")


if __name__ == "__main__":
    main()
