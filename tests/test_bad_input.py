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


def test_out_naming_an_existing_file_is_an_environment_error(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("not a folder")
    assert run(path) == 1
    line = one_error_line(capsys)
    assert str(path) in line and "a folder is expected" in line
    assert path.read_text() == "not a folder"


def test_a_file_in_the_way_of_the_output_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert run(tmp_path / "file" / "sub") == 1
    assert str(tmp_path / "file" / "sub") in one_error_line(capsys)


def test_sweep_out_naming_a_file(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text('experiment = "cooccurrence"\n[fixed]\nd = 8\n[grid]\nm = [4]\n')
    (tmp_path / "taken").write_text("")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "taken"), "--workers", "1",
                 "--no-progress"]) == 1
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
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "trajectory.json",
                                                     "trajectory.npz"]  # no partial file


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
    from gradflow.experiments import cooccurrence_figures

    def broken(traj, path):
        raise ValueError("cannot draw this")

    monkeypatch.setattr(cooccurrence_figures, "theory_panel", broken)
    out = tmp_path / "o"
    assert run(out) == 0
    err = capsys.readouterr().err
    assert "gradflow: warning: figure theory_checks.png was not drawn" in err
    assert (out / "figure1.png").exists() and (out / "summary.json").exists()
