"""Figure helpers shared by the experiments: thread-safe drawing and saving.

Matplotlib's object-oriented API (``matplotlib.figure.Figure``, no pyplot state) is used
everywhere, but its font and text parsers are still not thread-safe, and sweeps may run
experiments in threads (e.g. a dask cluster with ``processes=False``). Every public drawing
function is therefore wrapped in :func:`serialized`, which holds one process-wide lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["FIGURE_LOCK", "save", "serialized"]

FIGURE_LOCK = threading.RLock()
F = TypeVar("F", bound=Callable[..., Any])


def serialized(function: F) -> F:
    """Run ``function`` while holding :data:`FIGURE_LOCK`."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with FIGURE_LOCK:
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save(fig: Any, path: str | Path, dpi: int = 130) -> Path:
    """Tight layout, then write ``fig`` to ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return Path(path)
