"""Do many seeds cost less as one ensemble flow than as many flows, and less than JAX?

B = 1, 10, 100, 1000 members of four flows — even pairs (seeds of the initialisation, the
paper's two-phase rates), NTP random instances (one instance per member), the HCL softmax-ICL
population loss (seeds of the initialisation) and the attention-SVM model (one random instance
and initialisation per member) — each integrated by:

* gradflow ``simulate_ensemble`` (one stacked RK45 state, batched closed-form gradients);
* B sequential gradflow ``simulate`` runs (RK45; measured on at most ``--sequential-cap``
  members and scaled to B, which the table marks);
* JAX ``vmap`` of a jitted diffrax ``Tsit5`` solve with ``jax.grad`` of the loss (compile time
  reported separately from the steady state);
* PyTorch batched gradient descent (``torch.func.vmap`` of ``torch.func.grad``, the papers'
  protocol: lr × t_end/lr steps), timed once.

Every adaptive method uses the same rtol/atol and t_end; the max per-member deviation of θ(t_end)
from the ensemble's is printed (relative to the member's max |θ|). One thread each (BLAS/OpenMP/
XLA pinned before import, ``torch.set_num_threads(1)``). Before the flows, the per-member cost of
every model's ``batched_grad`` against B separate ``grad`` calls. Ratios are per row, in one run:
a method's time over the ensemble's (> 1: the ensemble is faster). Peers come from the optional
extra ``bench``; a missing peer is reported, not fatal. This is a benchmark, not a test.

    python scripts/bench_ensemble.py [--sizes 1 10 100 1000] [--quick] [--json PATH]
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
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from benchutil import markdown_table, write_json  # noqa: E402

import gradflow  # noqa: E402
from gradflow.papers import attention_svm as asvm  # noqa: E402
from gradflow.papers import cooccurrence as cooc  # noqa: E402
from gradflow.papers import ntp  # noqa: E402
from gradflow.papers import regular as rg  # noqa: E402
from gradflow.papers import softmax_icl as sm  # noqa: E402

RTOL, ATOL = 1e-8, 1e-10
"""The adaptive methods' tolerances (every method, every case)."""

PROBE_STEPS = 200
"""GD steps timed (3 when they are slow) before deciding whether the whole run fits the peer
budget."""

MAX_STEPS = 200_000
"""diffrax's step cap (gradflow's runs here take at most a few thousand steps)."""

CASES = ["even_pairs", "ntp", "hcl", "attention_svm"]


@dataclass
class Case:
    """B members of one flow: the model, the data (one dataset shared, or one per member),
    θ0 (B, P), the horizon, gradflow's rates, and the same flow for the peers — NumPy arrays
    of the data (``arrays``: a leading member axis when ``per_member``) and the loss of one
    member written in the peer's array module ``xp`` (``loss(xp, nn, theta, arrays)``)."""

    name: str
    model: Any
    data: Any
    per_member: bool
    thetas0: np.ndarray
    t_end: float
    lr: float
    arrays: dict[str, np.ndarray]
    loss: Callable[..., Any]
    rates: dict[str, Any] | None = None
    boost: tuple[np.ndarray, float] | None = None  # (rate per entry before tau0, tau0)

    @property
    def B(self) -> int:
        return self.thetas0.shape[0]

    def objectives(self) -> Any:
        if self.per_member:
            return [self.model.objective(d) for d in self.data]
        return self.model.objective(self.data)

    def objective(self, b: int) -> Any:
        return self.model.objective(self.data[b] if self.per_member else self.data)


# ------------------------------------------------------------------------------ the cases


def even_pairs_case(B: int) -> Case:
    """Even pairs (L_max = 6, 156 parameters), seeds of the N(0, 0.01²) initialisation, the
    paper's rates (W at λ = 2 until τ0 = 10), to t = 1e3."""
    data = rg.even_pairs(6)
    model = rg.RegularTransformer(data.d, lam=2.0)
    thetas0 = np.stack([model.init(rng=b, preset="normal") for b in range(B)])
    rate = np.ones(model.layout.size)
    rate[model.layout.slices["W"]] = 2.0
    d = data.d

    def loss(xp, nn, theta, a):
        u, W = theta[:d], theta[d:].reshape(d, d)
        s = a["X"] @ u
        scores = xp.where(a["mask"], (a["X"] @ (W @ a["Q"].T).T[:, :, None])[:, :, 0] / 2.0,
                          -1e30)
        f = (nn.softmax(scores) * s).sum(-1)
        return (a["weights"] * nn.softplus(-a["y"] * f)).sum()

    arrays = {"X": data.X, "Q": data.Q, "mask": data.mask, "y": data.y, "weights": data.weights}
    return Case(f"even pairs (L_max = 6, {model.layout.size} parameters), t = 1e3", model, data,
                False, thetas0, 1e3, 0.1, arrays, loss, rates=rg.phase_rates(2.0, 10.0),
                boost=(rate, 10.0))


def ntp_case(B: int) -> Case:
    """NTP random instances (K = 16: 512 parameters; 22-30 sentences of 2-6 tokens), one per
    member, both blocks from zero by the plain flow, to t = 100."""
    model = ntp.NTPTransformer(16)
    data = [ntp.random_instance(rng=1000 + b) for b in range(B)]
    thetas0 = np.zeros((B, model.layout.size))
    N = max(x.n for x in data)
    L = max(x.tokens.shape[1] for x in data)
    X = np.zeros((B, N, L, 16))
    mask = np.zeros((B, N, L), dtype=bool)
    mask[:, :, 0] = True  # padding sentences: one (zero) token, weight 0
    Q, y, weight = np.zeros((B, N, 16)), np.zeros((B, N), dtype=int), np.zeros((B, N))
    for b, x in enumerate(data):
        X[b, : x.n, : x.X.shape[1]] = x.X
        mask[b, : x.n, : x.X.shape[1]] = x.mask
        Q[b, : x.n], y[b, : x.n], weight[b, : x.n] = x.Q, x.y, 1.0 / x.n
    onehot = np.eye(16)[y]

    def loss(xp, nn, theta, a):
        W_kq, W_ov = theta[:256].reshape(16, 16), theta[256:].reshape(16, 16)
        s = xp.where(a["mask"], (a["X"] @ (W_kq @ a["Q"].T).T[:, :, None])[:, :, 0], -1e30)
        h = (nn.softmax(s)[:, :, None] * a["X"]).sum(1)
        log_p = nn.log_softmax(h @ W_ov.T)  # E = I: the logits are W_ov h
        return -(a["weight"] * (log_p * a["onehot"]).sum(-1)).sum()

    arrays = {"X": X, "Q": Q, "mask": mask, "onehot": onehot, "weight": weight}
    return Case(f"NTP random instances (K = 16, {model.layout.size} parameters, one instance "
                "per member), t = 100", model, data, True, thetas0, 100.0, 0.1, arrays, loss)


def hcl_case(B: int) -> Case:
    """HCL softmax ICL, imbalanced (K = 4, N = 20: 1,771 count vectors, p = .55/.15/.15/.15),
    seeds of an N(0, 0.5²) initialisation of S, to t = 200."""
    p = np.array([0.55, 0.15, 0.15, 0.15])
    task = sm.make_task(4, 20, p)
    model = sm.FeatureICL(4)
    thetas0 = np.stack([model.init(rng=b, preset="normal", scale=0.5) for b in range(B)])

    def loss(xp, nn, theta, a):
        S = theta.reshape(4, 4)
        logits = a["log_counts"][:, None, :] + S.T[None, :, :]  # (C, k, n)
        err = nn.softmax(logits) - a["eye"][None, :, :]
        return (a["weights"] @ (0.5 * (err * err).sum(-1)) * a["p"]).sum()

    arrays = {"log_counts": task.log_counts, "weights": task.weights, "p": p, "eye": np.eye(4)}
    return Case("HCL softmax ICL (K = 4, N = 20, imbalanced; 16 parameters), t = 200", model,
                task, False, thetas0, 200.0, 0.1, arrays, loss)


def attention_svm_case(B: int) -> Case:
    """The attention-SVM model (d = 10, W trained, fixed head, logistic loss; 100 parameters),
    one random instance (n = 6, T = 8) and authors' initialisation per member, the plain flow
    to t = 1e3 (the ensemble batches plain flows; the normalised one goes member by member)."""
    model = asvm.AttentionSVMModel(10)
    data = [asvm.random_instance(rng=2000 + b) for b in range(B)]
    thetas0 = np.stack([model.init(rng=3000 + b) for b in range(B)])

    def loss(xp, nn, theta, a):
        W = theta.reshape(10, 10)
        s = (a["X"] @ (a["z"] @ W.T)[:, :, None])[:, :, 0]  # x_itᵀ W z_i
        f = (nn.softmax(s) * (a["X"] @ a["v"])).sum(-1)
        return nn.softplus(-a["y"] * f).mean()

    arrays = {k: np.stack([getattr(x, k) for x in data]) for k in ("X", "z", "y", "v")}
    return Case(f"attention SVM (d = 10, {model.layout.size} parameters, one instance per "
                "member), plain flow, t = 1e3", model, data, True, thetas0, 1e3, 0.1, arrays,
                loss)


BUILDERS = {"even_pairs": even_pairs_case, "ntp": ntp_case, "hcl": hcl_case,
            "attention_svm": attention_svm_case}


# ------------------------------------------------------------------------------ gradients


def gradient_models() -> dict[str, tuple[Any, Callable[[int], Any], float]]:
    """Every model with a batched_grad override: (model, data for B members, weight scale)."""
    even = rg.even_pairs(6)
    hcl20, hcl40 = (sm.make_task(4, N, [0.55, 0.15, 0.15, 0.15]) for N in (20, 40))
    small = cooc.make_dataset(16, 5, (6, 2, 2, 2), rng=0)
    return {
        "even pairs (L_max = 6)": (rg.RegularTransformer(even.d), lambda B: even, 1.0),
        "NTP random instances (K = 16), per member": (
            ntp.NTPTransformer(16), lambda B: [ntp.random_instance(rng=b) for b in range(B)],
            1.0),
        "HCL FeatureICL (K = 4, N = 20)": (sm.FeatureICL(4), lambda B: hcl20, 0.5),
        "HCL FeatureICL (K = 4, N = 40)": (sm.FeatureICL(4), lambda B: hcl40, 0.5),
        "HCL BalancedICL (K = 4, N = 80)": (sm.BalancedICL(4), lambda B: None, 1.0),
        "attention SVM (d = 10), per member": (
            asvm.AttentionSVMModel(10),
            lambda B: [asvm.random_instance(rng=b) for b in range(B)], 0.3),
        "co-occurrence, small (d = m = m1 = 16)": (
            cooc.CooccurrenceTransformer(16, 16, 16, L=5, rng=0), lambda B: small, 0.3),
    }


def _per_call(fn: Callable[[], Any], budget: float = 0.3) -> float:
    """Median seconds per call of ``fn`` over ~``budget`` seconds, after one warm-up."""
    fn()
    times = []
    spent = 0.0
    while spent < budget or len(times) < 3:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
        if len(times) >= 200:
            break
    return float(np.median(times))


def _gradient_row(name: str, model: Any, data: Any, thetas: np.ndarray) -> dict[str, Any]:
    """µs per member of one batched_grad call of B members and of B grad calls."""
    layout = model.layout
    B = thetas.shape[0]
    params = layout.unpack_batch(thetas)
    batched = _per_call(lambda: model.batched_grad(params, data)) / B
    k = min(B, 50)  # B separate calls cost B × one: time k of them
    singles = [layout.unpack(theta) for theta in thetas[:k]]
    members = [data[b] if isinstance(data, list) else data for b in range(k)]
    loop = _per_call(lambda: [model.grad(p, d) for p, d in
                              zip(singles, members, strict=True)]) / k
    return {"model": name, "B": B, "batched_us": 1e6 * batched, "loop_us": 1e6 * loop,
            "speedup": loop / batched}


def gradient_costs(sizes: list[int]) -> list[dict[str, Any]]:
    """Per member: one batched_grad call of B members against B grad calls."""
    rows = []
    for name, (model, make_data, scale) in gradient_models().items():
        for B in sizes:
            thetas = scale * np.random.default_rng(B).standard_normal((B, model.layout.size))
            rows.append(_gradient_row(name, model, make_data(B), thetas))
    return rows


# ------------------------------------------------------------------------------ the flows


@dataclass
class Result:
    method: str
    seconds: float | None = None
    compile: float | None = None
    theta: np.ndarray | None = None  # (B, P), or the first members' rows
    note: str = ""
    failure: str | None = None


def run_ensemble(case: Case) -> Result:
    start = time.perf_counter()
    ens = gradflow.simulate_ensemble(case.objectives(), case.thetas0, case.t_end, method="RK45",
                                     rtol=RTOL, atol=ATOL, record_at=[0.0, case.t_end],
                                     rates=case.rates, store_theta=False)
    seconds = time.perf_counter() - start
    status = set(ens.status) if hasattr(ens, "status") else set()
    return Result("gradflow simulate_ensemble (RK45)", seconds, theta=ens.final_state,
                  note=f"route {ens.stats.get('route')}, {ens.stats.get('nfev')} stacked "
                       f"evaluations, status {sorted(map(str, status))}")


def run_sequential(case: Case, cap: int) -> Result:
    k = min(case.B, cap)
    thetas = []
    start = time.perf_counter()
    for b in range(k):
        traj = gradflow.simulate(case.objective(b), case.thetas0[b], case.t_end, method="RK45",
                                 rtol=RTOL, atol=ATOL, record_at=[0.0, case.t_end],
                                 rates=case.rates)
        thetas.append(traj.final_theta)
    seconds = (time.perf_counter() - start) * case.B / k
    note = "" if k == case.B else f"{k} of {case.B} members run, scaled ×{case.B / k:g}"
    return Result("B sequential gradflow simulate (RK45)", seconds, theta=np.stack(thetas),
                  note=note)


def _jax_nn():
    from types import SimpleNamespace

    import jax

    return SimpleNamespace(softmax=lambda v: jax.nn.softmax(v, axis=-1),
                           log_softmax=lambda v: jax.nn.log_softmax(v, axis=-1),
                           softplus=jax.nn.softplus)


def run_jax(case: Case) -> Result:
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return Result("JAX vmap + diffrax Tsit5", failure="not installed")
    jax.config.update("jax_enable_x64", True)
    nn = _jax_nn()
    grad = jax.grad(lambda th, a: case.loss(jnp, nn, th, a))
    boost = None if case.boost is None else (jnp.asarray(case.boost[0]), case.boost[1])

    def field(t, theta, a):
        g = grad(theta, a)
        if boost is not None:
            g = jnp.where(t < boost[1], g * boost[0], g)
        return -g

    term = diffrax.ODETerm(field)
    jumps = None if boost is None else [boost[1]]

    def solve(theta0, a):
        controller = diffrax.PIDController(rtol=RTOL, atol=ATOL, jump_ts=jumps)
        sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), 0.0, case.t_end, None, theta0, a,
                                  stepsize_controller=controller, max_steps=MAX_STEPS,
                                  saveat=diffrax.SaveAt(t1=True))
        return sol.ys[-1], sol.stats["num_steps"]

    arrays = {k: jnp.asarray(v) for k, v in case.arrays.items()}
    axes = 0 if case.per_member else None
    batched = jax.jit(jax.vmap(solve, in_axes=(0, axes)))
    thetas0 = jnp.asarray(case.thetas0)
    try:
        start = time.perf_counter()
        jax.block_until_ready(batched(thetas0, arrays))
        first = time.perf_counter() - start
        start = time.perf_counter()
        theta, steps = jax.block_until_ready(batched(thetas0, arrays))
        seconds = time.perf_counter() - start
    except Exception as exc:  # reported in the table, not fatal
        return Result("JAX vmap + diffrax Tsit5", failure=f"failed: {str(exc)[:70]}")
    steps = np.asarray(steps)
    return Result("JAX vmap(jit diffrax Tsit5 + grad), steady state", seconds,
                  compile=first - seconds, theta=np.asarray(theta),
                  note=f"steps per member {steps.min()}-{steps.max()} (6 evaluations each)")


def run_torch(case: Case, budget: float) -> Result:
    try:
        import torch
        from torch.func import grad, vmap
    except ImportError:
        return Result("PyTorch batched GD", failure="not installed")
    from types import SimpleNamespace

    torch.set_num_threads(1)
    nn = SimpleNamespace(softmax=lambda v: torch.softmax(v, dim=-1),
                         log_softmax=lambda v: torch.log_softmax(v, dim=-1),
                         softplus=torch.nn.functional.softplus)
    arrays = {k: torch.as_tensor(v) for k, v in case.arrays.items()}
    gradient = vmap(grad(lambda th, a: case.loss(torch, nn, th, a)),
                    in_dims=(0, 0 if case.per_member else None))
    boost = None if case.boost is None else torch.as_tensor(case.boost[0])
    steps = round(case.t_end / case.lr)
    theta = torch.as_tensor(case.thetas0.copy())
    gradient(theta, arrays)  # warm-up
    probe = min(steps, PROBE_STEPS)
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(steps):
            g = gradient(theta, arrays)
            if boost is not None and k * case.lr < case.boost[1]:
                g = g * boost
            theta = theta - case.lr * g
            done = k + 1
            if done in (3, probe):
                estimate = (time.perf_counter() - start) * steps / done
                if estimate > budget:  # every GD step costs the same: scale the first ones
                    return Result(f"PyTorch vmap(grad) + GD, lr {case.lr} × {steps}",
                                  estimate, note=f"timed {done} of {steps} steps, scaled "
                                                 "(over the peer budget)")
    seconds = time.perf_counter() - start
    return Result(f"PyTorch vmap(grad) + GD, lr {case.lr} × {steps}", seconds,
                  theta=theta.numpy(), note="first order in lr: not the flow's accuracy")


def deviation(theta: np.ndarray | None, reference: np.ndarray) -> float:
    """max over members of max|θ_b − θ_ref,b| / max|θ_ref,b| (on the rows given)."""
    if theta is None:
        return float("nan")
    ref = reference[: theta.shape[0]]
    scale = np.maximum(np.max(np.abs(ref), axis=1), 1e-300)
    return float(np.max(np.max(np.abs(theta - ref), axis=1) / scale))


def flow_rows(name: str, sizes: list[int], cap: int, peers: bool, budget: float
              ) -> list[dict[str, Any]]:
    rows = []
    per_member: dict[str, float] = {}  # JAX's seconds per member at the last B
    for B in sizes:
        case = BUILDERS[name](B)
        results = [run_ensemble(case), run_sequential(case, cap)]
        if peers:
            estimate = per_member.get("jax", 0.0) * B  # linear in B from the last B
            if estimate > budget:
                results.append(Result("JAX vmap + diffrax Tsit5", failure=(
                    f"skipped: ~{estimate:.0f} s estimated (> --peer-budget {budget:g} s)")))
            else:
                results.append(run_jax(case))
                if results[-1].seconds is not None:
                    per_member["jax"] = results[-1].seconds / B
            results.append(run_torch(case, budget))
        base = results[0]
        for r in results:
            row = {"case": name, "title": case.name, "B": B, "method": r.method,
                   "seconds": r.seconds, "compile": r.compile, "note": r.note,
                   "failure": r.failure}
            if r.failure is None:
                row["per_member_ms"] = 1e3 * r.seconds / B
                row["ratio_to_ensemble"] = r.seconds / base.seconds
                row["deviation"] = deviation(r.theta, base.theta)
            rows.append(row)
        print(f"  {name} B = {B}: " + ", ".join(
            f"{r.method.split(' (')[0]} {r.seconds:.3g} s" for r in results if r.seconds),
            flush=True)
    return rows


def flow_table(rows: list[dict[str, Any]]) -> str:
    ones = {(r["case"], r["method"]): r["per_member_ms"] for r in rows
            if r["B"] == min(x["B"] for x in rows) and r.get("per_member_ms")}
    table = []
    for r in rows:
        if r["failure"] is not None:
            table.append([r["B"], r["method"], "—", "—", "—", "—", "—", r["failure"]])
            continue
        fall = ones.get((r["case"], r["method"]), np.nan) / r["per_member_ms"]
        compile_s = ("" if r["compile"] is None else f" (+{r['compile']:.1f} s compile)"
                     if r["compile"] > 0 else " (compile below the timing noise)")
        table.append([r["B"], r["method"], f"{r['seconds']:.3g}{compile_s}",
                      f"{r['per_member_ms']:.3g}", f"{fall:.1f}",
                      f"{r['ratio_to_ensemble']:.2f}",
                      "—" if np.isnan(r["deviation"]) else f"{r['deviation']:.1e}",
                      r["note"]])
    return markdown_table(["B", "method", "s", "ms per member", "per-member fall from the "
                           "smallest B", "time / ensemble's", "max member deviation", "note"],
                          table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1, 10, 100 and at most 10 sequential runs")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--sequential-cap", type=int, default=100,
                        help="most sequential simulate runs per row (the rest scaled)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-budget", type=float, default=60.0,
                        help="seconds: skip JAX where its time extrapolated linearly from the "
                             "previous B exceeds it; time PyTorch GD on its first steps and "
                             "scale where its whole run would")
    parser.add_argument("--no-gradients", action="store_true")
    parser.add_argument("--json", default="bench_results/bench_ensemble.json")
    args = parser.parse_args()
    sizes = [1, 10, 100] if args.quick else sorted(args.sizes)
    cap = 10 if args.quick else args.sequential_cap
    report: dict[str, Any] = {"rtol": RTOL, "atol": ATOL, "sizes": sizes}
    if not args.no_gradients:
        grads = gradient_costs(sizes)
        print("## Per-member gradient cost: one batched_grad of B members vs B grad calls\n")
        print(markdown_table(["model", "B", "batched µs/member", "grad µs/member", "speedup"],
                             [[g["model"], g["B"], f"{g['batched_us']:.2f}",
                               f"{g['loop_us']:.2f}", f"{g['speedup']:.1f}"] for g in grads]))
        print(flush=True)
        report["gradients"] = grads
    report["flows"] = {}
    for name in args.cases:
        rows = flow_rows(name, sizes, cap, not args.no_peers, args.peer_budget)
        print(f"\n## {rows[0]['title']}; rtol {RTOL:g}, atol {ATOL:g}, one thread\n")
        print(flow_table(rows))
        print(flush=True)
        report["flows"][name] = rows
    print(f"wrote {write_json(args.json, report)}")


if __name__ == "__main__":
    main()
