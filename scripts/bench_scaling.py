"""How do gradient and flow costs grow with d, L, n and m, and is memory flat in the horizon?

For the co-occurrence model (token path), each size parameter is varied from the paper's sizes
with the others fixed; the table gives ms per gradient, the flow's wall time to t = 300, and the
fitted log-log exponent of each against the parameter. Memory: the peak traced allocation of a
run to t = 1e6 and to t = 1e10 (observables only, 10 records per decade), which should be flat.

    python scripts/bench_scaling.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from benchutil import markdown_table, median_time, write_json

import gradflow
from gradflow.papers import cooccurrence as cooc

BASE = dict(d=64, L=5, n=60, m=128, m1=256)
REPS = 20
RANGES = {"d": [16, 32, 64, 128, 256], "L": [5, 8, 16, 32, 64], "n": [60, 240, 960, 2000],
          "m": [32, 64, 128, 256, 512]}


def build(d, L, n, m, m1):
    counts = (n // 2, n // 6, n // 6, n - n // 2 - 2 * (n // 6))
    data = cooc.make_dataset(d, L, counts, rng=0)
    model = cooc.CooccurrenceTransformer(d, m, m1, L=L, rng=0)
    return model.objective(data), model.init(rng=1, preset="theory", s1_mult=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench_results/bench_scaling.json")
    args = parser.parse_args()
    rows, fits = [], []
    for name, values in RANGES.items():
        grad_ms, flow_s = [], []
        for value in values:
            objective, theta0 = build(**{**BASE, name: value})
            seconds, _ = median_time(lambda o=objective, t=theta0: [o.gradient(t)
                                                                   for _ in range(REPS)],
                                     args.rounds)
            grad_ms.append(1e3 * seconds / REPS)
            flow, traj = median_time(lambda o=objective, t=theta0: gradflow.simulate(
                o, t, 300.0, record_at=[0.0, 300.0]), 1)
            flow_s.append(flow)
            rows.append([name, value, objective.layout.size, f"{grad_ms[-1]:.3f}",
                         traj.stats["nfev"], f"{flow:.3f}"])
        x = np.log(values)
        fits.append([name, f"{np.polyfit(x, np.log(grad_ms), 1)[0]:.2f}",
                     f"{np.polyfit(x, np.log(flow_s), 1)[0]:.2f}"])
    print("## Cost against size (others at the paper's values)\n")
    print(markdown_table(["parameter", "value", "state size", "ms / gradient", "evaluations",
                          "flow to t=300 (s)"], rows))
    print("\n## Fitted exponents\n")
    print(markdown_table(["parameter", "gradient cost exponent", "flow cost exponent"], fits))
    objective, theta0 = build(**BASE)
    memory = []
    for horizon in (1e6, 1e10):
        tracemalloc.start()
        gradflow.simulate(objective, theta0, horizon, store_theta=False,
                          observables={"loss": objective.value},
                          record_at=gradflow.log_grid(horizon, per_decade=10))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        memory.append([f"{horizon:g}", f"{peak / 2**20:.1f}"])
    print("\n## Peak traced memory of a run (observables only)\n")
    print(markdown_table(["horizon", "peak MiB"], memory))
    out = write_json(args.out, {"rows": rows, "fits": fits, "memory": memory})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
