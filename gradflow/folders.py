"""Output folders with one owner: an identity file and a lock held while a process writes.

A run folder's identity is ``run.json`` (the experiment and its full validated config), a sweep
folder's is ``sweep.json`` (the experiment and the set of task keys, i.e. the sweep spec). Both
are written atomically. While a process writes into a folder it holds an exclusive
``fcntl.flock`` on ``FOLDER/gradflow.lock``, which also records the holder (pid, host, start
time, command) for the message a second process gets. The kernel drops the lock when the
holder's process ends, however it ends (SIGKILL included), so a stale lock file never blocks a
resume: only a live holder does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gradflow.errors import ArgumentError, GradflowError
from gradflow.flow import BUDGET_KEYS

__all__ = [
    "LOCK_FILE",
    "RUN_FILE",
    "SWEEP_FILE",
    "FolderBusyError",
    "FolderOwnedError",
    "claim_run",
    "claim_sweep",
    "clear",
    "entries",
    "locked",
    "make_folder",
    "read_json",
    "run_difference",
    "sweep_difference",
    "write_json_atomic",
]

LOCK_FILE = "gradflow.lock"
"""The lock file of a run, sweep or sweep-task folder (it stays; only a live lock counts)."""
RUN_FILE = "run.json"
"""A run folder's identity: ``{"experiment", "config"}``, what ``gradflow resume`` re-runs."""
SWEEP_FILE = "sweep.json"
"""A sweep folder's identity: the experiment, the spec hash, the seed key and the task keys."""


class FolderBusyError(GradflowError):
    """Another live process holds the folder's lock (an error of the environment: exit 1).

    Attributes
    ----------
    folder : Path
    holder : dict
        What the holder recorded: ``pid``, ``host``, ``started``, ``command`` (may be empty if
        it was caught between taking the lock and recording itself).
    """

    def __init__(self, folder: Path, holder: dict[str, Any]):
        self.folder, self.holder = folder, holder
        if holder.get("pid") is not None:
            who = (f"pid {holder['pid']} on host {holder.get('host', '?')}, started "
                   f"{holder.get('started', '?')}")
            if holder.get("command"):
                who += f" ({holder['command']})"
        else:
            who = "a process that has not recorded itself yet"
        super().__init__(f"{folder} is in use by another gradflow process: {who}; wait for it "
                         "to finish or stop it (a dead process holds no lock)")


def _holder() -> dict[str, Any]:
    command = " ".join(["gradflow", *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": command[:300]}


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of an existing ``folder`` for the block.

    Never waits: if another live process holds it, raises :class:`FolderBusyError` naming the
    holder. The lock is released when the block ends or the process dies.
    """
    folder = Path(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(folder, _read_holder(fd)) from None
        record = json.dumps(_holder()).encode()
        os.pwrite(fd, record, 0)  # then cut: a truncation to 0 first makes ext4 flush on close
        os.ftruncate(fd, len(record))
        yield folder
    finally:
        os.close(fd)  # drops the lock


def make_folder(path: str | Path, what: str) -> Path:
    """Create ``path`` (and its parents) as a folder; a bad path is an :class:`ArgumentError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"{what} {path} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def entries(folder: Path) -> list[str]:
    """The names in ``folder`` besides its lock file, sorted."""
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)


def clear(folder: Path) -> None:
    """Delete everything in ``folder`` except its lock file (call only under the lock).

    Raises :class:`FolderBusyError` and deletes nothing if a folder inside is in use (a sweep
    task of an earlier, killed sweep still running on a dask worker, say).
    """
    for inner in sorted(folder.glob(f"*/**/{LOCK_FILE}")):
        with locked(inner.parent):
            pass
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to a temporary file, fsync it and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as fh:
        fh.write(json.dumps(data, indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_json(path: Path) -> Any:
    """The JSON in ``path``; a file that cannot be read or parsed raises ``ValueError`` saying
    why (``OSError`` other than a missing file propagates)."""
    try:
        return json.loads(path.read_bytes().decode())
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


class FolderOwnedError(GradflowError):
    """The folder holds another run or sweep, or something that is not gradflow's (exit 2)."""


def _holds(folder: Path) -> tuple[str, Any]:
    """What ``folder`` holds: ``("empty", None)``, ``("run", record)``, ``("sweep", record)``,
    ``("damaged", reason)`` (an unreadable identity file) or ``("other", names)``."""
    found = [name for name in (RUN_FILE, SWEEP_FILE) if (folder / name).exists()]
    if len(found) == 2:
        return "damaged", f"it holds both a {RUN_FILE} and a {SWEEP_FILE}"
    if found:
        try:
            data = read_json(folder / found[0])
        except ValueError as exc:
            return "damaged", f"its {found[0]} is unreadable ({exc})"
        return ("run" if found[0] == RUN_FILE else "sweep"), data
    names = entries(folder)
    return ("other", names) if names else ("empty", None)


def _refuse_or_clear(folder: Path, problem: str, force: bool, fix: str) -> None:
    if not force:
        raise FolderOwnedError(f"{folder} {problem}; {fix}, or pass --force to discard what "
                               "it holds")
    clear(folder)


def _foreign(folder: Path, names: list[str]) -> FolderOwnedError:
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return FolderOwnedError(
        f"{folder} is not empty ({shown}) and holds no gradflow run or sweep; choose a new or "
        f"empty folder (--force only discards gradflow run and sweep folders)")


def run_difference(saved: Any, experiment: str, config: dict[str, Any],
                   validate: Callable[[dict[str, Any]], dict[str, Any]]) -> str | None:
    """None if the run record ``saved`` (a ``run.json``) is the run (experiment, config), else
    what differs. Both configs are compared after validation (``validate``: the experiment's
    ``Experiment.config``), so a record written before a parameter was added still matches its
    defaults."""
    if not (isinstance(saved, dict) and isinstance(saved.get("experiment"), str)
            and isinstance(saved.get("config"), dict)):
        return f"holds a {RUN_FILE} that is not a gradflow run record"
    if saved["experiment"] != experiment:
        return f"holds a run of {saved['experiment']!r}, not of {experiment!r}"
    try:
        old = validate(saved["config"])
    except GradflowError as exc:
        return f"holds a run of {experiment!r} whose config is no longer valid ({exc})"
    # work limits are not identity: a rerun with a larger budget resumes the same run
    differ = [k for k in sorted(set(old) | set(config))
              if k not in BUDGET_KEYS and old.get(k) != config.get(k)]
    if not differ:
        return None
    shown = "; ".join(f"{k} = {old.get(k)!r} there, {config.get(k)!r} here" for k in differ[:4])
    return (f"holds another run of {experiment!r} ({shown}"
            + (f"; {len(differ) - 4} more" if len(differ) > 4 else "") + ")")


def claim_run(folder: Path, experiment: str, config: dict[str, Any], *, force: bool,
              validate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Make the locked ``folder`` the folder of this run, or refuse.

    An empty folder gets ``run.json``. A folder holding the same run (experiment and validated
    config) is kept as it is: the run resumes from its checkpoint or is re-run. Anything else is
    refused with :class:`FolderOwnedError`. ``force`` first deletes the contents of a gradflow
    folder (also of the same run's: it starts afresh); a foreign non-empty folder is refused
    even then. So ``run.json`` is
    never replaced in a folder whose checkpoint belongs to another run: it is written only into
    an empty folder, before any checkpoint exists.
    """
    if _claim(folder, "run", force, lambda data: run_difference(data, experiment, config, validate),
              lambda data: True,
              f"resume it with 'gradflow resume {folder}', choose another --out"):
        return  # the same run: its run.json stays as it is (never rewritten)
    write_json_atomic(folder / RUN_FILE, {"experiment": experiment, "config": config})


def _claim(folder: Path, own: str, force: bool, difference, same, hint: str) -> bool:
    """The rules shared by :func:`claim_run` and :func:`claim_sweep`: a folder of the ``own``
    kind (``"run"`` or ``"sweep"``) whose record has no ``difference`` is kept (True when the
    record is also the ``same``, so nothing needs writing); any other gradflow folder is
    refused, or cleared with ``force``; a foreign folder is always refused. Returns whether
    the record may stay as it is."""
    kind, data = _holds(folder)
    if kind == own:
        problem = difference(data)
        if problem is not None:
            _refuse_or_clear(folder, problem, force, hint)
        elif force:
            clear(folder)
        elif same(data):
            return True
    elif kind in ("run", "sweep"):
        _refuse_or_clear(folder, f"is a {kind} folder", force, "choose another --out")
    elif kind == "damaged":
        _refuse_or_clear(folder, f"cannot be identified: {data}", force, "choose another --out")
    elif kind == "other":
        raise _foreign(folder, data)
    return False


def sweep_difference(saved: Any, identity: dict[str, Any]) -> str | None:
    """None if the sweep record ``saved`` (a ``sweep.json``) has the experiment and task keys of
    ``identity``, else what differs."""
    if not (isinstance(saved, dict) and isinstance(saved.get("experiment"), str)
            and isinstance(saved.get("keys"), list)
            and all(isinstance(k, str) for k in saved["keys"])):
        return f"cannot be identified: its {SWEEP_FILE} is not a gradflow sweep record"
    if saved["experiment"] != identity["experiment"]:
        return f"holds a sweep of {saved['experiment']!r}, not of {identity['experiment']!r}"
    old, new = set(saved["keys"]), set(identity["keys"])
    if old != new:
        return (f"holds another sweep of {identity['experiment']!r} ({len(old)} tasks, "
                f"{len(old & new)} of them in this one's {len(new)})")
    return None


def claim_sweep(folder: Path, identity: dict[str, Any], *, force: bool) -> None:
    """Make the locked ``folder`` the folder of the sweep ``identity`` (experiment, spec hash,
    seed key, task keys), or refuse; the rules of :func:`claim_run`, with ``sweep.json``. The
    same sweep resumes; ``force`` starts it clean."""
    if _claim(folder, "sweep", force, lambda data: sweep_difference(data, identity),
              lambda data: data == identity, "choose another --out"):
        return
    write_json_atomic(folder / SWEEP_FILE, identity)
