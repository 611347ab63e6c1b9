"""Run and sweep folders have one owner: identity files, locks, --force (review B4, B5)."""

import json
import signal
import socket
import subprocess
import sys
import threading

import pytest

from gradflow import folders
from gradflow.cli import main
from gradflow.folders import FolderBusyError, FolderOwnedError, claim_sweep, locked

SMALL = ["--no-progress", "--set", "d=16", "--set", "m=8", "--set", "m1=8", "--set",
         "counts=6,2,2,2", "--set", "per_decade=2"]

HOLD = ("import sys, time\nfrom gradflow.folders import locked\nwith locked(sys.argv[1]):\n"
        "    print('held', flush=True)\n    time.sleep(120)\n")


def run(out, *extra):
    return main(["run", "cooccurrence", "--out", str(out), *SMALL, *extra])


def run_icl(out, *extra):
    return main(["run", "icl_imbalanced", "--out", str(out), "--no-progress", "--set", "T=10",
                 *extra])


@pytest.fixture
def holder(tmp_path):
    """A real second process holding the lock of ``tmp_path / "held"``."""
    folder = tmp_path / "held"
    folder.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield folder, process
    finally:
        process.kill()
        process.wait()


def test_a_locked_folder_names_its_holder_and_a_sigkilled_holder_blocks_nothing(
        holder, capsys):
    """B5: a second process on a folder in use gets `gradflow: error:` naming the holder, exit 1,
    and writes nothing; once the holder is SIGKILLed its lock is gone although its lock file
    (with its pid) is still there: a stale pid file never blocks."""
    folder, process = holder
    with pytest.raises(FolderBusyError) as info:
        with locked(folder):
            pass
    assert info.value.holder["pid"] == process.pid
    assert info.value.holder["host"] == socket.gethostname()
    sweep_file = folder.parent / "s.toml"
    sweep_file.write_text('experiment = "cooccurrence"\n[grid]\nm = [4]\n')
    for command in (["run", "cooccurrence", "--out", str(folder), *SMALL],
                    ["sweep", str(sweep_file), "--out", str(folder), "--workers", "1"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith("gradflow: error:") and f"pid {process.pid} on host" in err
        assert "started" in err
    assert folders.entries(folder) == []  # nothing written: no run.json, no sweep.json
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((folder / folders.LOCK_FILE).read_text())["pid"] == process.pid
    assert run(folder, "--set", "t_end=10") == 0
    assert (folder / "summary.json").exists()


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    """flock locks belong to open files, not processes: two threads of one dask worker running
    the same task folder exclude each other (a POSIX fcntl/lockf lock would not)."""
    errors = []
    with locked(tmp_path):
        thread = threading.Thread(target=lambda: errors.append(_try_lock(tmp_path)))
        thread.start()
        thread.join()
    assert errors == [True]
    with locked(tmp_path):  # released at the end of the block
        pass


def _try_lock(folder):
    try:
        with locked(folder):
            return False
    except FolderBusyError:
        return True


def test_run_folder_holds_one_run(tmp_path, capsys):
    """B5: another experiment or another config into a run folder is refused (exit 2, naming
    what differs); the same run is re-run; --force clears the folder first, so no file of the
    old run is left beside the new one's; a foreign folder is refused even with --force."""
    out = tmp_path / "o1"
    assert run(out, "--set", "t_end=10") == 0
    saved = (out / "run.json").read_bytes()
    assert run_icl(out) == 2
    assert "holds a run of 'cooccurrence', not of 'icl_imbalanced'" in capsys.readouterr().err
    assert run(out, "--set", "t_end=100") == 2
    assert "t_end = 10.0 there, 100.0 here" in capsys.readouterr().err
    assert (out / "run.json").read_bytes() == saved
    assert run(out, "--set", "t_end=10") == 0  # the same run: re-run into its folder
    assert run_icl(out, "--force") == 0
    assert json.loads((out / "run.json").read_text())["experiment"] == "icl_imbalanced"
    assert not (out / "trajectory.npz").exists() and not (out / "figure1.png").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert run(foreign, "--set", "t_end=10", "--force") == 2
    assert "holds no gradflow run or sweep" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    assert run(tmp_path / "file") == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_run_refuses_a_sweep_folder_and_sweep_refuses_a_run_folder(tmp_path):
    sweep = {"experiment": "cooccurrence", "keys": ["a"]}
    (tmp_path / "s").mkdir()
    folders.write_json_atomic(tmp_path / "s" / "sweep.json", sweep)
    assert run(tmp_path / "s", "--set", "t_end=10") == 2
    with locked(tmp_path / "s"):
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "run.json").write_text('{"experiment": "ntp", "config": {}}')
        with pytest.raises(FolderOwnedError, match="is a run folder"):
            claim_sweep(tmp_path / "r", sweep, force=False)


def test_unreadable_identity_files_are_refused_not_tracebacks(tmp_path, capsys):
    """A torn run.json (or one that is not a run record) is refused naming the file; --force
    discards it. resume of a run.json whose config is a string (B24) is a clear error."""
    out = tmp_path / "torn"
    out.mkdir()
    (out / "run.json").write_text('{"experiment": "cooc')
    assert run(out, "--set", "t_end=10") == 2
    assert "run.json is unreadable" in capsys.readouterr().err
    (out / "run.json").write_text('{"experiment": "cooccurrence", "config": "m = 8"}')
    assert main(["resume", str(out)]) == 2
    assert "not a gradflow run folder" in capsys.readouterr().err
    assert run(out, "--set", "t_end=10", "--force") == 0


def test_write_json_atomic_leaves_no_temporary_file(tmp_path):
    folders.write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_force_never_clears_a_folder_with_a_task_in_use(tmp_path):
    """A sweep task still running (e.g. on a dask worker of a killed sweep) holds its task
    folder's lock: --force refuses to clear the sweep folder, and deletes nothing."""
    (tmp_path / "tasks" / "k").mkdir(parents=True)
    folders.write_json_atomic(tmp_path / "sweep.json", {"experiment": "ntp", "keys": ["k"]})
    with locked(tmp_path), locked(tmp_path / "tasks" / "k"):
        with pytest.raises(FolderBusyError, match="tasks/k is in use"):
            claim_sweep(tmp_path, {"experiment": "cooccurrence", "keys": ["j"]}, force=True)
    assert (tmp_path / "sweep.json").exists() and (tmp_path / "tasks" / "k").is_dir()
