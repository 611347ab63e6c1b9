"""The integrator against exact solutions; events, rates, normalisation, checkpoints, errors."""

import numpy as np
import pytest
from conftest import BlowUp, HalfSquaredNorm, LeastSquares
from numpy.testing import assert_allclose, assert_array_equal

import gradflow
from gradflow import (
    ArgumentError,
    CheckpointError,
    Event,
    NonFiniteError,
    SolverError,
    Trajectory,
    simulate,
)


def tolerance_units(y, y_exact, rtol, atol):
    """scipy's error measure ‖(y − y*)/(atol + rtol|y*|)‖/√n."""
    scaled = (y - y_exact) / (atol + rtol * np.abs(y_exact))
    return np.linalg.norm(scaled) / np.sqrt(y.size)


@pytest.mark.parametrize("clock", ["linear", "log"])
@pytest.mark.parametrize("method", ["RK45", "DOP853", "LSODA"])
def test_least_squares_flow_matches_matrix_exponential(least_squares, clock, method):
    """Global error within its bound at every record time; the evaluation budget bounds the
    cost of reaching the fixed point by t = 30 (about 1500 evaluations at rtol 1e-8 for the
    worst of these methods).

    The bound: the solvers keep each step's local error below one tolerance unit (scipy's RMS
    norm), and this flow contracts (H is positive definite), so the global error is at most
    the sum of the local errors committed so far, one unit per step, plus the dense output's
    interpolation error of the same order: 2 units per step. (DOP853 takes 29 large steps
    here and its 7th-order interpolant gives 26 units at t = 24 — within the bound.)"""
    theta0 = np.random.default_rng(1).standard_normal(least_squares.layout.size)
    rtol, atol = 1e-8, 1e-10
    traj = simulate(least_squares, theta0, 30.0, clock=clock, method=method, rtol=rtol, atol=atol)
    errors = [tolerance_units(y, least_squares.exact(theta0, t), rtol, atol)
              for t, y in zip(traj.t, traj.theta, strict=True)]
    assert max(errors) < 2 * traj.stats["steps"], (max(errors), traj.stats["steps"])
    assert traj.stats["nfev"] < 2000, traj.stats
    assert traj.t[0] == 0 and traj.t[-1] == 30.0
    assert traj.stats["clock"] == clock and traj.stats["method"] == method


def test_record_grid_is_respected_and_observables_stored(least_squares):
    grid = [0.0, 0.5, 1.0, 2.0]
    obs = {"loss": least_squares.value, "w": lambda th: th[:1]}
    traj = simulate(least_squares, np.zeros(5), 3.0, record_at=grid, observables=obs)
    assert_array_equal(traj.t, [0.0, 0.5, 1.0, 2.0, 3.0])  # t_end always added
    assert traj.observables["loss"].shape == (5,)
    assert traj.observables["w"].shape == (5, 1)
    assert np.all(np.diff(traj.observables["loss"]) < 0)
    assert_allclose(traj.observables["w"][:, 0], traj.block("w")[:, 0])
    assert traj.value_at("loss", 0.6) == traj.observables["loss"][1]  # nearest record: t = 0.5
    norms = least_squares.layout.block_norms(traj.final_theta)
    assert norms["B"] == pytest.approx(np.linalg.norm(traj.block("B")[-1]))


def test_log_grid_shape():
    grid = gradflow.log_grid(1e8)
    assert grid[0] == 0 and grid[1] == pytest.approx(1e-3) and grid[-1] == 1e8
    assert np.all(np.diff(grid) > 0)
    assert len(grid) == 1 + 110 + 1


@pytest.mark.parametrize("clock", ["linear", "log"])
def test_event_time_matches_closed_form(clock):
    """θ(t) = 3e^{−t} crosses 1 at t = ln 3; Brent's method on the dense output finds it to
    ~ the solver's local accuracy (rtol 1e-10)."""
    objective = HalfSquaredNorm()
    theta0 = np.array([3.0, 0, 0, 0, 0])
    falling = Event("below_one", lambda th: th[0] - 1.0, direction=-1)
    rising = Event("never", lambda th: th[0] - 1.0, direction=1)
    traj = simulate(objective, theta0, 5.0, clock=clock, rtol=1e-10, atol=1e-12,
                    events=[falling, rising])
    assert traj.events["below_one"].shape == (1,)
    assert traj.events["below_one"][0] == pytest.approx(np.log(3.0), rel=1e-8)
    assert traj.events["never"].size == 0


def test_terminal_event_stops_and_records_the_event_state():
    objective = HalfSquaredNorm()
    theta0 = np.array([3.0, 0, 0, 0, 0])
    stop = Event("below_one", lambda th: th[0] - 1.0, terminal=True)
    traj = simulate(objective, theta0, 10.0, rtol=1e-10, atol=1e-12, events=[stop])
    assert traj.t[-1] == pytest.approx(np.log(3.0), rel=1e-8)
    assert traj.final_theta[0] == pytest.approx(1.0, rel=1e-7)
    assert traj.stats["status"].startswith("terminated")


def test_global_normalised_flow_moves_at_unit_speed():
    """With L = ½‖θ‖², dθ/dt = −θ/‖θ‖: the norm falls as ‖θ0‖ − t, the direction is fixed."""
    theta0 = np.array([3.0, 4.0, 0.0, 0.0, 12.0])  # norm 13
    traj = simulate(HalfSquaredNorm(), theta0, 10.0, normalize="global", rtol=1e-10,
                    atol=1e-12, record_at=np.linspace(0, 10, 11))
    norms = np.linalg.norm(traj.theta, axis=1)
    assert_allclose(norms, 13.0 - traj.t, rtol=1e-8)
    assert_allclose(traj.theta / norms[:, None], np.tile(theta0 / 13, (11, 1)), atol=1e-9)


def test_block_normalisation_with_piecewise_rates():
    """Per-block normalised flow: each block's norm falls at its own rate. Block b is frozen
    until t = 1, then runs at rate 2; block a runs at rate 1 throughout."""
    theta0 = np.array([3.0, 4.0, 0.0, 6.0, 8.0])  # |a| = 5, |b| = 10
    rates = {"b": [(0.0, 0.0), (1.0, 2.0)]}
    grid = np.linspace(0, 3, 13)
    traj = simulate(HalfSquaredNorm(), theta0, 3.0, normalize="block", rates=rates,
                    rtol=1e-10, atol=1e-12, record_at=grid)
    norm_a = np.linalg.norm(traj.block("a"), axis=1)
    norm_b = np.linalg.norm(traj.block("b"), axis=1)
    assert_allclose(norm_a, 5.0 - traj.t, rtol=1e-8)
    assert_allclose(norm_b, 10.0 - 2.0 * np.clip(traj.t - 1.0, 0, None), rtol=1e-8)


def test_frozen_block_does_not_move(least_squares):
    theta0 = np.ones(5)
    traj = simulate(least_squares, theta0, 2.0, rates={"B": 0.0})
    assert_array_equal(traj.block("B")[-1], np.ones((2, 2)))
    assert not np.allclose(traj.block("w")[-1], 1.0)


class Interrupt(Exception):
    pass


def _interrupting(after_calls: int):
    calls = {"n": 0}

    def observable(theta):
        calls["n"] += 1
        if calls["n"] == after_calls:
            raise Interrupt
        return float(theta @ theta)

    return observable


@pytest.mark.parametrize("method", ["RK45", "DOP853"])
def test_checkpoint_resume_is_bitwise_identical(tmp_path, least_squares, method):
    theta0 = np.random.default_rng(3).standard_normal(5)
    kwargs = dict(method=method, rtol=1e-9, atol=1e-12, record_at=gradflow.log_grid(1e4))
    reference = simulate(least_squares, theta0, 1e4,
                         observables={"sq": lambda th: float(th @ th)}, **kwargs)
    with pytest.raises(gradflow.ObservableError) as info:
        simulate(least_squares, theta0, 1e4, observables={"sq": _interrupting(60)},
                 checkpoint=tmp_path / "ck", **kwargs)
    assert isinstance(info.value.__cause__, Interrupt)
    resumed = simulate(least_squares, theta0, 1e4, observables={"sq": _interrupting(-1)},
                       checkpoint=tmp_path / "ck", **kwargs)
    assert resumed.stats["resumed"] == 1
    assert_array_equal(resumed.t, reference.t)
    assert_array_equal(resumed.theta, reference.theta)
    assert_array_equal(resumed.observables["sq"], reference.observables["sq"])
    # a finished checkpoint is returned without integrating again
    again = simulate(least_squares, theta0, 1e4, observables={"sq": _interrupting(1)},
                     checkpoint=tmp_path / "ck", **kwargs)
    assert_array_equal(again.theta, reference.theta)


def test_checkpoint_of_another_run_is_refused(tmp_path, least_squares):
    simulate(least_squares, np.zeros(5), 1.0, checkpoint=tmp_path / "ck")
    with pytest.raises(CheckpointError, match="different run"):
        simulate(least_squares, np.ones(5), 1.0, checkpoint=tmp_path / "ck")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="folder"):
        simulate(least_squares, np.zeros(5), 1.0, checkpoint=tmp_path / "file")


def test_blow_up_raises_with_time_and_partial_trajectory(tmp_path):
    """θ' = θ² from θ0 = 1 blows up at t = 1."""
    with pytest.raises((NonFiniteError, SolverError)) as info:
        simulate(BlowUp(), np.array([1.0]), 2.0, record_at=np.linspace(0, 2, 21),
                 checkpoint=tmp_path / "ck", checkpoint_key="blow-up")
    err = info.value
    assert 0.9 < err.t <= 1.001  # the solver creeps just past t = 1 before it gives up
    assert isinstance(err.trajectory, Trajectory)
    assert err.trajectory.t[-1] == pytest.approx(err.t)
    assert err.trajectory.stats["status"].startswith("failed")
    assert (tmp_path / "ck" / "partial.npz").exists()
    assert "t=" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t_end": -1.0}, "t_end"),
        ({"t_end": np.inf}, "t_end"),
        ({"clock": "loglog"}, "clock"),
        ({"method": "Euler"}, "method"),
        ({"rtol": 0.0}, "rtol"),
        ({"atol": np.nan}, "atol"),
        ({"record_at": [0.0, 2.0, 1.0]}, "record_at"),
        ({"record_at": [0.0, 5.0]}, "record_at"),
        ({"rates": {"nope": 1.0}}, "nope"),
        ({"rates": {"a": -1.0}}, "rates"),
        ({"rates": {"a": [(0.5, 1.0)]}}, "start"),
        ({"normalize": "yes"}, "normalize"),
        ({"events": ["x"]}, "Event"),
        ({"observables": {"x": 3}}, "observables"),
        ({"theta0": np.zeros(4)}, "theta0"),
        ({"theta0": np.array([np.nan, 0, 0, 0, 0])}, "finite"),
        ({"method": "RK45", "solver_options": {"jacobian_step": 1e-6}}, "jacobian_step"),
        ({"method": "LSODA", "solver_options": {"jacobian_step": -1.0}}, "jacobian_step"),
    ],
)
def test_bad_arguments_raise_argument_error(kwargs, match):
    args = {"theta0": np.zeros(5), "t_end": 1.0, **kwargs}
    with pytest.raises(ArgumentError, match=match):
        simulate(HalfSquaredNorm(), args.pop("theta0"), args.pop("t_end"), **args)


def test_implicit_method_on_large_state_is_refused():
    big = HalfSquaredNorm(center=np.zeros(3000))
    big.layout = gradflow.Layout({"w": (3000,)})
    with pytest.raises(ArgumentError, match="dense"):
        simulate(big, np.ones(3000), 1.0, method="LSODA")
    traj = simulate(big, np.ones(3000), 1.0, method="LSODA",
                    solver_options={"lband": 0, "uband": 0})
    assert_allclose(traj.final_theta, np.exp(-1.0), rtol=1e-4)


def test_trajectory_save_load_roundtrip_and_foreign_files(tmp_path, least_squares):
    traj = simulate(least_squares, np.zeros(5), 1.0, observables={"loss": least_squares.value},
                    events=[Event("e", lambda th: th[0] - 1e-3)], config={"note": "x"})
    path = traj.save(tmp_path / "run" / "trajectory.npz")
    assert path.with_suffix(".json").exists()
    loaded = Trajectory.load(path)
    assert_array_equal(loaded.theta, traj.theta)
    assert_array_equal(loaded.observables["loss"], traj.observables["loss"])
    assert_array_equal(loaded.events["e"], traj.events["e"])
    assert loaded.layout == traj.layout and loaded.config["note"] == "x"
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        Trajectory.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a gradflow trajectory"):
        Trajectory.load(tmp_path / "foreign.npz")
    with pytest.raises(CheckpointError, match="no trajectory"):
        Trajectory.load(tmp_path / "missing.npz")


def test_least_squares_fixture_is_a_valid_objective(least_squares):
    assert isinstance(least_squares, gradflow.Objective)
    assert isinstance(LeastSquares(rng=2), gradflow.Objective)
