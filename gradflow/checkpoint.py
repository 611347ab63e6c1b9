"""Checkpoint folders of long runs, and the content hashes that say which run a folder holds.

A checkpoint may only ever resume the run that wrote it. Two things make that so:

- :func:`fingerprint` identifies a run by everything that determines its trajectory: the
  objective (its ``checkpoint_key``: for a :class:`~gradflow.ModelObjective` a
  :func:`content_hash` of the model's fixed quantities and the data), simulate's settings, θ0
  and the record grid. A folder holding another fingerprint is refused.
- :class:`CheckpointStore` validates every file it reads against the run resuming from it
  (:class:`RunShape`): a damaged, edited, swapped or foreign file is a
  :class:`~gradflow.errors.CheckpointError` naming the file and the field, never a resumed
  wrong trajectory.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, NoReturn

import numpy as np

from gradflow.errors import ArgumentError, CheckpointError
from gradflow.layout import Layout

__all__ = [
    "FORMAT",
    "CheckpointStore",
    "RunShape",
    "content_hash",
    "defining_attributes",
    "fingerprint",
    "load_npz",
    "save_npz",
]

FORMAT = "gradflow-checkpoint-2"
"""Version of the folder layout; every file of a checkpoint carries it."""
META = "checkpoint.json"
STATE = "state.npz"
OLD_META = "run.json"
"""The fingerprint file of the first format (before ``FORMAT`` existed): such folders are
refused, since their segments carry no index and their state no fingerprint to check."""
SEGMENT = "segment_{:05d}.npz"
NPZ_MAGIC = b"PK\x03\x04"
"""The first bytes of every .npz file (a zip archive of .npy files)."""


# ----------------------------------------------------------------------------- content hashes


def defining_attributes(obj: Any) -> dict[str, Any]:
    """The instance attributes that define ``obj``, for :func:`content_hash`.

    All of ``vars(obj)`` except values cached lazily: names that are a
    :class:`functools.cached_property` on the class (they appear in ``vars`` only once used,
    so hashing them would make the hash depend on what was computed before) and the names in
    the class attribute ``hash_exclude`` (caches a class keeps by hand). Values derived
    eagerly in ``__init__`` are kept: they are the same every time the object is built.
    """
    cls = type(obj)
    if not hasattr(obj, "__dict__"):
        raise ArgumentError(
            f"{cls.__qualname__} has no __dict__, so gradflow cannot list what defines it; "
            "override content_hash")
    skip = set(getattr(cls, "hash_exclude", ()))
    return {k: v for k, v in vars(obj).items()
            if k not in skip
            and not isinstance(inspect.getattr_static(cls, k, None), functools.cached_property)}


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _Hasher:
    """SHA-256 over a canonical, typed encoding of nested values (see :func:`content_hash`)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def put(self, tag: str, payload: bytes = b"") -> None:
        # tag and length prefix: no two different values share an encoding
        self.h.update(tag.encode() + b":" + len(payload).to_bytes(8, "little") + payload)

    def hexdigest(self) -> str:
        return self.h.hexdigest()

    def add(self, value: Any, where: str) -> None:
        if value is None:
            self.put("none")
        elif isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"{where} is a masked array; gradflow cannot hash it by content "
                                "(pass the data and the mask as two arrays)")
        elif isinstance(value, np.ndarray | np.generic):  # before float: np.float64 is a float
            arr = np.asarray(value)
            if arr.dtype.hasobject:
                raise ArgumentError(
                    f"{where} is an array of Python objects (dtype {arr.dtype}); gradflow hashes "
                    "arrays by their bytes, so they must be numeric, boolean or string arrays")
            descr = repr(np.lib.format.dtype_to_descr(arr.dtype))
            self.put("array", f"{descr}{arr.shape}".encode())
            self.put("data", np.ascontiguousarray(arr).tobytes())
        elif isinstance(value, bool):
            self.put("bool", b"1" if value else b"0")
        elif isinstance(value, int):
            self.put("int", str(value).encode())
        elif isinstance(value, float):
            self.put("float", value.hex().encode())  # exact, and NaN/±0 distinguished
        elif isinstance(value, complex):
            self.put("complex", f"{value.real.hex()},{value.imag.hex()}".encode())
        elif isinstance(value, str):
            self.put("str", value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, bytes):
            self.put("bytes", value)
        elif isinstance(value, PurePath):
            self.put("path", str(value).encode())
        elif isinstance(value, list | tuple):
            self.put("seq", str(len(value)).encode())
            for i, item in enumerate(value):
                self.add(item, f"{where}[{i}]")
        elif isinstance(value, Mapping):
            # order-free: entries sorted by the hash of their key
            entries = sorted((content_hash(k, f"a key of {where}"), k) for k in value)
            self.put("map", str(len(entries)).encode())
            for key_hash, key in entries:
                self.put("key", key_hash.encode())
                self.add(value[key], f"{where}[{key!r}]")
        elif isinstance(value, Layout):
            self.put("layout", json.dumps(value.to_json()).encode())
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            # the declared fields only: cached_property values live outside them
            self.put("dataclass", _qualname(type(value)).encode())
            for f in dataclasses.fields(value):
                self.put("field", f.name.encode())
                self.add(getattr(value, f.name), f"{where}.{f.name}")
        elif hasattr(type(value), "hash_exclude"):  # opted in, as every gradflow.Model is
            attributes = defining_attributes(value)
            self.put("object", _qualname(type(value)).encode())
            for name in sorted(attributes):
                self.put("attribute", name.encode())
                self.add(attributes[name], f"{where}.{name}")
        else:
            raise ArgumentError(
                f"{where} is a {_qualname(type(value))}, which gradflow cannot hash by content "
                "(it hashes arrays, numbers, strings, None, and tuples, lists, dicts and "
                "dataclasses of them); store it as one of those, list it in the class's "
                "hash_exclude if it is a cache, or override content_hash")


def content_hash(value: Any, name: str = "value") -> str:
    """A stable SHA-256 hash of ``value`` by content, the same in every process and session.

    Parameters
    ----------
    value : nested data
        Arrays (by dtype, shape and bytes: not by identity, never by ``repr``), NumPy and
        Python scalars, strings, bytes, None, paths; lists and tuples (alike) in order; dicts
        whatever their order; dataclasses by class name and declared fields (so a
        ``cached_property`` never counts); :class:`~gradflow.Layout`; and objects whose class
        has a ``hash_exclude`` attribute (every :class:`~gradflow.Model`) by class name and
        :func:`defining_attributes`.
    name : str
        How errors refer to ``value``.

    Returns
    -------
    str
        64 hexadecimal digits.

    Raises
    ------
    ArgumentError
        ``value`` holds something it cannot hash by content (a function, an arbitrary object,
        an object array), named by its path, e.g. ``CooccurrenceTransformer.a``.
    """
    hasher = _Hasher()
    hasher.add(value, name)
    return hasher.hexdigest()


def fingerprint(
    config: dict[str, Any], arrays: dict[str, np.ndarray], objective: str
) -> tuple[str, dict[str, str]]:
    """The key of a run and the hashes of its parts.

    Parameters
    ----------
    config : dict
        simulate's settings (JSON-safe), solver, clock, rates, layout, observable and event
        names, and the caller's ``config``; not the work budgets, so a rerun with a larger
        budget resumes.
    arrays : dict of str to ndarray
        The initial state ``theta0`` (P,) and the record grid ``grid`` (n_rec,).
    objective : str
        What identifies the objective: its ``checkpoint_key`` and simulate's
        ``checkpoint_key=``.

    Returns
    -------
    key : str
        SHA-256 over the parts.
    parts : dict of str to str
        ``{"objective", "settings", "theta0", "grid"}`` hashes, kept in the folder so that a
        refusal can say what differs.
    """
    settings = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    parts = {"objective": hashlib.sha256(objective.encode()).hexdigest(),
             "settings": settings.hexdigest()}
    for name in sorted(arrays):
        parts[name] = content_hash(np.asarray(arrays[name], dtype=float), name)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


# ----------------------------------------------------------------------------- .npz files


def save_npz(path: Path, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    """Write ``arrays`` to ``path`` atomically, never pickled.

    The file is written beside ``path`` under a name unique to this process, flushed to disk,
    then renamed over ``path``: a process killed at any instant leaves either the old file or
    the new one, never a torn one.

    Raises
    ------
    ArgumentError
        An array holds Python objects (it could only be stored pickled); names the array.
    """
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for name, value in arrays.items():
        if value.dtype.hasobject:
            raise ArgumentError(
                f"cannot save {name!r} to {path}: it is an array of Python objects (dtype "
                f"{value.dtype}), which .npz stores only pickled; gradflow never writes pickles")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write = np.savez_compressed if compressed else np.savez
    try:
        with open(tmp, "wb") as f:
            write(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Read a gradflow ``.npz`` file without unpickling anything.

    Parameters
    ----------
    path : Path
    what : str
        What the file is, for messages (``"checkpoint state"``, ``"trajectory"``).

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (callers decide what that means).
    CheckpointError
        The file is not a zip archive ("not a gradflow .npz file"), is damaged, or holds an
        object array.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPZ_MAGIC))
    except FileNotFoundError:
        raise
    except OSError as exc:  # a folder, no permission
        raise CheckpointError(f"{what} {path} cannot be read: {exc}") from exc
    if head != NPZ_MAGIC:
        # NumPy would try to read it as a pickle and suggest allow_pickle=True: never
        raise CheckpointError(f"{what} {path} is not a gradflow .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CheckpointError(
                f"{what} {path} holds an array of Python objects, which gradflow never writes "
                "and never unpickles: not a gradflow file") from None
        raise CheckpointError(f"{what} {path} is damaged: {exc}") from exc
    except Exception as exc:
        raise CheckpointError(f"{what} {path} is damaged: {exc}") from exc


def _json_text(arrays: dict[str, np.ndarray], key: str, file: Path) -> Any:
    value = arrays.get(key)
    if value is None or value.shape != () or value.dtype.kind != "U":
        raise CheckpointError(f"checkpoint file {file} has no {key!r} record: not a gradflow "
                              f"checkpoint file of format {FORMAT}")
    try:
        return json.loads(str(value))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint file {file}: its {key!r} record is not JSON "
                              f"({exc})") from exc


# ----------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class RunShape:
    """What the files of a checkpoint must agree with: the run resuming from it.

    Attributes
    ----------
    grid_t, grid_tau : ndarray, shape (n_rec,)
        The record grid in t and in the clock's τ.
    piece_tau : tuple of float, length n_pieces + 1
        τ at the start of each rate piece and at the end.
    size : int
        P, the length of θ.
    store_theta : bool
    observables : tuple of str
    events : tuple of (str, bool)
        Each event's name and whether it is terminal.
    first_method : str
        The method the run starts with; later ones are in the state's ``switches``.
    methods : frozenset of str
        The methods a state may name.
    t_of_tau : callable
        The clock: t as a function of τ.
    """

    grid_t: np.ndarray
    grid_tau: np.ndarray
    piece_tau: tuple[float, ...]
    size: int
    store_theta: bool
    observables: tuple[str, ...]
    events: tuple[tuple[str, bool], ...]
    first_method: str
    methods: frozenset[str]
    t_of_tau: Callable[[float], float]


STATE_FIELDS = frozenset({
    "format", "fingerprint", "piece", "tau", "h", "next", "crossings", "counters", "status",
    "stop_reason", "n_segments", "segments", "resumed", "method", "switches"})
COUNTERS = ("nfev", "njev", "nlu", "steps")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Raises a :class:`CheckpointError` naming the file and the field."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, field: str, why: str) -> NoReturn:
        raise CheckpointError(
            f"checkpoint file {self.file}: field '{field}' {why}; the folder is damaged or was "
            "edited, so it cannot be resumed (use a new folder, or delete this one to start "
            "again)")

    def integer(self, field: str, value: Any, lo: int, hi: float = np.inf) -> int:
        if not (_is_int(value) and lo <= value <= hi):
            self.fail(field, f"= {value!r} must be an integer in [{lo}, {hi}]")
        return value

    def real(self, field: str, value: Any, lo: float = -np.inf, hi: float = np.inf) -> float:
        if not (_is_real(value) and np.isfinite(value) and lo <= value <= hi):
            self.fail(field, f"= {value!r} must be a finite number in [{lo:.17g}, {hi:.17g}]")
        return float(value)


def _check_state(meta: Any, arrays: dict[str, np.ndarray], key: str, run: RunShape,
                 file: Path) -> None:
    """Validate ``state.npz`` on its own and against ``run`` (the rows come later)."""
    check = _Checker(file)
    if not isinstance(meta, dict):
        check.fail("meta", f"must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        check.fail("format", f"= {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("fingerprint") != key:
        check.fail("fingerprint", "belongs to another run (this file was copied from another "
                   "folder)")
    if set(meta) != STATE_FIELDS:
        missing, extra = sorted(STATE_FIELDS - set(meta)), sorted(set(meta) - STATE_FIELDS)
        check.fail(missing[0] if missing else extra[0],
                   "is missing" if missing else "is not a field of this format")
    if set(arrays) != {"meta", "theta", "event_values"}:
        check.fail("arrays", f"must be meta, theta and event_values, got {sorted(arrays)}")

    n_pieces = len(run.piece_tau) - 1
    piece = check.integer("piece", meta["piece"], 0, n_pieces)
    lo, hi = (run.piece_tau[piece], run.piece_tau[piece + 1]) if piece < n_pieces else (
        run.piece_tau[-2], run.piece_tau[-1])
    tau = check.real("tau", meta["tau"], lo, hi)  # within its rate piece
    h = meta["h"]
    if h is not None and not (_is_real(h) and np.isfinite(h) and h > 0):
        check.fail("h", f"= {h!r} must be None or a positive finite step size")
    n_rec = len(run.grid_t)
    k = check.integer("next", meta["next"], 1, n_rec)
    # the loop records every grid time up to the state's τ and none beyond it
    if k >= 2 and not run.grid_tau[k - 1] <= tau:
        check.fail("next", f"= {k} counts the record at t={run.grid_t[k - 1]:.17g}, after the "
                   f"state's τ={tau:.17g}")
    if k < n_rec and not tau < run.grid_tau[k]:
        check.fail("next", f"= {k} leaves the record at t={run.grid_t[k]:.17g} unrecorded, "
                   f"before the state's τ={tau:.17g}")

    theta = arrays["theta"]
    if theta.shape != (run.size,) or theta.dtype != np.float64:
        check.fail("theta", f"has shape {theta.shape} and dtype {theta.dtype}, expected "
                   f"({run.size},) float64")
    if not np.all(np.isfinite(theta)):
        check.fail("theta", "is not finite")
    values = arrays["event_values"]
    if values.shape != (len(run.events),) or values.dtype.kind != "f" or np.any(np.isnan(values)):
        check.fail("event_values", f"must be {len(run.events)} real numbers (one per event), "
                   f"got shape {values.shape}, dtype {values.dtype}")

    t_now = float(run.t_of_tau(tau))
    t_first = float(run.t_of_tau(run.piece_tau[0]))
    crossings = meta["crossings"]
    names = [name for name, _ in run.events]
    if not isinstance(crossings, dict) or sorted(crossings) != sorted(names):
        check.fail("crossings", f"must list the events {names}, got {crossings!r}")
    for name, times in crossings.items():
        if not (isinstance(times, list) and all(_is_real(x) and np.isfinite(x) for x in times)
                and times == sorted(times)
                and all(t_first <= x <= t_now for x in times)):
            check.fail(f"crossings[{name!r}]", f"= {times!r} must be increasing times in "
                       f"[{t_first:.17g}, {t_now:.17g}] (the state's t)")

    counters = meta["counters"]
    if not isinstance(counters, dict) or set(counters) != {*COUNTERS, "wall_time"}:
        check.fail("counters", f"must hold {[*COUNTERS, 'wall_time']}, got {counters!r}")
    for name in COUNTERS:
        check.integer(f"counters[{name!r}]", counters[name], 0)
    check.real("counters['wall_time']", counters["wall_time"], 0.0)
    check.integer("resumed", meta["resumed"], 0)

    status, reason = meta["status"], meta["stop_reason"]
    terminal = {f"terminated by event {name!r}": name for name, final in run.events if final}
    known = {"running": "running", "finished": "finished", **dict.fromkeys(terminal, "event")}
    if status not in known:
        check.fail("status", f"= {status!r} is not one of {sorted(known)}")
    if status == "finished" and (piece != n_pieces or k != n_rec):
        check.fail("status", f"= 'finished', but the state is at record {k} of {n_rec}, "
                   f"rate piece {piece} of {n_pieces}")
    if status in terminal and not crossings[terminal[status]][-1:] == [t_now]:
        check.fail("status", f"= {status!r}, but that event did not cross at the state's "
                   f"t={t_now:.17g}")
    if reason != known[status]:
        check.fail("stop_reason", f"= {reason!r} contradicts status {status!r}")

    switches = meta["switches"]
    if not isinstance(switches, list) or not all(
            isinstance(s, dict) and set(s) == {"t", "from", "to", "why"}
            and s["from"] in run.methods and s["to"] in run.methods for s in switches):
        check.fail("switches", f"must be a list of method switches, got {switches!r}")
    expected = switches[-1]["to"] if switches else run.first_method
    if meta["method"] != expected:
        check.fail("method", f"= {meta['method']!r}, but the run started with "
                   f"{run.first_method!r} and its switches end with {expected!r}")

    n = check.integer("n_segments", meta["n_segments"], 1)
    segments = meta["segments"]
    if not (isinstance(segments, list) and len(segments) == n and all(
            isinstance(s, list) and len(s) == 3 and _is_int(s[0]) and s[0] >= 1
            and all(_is_real(x) for x in s[1:]) for s in segments)):
        check.fail("segments", f"must list [rows, t_first, t_last] of each of the n_segments={n} "
                   f"segments, got {segments!r}")


def _check_rows(meta: dict[str, Any], rows: dict[str, np.ndarray], run: RunShape,
                file: Path) -> None:
    """Validate the rows of all segments together against the state and the grid."""
    check = _Checker(file)
    t = rows["t"]
    if not np.all(np.diff(t) > 0):
        i = int(np.argmax(np.diff(t) <= 0))
        check.fail("segments", f"hold times that do not increase (t={t[i]:.17g} then "
                   f"t={t[i + 1]:.17g}): segment files were swapped, replaced or mixed")
    k = meta["next"]
    grid = run.grid_t[:k]
    extra = len(t) - k  # a terminal event's stop adds one row after the last grid time
    ok = (extra == 0 or (extra == 1 and meta["stop_reason"] == "event")) and np.array_equal(
        t[:k], grid)
    if not ok:
        check.fail("next", f"= {k} (records up to t={grid[-1]:.17g}), but the segments hold "
                   f"{len(t)} rows up to t={t[-1]:.17g}: they do not match the state")


class CheckpointStore:
    """A folder holding an interrupted (or finished) run.

    Layout of the folder:

    - ``checkpoint.json``: the format and the run's :func:`fingerprint`, with its parts;
    - ``segment_00000.npz``, …: the rows recorded in each finished segment (``t``,
      ``theta``, ``obs/<name>``), each with a ``meta`` record of the format, fingerprint,
      its index, row count and t-range;
    - ``state.npz``: the solver state after the last finished segment (τ, θ, step size,
      piece, next record, events, counters, method, status) and the row count and t-range of
      every segment it covers.

    Every file is replaced atomically (:func:`save_npz`), segments before the state that
    covers them, so a process killed at any instant leaves a usable folder; a segment file
    written after the last ``state.npz`` is not read, and is rewritten on resume.

    Parameters
    ----------
    path : str or Path
    key : str
        The run's :func:`fingerprint`; a folder made by a different run is refused.
    parts : dict of str to str
        The fingerprint's parts, stored so that a refusal names what differs.

    Raises
    ------
    CheckpointError
        ``path`` is a file, a folder of another run, a folder of an older gradflow, or a
        non-empty folder that is no checkpoint.
    """

    def __init__(self, path: str | Path, key: str, parts: dict[str, str]):
        self.path = Path(path)
        self.key = key
        self.segments: list[list[Any]] = []  # [rows, t_first, t_last] of each saved segment
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"checkpoint must be a folder, but {self.path} is a file")
        self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / META
        if meta.exists():
            self._check_owner(meta, parts)
            return
        if (self.path / OLD_META).exists():
            raise CheckpointError(
                f"checkpoint folder {self.path} was written by an older gradflow (format 1: its "
                "segments carry no index and its state no fingerprint, so it cannot be "
                "validated); start a new folder")
        # a kill during the first write can leave only a .tmp file behind: still empty
        if any(not p.name.endswith(".tmp") for p in self.path.iterdir()):
            raise CheckpointError(
                f"checkpoint folder {self.path} is not empty and holds no {META}: it is not a "
                "gradflow checkpoint; use a new or empty folder")
        record = {"format": FORMAT, "fingerprint": key, "parts": parts}
        tmp = meta.with_name(f"{META}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(meta)

    def _check_owner(self, meta: Path, parts: dict[str, str]) -> None:
        try:
            saved = json.loads(meta.read_text())
            fmt, key, saved_parts = saved["format"], saved["fingerprint"], saved["parts"]
        except Exception as exc:
            raise CheckpointError(f"{meta} is damaged: {type(exc).__name__}: {exc}") from exc
        if fmt != FORMAT:
            raise CheckpointError(f"{meta} has format {fmt!r}, this gradflow reads {FORMAT!r}; "
                                  "start a new folder")
        if key != self.key:
            what = {"objective": "the objective (its model's fixed quantities or data, or the "
                                 "checkpoint_key)",
                    "settings": "simulate's settings (solver, tolerances, clock, rates, "
                                "observables, events, layout or config)",
                    "theta0": "the initial state theta0", "grid": "the record grid"}
            differ = [what.get(k, k) for k in sorted(set(parts) | set(saved_parts))
                      if parts.get(k) != saved_parts.get(k)] or ["the fingerprint"]
            verb = "differs" if len(differ) == 1 else "differ"
            raise CheckpointError(f"checkpoint folder {self.path} belongs to a different run: "
                                  f"{'; '.join(differ)} {verb}; use a new folder")

    def load_state(self, run: RunShape) -> dict[str, Any] | None:
        """The saved solver state and the recorded rows so far, or None for a fresh folder.

        Every field is validated: on its own (types and ranges), against ``run`` (θ's size,
        the record grid, the rate pieces, the events, the methods) and against the segments
        (their format, fingerprint, index, row counts and t-ranges, increasing t, the rows
        equal to the grid's first ``next`` times).

        Returns
        -------
        dict or None
            ``{"arrays": {"theta", "event_values"}, "info": fields, "segments": rows}``.

        Raises
        ------
        CheckpointError
            Naming the file and the field that is wrong.
        """
        file = self.path / STATE
        try:
            arrays = load_npz(file, "checkpoint state")
        except FileNotFoundError:
            self.segments = []
            return None
        meta = _json_text(arrays, "meta", file)
        _check_state(meta, arrays, self.key, run, file)
        segments = [self._load_segment(i, summary, run)
                    for i, summary in enumerate(meta["segments"])]
        obs_shapes = {name: segments[0][f"obs/{name}"].shape[1:] for name in run.observables}
        for i, segment in enumerate(segments):
            for name, shape in obs_shapes.items():
                if segment[f"obs/{name}"].shape[1:] != shape:
                    _Checker(self.path / SEGMENT.format(i)).fail(
                        f"obs/{name}", f"has rows of shape {segment[f'obs/{name}'].shape[1:]}, "
                        f"segment 0 of shape {shape}")
        rows = {"t": np.concatenate([s["t"] for s in segments])}
        _check_rows(meta, rows, run, file)
        self.segments = [list(s) for s in meta["segments"]]
        arrays.pop("meta")
        return {"arrays": arrays, "info": meta, "segments": segments}

    def _load_segment(self, index: int, summary: list[Any], run: RunShape
                      ) -> dict[str, np.ndarray]:
        file = self.path / SEGMENT.format(index)
        try:
            arrays = load_npz(file, "checkpoint segment")
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint segment {file} is missing; {STATE} counts "
                                  f"{index + 1} or more segments") from None
        meta = _json_text(arrays, "meta", file)
        check = _Checker(file)
        expected = {"format": FORMAT, "fingerprint": self.key, "index": index,
                    "n_rows": summary[0], "t_first": summary[1], "t_last": summary[2]}
        if not isinstance(meta, dict) or set(meta) != set(expected):
            check.fail("meta", f"must hold {sorted(expected)}, got {meta!r}")
        for field, value in expected.items():
            if meta[field] != value:
                why = ("belongs to another run" if field == "fingerprint" else
                       f"= {meta[field]!r}, but {STATE} expects {value!r} for "
                       f"{SEGMENT.format(index)}")
                check.fail(field, why)
        names = {"meta", "t", *(["theta"] if run.store_theta else []),
                 *(f"obs/{name}" for name in run.observables)}
        if set(arrays) != names:
            check.fail("arrays", f"must be {sorted(names)}, got {sorted(arrays)}")
        arrays.pop("meta")
        n = summary[0]
        for name, value in arrays.items():
            if value.shape[:1] != (n,) or value.dtype.kind not in "biufc":
                check.fail(name, f"has shape {value.shape} and dtype {value.dtype}, expected "
                           f"{n} numeric rows")
        t = arrays["t"]
        if t.ndim != 1 or t.dtype != np.float64 or not np.all(np.isfinite(t)) or (
                float(t[0]), float(t[-1])) != (summary[1], summary[2]):
            check.fail("t", f"must be {n} finite times from {summary[1]!r} to {summary[2]!r}")
        if run.store_theta and (arrays["theta"].shape != (n, run.size)
                                or arrays["theta"].dtype != np.float64):
            check.fail("theta", f"has shape {arrays['theta'].shape}, expected ({n}, {run.size})")
        return arrays

    def save(self, rows: dict[str, np.ndarray] | None, arrays: dict[str, np.ndarray],
             info: dict[str, Any]) -> None:
        """Write the rows of a finished segment (if any), then the state that covers them.

        Parameters
        ----------
        rows : dict of str to ndarray, each with the same number of rows, or None
            ``t`` (n,), ``theta`` (n, P), ``obs/<name>`` (n, ...).
        arrays : dict of str to ndarray
            ``theta`` (P,) and ``event_values`` (n_events,).
        info : dict
            The state's JSON fields; the store adds the format, fingerprint and segments.
        """
        if rows is not None:
            t = rows["t"]
            summary = [int(t.size), float(t[0]), float(t[-1])]
            index = len(self.segments)
            meta = {"format": FORMAT, "fingerprint": self.key, "index": index,
                    "n_rows": summary[0], "t_first": summary[1], "t_last": summary[2]}
            save_npz(self.path / SEGMENT.format(index),
                     {**rows, "meta": np.array(json.dumps(meta))})
            self.segments.append(summary)
        state = {**info, "format": FORMAT, "fingerprint": self.key,
                 "n_segments": len(self.segments), "segments": self.segments}
        save_npz(self.path / STATE, {**arrays, "meta": np.array(json.dumps(state))})

