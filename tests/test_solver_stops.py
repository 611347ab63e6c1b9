"""How simulate ends: work limits, stalls, blow-ups, stiffness, gradient underflow, the
``"auto"`` rule, evaluation counts and the records it returns. Each case is purpose-built so
the exact reason is known, and each ends within seconds."""

import json

import numpy as np
import pytest
from conftest import HalfSquaredNorm, LeastSquares
from numpy.testing import assert_array_equal

import gradflow
from gradflow import (
    BlowUpError,
    BudgetExceededError,
    GradientUnderflowError,
    Layout,
    ObservableError,
    SolverError,
    StallError,
    StiffnessError,
    simulate,
    solve_max_margin,
)
from gradflow.numerics import logistic_loss, sigmoid
from gradflow.solvers import AUTO_EXPLICIT, AUTO_IMPLICIT, AUTO_IMPLICIT_STATE


class Field:
    """One block ``w`` with dθ/dt = −g(θ) and a constant loss: a right-hand side to order."""

    def __init__(self, g, n=1):
        self.g = g
        self.layout = Layout({"w": (n,)})
        self.calls = 0

    def value(self, theta):
        return 1.0 + 0.0 * theta[0]

    def gradient(self, theta):
        self.calls += 1
        return self.g(theta)

    def sample_losses(self, theta):
        return np.ones(1)


# ------------------------------------------------------------------ stop reasons


def test_evaluation_budget_stops_with_the_partial_trajectory_and_resumes(tmp_path):
    """A healthy flow given too small a budget stops with BudgetExceededError; the checkpoint
    keeps the last accepted state, so a rerun with a larger budget finishes, equal (bitwise,
    RK45) to a run that never stopped."""
    problem = LeastSquares()
    theta0 = np.ones(5)
    kwargs = dict(method="RK45", rtol=1e-9, atol=1e-12, record_at=gradflow.log_grid(30.0))
    with pytest.raises(BudgetExceededError) as info:
        simulate(problem, theta0, 30.0, max_nfev=300, checkpoint=tmp_path / "ck", **kwargs)
    err = info.value
    assert err.budget == "max_nfev" and not isinstance(err, StiffnessError)
    assert 0 < err.t < 30 and err.trajectory.t[-1] == pytest.approx(err.t)
    assert err.trajectory.stats["stop_reason"] == "budget"
    assert "max_nfev=300" in str(err) and f"t={err.t:.6g}" in str(err)
    assert (tmp_path / "ck" / "partial.npz").exists()
    resumed = simulate(problem, theta0, 30.0, max_nfev=10_000, checkpoint=tmp_path / "ck",
                       **kwargs)
    whole = simulate(problem, theta0, 30.0, **kwargs)
    assert resumed.stats["status"] == "finished" and resumed.stats["resumed"] == 1
    assert_array_equal(resumed.theta, whole.theta)


def test_wall_time_budget():
    with pytest.raises(BudgetExceededError, match="max_wall_time") as info:
        simulate(LeastSquares(), np.ones(5), 30.0, max_wall_time=1e-9)
    assert info.value.budget == "max_wall_time"


def test_explicit_method_on_a_stiff_flow_is_named_stiff():
    """dθ/dt = −diag(1e6, 1)·θ: RK45's steps are pinned at its stability limit (h·λ ≈ 3.3),
    ~3e8 steps to t = 1e3; the budget ends it as StiffnessError. "auto" integrates it."""
    stiff = Field(lambda th: np.array([1e6, 1.0]) * th, n=2)
    with pytest.raises(StiffnessError, match="stability limit"):
        simulate(stiff, np.ones(2), 1e3, method="RK45", max_nfev=20_000)
    traj = simulate(stiff, np.ones(2), 1e3)
    assert traj.stats["status"] == "finished"
    assert traj.final_theta[1] == pytest.approx(np.exp(-1e3), abs=1e-9)


@pytest.mark.parametrize("method", ["BDF", "LSODA", "auto"])
def test_chattering_field_stalls(method):
    """dθ/dt = −sign(θ) reaches 0 at t = 1 and then chatters: implicit steps collapse (a
    stall); "auto" starts with RK45, which creeps on in tiny steps until its budget."""
    with pytest.raises((StallError, SolverError)) as info:
        simulate(Field(np.sign), np.array([1.0]), 10.0, method=method, max_nfev=50_000)
    assert info.value.t == pytest.approx(1.0, abs=1e-3)
    assert not isinstance(info.value, BlowUpError)
    if method != "auto":
        assert not isinstance(info.value, BudgetExceededError)


@pytest.mark.parametrize("method", ["RK45", "LSODA", "BDF"])
def test_finite_time_blow_up_is_named(method):
    """dθ/dt = θ² from θ0 = 1 blows up at t = 1; LSODA used to loop for ever there."""
    with pytest.raises(BlowUpError) as info:
        simulate(Field(lambda th: -th**2), np.array([1.0]), 10.0, method=method)
    err = info.value
    assert 0.99 < err.t < 1.001
    assert err.trajectory.stats["stop_reason"] == "blow-up"
    assert err.trajectory.final_theta[0] > 100


# ------------------------------------------------------------------ gradient underflow


class LogisticRegression(gradflow.Model):
    """Mean logistic loss of margins y_i x_iᵀw on separable data; ``scaled`` selects the
    scaled-gradient hook (factoring out the largest σ(−m_i)) or the default."""

    def __init__(self, d, scaled):
        self.d, self.scaled = d, scaled

    @property
    def layout(self):
        return Layout({"w": (self.d,)})

    def init(self, rng=None, preset="zero"):
        return self.layout.zeros()

    def check_data(self, data):
        pass

    def observables(self, data):
        return {}

    def sample_losses(self, params, data):
        X, y = data
        return logistic_loss(y * (X @ params["w"])) / len(y)

    def grad(self, params, data):
        X, y = data
        return {"w": -(sigmoid(-y * (X @ params["w"])) * y) @ X / len(y)}

    def scaled_grad(self, params, data):
        if not self.scaled:
            return super().scaled_grad(params, data)
        X, y = data
        log_weight = -np.logaddexp(0.0, y * (X @ params["w"]))  # log σ(−m_i)
        top = float(log_weight.max())
        return {"w": -(np.exp(log_weight - top) * y) @ X / len(y)}, {"w": top}


def _separable(n=12, d=3, rng=0):
    gen = np.random.default_rng(rng)
    X = gen.standard_normal((n, d))
    y = np.sign(X @ np.array([1.0, -2.0, 0.5]))
    return X, y


def test_normalised_flow_without_the_scaled_hook_raises_gradient_underflow():
    """The unit-speed flow has ‖w‖ ≈ t, so σ(−margin) < 1e-292 once γ·t ≳ 670 (γ the SVM
    margin; the smallest-margin sample's weight σ(−γ‖w‖)/n then falls below 1e-292): the plain
    gradient underflows, and the flow used to freeze and say "finished". Trial points of the
    implicit solver lie far ahead (its steps grow ∝ t) and underflow first; only an accepted
    state that underflows ends the run, so the time is within [600/γ, 700/γ]."""
    data = _separable()
    gamma = solve_max_margin(data[1][:, None] * data[0]).margin
    model = LogisticRegression(3, scaled=False)
    with pytest.raises(GradientUnderflowError) as info:
        simulate(model.objective(data), model.init(), 1e5, normalize="global")
    err = info.value
    assert 600 / gamma < err.t < 700 / gamma
    assert err.block == "*" and "scaled_grad" in str(err)
    assert err.trajectory.t[-1] == pytest.approx(err.t)
    assert err.trajectory.stats["stop_reason"] == "gradient underflow"


def test_normalised_flow_with_the_scaled_hook_converges_past_the_underflow_point():
    """With the hook the direction keeps converging to the SVM direction (solved
    independently by solve_max_margin) far past t ≈ 700/γ."""
    X, y = _separable()
    w_svm = solve_max_margin(y[:, None] * X).w
    model = LogisticRegression(3, scaled=True)
    cos_gap = lambda th: 1 - th @ w_svm / np.linalg.norm(th) / np.linalg.norm(w_svm)  # noqa: E731
    traj = simulate(model.objective((X, y)), model.init(), 1e5, normalize="global",
                    observables={"gap": lambda th: cos_gap(th) if th.any() else 1.0})
    gap = traj.observables["gap"]
    assert traj.stats["status"] == "finished"
    assert gap[-1] < 1e-6 and gap[-1] < gap[traj.t >= 1e3][0] / 10


def test_exactly_zero_block_gradient_at_an_ordinary_loss_is_a_stationary_block():
    """A block whose gradient is exactly 0 while the loss is O(1) (a symmetric start) stays
    put under block normalisation: no underflow error."""
    traj = simulate(HalfSquaredNorm(), np.array([3.0, 4.0, 0.0, 0.0, 0.0]), 1.0,
                    normalize="block")
    assert_array_equal(traj.block("b")[-1], 0.0)


# ------------------------------------------------------------------ auto, counts, records


def test_auto_picks_by_flow_type_and_state_size_and_records_the_choice():
    """Plain flows start explicit; normalised flows on small states implicit, on large states
    explicit (solvers.auto_method)."""
    plain = simulate(LeastSquares(), np.ones(5), 1.0)
    assert plain.stats["method"] == AUTO_EXPLICIT and plain.stats["method_requested"] == "auto"
    assert plain.stats["switches"] == []
    small = simulate(HalfSquaredNorm(), np.full(5, 10.0), 1.0, normalize="global")
    assert small.stats["method"] == AUTO_IMPLICIT
    big = HalfSquaredNorm(center=np.zeros(AUTO_IMPLICIT_STATE + 1))
    big.layout = Layout({"w": (AUTO_IMPLICIT_STATE + 1,)})
    traj = simulate(big, np.full(AUTO_IMPLICIT_STATE + 1, 10.0), 1.0, normalize="global")
    assert traj.stats["method"] == AUTO_EXPLICIT and traj.stats["switches"] == []


def test_auto_switches_an_explicit_start_to_implicit_when_the_flow_is_stiff():
    """A plain flow starts explicit; stiffness (one fast coordinate) switches it to the
    implicit method, and the switch is in stats."""
    n = 50
    rates = np.ones(n)
    rates[0] = 1e5
    stiff = Field(lambda th: rates * th, n=n)
    traj = simulate(stiff, np.ones(n), 100.0, max_nfev=50_000)
    assert traj.stats["method"] == AUTO_IMPLICIT
    [switch] = traj.stats["switches"]
    assert switch["from"] == AUTO_EXPLICIT and "stability limit" in switch["why"]
    assert traj.final_theta[1] == pytest.approx(np.exp(-100.0), abs=1e-9)


@pytest.mark.parametrize("method", ["RK45", "LSODA", "BDF", "Radau", "auto"])
def test_nfev_counts_every_objective_evaluation(method):
    """Jacobian columns included: stats["nfev"] equals the calls the objective saw."""
    problem = LeastSquares()
    calls = {"n": 0}
    gradient = problem.gradient

    def counted(theta):
        calls["n"] += 1
        return gradient(theta)

    problem.gradient = counted
    traj = simulate(problem, np.ones(5), 10.0, method=method)
    assert traj.stats["nfev"] == calls["n"]
    json.dumps(traj.stats)  # only JSON types


def test_observable_that_changes_shape_raises_with_the_rows_before():
    calls = {"n": 0}

    def wobbly(theta):
        calls["n"] += 1
        return np.ones(2 if calls["n"] < 30 else 3)

    with pytest.raises(ObservableError, match=r"'x'.*shape") as info:
        simulate(LeastSquares(), np.ones(5), 1e3, observables={"x": wobbly})
    assert info.value.trajectory.observables["x"].shape == (29, 2)


@pytest.mark.parametrize("value", [None, {"a": 1}, "text"])
def test_observable_of_non_numeric_type_is_refused(tmp_path, value):
    with pytest.raises(ObservableError, match="numeric"):
        simulate(LeastSquares(), np.ones(5), 10.0, observables={"x": lambda th: value},
                 checkpoint=tmp_path / "ck")


@pytest.mark.parametrize(("function", "match"), [
    (lambda th: float("nan"), "NaN"),
    (lambda th: th, "shape"),
    (lambda th: "x", "real number"),
])
def test_bad_event_values_name_the_event(function, match):
    with pytest.raises(ObservableError, match=rf"event 'e'.*{match}"):
        simulate(LeastSquares(), np.ones(5), 1.0, events=[gradflow.Event("e", function)])


def test_observable_raising_mid_run_keeps_the_rows_recorded():
    def failing(theta):
        if theta[0] < 0.9:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(ObservableError, match="boom") as info:
        simulate(HalfSquaredNorm(), np.ones(5), 10.0, observables={"x": failing})
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.trajectory.t.size > 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_nfev": 0}, "max_nfev"),
    ({"max_nfev": 2.5}, "max_nfev"),
    ({"max_wall_time": -1.0}, "max_wall_time"),
    ({"rtol": 10.0}, "rtol"),
    ({"rtol": 1e-300}, "rtol"),
    ({"rtol": "1e-6"}, "rtol"),
    ({"t_end": "abc"}, "t_end"),
    ({"t_end": None}, "t_end"),
    ({"store_theta": "no"}, "store_theta"),
])
def test_bad_budget_and_tolerance_arguments(kwargs, match):
    args = {"t_end": 1.0, **kwargs}
    with pytest.raises(gradflow.ArgumentError, match=match):
        simulate(HalfSquaredNorm(), np.zeros(5), args.pop("t_end"), **args)


def test_nan_at_a_trial_point_is_reported_as_non_finite():
    """Reliability review W7: a gradient that turns NaN beyond θ = 2 made RK45 fail with a
    step-size message; the error now names the non-finite field."""
    field = Field(lambda th: np.where(th > 2, np.nan, -1.0))
    with pytest.raises(gradflow.NonFiniteError) as info:
        simulate(field, np.array([0.0]), 10.0, method="RK45")
    assert info.value.t == pytest.approx(2.0, abs=0.1)


def test_gradient_of_the_wrong_shape_is_named():
    with pytest.raises(gradflow.ArgumentError, match=r"returned shape \(3,\)"):
        simulate(Field(lambda th: np.ones(3)), np.array([0.0]), 1.0)
