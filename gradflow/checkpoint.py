"""Checkpoint folders of long runs: one file per finished segment, plus the solver state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.errors import CheckpointError

__all__ = ["CheckpointStore", "fingerprint"]

STATE = "state.npz"
META = "run.json"


def fingerprint(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """A hash of a run's configuration and defining arrays (initial state, record grid)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name], dtype=float).tobytes())
    return h.hexdigest()


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


class CheckpointStore:
    """A folder holding an interrupted run.

    Layout of the folder: ``run.json`` (the run's fingerprint), ``segment_00000.npz``, … (the
    rows recorded in each finished segment, written once) and ``state.npz`` (the solver state
    after the last finished segment: τ, θ, step size, piece index, events and counters). Every
    file is replaced atomically, so a process killed at any instant leaves a usable folder; a
    segment file written after the last ``state.npz`` is simply rewritten on resume.

    Parameters
    ----------
    path : str or Path
    key : str
        The run's :func:`fingerprint`; a folder made by a different run is refused.
    """

    def __init__(self, path: str | Path, key: str):
        self.path = Path(path)
        self.key = key
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"checkpoint must be a folder, but {self.path} is a file")
        self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / META
        if meta.exists():
            try:
                saved = json.loads(meta.read_text())["fingerprint"]
            except Exception as exc:
                raise CheckpointError(f"{meta} is corrupt: {exc}") from exc
            if saved != key:
                raise CheckpointError(
                    f"checkpoint folder {self.path} belongs to a different run (other model, "
                    "data, initial state, grid or solver settings); use a new folder"
                )
        else:
            meta.write_text(json.dumps({"fingerprint": key}))

    def load_state(self) -> dict[str, Any] | None:
        """The saved solver state and the recorded rows so far, or None for a fresh folder."""
        state_file = self.path / STATE
        if not state_file.exists():
            return None
        try:
            with np.load(state_file, allow_pickle=False) as npz:
                state = {k: npz[k] for k in npz.files}
            info = json.loads(str(state.pop("info")))
            segments = [self._load_segment(k) for k in range(info["n_segments"])]
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"checkpoint {state_file} is corrupt: {exc}") from exc
        return {"arrays": state, "info": info, "segments": segments}

    def _load_segment(self, k: int) -> dict[str, np.ndarray]:
        path = self.path / f"segment_{k:05d}.npz"
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except Exception as exc:
            raise CheckpointError(f"checkpoint segment {path} is unreadable: {exc}") from exc

    def save(
        self,
        segment_index: int,
        rows: dict[str, np.ndarray] | None,
        arrays: dict[str, np.ndarray],
        info: dict[str, Any],
    ) -> None:
        """Write one finished segment's rows (if any), then the state that refers to it."""
        if rows is not None:
            _atomic_savez(self.path / f"segment_{segment_index:05d}.npz", **rows)
        _atomic_savez(self.path / STATE, info=np.array(json.dumps(info)), **arrays)
