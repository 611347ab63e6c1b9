"""The command line and the experiment configuration, end to end on small sizes."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_gradcheck import AttentionReadout, Modified

from gradflow import ArgumentError, Trajectory, cli
from gradflow.cli import main
from gradflow.registry import REGISTRY, get

SMALL = ["--set", "d=16", "--set", "m=8", "--set", "m1=8", "--set", "counts=6,2,2,2",
         "--set", "t_end=1e3", "--set", "per_decade=5"]


def test_list_shows_experiments_and_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "cooccurrence" in out and "s1_mult = 0.1" in out


def test_run_writes_trajectory_summary_and_figures_then_replots(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "cooccurrence", "--out", str(out), "--no-progress", *SMALL]) == 0
    for name in ("trajectory.npz", "summary.json", "figure1.png", "theory_checks.png"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["d"] == 16 and summary["config"]["counts"] == [6, 2, 2, 2]
    assert summary["phase1_end"] is not None and summary["phase1_end"] > 0
    assert set(summary["loss_at"]) == {"1", "300"}
    assert summary["solver"]["method"] == "RK45"
    traj = Trajectory.load(out / "trajectory.npz")
    assert traj.observables["KQ"].shape[1:] == (3, 3)
    assert np.isfinite(traj.observables["rate_constant"][1:]).all()
    (out / "figure1.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "figure1.png").exists()


def test_config_file_and_checkpointed_rerun(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('d = 16\nm = 8\nm1 = 8\ncounts = [6, 2, 2, 2]\nt_end = 100.0\n'
                      'checkpoint = true\nclock = "log"\n')
    out = tmp_path / "run"
    assert main(["run", "cooccurrence", "--config", str(config), "--out", str(out),
                 "--no-progress"]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert (out / "checkpoint" / "state.npz").exists()
    assert main(["run", "cooccurrence", "--config", str(config), "--out", str(out),
                 "--no-progress"]) == 0
    second = json.loads((out / "summary.json").read_text())
    assert second["solver"]["resumed"] == 1  # finished run read back, not re-integrated
    assert second["loss_at"] == first["loss_at"]


def test_check_grad_command(capsys):
    assert main(["check-grad", "cooccurrence", "--set", "d=16", "--set", "m=8", "--set",
                 "m1=16", "--set", "counts=6,2,2,2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(": ok")
    for block in ("W_Q", "W_K", "W_V", "W", "all blocks"):  # a verdict and both errors per row
        row = next(line.split() for line in out.splitlines()
                   if line.strip().startswith(block + " "))
        assert row[-4] == "ok" and float(row[-3]) < 1e-12 and float(row[-2]) < 1e-5, row


def fake_experiment(objective, theta):
    """Stands in for a registered experiment: config() accepts nothing, objective() returns
    the given pair (the purpose-built cases of tests/test_gradcheck.py)."""
    return SimpleNamespace(config=lambda overrides: {}, objective=lambda config: (objective,
                                                                                  theta))


@pytest.mark.parametrize(
    ("case", "code", "verdict"),
    [("correct", 0, "ok"), ("times_two", 1, "mismatch"), ("saturated", 3, "unresolved"),
     ("underflow", 3, "zero")],
)
def test_check_grad_exit_codes(monkeypatch, capsys, case, code, verdict):
    scale, readout = {"saturated": (300.0, "naive"), "underflow": (3000.0, "helper")}.get(
        case, (1.0, "helper"))
    objective = AttentionReadout(scale, readout)
    theta = objective.theta()
    if case == "times_two":
        objective = Modified(objective, lambda layout, g: 2 * g)
    monkeypatch.setattr(cli.registry, "get", lambda name: fake_experiment(objective, theta))
    assert main(["check-grad", "attention"]) == code
    assert capsys.readouterr().out.splitlines()[0].endswith(": " + verdict)


@pytest.mark.parametrize(
    ("assignment", "match"),
    [
        ("dd=3", "no parameter 'dd'"),
        ("d=abc", "parameter 'd'"),
        ("d=2.5", "parameter 'd'"),
        ("init=xavier", "parameter 'init'"),
        ("counts=1,2", "parameter 'counts'"),
        ("rtol=-1", "parameter 'rtol'"),
        ("reduced=maybe", "parameter 'reduced'"),
        ("random_tokens=distinct", "parameter 'd'"),
        ("noequals", "key=value"),
    ],
)
def test_bad_settings_exit_2_naming_the_key(assignment, match, capsys):
    assert main(["run", "cooccurrence", "--set", assignment, "--no-progress"]) == 2
    assert match in capsys.readouterr().err


def test_experiment_config_validation_api():
    experiment = get("cooccurrence")
    config = experiment.config({"m": "16", "t_end": "1e4", "reduced": "true"})
    assert config["m"] == 16 and config["t_end"] == 1e4 and config["reduced"] is True
    with pytest.raises(ArgumentError, match="unknown experiment"):
        get("nope")


def test_ntp_experiment_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "ntp"
    assert main(["run", "ntp", "--out", str(out), "--no-progress", "--set", "T=60",
                 "--set", "stage1=all"]) == 0
    printed = capsys.readouterr().out
    assert "‖W_kq*‖² = 20.5" in printed and "10/10" in printed
    for name in ("stage1.npz", "stage2.npz", "summary.json", "convergence.png",
                 "attention_scores.png", "max_margin.npz"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_margin"]["W_ov_norm_sq"] == pytest.approx(7.0)
    assert len(summary["unseen"]) == 10
    assert main(["plot", str(out)]) == 0
    assert main(["run", "ntp", "--set", "fit_from=500", "--no-progress"]) == 2


def run_with(name, out, settings):
    args = ["run", name, "--out", str(out), "--no-progress"]
    for item in settings:
        args += ["--set", item]
    return main(args)


@pytest.mark.parametrize(
    ("name", "settings"),
    [("even_pairs", ["T=1e5", "T1=100"]), ("parity_cot", ["T=1e5", "T1=100", "L_max=4"])],
)
def test_regular_experiments_run(tmp_path, capsys, name, settings):
    out = tmp_path / name
    assert run_with(name, out, settings) == 0
    for file in ("trajectory.npz", "frozen_w_control.npz", "summary.json", "dynamics.png"):
        assert (out / file).exists(), file
    summary = json.loads((out / "summary.json").read_text())
    assert summary["separable_at"] and summary["frozen_W_control"]["monotone"]
    assert set(summary["parity_truncated_cot_accuracy"].values()) == {1.0}
    assert "separable at" in capsys.readouterr().out
    assert main(["plot", str(out)]) == 0


@pytest.mark.parametrize(
    ("name", "settings", "files"),
    [
        ("icl_balanced", ["K_values=4,8,12,16", "T=1e3"], ["balanced.png", "balanced_K4.npz"]),
        ("icl_imbalanced", ["N=12", "T=100"], ["imbalanced.png", "imbalanced.npz"]),
        ("icl_representations", ["H_values=2,4,5,8", "T=100"],
         ["representations.png", "heads_4.npz"]),
    ],
)
def test_icl_experiments_run_and_replot(tmp_path, name, settings, files):
    out = tmp_path / name
    assert run_with(name, out, settings) == 0
    for file in ["summary.json", *files]:
        assert (out / file).exists(), file
    (out / files[0]).unlink()
    assert main(["plot", str(out)]) == 0 and (out / files[0]).exists()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_check_grad_for_every_experiment(name, capsys):
    """`gradflow check-grad NAME` exits 0 (every block "ok") for every registered experiment
    at its default configuration — except icl_representations, whose paper initialisation
    w = 0 makes the Q-gradient exactly 0: "zero", exit 3, until checked off that point."""
    if name == "icl_representations":
        assert main(["check-grad", name]) == 3
        assert "Q  zero" in capsys.readouterr().out
        assert main(["check-grad", name, "--perturb", "0.1"]) == 0
    else:
        assert main(["check-grad", name]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": ok")


def test_degenerate_parity_run_keeps_its_trajectory_and_skips_the_impossible_control(
        tmp_path, capsys):
    """Reliability review B11: strings of length 2 only, no regulariser. h(W(T1)) is not
    separable (certified), so the frozen-W control has no u*(W(T1)): the run says so, keeps its
    trajectory and draws its figure (it used to end with an error and nothing saved)."""
    out = tmp_path / "pc"
    assert main(["run", "parity_cot", "--out", str(out), "--no-progress", "--set", "L0=2",
                 "--set", "L_max=2", "--set", "regularizer_max=0", "--set", "T=1e3",
                 "--set", "T1=100"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "not linearly separable" in summary["frozen_W_control"]["skipped"]
    assert (out / "trajectory.npz").exists() and (out / "dynamics.png").exists()
    assert "frozen-W control skipped" in capsys.readouterr().out


def test_run_that_ends_early_saves_its_partial_trajectory(tmp_path, capsys):
    """Reliability review B12/W8: an extreme start (s0_mult = 1e150) makes the first time
    scales ~1e-151; the run ends at its evaluation budget, exit 2, naming the time, with the
    partial trajectory in OUT/partial.npz (it used to run for ever without a word)."""
    out = tmp_path / "extreme"
    code = main(["run", "cooccurrence", "--out", str(out), "--no-progress", *SMALL,
                 "--set", "s0_mult=1e150", "--set", "max_nfev=2000"])
    err = capsys.readouterr().err
    assert code == 2 and "budget max_nfev=2000" in err and "partial.npz" in err
    assert Trajectory.load(out / "partial.npz").t.size >= 1


def test_checkpointed_run_stopped_by_its_budget_resumes_with_a_larger_one(tmp_path, capsys):
    """Work limits are not a run's identity: the same run with a larger max_nfev continues
    from the checkpoint the budget stop left (not refused as another run, not restarted)."""
    out = tmp_path / "budget"
    args = ["run", "cooccurrence", "--out", str(out), "--no-progress", "--checkpoint", *SMALL]
    assert main([*args, "--set", "max_nfev=150"]) == 2
    assert "budget max_nfev=150" in capsys.readouterr().err
    assert main([*args, "--set", "max_nfev=200000"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["solver"]["resumed"] >= 1 and summary["solver"]["status"] == "finished"
