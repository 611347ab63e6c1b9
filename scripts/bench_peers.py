"""Is gradflow faster and more accurate than what a researcher would otherwise write?

Five problems — the co-occurrence model at the paper's and a small size (flow to T), stage 2 of
the NTP fixture (normalised flow to t = 300), even pairs (two-phase flow to t = 1e3) and the
HCL softmax-ICL population loss with imbalanced features (to t = 2000) — each integrated by:

* gradflow (closed-form gradient) with its default solver, linear and log clocks;
* the papers' own protocol: PyTorch autograd + (normalised) gradient descent for T/lr steps;
* torchdiffeq ``dopri5`` with a PyTorch autograd gradient;
* JAX ``jit(grad)`` + diffrax ``Tsit5`` (jitted; compile time reported separately).

Everything in float64 with one thread each (BLAS/OpenMP variables are set before NumPy is
imported; ``torch.set_num_threads(1)``; XLA single-threaded). Accuracy is the relative error of
θ(T) against a gradflow DOP853 run at rtol 1e-11. The adaptive methods run in ``--rounds``
interleaved rounds (each method once per round, after a warm-up/compile); the table gives the
median time and the median and range of the per-round ratios to gradflow. The GD protocol is
timed once (it takes tens of seconds). Peers come from the optional extra ``bench``
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
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from benchutil import markdown_table, median_time, write_json  # noqa: E402

import gradflow  # noqa: E402
from gradflow.papers import cooccurrence as cooc  # noqa: E402
from gradflow.papers import ntp  # noqa: E402
from gradflow.papers import regular as rg  # noqa: E402
from gradflow.papers import softmax_icl as sm  # noqa: E402

CASES = ["paper", "small", "ntp", "even_pairs", "hcl"]

MAX_STEPS = 100_000
"""Step cap for the peers' adaptive solvers (gradflow's defaults need at most a few thousand)."""

SIZES = {"paper": dict(d=64, L=5, counts=(30, 10, 10, 10), m=128, m1=256),
         "small": dict(d=16, L=5, counts=(6, 2, 2, 2), m=16, m1=16)}


@dataclass
class Case:
    """One benchmark problem: the trained vector θ0, the horizon, the loss written naively for
    the peers (a function of the torch/jax module and θ), the GD step of the papers' protocol,
    and gradflow's own run (returning θ(T) of the same vector)."""

    name: str
    theta0: np.ndarray
    T: float
    lr: float
    loss: Callable[[Any, Any], Any]
    gradflow_run: Callable[..., Any]
    gradient: Callable[[], Any]
    normalize: bool = False
    w_rate: tuple[slice, float, float] | None = None  # (slice, rate before tau0, tau0)


def cooccurrence_case(size: str, T: float) -> Case:
    s = SIZES[size]
    data = cooc.make_dataset(s["d"], s["L"], s["counts"], rng=0)
    model = cooc.CooccurrenceTransformer(s["d"], s["m"], s["m1"], L=s["L"], rng=0)
    theta0 = model.init(rng=1, preset="theory", s1_mult=0.1)
    objective = model.objective(data)
    layout = model.layout

    def loss(xp, theta):
        nn = _nn(xp)
        X, y, a = xp.asarray(data.X), xp.asarray(data.y), xp.asarray(model.a)
        p = {k: theta[sl].reshape(layout.shapes[k]) for k, sl in layout.slices.items()}
        S = (X @ p["W_K"].T) @ _swap(xp, X @ p["W_Q"].T) / model.m**0.5
        A = nn.softmax(S, 1)
        z = X @ (p["W_V"].T @ (p["W"].T @ a))
        return nn.softplus(-y * (z * A.sum(2)).sum(1)).mean()

    def run(**kw):
        return gradflow.simulate(objective, theta0, T, record_at=[0.0, T], **kw).final_theta

    return Case(f"co-occurrence, {size} size ({layout.size} parameters), t = {T:g}", theta0,
                T, 0.01, loss, run, lambda: objective.gradient(theta0))


def ntp_case(T: float) -> Case:
    """Stage 2 on the NTP fixture: W_kq from 0 with W_ov frozen after stage 1 (T0 = 30)."""
    data = ntp.fixture()
    model = ntp.NTPTransformer(8)
    stage1, _ = ntp.two_stage(model, data, T0=30.0, T=1.0)
    W_ov = model.layout.unpack(stage1.final_theta)["W_ov"].copy()
    objective = model.objective(data)

    def loss(xp, theta):
        nn = _nn(xp)
        W_kq = theta.reshape(8, 8)
        X, Q, mask = xp.asarray(data.X), xp.asarray(data.Q), xp.asarray(data.mask)
        s = (X @ (W_kq @ Q[:, :, None]))[:, :, 0]
        s = xp.where(mask, s, -1e30)
        phi = nn.softmax(s, 1)
        u = ((phi[:, :, None] * X).sum(1) @ xp.asarray(W_ov).T) @ xp.asarray(data.embedding)
        logp = nn.log_softmax(u, 1)
        return -(logp * xp.asarray(np.eye(8)[data.y])).sum(1).mean()

    def run(**kw):
        full = model.layout.pack({"W_kq": np.zeros((8, 8)), "W_ov": W_ov})
        traj = gradflow.simulate(objective, full, T, normalize="block", rates={"W_ov": 0.0},
                                 record_at=[0.0, T], **kw)
        return model.layout.unpack(traj.final_theta)["W_kq"].ravel().copy()

    probe = model.layout.pack({"W_kq": np.full((8, 8), 0.1), "W_ov": W_ov})
    return Case(f"NTP fixture stage 2 (normalised flow, W_kq), t = {T:g}", np.zeros(64), T,
                0.1, loss, run, lambda: objective.scaled_gradient(probe), normalize=True)


def even_pairs_case(T: float) -> Case:
    data = rg.even_pairs(6)
    model = rg.RegularTransformer(data.d, lam=2.0)
    objective = model.objective(data)
    W_slice = model.layout.slices["W"]

    def loss(xp, theta):
        nn = _nn(xp)
        u, W = theta[:12], theta[12:].reshape(12, 12)
        X, Q, mask = xp.asarray(data.X), xp.asarray(data.Q), xp.asarray(data.mask)
        s = X @ u
        a = xp.where(mask, (X @ (W @ Q[:, :, None]))[:, :, 0] / 2.0, -1e30)
        f = (nn.softmax(a, 1) * s).sum(1)
        return (xp.asarray(data.weights) * nn.softplus(-xp.asarray(data.y) * f)).sum()

    def run(**kw):
        return gradflow.simulate(objective, model.init(), T, rates=rg.phase_rates(2.0, 10.0),
                                 record_at=[0.0, 10.0, T], **kw).final_theta

    probe = model.init(rng=0, preset="normal", scale=0.5)
    return Case(f"even pairs (L_max = 6), t = {T:g}", model.init(), T, 0.1, loss, run,
                lambda: objective.gradient(probe), w_rate=(W_slice, 2.0, 10.0))


def hcl_case(T: float) -> Case:
    """HCL softmax ICL, imbalanced features (K = 4, N = 40, p = .55/.15/.15/.15): the exact
    population loss over all 12,341 count vectors, flow of S from 0 to T."""
    p = np.array([0.55, 0.15, 0.15, 0.15])
    task = sm.make_task(4, 40, p)
    model = sm.FeatureICL(4)
    objective = model.objective(task)

    def loss(xp, theta):
        nn = _nn(xp)
        S = theta.reshape(4, 4)
        logits = xp.asarray(task.log_counts)[:, None, :] + S.T[None, :, :]  # (C, k, n)
        err = nn.softmax(logits, 2) - xp.asarray(np.eye(4))[None, :, :]
        per = 0.5 * (err * err).sum(2)  # (C, k)
        return (xp.asarray(task.weights) @ per * xp.asarray(p)).sum()

    def run(**kw):
        return gradflow.simulate(objective, model.init(), T, record_at=[0.0, T],
                                 **kw).final_theta

    probe = model.init(rng=0, preset="normal")
    return Case(f"HCL softmax ICL (K = 4, N = 40, imbalanced), t = {T:g}", model.init(), T,
                0.1, loss, run, lambda: objective.gradient(probe))


def _nn(xp):
    """softmax / log_softmax / softplus with a (dim) argument for torch and jax alike."""
    if xp.__name__ == "torch":
        import torch

        return SimpleNamespace(softmax=lambda v, d: torch.softmax(v, dim=d),
                               log_softmax=lambda v, d: torch.log_softmax(v, dim=d),
                               softplus=torch.nn.functional.softplus)
    import jax

    return SimpleNamespace(softmax=lambda v, d: jax.nn.softmax(v, axis=d),
                           log_softmax=lambda v, d: jax.nn.log_softmax(v, axis=d),
                           softplus=jax.nn.softplus)


def _swap(xp, v):
    return v.transpose(1, 2) if xp.__name__ == "torch" else xp.swapaxes(v, 1, 2)


def relative_error(theta: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(theta - reference) / np.linalg.norm(reference))


def _direction(g, case: Case, t: float, xp):
    """The flow's right-hand side from a gradient: normalised and/or rate-boosted."""
    if case.normalize:
        g = g / (xp.sqrt((g * g).sum()) + 1e-300)
    if case.w_rate is not None:
        sl, rate, tau0 = case.w_rate
        if xp.__name__ == "torch":  # t is a Python float here
            if t < tau0:
                g = g.clone()
                g[sl] *= rate
        else:  # t is traced inside jit
            g = xp.where(t < tau0, g.at[sl].multiply(rate), g)
    return -g


@dataclass
class Runner:
    """One integration method made ready to time: ``run()`` returns θ(T) (compiled, warmed)."""

    method: str
    run: Callable[[], Any] | None
    compile: float = 0.0
    seconds: float | None = None  # set for methods timed once (the GD protocol)
    theta: Any = None
    failure: str | None = None


def gradflow_runners(case: Case, method: str, rtol: float, atol: float) -> list[Runner]:
    return [Runner(f"gradflow {method} ({clock} clock)",
                   lambda clock=clock: case.gradflow_run(clock=clock, method=method, rtol=rtol,
                                                         atol=atol))
            for clock in ("linear", "log")]


def torch_runners(case: Case, rtol: float, atol: float) -> list[Runner]:
    try:
        import torch
    except ImportError:
        return [Runner("PyTorch (not installed)", None, failure="not installed")]
    torch.set_num_threads(1)

    def grad(theta):
        theta = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(case.loss(torch, theta), theta)
        return g

    grad(torch.tensor(case.theta0))  # warm-up; GD is timed once (it can take tens of seconds)
    steps = round(case.T / case.lr)
    start = time.perf_counter()
    theta = torch.tensor(case.theta0)
    for k in range(steps):
        theta = theta + case.lr * _direction(grad(theta), case, k * case.lr, torch)
    gd = Runner(f"PyTorch autograd + {'normalised ' if case.normalize else ''}GD, "
                f"lr {case.lr} × {steps} (papers' protocol)", None,
                seconds=time.perf_counter() - start, theta=theta.numpy())
    try:
        from torchdiffeq import odeint
    except ImportError:
        return [gd, Runner("torchdiffeq (not installed)", None, failure="not installed")]

    def run():
        out = odeint(lambda t, th: _direction(grad(th), case, float(t), torch),
                     torch.tensor(case.theta0), torch.tensor([0.0, case.T], dtype=torch.float64),
                     method="dopri5", rtol=rtol, atol=atol,
                     options={"max_num_steps": MAX_STEPS})
        return out[-1].numpy()

    return [gd, _warmed(Runner("torchdiffeq dopri5 + autograd", run))]


def jax_runners(case: Case, rtol: float, atol: float) -> list[Runner]:
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return [Runner("JAX + diffrax (not installed)", None, failure="not installed")]
    jax.config.update("jax_enable_x64", True)
    grad = jax.grad(lambda th: case.loss(jnp, th))
    term = diffrax.ODETerm(lambda t, th, args: _direction(grad(th), case, t, jnp))
    jumps = [case.w_rate[2]] if case.w_rate is not None else None

    @jax.jit
    def solve(theta):
        controller = diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=jumps)
        sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), 0.0, case.T, None, theta,
                                  stepsize_controller=controller, max_steps=MAX_STEPS,
                                  saveat=diffrax.SaveAt(t1=True))
        return sol.ys[-1]

    def run():
        return np.asarray(solve(jnp.asarray(case.theta0)).block_until_ready())

    return [_warmed(Runner("JAX jit(grad) + diffrax Tsit5 (jitted)", run), compiles=True)]


def _warmed(runner: Runner, compiles: bool = False) -> Runner:
    """Run once as a warm-up; with ``compiles`` (JAX) the compile time is the first call's
    time minus a second, steady call's. A failure (e.g. the step cap) is recorded, not raised."""
    start = time.perf_counter()
    try:
        runner.theta = runner.run()
    except Exception as exc:  # reported in the table, not fatal
        runner.failure = f"failed: {str(exc).splitlines()[0][:70]}"
        runner.run = None
        return runner
    first = time.perf_counter() - start
    if compiles:
        start = time.perf_counter()
        runner.theta = runner.run()
        runner.compile = first - (time.perf_counter() - start)
    return runner


def time_rounds(runners: list[Runner], rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds: in each round every ready runner runs once in turn, so that a change
    of machine load affects all methods alike. Returns seconds per round for each method."""
    ready = [r for r in runners if r.run is not None]
    for r in ready:
        if r.theta is None:  # gradflow runners: warm up
            r.theta = r.run()
    times: dict[str, list[float]] = {r.method: [] for r in ready}
    for _ in range(max(1, rounds)):
        for r in ready:
            start = time.perf_counter()
            r.theta = r.run()
            times[r.method].append(time.perf_counter() - start)
    return times


def gradient_costs(case: Case, gradient, rounds: int):
    """ms per gradient: gradflow's closed form vs PyTorch autograd vs JAX jit(grad)."""
    reps = 200
    rows = [{"gradient": "gradflow closed form",
             "ms": 1e3 * median_time(lambda: [gradient() for _ in range(reps)], rounds)[0] / reps}]
    try:
        import torch

        t0 = torch.tensor(case.theta0)

        def torch_grad():
            for _ in range(reps):
                theta = t0.detach().requires_grad_(True)
                torch.autograd.grad(case.loss(torch, theta), theta)

        rows.append({"gradient": "PyTorch autograd",
                     "ms": 1e3 * median_time(torch_grad, rounds)[0] / reps})
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        g = jax.jit(jax.grad(lambda th: case.loss(jnp, th)))
        tj = jnp.asarray(case.theta0)
        rows.append({"gradient": "JAX jit(grad)", "ms": 1e3 * median_time(
            lambda: [g(tj).block_until_ready() for _ in range(reps)], rounds)[0] / reps})
    except ImportError:
        pass
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=float, default=300.0, help="co-occurrence horizon")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--out", default="bench_results/bench_peers.json")
    args = parser.parse_args()
    report = {}
    for name in args.cases:
        if name in SIZES:
            case = cooccurrence_case(name, args.T)
            method, rtol, atol = "RK45", 1e-6, 1e-9
        elif name == "ntp":
            case, method, rtol, atol = ntp_case(300.0), "LSODA", 1e-9, 1e-6
        elif name == "hcl":
            case, method, rtol, atol = hcl_case(2000.0), "LSODA", 1e-9, 1e-12
        else:
            case, method, rtol, atol = even_pairs_case(1e3), "LSODA", 1e-9, 1e-11
        reference = case.gradflow_run(method="DOP853", rtol=1e-11, atol=1e-14, clock="linear")
        runners = (gradflow_runners(case, method, rtol, atol) + torch_runners(case, rtol, atol)
                   + jax_runners(case, rtol, atol))
        times = time_rounds(runners, args.rounds)
        base = times[runners[0].method]
        rows, table = [], []
        for r in runners:
            row = {"method": r.method, "compile": r.compile}
            if r.failure is not None:
                table.append([f"{r.method}: {r.failure}", "—", "—", "—", "—"])
                rows.append({**row, "failure": r.failure})
                continue
            row["error"] = relative_error(r.theta, reference)
            if r.method in times:  # interleaved rounds: median of the per-round ratios
                row["seconds_per_round"] = times[r.method]
                ratios = [t / b for t, b in zip(times[r.method], base, strict=True)]
                row["ratio_per_round"] = ratios
                row["seconds"], row["ratio"] = float(np.median(times[r.method])), float(
                    np.median(ratios))
                spread = f" ({min(ratios):.2f}–{max(ratios):.2f})"
            else:  # timed once
                row["seconds"], row["ratio"] = r.seconds, r.seconds / float(np.median(base))
                spread = " (one run)"
            rows.append(row)
            table.append([r.method, f"{row['seconds']:.3f}", f"{r.compile:.2f}",
                          f"{row['ratio']:.2f}{spread}", f"{row['error']:.1e}"])
        print(f"## {case.name}; rtol {rtol:g}, one thread, {args.rounds} interleaved rounds\n")
        print(markdown_table(["method", "median s", "compile s",
                              "time ratio to gradflow (median, range over rounds)",
                              "rel. error of θ(T)"], table))
        print()
        grads = gradient_costs(case, case.gradient, args.rounds)
        print(markdown_table(["gradient", "ms", "ratio to gradflow"],
                             [[g["gradient"], f"{g['ms']:.4f}", f"{g['ms'] / grads[0]['ms']:.2f}"]
                              for g in grads]))
        print()
        report[name] = {"case": case.name, "rtol": rtol, "atol": atol, "flow": rows,
                        "gradient": grads}
    print(f"wrote {write_json(args.out, report)}")


if __name__ == "__main__":
    main()
