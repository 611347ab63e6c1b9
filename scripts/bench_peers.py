"""Is gradflow faster and more accurate than what a researcher would otherwise write?

The co-occurrence model (paper Eq. (1)) integrated to flow time T by:

* gradflow (closed-form gradient, token path) with scipy RK45, linear and log clocks;
* the paper's own protocol: PyTorch autograd + gradient descent at lr 0.01 for T/0.01 steps;
* torchdiffeq ``dopri5`` with a PyTorch autograd gradient;
* JAX ``jit(grad)`` + diffrax ``Tsit5`` (jitted; compile time reported separately).

Everything in float64 with one thread each (BLAS/OpenMP variables are set before NumPy is
imported; ``torch.set_num_threads(1)``; XLA single-threaded). Accuracy is the relative error of
θ(T) against a gradflow DOP853 run at rtol 1e-11. Fast methods report the median of
``--rounds`` rounds; ratios are per round. Peers come from the optional extra ``bench``
(``pip install -e '.[bench]'``); a missing peer is reported, not fatal.

    python scripts/bench_peers.py [--T 300] [--rounds 3] [--sizes paper small]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                           "intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from benchutil import markdown_table, median_time, write_json  # noqa: E402

import gradflow  # noqa: E402
from gradflow.models import cooccurrence as cooc  # noqa: E402

SIZES = {"paper": dict(d=64, L=5, counts=(30, 10, 10, 10), m=128, m1=256),
         "small": dict(d=16, L=5, counts=(6, 2, 2, 2), m=16, m1=16)}


def problem(size: str):
    s = SIZES[size]
    data = cooc.make_dataset(s["d"], s["L"], s["counts"], rng=0)
    model = cooc.CooccurrenceTransformer(s["d"], s["m"], s["m1"], L=s["L"], rng=0)
    theta0 = model.init(rng=1, preset="theory", s1_mult=0.1)
    return data, model, theta0


def relative_error(theta: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(theta - reference) / np.linalg.norm(reference))


def gradflow_runs(objective, theta0, T, rounds):
    rows = []
    for clock in ("linear", "log"):
        seconds, traj = median_time(lambda clock=clock: gradflow.simulate(
            objective, theta0, T, clock=clock, record_at=[0.0, T]), rounds)
        rows.append({"method": f"gradflow RK45 ({clock} clock)", "seconds": seconds,
                     "compile": 0.0, "nfev": traj.stats["nfev"], "theta": traj.final_theta})
    return rows


def torch_loss(model, data):
    import torch

    X = torch.tensor(data.X)
    y = torch.tensor(data.y)
    a = torch.tensor(model.a)
    layout = model.layout

    def loss(theta):
        p = {k: theta[s].reshape(layout.shapes[k]) for k, s in layout.slices.items()}
        Q = X @ p["W_Q"].T
        K = X @ p["W_K"].T
        S = K @ Q.transpose(1, 2) / model.m**0.5
        A = torch.softmax(S, dim=1)
        z = X @ (p["W_V"].T @ (p["W"].T @ a))
        F = (z * A.sum(dim=2)).sum(dim=1)
        return torch.nn.functional.softplus(-y * F).mean()

    return loss


def torch_runs(model, data, theta0, T, rounds):
    try:
        import torch
    except ImportError:
        return [{"method": "PyTorch (not installed)", "skipped": True}]
    torch.set_num_threads(1)
    loss = torch_loss(model, data)

    def grad(theta):
        theta = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(theta), theta)
        return g

    rows = []
    lr = 0.01

    def gd():
        theta = torch.tensor(theta0)
        for _ in range(round(T / lr)):
            theta = theta - lr * grad(theta)
        return theta.numpy()

    grad(torch.tensor(theta0))  # warm-up; GD itself is timed once (it takes tens of seconds)
    start = time.perf_counter()
    theta = gd()
    seconds = time.perf_counter() - start
    rows.append({"method": f"PyTorch autograd + GD lr {lr} × {round(T / lr)} (paper)",
                 "seconds": seconds, "compile": 0.0, "nfev": round(T / lr), "theta": theta})
    try:
        from torchdiffeq import odeint
    except ImportError:
        rows.append({"method": "torchdiffeq (not installed)", "skipped": True})
        return rows
    counter = {"n": 0}

    def rhs(t, theta):
        counter["n"] += 1
        return -grad(theta)

    def run():
        counter["n"] = 0
        out = odeint(rhs, torch.tensor(theta0), torch.tensor([0.0, T], dtype=torch.float64),
                     method="dopri5", rtol=1e-6, atol=1e-9)
        return out[-1].numpy()

    seconds, theta = median_time(run, rounds)
    rows.append({"method": "torchdiffeq dopri5 + autograd", "seconds": seconds, "compile": 0.0,
                 "nfev": counter["n"], "theta": theta})
    return rows


def jax_runs(model, data, theta0, T, rounds):
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return [{"method": "JAX + diffrax (not installed)", "skipped": True}]
    jax.config.update("jax_enable_x64", True)
    X, y, a = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(model.a)
    layout = model.layout

    def loss(theta):
        p = {k: theta[s].reshape(layout.shapes[k]) for k, s in layout.slices.items()}
        Q = X @ p["W_Q"].T
        K = X @ p["W_K"].T
        S = K @ jnp.swapaxes(Q, 1, 2) / model.m**0.5
        A = jax.nn.softmax(S, axis=1)
        z = X @ (p["W_V"].T @ (p["W"].T @ a))
        F = (z * A.sum(axis=2)).sum(axis=1)
        return jnp.mean(jax.nn.softplus(-y * F))

    grad = jax.jit(jax.grad(loss))
    term = diffrax.ODETerm(lambda t, theta, args: -grad(theta))

    @jax.jit
    def solve(theta):
        sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), 0.0, T, None, theta,
                                  stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-9),
                                  max_steps=1_000_000, saveat=diffrax.SaveAt(t1=True))
        return sol.ys[-1], sol.stats["num_steps"]

    start = time.perf_counter()
    theta, steps = solve(jnp.asarray(theta0))
    theta.block_until_ready()
    first = time.perf_counter() - start
    seconds, (theta, steps) = median_time(
        lambda: tuple(v.block_until_ready() for v in solve(jnp.asarray(theta0))), rounds)
    return [{"method": "JAX jit(grad) + diffrax Tsit5 (jitted)", "seconds": seconds,
             "compile": first - seconds, "nfev": int(steps) * 6, "theta": np.asarray(theta)}]


def gradient_costs(model, data, theta0, rounds):
    """ms per gradient: gradflow closed form vs PyTorch autograd vs JAX jit(grad)."""
    rows = []
    objective = model.objective(data)
    reps = 200
    seconds, _ = median_time(lambda: [objective.gradient(theta0) for _ in range(reps)], rounds)
    rows.append({"gradient": "gradflow closed form (token path)", "ms": 1e3 * seconds / reps})
    try:
        import torch

        loss = torch_loss(model, data)
        t0 = torch.tensor(theta0)

        def torch_grad():
            for _ in range(reps):
                theta = t0.detach().requires_grad_(True)
                torch.autograd.grad(loss(theta), theta)

        seconds, _ = median_time(torch_grad, rounds)
        rows.append({"gradient": "PyTorch autograd", "ms": 1e3 * seconds / reps})
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        X, y, a = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(model.a)
        layout = model.layout

        def loss_j(theta):
            p = {k: theta[s].reshape(layout.shapes[k]) for k, s in layout.slices.items()}
            S = (X @ p["W_K"].T) @ jnp.swapaxes(X @ p["W_Q"].T, 1, 2) / model.m**0.5
            A = jax.nn.softmax(S, axis=1)
            z = X @ (p["W_V"].T @ (p["W"].T @ a))
            return jnp.mean(jax.nn.softplus(-y * (z * A.sum(axis=2)).sum(axis=1)))

        g = jax.jit(jax.grad(loss_j))
        tj = jnp.asarray(theta0)
        seconds, _ = median_time(lambda: [g(tj).block_until_ready() for _ in range(reps)],
                                 rounds)
        rows.append({"gradient": "JAX jit(grad)", "ms": 1e3 * seconds / reps})
    except ImportError:
        pass
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["paper", "small"], choices=list(SIZES))
    parser.add_argument("--out", default="bench_results/bench_peers.json")
    args = parser.parse_args()
    report = {}
    for size in args.sizes:
        data, model, theta0 = problem(size)
        objective = model.objective(data)
        reference = gradflow.simulate(objective, theta0, args.T, method="DOP853", rtol=1e-11,
                                      atol=1e-14, record_at=[0.0, args.T]).final_theta
        rows = (gradflow_runs(objective, theta0, args.T, args.rounds)
                + torch_runs(model, data, theta0, args.T, args.rounds)
                + jax_runs(model, data, theta0, args.T, args.rounds))
        base = rows[0]["seconds"]
        table = []
        for r in rows:
            if r.get("skipped"):
                table.append([r["method"], "—", "—", "—", "—", "—"])
                continue
            r["error"] = relative_error(r.pop("theta"), reference)
            table.append([r["method"], f"{r['seconds']:.3f}", f"{r['compile']:.2f}", r["nfev"],
                          f"{r['seconds'] / base:.2f}", f"{r['error']:.1e}"])
        grads = gradient_costs(model, data, theta0, args.rounds)
        print(f"## Co-occurrence, {size} size ({model.layout.size} parameters), flow to "
              f"t = {args.T:g}, one thread\n")
        print(markdown_table(["method", "seconds", "compile s", "evaluations",
                              "time ratio to gradflow", "rel. error of θ(T)"], table))
        print()
        g0 = grads[0]["ms"]
        print(markdown_table(["gradient", "ms", "ratio to gradflow"],
                             [[g["gradient"], f"{g['ms']:.3f}", f"{g['ms'] / g0:.2f}"]
                              for g in grads]))
        print()
        report[size] = {"flow": rows, "gradient": grads}
    print(f"wrote {write_json(args.out, report)}")


if __name__ == "__main__":
    main()
