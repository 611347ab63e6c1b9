"""Bad input and a hostile environment at the command line and the API: no tracebacks, an
error naming the file or parameter (exit 2 for bad input, 1 for the environment), and nothing
already computed is lost. The cases are those of the reliability review (B9, B16, B17, B19,
B21, B22, B24, W3, W11, W12)."""

import errno
import json
import shutil

import matplotlib.figure
import numpy as np
import pytest

from gradflow import ArgumentError, Trajectory
from gradflow.cli import main

TINY = ["--no-progress", "--set", "d=8", "--set", "m=4", "--set", "m1=4", "--set",
        "counts=2,1,1,1", "--set", "t_end=10", "--set", "per_decade=2"]


def run(out, *settings):
    return main(["run", "cooccurrence", "--out", str(out), *TINY,
                 *[x for s in settings for x in ("--set", s)]])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny cooccurrence run folder (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert run(out) == 0
    return out


def copy_of(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / folder.name)


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gradflow: error: ")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------ B22: OSError


def test_out_naming_an_existing_file_is_refused_as_bad_input(tmp_path, capsys):
    """``--out`` naming a file is a wrong argument (exit 2), checked before anything is
    written; the file is left alone."""
    path = tmp_path / "taken"
    path.write_text("not a folder")
    assert run(path) == 2
    line = one_error_line(capsys)
    assert str(path) in line and "not a folder" in line
    assert path.read_text() == "not a folder"


def test_a_file_in_the_way_of_the_output_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert run(tmp_path / "file" / "sub") == 1
    assert str(tmp_path / "file" / "sub") in one_error_line(capsys)


def test_sweep_out_naming_a_file(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('experiment = "cooccurrence"\n[fixed]\nd = 8\n[grid]\nm = [4]\n')
    (tmp_path / "taken").write_text("")
    # a wrong argument (exit 2), refused before anything is written
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "taken"), "--workers", "1",
                 "--no-progress"]) == 2
    assert str(tmp_path / "taken") in one_error_line(capsys)


def disk_full_on(monkeypatch, suffix):
    """Writes of files whose name ends in ``suffix`` write a few bytes, then fail: ENOSPC."""
    real_open = open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return Full(fh) if "w" in mode and str(file).endswith(suffix) else fh

    monkeypatch.setattr("builtins.open", fake_open)


def test_disk_full_while_writing_the_summary_keeps_the_trajectory(tmp_path, monkeypatch,
                                                                  capsys):
    disk_full_on(monkeypatch, "summary.json.tmp")
    out = tmp_path / "full"
    assert run(out) == 1
    line = one_error_line(capsys)
    assert line == f"gradflow: error: {out / 'summary.json'}: No space left on device"
    monkeypatch.undo()
    assert Trajectory.load(out / "trajectory.npz").t[-1] == 10.0  # the work is kept
    # no partial file (gradflow.lock is the folder's lock, see docs/sweeps.md)
    assert sorted(p.name for p in out.iterdir()) == ["gradflow.lock", "run.json",
                                                     "trajectory.json", "trajectory.npz"]


def test_disk_full_or_read_only_while_drawing(finished, tmp_path, monkeypatch, capsys):
    out = copy_of(finished, tmp_path)
    before = (out / "figure1.png").read_bytes()

    def savefig(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG partial")
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    assert main(["plot", str(out)]) == 1
    assert one_error_line(capsys) == (f"gradflow: error: {out / 'figure1.png'}: Read-only "
                                      "file system")
    assert (out / "figure1.png").read_bytes() == before  # the old figure is intact
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_os_error_without_a_path_names_the_folder(tmp_path, monkeypatch, capsys):
    def save(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Trajectory, "save", save)
    assert run(tmp_path / "o") == 1
    assert one_error_line(capsys) == (f"gradflow: error: No space left on device (in "
                                      f"{tmp_path / 'o'})")


# ------------------------------------------------------------------ B19: config files


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"\xff\xfe garbage", "is not UTF-8"), (None, "is a folder")],
)
def test_unreadable_config_files_are_named(tmp_path, capsys, content, match):
    path = tmp_path / "bad.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert main(["run", "cooccurrence", "--config", str(path), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert f"config file {path}" in line and match in line


# ------------------------------------------------------------------ B24: plot's inputs


def test_plot_with_a_summary_that_is_not_json(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    (out / "summary.json").write_text('{"experiment": "cooccurrence", ')
    assert main(["plot", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(out / "summary.json") in line and "not a JSON file" in line


@pytest.mark.parametrize("summary", ['[1]', '{"experiment": 5}', '{"config": {}}'])
def test_plot_with_a_summary_of_the_wrong_shape(finished, tmp_path, capsys, summary):
    out = copy_of(finished, tmp_path)
    (out / "summary.json").write_text(summary)
    assert main(["plot", str(out)]) == 2
    assert str(out / "summary.json") in one_error_line(capsys)


def test_plot_of_a_trajectory_without_its_loss(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    traj = Trajectory.load(out / "trajectory.npz")
    del traj.observables["loss"]
    traj.save(out / "trajectory.npz")
    assert main(["plot", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(out / "trajectory.npz") in line and "'loss'" in line


# ------------------------------------------------------- B16: figures of degenerate runs


def test_zero_initialisation_saddle_is_drawn_and_flagged(tmp_path, capsys):
    out = tmp_path / "saddle"
    assert run(out, "s0_mult=0", "s1_mult=0", "counts=6,2,2,2") == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err and "warning: figure" not in printed.err
    for name in ("figure1.png", "theory_checks.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["loss_at"]["1"] == pytest.approx(np.log(2))  # the saddle: loss stays log 2
    assert summary["non_finite_observables"]["B1"]["values"] == "inf"  # s_I234 = s_I1
    assert "warning: observables not finite" in printed.out and "B1" in printed.out


def test_observables_overflowing_to_inf_are_drawn(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    for name in ("figure1.png", "theory_checks.png"):
        (out / name).unlink()
    traj = Trajectory.load(out / "trajectory.npz")
    obs = traj.observables  # as with s1_mult = 1e200: ‖u‖² = inf, loss 0, ratios NaN
    obs["u_norm_sq"][:] = np.inf
    obs["rate_constant"][:] = np.nan
    for k in ("loss", "loss_type1", "loss_type2", "loss_type3", "loss_type4"):
        obs[k][1:] = 0.0
    for k in ("rho23", "R", "B1", "B2"):
        obs[k][1:] = np.nan
    traj.save(out / "trajectory.npz")
    assert main(["plot", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert (out / "figure1.png").exists() and (out / "theory_checks.png").exists()


def test_a_figure_that_cannot_be_drawn_is_skipped_with_a_warning(tmp_path, monkeypatch,
                                                                 capsys):
    from gradflow.papers.cooccurrence import figures as cooccurrence_figures

    def broken(traj, path):
        raise ValueError("cannot draw this")

    monkeypatch.setattr(cooccurrence_figures, "theory_panel", broken)
    out = tmp_path / "o"
    assert run(out) == 0
    err = capsys.readouterr().err
    assert "gradflow: warning: figure theory_checks.png was not drawn" in err
    assert (out / "figure1.png").exists() and (out / "summary.json").exists()


# --------------------------------------------------------------- B21: integer bounds


@pytest.mark.parametrize(
    ("setting", "name"),
    [("m=1e20", "'m'"), ("m=1e12", "'m'"), ("counts=1e15,1,1,1", "'counts'"),
     ("m=123456789012345678901234567890", "'m'")],
)
def test_huge_integers_are_refused_naming_the_parameter(setting, name, capsys):
    assert main(["run", "cooccurrence", "--no-progress", "--set", setting]) == 2
    line = one_error_line(capsys)
    assert f"parameter {name}" in line and "must be <=" in line


def test_huge_integer_in_a_config_file(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("m = 1e20\n")
    assert main(["run", "cooccurrence", "--config", str(config), "--no-progress"]) == 2
    assert "parameter 'm'" in one_error_line(capsys)


def test_sizes_that_only_together_exceed_the_memory_limit(capsys, monkeypatch):
    assert main(["run", "cooccurrence", "--no-progress", "--set", "d=100000", "--set",
                 "m=100000"]) == 2
    line = one_error_line(capsys)
    assert "parameters 'd', 'm', 'm1'" in line and "of memory" in line
    assert "GRADFLOW_MEMORY_LIMIT_GB" in line
    from gradflow.registry import get

    monkeypatch.setenv("GRADFLOW_MEMORY_LIMIT_GB", "0.001")  # 1 MiB: the default is more
    with pytest.raises(ArgumentError, match="more than the limit of"):
        get("cooccurrence").config({})
    monkeypatch.setenv("GRADFLOW_MEMORY_LIMIT_GB", "lots")
    with pytest.raises(ArgumentError, match="GRADFLOW_MEMORY_LIMIT_GB"):
        get("cooccurrence").config({})


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [("ntp", {"dataset": "random", "K": 200}, "'K'"),
     ("even_pairs", {"L_max": 20}, "'L_max'"),
     ("parity_cot", {"L0": 16}, "'L0'"),
     ("icl_imbalanced", {"K": 1000}, "'K', 'N'"),
     ("icl_balanced", {"n_per_K": 10**6, "K_values": (4, 8, 16, 10**6)}, "'n_per_K'"),
     ("icl_representations", {"K": 10**6, "m": 10**5}, "'m', 'K'")],
)
def test_every_experiment_bounds_its_memory(name, overrides, match):
    from gradflow.registry import get

    with pytest.raises(ArgumentError, match=match):
        get(name).config(overrides)


def test_integer_conversion_is_exact_and_int64_bounded():
    from gradflow.experiment import Parameter
    from gradflow.registry import get

    config = get("cooccurrence").config({"init_seed": "9007199254740993"})
    assert config["init_seed"] == 9007199254740993  # seeds: exact, unbounded
    assert get("cooccurrence").config({"init_seed": 1e30})["init_seed"] == int(1e30)
    with pytest.raises(ArgumentError, match="64-bit"):
        Parameter("n", 1, "an undeclared maximum").convert("1e19")
    with pytest.raises(ArgumentError, match="not a finite number"):
        Parameter("n", 1, "x").convert(float("inf"))


def test_list_documents_the_ranges(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "m = 128: attention width [1 ≤ m ≤ 100000]" in out
    assert "init_seed = 1: seed of the initial weights [0 ≤ init_seed]" in out
    assert "[0 ≤ each entry ≤ 10000000]" in out


# ----------------------------------------------------- B17, B9: minimum values and fits


def test_icl_imbalanced_at_its_minimum_K(tmp_path, capsys):
    out = tmp_path / "k2"
    assert main(["run", "icl_imbalanced", "--out", str(out), "--no-progress", "--set", "K=2",
                 "--set", "T=10"]) == 0
    assert "no rare off-target feature" in capsys.readouterr().out
    assert (out / "imbalanced.png").exists()
    assert main(["plot", str(out)]) == 0


def test_even_pairs_at_its_minimum_L_max_and_shorter_than_a_decade_of_slopes(tmp_path,
                                                                           capsys):
    out = tmp_path / "ep"  # T < 100: no decade of t from t = 10 for the ‖u‖ slope
    assert main(["run", "even_pairs", "--out", str(out), "--no-progress", "--set", "L_max=2",
                 "--set", "T=50", "--set", "T1=20"]) == 0
    assert "no full decade" in capsys.readouterr().out
    assert (out / "dynamics.png").exists()


@pytest.mark.parametrize(("values", "match"), [("2,2,2,2", "must be >= 3"),
                                               ("2,4,8,16", "must be >= 3"),
                                               ("3,3,3,3", "2 distinct values")])
def test_icl_balanced_K_values_that_cannot_be_fitted(values, match, capsys):
    assert main(["run", "icl_balanced", "--no-progress", "--set", f"K_values={values}",
                 "--set", "T=10"]) == 2
    line = one_error_line(capsys)
    assert "parameter 'K_values'" in line and match in line


def test_no_power_law_fit_over_too_few_points(tmp_path, capsys):
    from gradflow.papers.softmax_icl.theory import fit_K_squared

    with pytest.raises(ArgumentError, match="2 distinct K"):
        fit_K_squared(np.array([4, 4, 4]), np.array([1.0, 1.0, 1.0]))
    with pytest.raises(ArgumentError, match="2 distinct K"):
        fit_K_squared(np.array([4, 8]), np.array([1.0, np.nan]))
    out = tmp_path / "short"  # T too short: α never reaches ½, so nothing to fit
    assert main(["run", "icl_balanced", "--out", str(out), "--no-progress", "--set",
                 "K_values=4,4,8,8", "--set", "T=10"]) == 0
    assert "no K² fit" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fit"]["c"] is None and sorted(summary["time_to_alpha_half"]) == ["4", "8"]
    assert (out / "balanced.png").exists()


def test_ntp_prints_no_slope_fitted_over_one_record(tmp_path, capsys):
    out = tmp_path / "ntp"
    assert main(["run", "ntp", "--out", str(out), "--no-progress", "--set", "T=60", "--set",
                 "fit_from=59", "--set", "ablation=false"]) == 0
    printed = capsys.readouterr().out
    assert "1−cos n/a" in printed and "no fit: fewer than 2 record times" in printed
    fitted = json.loads((out / "summary.json").read_text())["fitted"]
    assert fitted["stage2_dist_slope"] is None and fitted["points"]["stage2"] == 1


# ------------------------------------------------------ W3, W11, W12: the Python API


def test_hand_built_data_whose_tokens_disagree_with_X():
    import dataclasses

    from gradflow.papers import cooccurrence as cooc

    data = cooc.make_dataset(d=16, L=5, counts=(6, 2, 2, 2), rng=0)
    model = cooc.CooccurrenceTransformer(d=16, m=8, m1=16, rng=0)
    model.objective(data)  # consistent: accepted
    tokens = data.tokens.copy()
    tokens[3, 1] = (tokens[3, 1] + 1) % 16
    with pytest.raises(ArgumentError, match=r"data.tokens disagree with data.X .* sample 3, "
                                            r"position 1"):
        model.objective(dataclasses.replace(data, tokens=tokens))
    with pytest.raises(ArgumentError, match=r"data\.tokens must be ints"):
        model.objective(dataclasses.replace(data, tokens=data.tokens + 0.5))


@pytest.mark.parametrize(
    ("build", "match"),
    [(lambda c: c.CooccurrenceTransformer(d=float("nan"), m=8, m1=16), "^d must be an integer"),
     (lambda c: c.CooccurrenceTransformer(d=16, m=2.5, m1=16), "^m must be an integer"),
     (lambda c: c.CooccurrenceTransformer(d=16, m=8, m1=16, rng="x"), "^rng must be"),
     (lambda c: c.CooccurrenceTransformer(d=16, m=8, m1=16).init(rng=[-1]), "^rng must be"),
     (lambda c: c.make_dataset(rng="x"), "^rng must be"),
     (lambda c: c.make_dataset(counts=(2.5, 1, 1, 1)), "^counts must be"),
     (lambda c: c.make_dataset(L=float("inf")), "^L must be an integer >= 3")],
)
def test_model_arguments_are_named(build, match):
    from gradflow.papers import cooccurrence

    with pytest.raises(ArgumentError, match=match):
        build(cooccurrence)


def test_layout_refuses_fractional_dimensions():
    from gradflow import Layout

    with pytest.raises(ArgumentError, match=r"block 'w': every dimension must be an integer, "
                                            r"got 2.5"):
        Layout({"w": (2.5,)})
    with pytest.raises(ArgumentError, match="tuple of ints"):
        Layout({"w": 3})
    assert Layout({"w": (2.0, np.int64(3))}).shapes == {"w": (2, 3)}


def test_ntp_tokens_must_be_integers():
    from gradflow.papers import ntp

    base = ntp.fixture()
    sentences = [base.sentence(i) for i in range(base.n)]
    bad = [list(s) for s in sentences]
    bad[0][0] += 0.5
    with pytest.raises(ArgumentError, match=r"^sentence 0 must be integers, got \d\.5"):
        ntp.make_dataset(bad, base.y, base.collocation)
    labels = [float(v) for v in base.y]
    labels[2] += 0.5
    with pytest.raises(ArgumentError, match=r"^y \(the next tokens\) must be integers"):
        ntp.make_dataset(sentences, labels, base.collocation)
    floats = ntp.make_dataset([[float(t) for t in s] for s in sentences],
                              [float(v) for v in base.y], base.collocation)
    assert floats.n == base.n  # integral floats are integers
