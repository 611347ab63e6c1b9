"""simulate_ensemble: every member equals its own simulate, per-member accuracy (the worst
member's error norm), dropouts, budgets, checkpoints, bad input, and the batched-gradient hook.

The reference of every member is an independent route: its own single :func:`simulate` with the
same method and tolerances (and, for the accuracy comparisons, a DOP853 run at rtol 1e-13)."""

import json

import numpy as np
import pytest
from conftest import BlowUp, HalfSquaredNorm, LeastSquares
from numpy.testing import assert_allclose, assert_array_equal
from scipy.integrate import solve_ivp

import gradflow
from gradflow import (
    ArgumentError,
    BlowUpError,
    BudgetExceededError,
    CheckpointError,
    Event,
    Layout,
    NonFiniteError,
    ObservableError,
    simulate,
    simulate_ensemble,
)
from gradflow.checkpoint import load_npz, save_npz
from gradflow.papers import attention_svm as asvm
from gradflow.papers import regular as rg
from gradflow.testing import check_model

RTOL, ATOL = 1e-8, 1e-10
AGREE = 1e-6
"""Each member against its own simulate at rtol 1e-8, relative to max|θ|: both are RK45
solutions to that tolerance whose step sequences differ (the ensemble steps with its hardest
member), so each is within its global error, ~10-100 × rtol here, of the exact flow; a member
integrated to a looser tolerance (an RMS norm over B = 5 loosens it √5-fold, an error ~4× larger)
or a wrong member's gradient (an O(1) difference) fails it."""


def _even_pairs():
    data = rg.even_pairs(4)
    model = rg.RegularTransformer(d=data.d)
    return model, data


def _assert_member_equals_its_own_run(ens, b, objective, theta0, t_end, **kwargs):
    own = simulate(objective, theta0, t_end, **kwargs)
    member = ens.member(b)
    assert_allclose(member.t, own.t, rtol=AGREE)  # grid times exactly; an event's stop row
    assert_array_equal(member.t[:-1], own.t[:-1])  # to the tolerance
    scale = np.max(np.abs(own.theta))
    assert np.max(np.abs(member.theta - own.theta)) <= AGREE * scale, (b, member.stats)
    for name, values in own.observables.items():
        assert_allclose(member.observables[name], values, rtol=AGREE, atol=AGREE * scale)
    assert member.stats["status"] == own.stats["status"]
    for name, times in own.events.items():
        assert_allclose(member.events[name], times, rtol=AGREE)
    return own


def test_even_pairs_members_equal_their_own_simulate():
    """Shared data, five initial scales from 0.1 to 3 (0.1: slow; 3: fast, the step-setter),
    a non-terminal event and an observable: every member is its own RK45 run."""
    model, data = _even_pairs()
    objective = model.objective(data)
    rng = np.random.default_rng(0)
    thetas0 = rng.standard_normal((5, objective.layout.size)) * np.array(
        [0.1, 0.3, 1.0, 2.0, 3.0])[:, None]
    events = [Event("separable", lambda th: model.margins(
        objective.layout.unpack(th), data).min())]
    kwargs = dict(method="RK45", rtol=RTOL, atol=ATOL, observables={"loss": objective.value},
                  events=events)
    ens = simulate_ensemble(objective, thetas0, 1e3, **kwargs)
    assert ens.stats["route"] == "shared" and ens.ok.all()
    assert ens.theta.shape == (5, ens.t.size, objective.layout.size)
    assert ens.observables["loss"].shape == (5, ens.t.size)
    for b in range(5):
        _assert_member_equals_its_own_run(ens, b, objective, thetas0[b], 1e3, **kwargs)
    assert_array_equal(ens.final_theta(), ens.theta[:, -1])


def test_attention_svm_instances_with_their_own_data_equal_their_own_simulate():
    """Per-member data (four instances, one equal model): one batched_grad call with the list
    of data per stage (route "model"); log clock and a piecewise rate on W."""
    model = asvm.AttentionSVMModel(4)
    datas = [asvm.random_instance(4, 5, 4, rng=[7, i]) for i in range(4)]
    objectives = [model.objective(d) for d in datas]
    thetas0 = np.stack([model.init(rng=[7, i, 1]) for i in range(4)])
    kwargs = dict(method="DOP853", rtol=RTOL, atol=ATOL, clock="log",
                  rates={"W": [(0.0, 1.0), (5.0, 0.5)]})
    ens = simulate_ensemble(objectives, thetas0, 50.0, **kwargs)
    assert ens.stats["route"] == "model" and ens.ok.all()
    for b in range(4):
        _assert_member_equals_its_own_run(ens, b, objectives[b], thetas0[b], 50.0, **kwargs)


@pytest.mark.parametrize("normalize", ["global", "block"])
def test_normalised_members_equal_their_own_simulate(normalize):
    """Normalised flows, vectorised over the members (the batched scaled gradient, each member
    divided by its own norm): attention-SVM instances with their own data (route "model",
    Model.batched_scaled_grad) and even pairs with shared data and W at half rate."""
    model = asvm.AttentionSVMModel(4)
    datas = [asvm.random_instance(4, 5, 4, rng=[3, i]) for i in range(3)]
    objectives = [model.objective(d) for d in datas]
    thetas0 = np.stack([model.init(rng=[3, i, 1]) for i in range(3)])
    kwargs = dict(method="RK45", rtol=RTOL, atol=ATOL, normalize=normalize)
    ens = simulate_ensemble(objectives, thetas0, 20.0, **kwargs)
    assert ens.stats["route"] == "model"
    for b in range(3):
        _assert_member_equals_its_own_run(ens, b, objectives[b], thetas0[b], 20.0, **kwargs)
    ep, data = _even_pairs()
    objective = ep.objective(data)
    thetas0 = 0.5 * np.random.default_rng(2).standard_normal((3, objective.layout.size))
    kwargs.update(rates={"W": 0.5})
    ens = simulate_ensemble(objective, thetas0, 20.0, **kwargs)
    for b in range(3):
        _assert_member_equals_its_own_run(ens, b, objective, thetas0[b], 20.0, **kwargs)


def test_a_hard_member_keeps_its_own_accuracy_where_an_rms_norm_would_not():
    """One fast member among 49 saturated ones (their gradients ~1e-12): its error against a
    DOP853 reference at rtol 1e-13 is its own RK45 run's (the worst-member norm lets the easy
    members change nothing), while SciPy's RMS norm over the stacked state, the same RK45 on
    the same stacked field, is √49-fold looser for it: an error 9× larger (measured; 3.7×
    at B = 10, 21× at B = 200). So the bound below fails for the RMS norm."""
    model, data = _even_pairs()
    objective = model.objective(data)
    P = objective.layout.size
    rng = np.random.default_rng(0)
    hard = 2.0 * rng.standard_normal(P)
    far = simulate(objective, hard, 1e4, method="DOP853", rtol=1e-10, atol=1e-12,
                   record_at=[1e4]).final_theta
    B, T, rtol, atol = 50, 100.0, 1e-6, 1e-9
    thetas0 = 3 * far * (1 + 0.01 * rng.standard_normal((B, P)))
    thetas0[0] = hard
    exact = simulate(objective, hard, T, method="DOP853", rtol=1e-13, atol=1e-14,
                     record_at=[T]).final_theta
    own = simulate(objective, hard, T, method="RK45", rtol=rtol, atol=atol, record_at=[T])
    ens = simulate_ensemble(objective, thetas0, T, rtol=rtol, atol=atol, record_at=[T])
    rms = solve_ivp(lambda t, y: -objective.batched_gradient(y.reshape(B, P)).ravel(), (0, T),
                    thetas0.ravel(), method="RK45", rtol=rtol, atol=atol)
    error_own = np.max(np.abs(own.final_theta - exact))
    error_ens = np.max(np.abs(ens.final_theta(0) - exact))
    error_rms = np.max(np.abs(rms.y[:, -1].reshape(B, P)[0] - exact))
    # 1.5: the ensemble's first step and step sequence are the member's own up to the easy
    # members' extra initial-step evaluation (measured ratio 1.01)
    assert error_ens <= 1.5 * error_own, (error_ens, error_own)
    assert error_rms >= 4 * error_own, (error_rms, error_own)  # what the test guards against


# --------------------------------------------------------------------------- dropouts


class NaNAfter:
    """½‖θ − c‖² whose gradient is NaN once θ₀ > ``limit``: a member that fails mid-flow."""

    layout = Layout({"x": (3,)})

    def __init__(self, center, limit=np.inf):
        self.center, self.limit = np.asarray(center, dtype=float), limit

    def value(self, theta):
        return 0.5 * float((theta - self.center) @ (theta - self.center))

    def gradient(self, theta):
        g = theta - self.center
        return g * np.nan if theta[0] > self.limit else g


def test_members_that_fail_or_stop_drop_out_and_the_others_are_their_own_runs():
    """Member 1 turns non-finite at θ₀ = 0.5 (t = ln 2), member 2 stops at a terminal event,
    member 3 blows up (θ' = θ² from 1: t* = 1, the BlowUp objective's layout differs, so it
    runs in an ensemble of its own below); members 0 and 2 are their own simulate."""
    centers = [[0.3, 0, 0], [1.0, 0, 0], [-1.0, 2.0, 0]]
    objectives = [NaNAfter(centers[0]), NaNAfter(centers[1], limit=0.5), NaNAfter(centers[2])]
    thetas0 = np.zeros((3, 3))
    stop = Event("half", lambda th: th[1] - 1.0, terminal=True)
    kwargs = dict(method="RK45", rtol=RTOL, atol=ATOL, events=[stop],
                  observables={"x0": lambda th: th[0]})
    ens = simulate_ensemble(objectives, thetas0, 5.0, **kwargs)
    assert ens.stats["route"] == "loop"
    assert ens.stop_reasons == ["finished", "non-finite", "event"]
    assert ens.failed == [1]
    error = ens.errors[1]
    assert isinstance(error, NonFiniteError) and "member 1" in str(error)
    assert error.t == pytest.approx(np.log(2), rel=1e-3)  # θ₀ = 1 − e^{−t} crosses 0.5
    assert error.trajectory.stats["status"] == "failed: non-finite"
    with pytest.raises(NonFiniteError, match="member 1"):
        ens.final_theta(1)
    with pytest.raises(NonFiniteError):
        ens.final_theta()  # all members: refuses while one failed
    with pytest.raises(NonFiniteError):
        ens.member(1)
    partial = ens.member(1, partial=True)
    assert partial.t[-1] == pytest.approx(error.t) and np.all(partial.theta[:, 0] <= 0.5)
    assert np.all(np.isnan(ens.theta[1, ens.n_records[1]:]))  # nothing recorded after
    for b in (0, 2):
        own = _assert_member_equals_its_own_run(ens, b, objectives[b], thetas0[b], 5.0,
                                                **kwargs)
        assert_allclose(ens.final_theta(b), own.final_theta, atol=AGREE)
    assert ens.final_t[2] == pytest.approx(np.log(2), rel=1e-6)  # θ₁ = 2(1 − e^{−t}) = 1


def test_a_terminal_event_in_the_last_step_ends_its_member_and_the_run():
    """θ₀(t) = 1 − e^{−t} crosses 1 − e^{−0.999} inside the step that reaches t_end = 1 (loose
    tolerances: big steps); the member stops there and nothing is restarted past t_end (that
    restart once failed with SciPy's "first_step must be positive")."""
    objective = HalfSquaredNorm(center=np.ones(5))
    level = 1 - np.exp(-0.999)
    events = [[Event("late", lambda th: th[0] - level, terminal=True)],
              [Event("late", lambda th: th[0] - 2.0, terminal=True)]]
    ens = simulate_ensemble(objective, np.zeros((2, 5)), 1.0, rtol=1e-3, atol=1e-6,
                            record_at=[1.0], events=events)
    assert ens.stop_reasons == ["event", "finished"]
    assert ens.final_t[0] == pytest.approx(0.999, rel=1e-3)


def test_a_blowing_up_member_fails_alone():
    thetas0 = np.array([[1.0], [-1.0], [0.1]])  # θ' = θ²: blow-up at t = 1 and t = 10
    ens = simulate_ensemble(BlowUp(), thetas0, 5.0, rtol=1e-8, atol=1e-10)
    assert ens.stop_reasons[1:] == ["finished", "finished"]
    assert ens.stop_reasons[0] in ("blow-up", "non-finite")
    assert isinstance(ens.errors[0], BlowUpError | NonFiniteError)
    assert ens.errors[0].t == pytest.approx(1.0, rel=1e-3)
    assert_allclose(ens.final_theta(1), [-1.0 / 6.0], rtol=1e-6)  # θ = θ0/(1 − θ0 t)
    assert_allclose(ens.final_theta(2), [0.1 / 0.5], rtol=1e-6)


def test_an_observable_that_raises_fails_its_member_only():
    def bad(th):
        if th[0] > 0.2:
            raise RuntimeError("boom")
        return th[0]

    objective = NaNAfter([0.3, 0, 0])
    ens = simulate_ensemble(objective, np.array([[0.0, 0, 0], [0.0, 1, 0]]), 5.0,
                            observables=[{"o": bad}, {"o": lambda th: th[0]}])
    assert ens.stop_reasons == ["observable", "finished"]
    assert isinstance(ens.errors[0], ObservableError) and "boom" in str(ens.errors[0])


# --------------------------------------------------------------------------- budgets, checkpoints


class Kill(BaseException):
    """Raised by an observable: the process dies at a record time (no except clause sees it)."""


def _killer(at):
    calls = {"n": 0}

    def sq(theta):
        calls["n"] += 1
        if calls["n"] == at:
            raise Kill
        return float(theta @ theta)

    return {"sq": sq}


def test_killed_or_out_of_budget_runs_resume_bitwise(tmp_path):
    """Killed mid-run (after some segments were saved), and stopped by the shared max_nfev:
    the reruns resume and equal the uninterrupted run bit for bit; a member's terminal event
    is restored with it."""
    objectives = [LeastSquares(rng=i) for i in range(3)]
    thetas0 = np.random.default_rng(3).standard_normal((3, 5))
    kwargs = dict(method="DOP853", rtol=1e-9, atol=1e-12, clock="log",
                  record_at=gradflow.log_grid(100.0, per_decade=5),
                  events=[Event("e", lambda th: th @ th - 0.5, terminal=True)])
    whole = simulate_ensemble(objectives, thetas0, 100.0, observables=_killer(-1), **kwargs)
    with pytest.raises(Kill):
        simulate_ensemble(objectives, thetas0, 100.0, observables=_killer(45),
                          checkpoint=tmp_path / "a", **kwargs)
    resumed = simulate_ensemble(objectives, thetas0, 100.0, observables=_killer(-1),
                                checkpoint=tmp_path / "a", **kwargs)
    assert resumed.stats["resumed"] == 1
    stopped = simulate_ensemble(objectives, thetas0, 100.0, observables=_killer(-1),
                                checkpoint=tmp_path / "b", max_nfev=150, **kwargs)
    assert set(stopped.stop_reasons) >= {"budget"}
    assert all(isinstance(stopped.errors[b], BudgetExceededError)
               for b in range(3) if stopped.stop_reasons[b] == "budget")
    again = simulate_ensemble(objectives, thetas0, 100.0, observables=_killer(-1),
                              checkpoint=tmp_path / "b", **kwargs)
    for other in (resumed, again):
        assert_array_equal(other.theta, whole.theta)
        assert_array_equal(other.observables["sq"], whole.observables["sq"])
        assert_array_equal(other.final_state, whole.final_state)
        assert other.stop_reasons == whole.stop_reasons
        assert [e["e"].tolist() for e in other.events] == [e["e"].tolist() for e in whole.events]


def test_a_folder_of_another_ensemble_is_refused(tmp_path):
    objectives = [LeastSquares(rng=i) for i in range(2)]
    thetas0 = np.ones((2, 5))
    simulate_ensemble(objectives, thetas0, 1.0, checkpoint=tmp_path / "c")
    with pytest.raises(CheckpointError, match="theta0"):
        simulate_ensemble(objectives, 2 * thetas0, 1.0, checkpoint=tmp_path / "c")
    with pytest.raises(CheckpointError, match="objective"):
        simulate_ensemble(objectives[::-1], thetas0, 1.0, checkpoint=tmp_path / "c")
    with pytest.raises(CheckpointError, match="settings"):
        simulate_ensemble(objectives, thetas0, 1.0, rtol=1e-7, checkpoint=tmp_path / "c")
    with pytest.raises(CheckpointError, match="different run"):  # a single run's folder
        simulate(objectives[0], thetas0[0], 1.0, checkpoint=tmp_path / "c")
    state = tmp_path / "c" / "state.npz"
    for field, value, match in (("h", -1.0, "'h'"), ("active", [1], r"status\[1\]"),
                                ("kind", None, "ensemble")):
        arrays = load_npz(state, "state")
        meta = json.loads(str(arrays["meta"]))
        edited = {**meta, field: value}
        save_npz(state, {**arrays, "meta": np.array(json.dumps(edited))})
        with pytest.raises(CheckpointError, match=match):  # an edited state is refused
            simulate_ensemble(objectives, thetas0, 1.0, checkpoint=tmp_path / "c")
        save_npz(state, {**arrays, "meta": np.array(json.dumps(meta))})


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, match", [
    (lambda o: simulate_ensemble(o, np.ones(5), 1.0), r"thetas0 must have shape \(B, P\)"),
    (lambda o: simulate_ensemble(o, np.ones((2, 4)), 1.0), r"thetas0 .* \(B, 5\)"),
    (lambda o: simulate_ensemble(o, np.ones((0, 5)), 1.0), r"B >= 1"),
    (lambda o: simulate_ensemble([o, o, o], np.ones((2, 5)), 1.0), "3 objectives for B=2"),
    (lambda o: simulate_ensemble([o, BlowUp()], np.ones((2, 5)), 1.0), r"objective\[1\] has "
     "layout"),
    (lambda o: simulate_ensemble(o, np.array([[1.0] * 5, [np.nan] * 5]), 1.0),
     r"finite; members \[1\]"),
    (lambda o: simulate_ensemble(o, np.ones((2, 5)), 1.0, method="BDF"), "explicit"),
    (lambda o: simulate_ensemble(o, np.ones((2, 5)), 1.0, method="auto"), "gradflow.simulate"),
    (lambda o: simulate_ensemble(o, np.ones((2, 5)), 1.0, observables=[{}]),
     "one per member"),
    (lambda o: simulate_ensemble(o, np.ones((2, 5)), 1.0, events=[[], [Event("a", len)]]),
     r"events\[1\] differ"),
    (lambda o: simulate_ensemble([], np.ones((2, 5)), 1.0), "empty"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ArgumentError, match=match):
        call(LeastSquares())


# --------------------------------------------------------------------------- the hook


def test_default_batched_grad_loops_over_members_with_shared_or_per_member_data():
    model = asvm.AttentionSVMModel(3)
    datas = [asvm.random_instance(3, 4, 3, rng=i) for i in range(3)]
    thetas = np.random.default_rng(1).standard_normal((3, model.layout.size))
    params = model.layout.unpack_batch(thetas)
    shared = gradflow.Model.batched_grad(model, params, datas[0])
    per = gradflow.Model.batched_grad(model, params, datas)
    for b in range(3):
        one = model.layout.unpack(thetas[b])
        for name in model.layout.names:
            assert_array_equal(shared[name][b], model.grad(one, datas[0])[name])
            assert_array_equal(per[name][b], model.grad(one, datas[b])[name])
    # through the model's own batched_grad (an override agrees to rounding: rule 11)
    assert_allclose(model.objective(datas[0]).batched_gradient(thetas),
                    model.layout.pack_batch(shared), rtol=1e-10, atol=1e-14)
    with pytest.raises(ArgumentError, match="one per member"):
        gradflow.Model.batched_grad(model, params, datas[:2])


def test_check_model_catches_a_wrong_batched_grad():
    model, data = _even_pairs()

    class Wrong(rg.RegularTransformer):
        def batched_grad(self, params, data):
            out = super().batched_grad(params, data)
            out["u"] = out["u"][::-1]  # members swapped: a wrong member's gradient
            return out

    class Right(rg.RegularTransformer):
        def batched_grad(self, params, data):  # members in reverse, then put back
            out = super().batched_grad({k: v[::-1] for k, v in params.items()}, data)
            return {k: v[::-1] for k, v in out.items()}

    class WrongScaled(rg.RegularTransformer):
        def batched_scaled_grad(self, params, data):
            blocks, scales = super().batched_scaled_grad(params, data)
            # W off by a factor e (at member 0, the zero init, W's gradient is 0)
            return blocks, {k: v + (k == "W") for k, v in scales.items()}

    with pytest.raises(AssertionError, match=r"(?s)11\.batched_grad.*'W' of member 1"):
        check_model(WrongScaled(d=data.d), data)
    check_model(model, data)  # the default passes
    report = check_model(Right(d=data.d), data)
    assert "largest relative difference" in str(report.check("11.batched_grad"))
    with pytest.raises(AssertionError, match=r"(?s)11\.batched_grad.*member 0"):
        check_model(Wrong(d=data.d), data)


# --------------------------------------------------------------------------- sweeps


def _toy_objective(config):
    """NaNAfter with a seed-dependent centre; the seed ``bad`` fails (NaN past θ₀ = 0.5)."""
    seed = config["seed"]
    limit = 0.5 if seed == config["bad"] else np.inf
    return NaNAfter([1.0, 0.1 * seed, 0.0], limit=limit), np.zeros(3)


def _toy_outcome(traj):
    return gradflow.experiment.Outcome(trajectories={"trajectory": traj})


def _toy_train(config, out, progress=False):
    objective, theta0 = _toy_objective(config)
    return _toy_outcome(simulate(objective, theta0, 5.0, rtol=RTOL, atol=ATOL))


def _toy_train_ensemble(configs, outs, progress=False):
    built = [_toy_objective(c) for c in configs]
    ens = simulate_ensemble([o for o, _ in built], np.stack([t for _, t in built]), 5.0,
                            rtol=RTOL, atol=ATOL)
    return [ens.errors[b] or _toy_outcome(ens.member(b)) for b in range(len(configs))]


TOY = gradflow.Experiment(
    name="toy_ensemble", description="a test experiment",
    parameters=(gradflow.experiment.seed_parameter("seed", 0, "seed"),
                gradflow.experiment.Parameter("bad", -1, "the seed that fails")),
    objective=_toy_objective, train=_toy_train,
    summarize=lambda outcome, config: {"x1": float(
        outcome.trajectories["trajectory"].final_theta[1])},
    draw=lambda out: [], report=lambda summary: [],
    train_ensemble=_toy_train_ensemble, ensemble_keys=("seed",))


def test_a_seeds_sweep_runs_as_ensembles_and_a_members_failure_is_its_task_only(tmp_path):
    """Seeds 0-4 with seed 2 failing, ensembles of at most 3 (jobs [0, 1, 2], [3, 4]): the
    failing member is its task's error only, the others' summaries are those of the same
    sweep run task by task (to the tolerance), every task has its folder and runs.log line,
    and re-running the sweep retries only the failed task."""
    from concurrent.futures import ThreadPoolExecutor

    from gradflow.sweep import load_results, load_sweep, run_sweep

    sweep = {"experiment": "test_ensemble:TOY", "seed_key": "seed", "seeds": [0, 1, 2, 3, 4],
             "fixed": {"bad": 2}}
    spec = load_sweep(sweep)
    with ThreadPoolExecutor(1) as pool:
        grouped = run_sweep(spec, tmp_path / "g", executor=pool, ensemble=3)
        alone = run_sweep(spec, tmp_path / "a", executor=pool, ensemble=1)
    assert [r["status"] for r in grouped] == ["ok", "ok", "error", "ok", "ok"]
    # the failed member is run again alone: its record is its own run's, error and all (the
    # steps shrink against NaN trial points until they stop advancing t)
    kind = alone[2]["error"].split(":")[0]
    assert kind in ("StallError", "NonFiniteError"), alone[2]["error"]
    assert grouped[2]["error"] == alone[2]["error"]
    for g, a in zip(grouped, alone, strict=True):
        assert g["key"] == a["key"] and g["status"] == a["status"]
        if g["status"] == "ok":
            assert g["summary"]["x1"] == pytest.approx(a["summary"]["x1"], abs=AGREE)
            assert (tmp_path / "g" / "tasks" / g["key"] / "trajectory.npz").is_file()
        attempts = 2 if g["status"] == "error" else 1  # in the ensemble, then alone
        log = (tmp_path / "g" / "tasks" / g["key"] / "runs.log").read_text()
        assert log.count("\n") == attempts
    with ThreadPoolExecutor(1) as pool:
        run_sweep(spec, tmp_path / "g", executor=pool, ensemble=3)
    lines = load_results(tmp_path / "g")
    # compacted to the four ok lines, then the failed task again: the only one re-run
    assert len(lines) == 5 and lines[-1]["key"] == grouped[2]["key"]
    with pytest.raises(ArgumentError, match="ensemble"):
        run_sweep(spec, tmp_path / "x", ensemble=0)
    from gradflow.cli import build_parser

    args = build_parser().parse_args(["sweep", "f.toml", "--out", "o", "--ensemble", "4"])
    assert args.ensemble == 4


def test_the_experiments_ensembles_equal_their_tasks_run_alone():
    """cooccurrence (seeds of the data, the output signs and θ0: per-member models) and
    attention_svm_local (RK45; every instance of both seeds one member): each config's
    summary from train_ensemble is its train's, to the tolerance (rtol 1e-6 there: 1e-4 of
    the values leaves the two RK45 runs' global errors, measured 1e-6 relative)."""
    from gradflow import registry

    cases = [("cooccurrence", dict(d=12, L=4, counts=(4, 2, 2, 2), m=4, m1=8, t_end=100.0,
                                   per_decade=5), "init_seed",
              lambda s: [s["final"]["loss"], s["final"]["rho23"], s["phase1_end"]]),
             ("attention_svm_local", dict(instances=2, t_end=100.0, fit_from=10.0,
                                          method="RK45", n=4, T=4, d=4), "seed",
              lambda s: [s["one_minus_cos"]["100"]["median"], s["fitted"]["norm_slope_median"]])]
    for name, base, key, numbers in cases:
        experiment = registry.get(name)
        configs = [experiment.config({**base, key: s, **({"model_seed": s} if key ==
                                                          "init_seed" else {})})
                   for s in (1, 2)]
        assert experiment.ensemble_group(configs[0]) == experiment.ensemble_group(configs[1])
        outcomes = experiment.train_ensemble(configs, [None, None], False)
        for config, outcome in zip(configs, outcomes, strict=True):
            alone = experiment.summarize(experiment.train(config, None, False), config)
            together = experiment.summarize(outcome, config)
            assert_allclose(numbers(together), numbers(alone), rtol=1e-4)
    local = registry.get("attention_svm_local")
    assert local.ensemble_group(local.config({})) is None  # 'auto' (BDF): runs alone


def test_the_guides_example_runs():
    """The first code block of the guide's ensemble section, as written (its asserts: members
    × records, every member finished, member 0 equal to its own simulate)."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text()
    section = guide.split("## Ensembles: many seeds as one flow", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/guide.md", "exec"), {})


def _budget_objective(config):
    return HalfSquaredNorm(np.full(5, 1.0 + config["seed"])), np.zeros(5)


def _budget_train(config, out, progress=False):
    objective, theta0 = _budget_objective(config)
    return _toy_outcome(simulate(objective, theta0, 5.0, method="RK45", rtol=RTOL, atol=ATOL,
                                 **gradflow.experiment.budget_options(config)))


def _budget_train_ensemble(configs, outs, progress=False):
    built = [_budget_objective(c) for c in configs]
    ens = simulate_ensemble([o for o, _ in built], np.stack([t for _, t in built]), 5.0,
                            method="RK45", rtol=RTOL, atol=ATOL,
                            **gradflow.experiment.ensemble_solver_options(configs))
    return [ens.errors[b] or _toy_outcome(ens.member(b)) for b in range(len(configs))]


def test_a_task_that_fits_its_budget_alone_fits_it_in_an_ensemble_sweep(tmp_path):
    """Per-task work limits mean what they mean alone: the ensemble gets their sum, and a
    member that fails there anyway is rerun alone (the audit's case: max_nfev just above what
    each task needs, which the shared stacked count used to exceed)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradflow.sweep import load_sweep, run_sweep

    need = max(simulate(*_budget_objective({"seed": seed}), 5.0, method="RK45", rtol=RTOL,
                        atol=ATOL).stats["nfev"] for seed in range(4))
    toy = gradflow.Experiment(
        name="toy_budget", description="a test experiment",
        parameters=(gradflow.experiment.seed_parameter("seed", 0, "seed"),
                    *gradflow.experiment.BUDGET),
        objective=_budget_objective, train=_budget_train,
        summarize=lambda outcome, config: {"x0": float(
            outcome.trajectories["trajectory"].final_theta[0])},
        draw=lambda out: [], report=lambda summary: [],
        train_ensemble=_budget_train_ensemble, ensemble_keys=("seed",))
    globals()["TOY_BUDGET"] = toy
    spec = load_sweep({"experiment": "test_ensemble:TOY_BUDGET", "seed_key": "seed",
                       "seeds": [0, 1, 2, 3], "fixed": {"max_nfev": need + 2}})
    with ThreadPoolExecutor(1) as pool:
        grouped = run_sweep(spec, tmp_path / "g", executor=pool, ensemble=4)
        alone = run_sweep(spec, tmp_path / "a", executor=pool, ensemble=1)
    assert [r["status"] for r in alone] == ["ok"] * 4
    assert [r["status"] for r in grouped] == ["ok"] * 4, [r["error"] for r in grouped]


def test_a_complex_observable_of_a_later_member_keeps_its_imaginary_part():
    """The records take the first value's dtype; a member whose observable is complex where
    member 0's was real must not be cast to real (the audit: np.linalg.eigvals)."""
    objective = HalfSquaredNorm()
    thetas0 = np.array([[1.0, 0, 0, 2.0, 0], [0.0, -1, 1, 0, 0]])
    eig = {"eig": lambda th: np.linalg.eigvals(th[:4].reshape(2, 2))}
    ens = simulate_ensemble(objective, thetas0, 1.0, method="RK45", observables=eig)
    alone = simulate(objective, thetas0[1], 1.0, method="RK45", observables=eig)
    assert ens.observables["eig"].dtype.kind == "c"
    assert_allclose(np.sort_complex(ens.member(1).observables["eig"][-1]),
                    np.sort_complex(alone.observables["eig"][-1]), rtol=AGREE)


def test_batched_gradients_see_a_dataset_changed_in_place():
    """The stacked per-member data are cached by the datasets' identity; a dataset changed in
    place since must not be integrated as the old one."""
    model = asvm.AttentionSVMModel(10)
    datas = [asvm.random_instance(6, 8, 10, rng=[0, i]) for i in range(3)]
    objectives = [model.objective(d) for d in datas]
    thetas0 = np.stack([model.init(rng=[0, i, 1]) for i in range(3)])
    kwargs = dict(method="RK45", rtol=RTOL, atol=ATOL)
    simulate_ensemble(objectives, thetas0, 5.0, **kwargs)
    datas[0].X[...] *= 2.0
    ens = simulate_ensemble(objectives, thetas0, 5.0, **kwargs)
    assert ens.stats["route"] == "model"
    _assert_member_equals_its_own_run(ens, 0, objectives[0], thetas0[0], 5.0, **kwargs)


def test_a_checkpointed_ensemble_whose_every_observable_failed_still_saves(tmp_path):
    def boom(theta):
        raise ValueError("boom")

    ens = simulate_ensemble(HalfSquaredNorm(), np.ones((2, 5)), 2.0, observables={"o": boom},
                            checkpoint=tmp_path / "ck", checkpoint_key="half-squared-norm")
    assert ens.stop_reasons == ["observable", "observable"]
    assert all(isinstance(e, ObservableError) for e in ens.errors)


def test_an_observable_failing_at_a_members_last_row_fails_that_member():
    """A member stopped by a terminal event between grid times gets an off-grid last row; if
    its observable raises there the member has failed (as its own simulate does), not
    "terminated" with the row quietly missing."""
    objective = HalfSquaredNorm()
    thetas0 = np.stack([np.full(5, 1.0), np.full(5, 2.0)])
    stop = Event("half", lambda th: th[0] - 0.5, terminal=True)  # member 0 at t = ln 2

    def picky(theta):
        if theta[0] < 0.51:  # only ever reached at member 0's stop
            raise ValueError("cannot observe here")
        return theta[0]

    kwargs = dict(method="RK45", rtol=RTOL, atol=ATOL, record_at=[0.0, 0.5, 1.0],
                  observables={"x": picky}, events=[stop])
    ens = simulate_ensemble(objective, thetas0, 1.0, **kwargs)  # member 1 ends at 2/e > 0.51
    with pytest.raises(ObservableError):
        simulate(objective, thetas0[0], 1.0, **kwargs)
    assert ens.status[0].startswith("failed") and isinstance(ens.errors[0], ObservableError)
    assert ens.status[1] == "finished"
